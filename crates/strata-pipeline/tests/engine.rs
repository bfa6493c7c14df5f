//! The apply engine against in-memory sinks: ordering, checkpoints, retries, refusals,
//! shutdown and replay.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use strata_core::{ErrorKind, Sink, SourceEvent};
use strata_pipeline::{
    ApplySettings, CancellationToken, Pipeline, PipelineError, RetryPolicy, Router, SourceFailure,
    StopReason,
};
use support::{
    every_table, stream, unique_schema, wait_until, MemoryCheckpoints, MemorySink, Script,
};
use tokio::sync::mpsc;

fn settings(workers: usize, batch: usize) -> ApplySettings {
    ApplySettings {
        workers_per_sink: workers,
        queue_capacity: 64,
        batch_max_rows: batch,
        batch_max_delay: Duration::from_millis(5),
        checkpoint_interval: Duration::from_millis(10),
        retry: RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(20),
            multiplier: 2.0,
            jitter: 1.0,
        },
        ..ApplySettings::default()
    }
}

fn router(schema: &str) -> Router {
    Router::new(every_table(schema))
}

fn sinks(list: &[&Arc<MemorySink>]) -> Vec<Arc<dyn Sink>> {
    list.iter().map(|s| (*s).clone() as Arc<dyn Sink>).collect()
}

/// Interleaved writes, key changes and deletes over 40 keys in small transactions.
fn busy_script(schema: &str) -> Script {
    let mut s = Script::new(schema);
    let mut rng = fastrand::Rng::with_seed(7);
    for txn in 0..300 {
        s.begin();
        for step in 0..10 {
            let id = rng.i64(0..40);
            match rng.u8(0..10) {
                0 if s.contains(id) => s.delete(id),
                1 if s.contains(id) => {
                    let to = 1000 + txn * 10 + step;
                    s.rekey(id, to);
                }
                _ => s.write(id, &format!("t{txn}s{step}")),
            }
        }
        s.commit();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_is_kept_with_four_workers_and_targets_equal_the_source() {
    let schema = unique_schema("order");
    let mut script = busy_script(&schema);
    let a = MemorySink::new("a");
    let b = MemorySink::new("b");
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&a, &b]), store.clone(), settings(4, 7));

    let summary = pipeline
        .run(
            stream(script.take()),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(summary.stop, StopReason::SourceEnded);
    assert_eq!(summary.transactions, 300);
    let last = script.commits.last().unwrap().clone();
    assert_eq!(summary.last_applied.as_ref(), Some(&last));
    assert_eq!(store.last(), Some(last.position.clone()));
    for sink in [&a, &b] {
        assert_eq!(sink.order_violations.load(Ordering::SeqCst), 0);
        assert_eq!(
            sink.rows("items"),
            script.expected(),
            "sink {}",
            sink.name()
        );
    }
    let progress = pipeline.progress().borrow().clone();
    assert_eq!(progress.last_applied_commit, Some(last));
    assert_eq!(progress.sinks.len(), 2);
    assert!(progress.sinks[0].batches > 0);
    assert_eq!(progress.transactions_read, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_stays_at_the_previous_commit_while_a_transaction_is_not_durable() {
    let schema = unique_schema("midtxn");
    let mut script = Script::new(&schema);
    script.begin();
    for id in 1..=10 {
        script.write(id, "first");
    }
    let t1 = script.commit();
    let t1_events = script.take();
    script.begin();
    for id in 11..=15 {
        script.write(id, "second");
    }
    let first_half = script.take();
    for id in 16..=20 {
        script.write(id, "second");
    }
    let t2 = script.commit();
    let second_half = script.take();

    let sink = MemorySink::new("slow");
    sink.block(Some("13"));
    let store = MemoryCheckpoints::new();
    let pipeline = Arc::new(Pipeline::new(
        sinks(&[&sink]),
        store.clone(),
        settings(1, 100),
    ));
    let (tx, rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let run = {
        let (pipeline, shutdown, schema) = (pipeline.clone(), shutdown.clone(), schema.clone());
        tokio::spawn(async move { pipeline.run(rx, &mut router(&schema), &shutdown).await })
    };
    for e in t1_events {
        tx.send(Ok(e)).await.unwrap();
    }
    wait_until("T1 is checkpointed", || {
        store.last() == Some(t1.position.clone())
    })
    .await;

    // The source is now mid-transaction and the sink is stuck inside it.
    for e in first_half {
        tx.send(Ok(e)).await.unwrap();
    }
    sink.wait_blocked(1).await;
    // The rest of T2 arrives while the sink is still stuck: T2 must not be checkpointed.
    for e in second_half {
        tx.send(Ok(e)).await.unwrap();
    }
    let mut progress = pipeline.progress();
    progress
        .wait_for(|p| p.last_read_commit.as_ref() == Some(&t2))
        .await
        .unwrap();
    assert_eq!(store.last(), Some(t1.position.clone()));
    assert_eq!(
        pipeline.progress().borrow().last_applied_commit.as_ref(),
        Some(&t1)
    );

    sink.release();
    wait_until("T2 is checkpointed", || {
        store.last() == Some(t2.position.clone())
    })
    .await;
    drop(tx);
    run.await.unwrap().unwrap();

    // Every checkpoint ever saved is a commit position: never mid-transaction.
    let commits: Vec<_> = script.commits.iter().map(|c| c.position.clone()).collect();
    for saved in store.saves() {
        assert!(commits.contains(&saved.position), "{saved:?}");
    }
    assert_eq!(sink.rows("items"), script.expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_until_they_succeed() {
    let schema = unique_schema("transient");
    let mut script = busy_script(&schema);
    let sink = MemorySink::new("flaky");
    sink.fail_transiently(5);
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(2, 50));

    pipeline
        .run(
            stream(script.take()),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(sink.rows("items"), script.expected(), "nothing lost");
    let progress = pipeline.progress().borrow().clone();
    assert_eq!(progress.sinks[0].retries, 5);
    assert_eq!(progress.sinks[0].errors.get("connection"), Some(&5));
    assert_eq!(
        store.last(),
        Some(script.commits.last().unwrap().position.clone())
    );
}

/// Three transactions; the sink refuses row 7, written in the second.
fn refusal_script(schema: &str) -> (Script, u64) {
    let mut script = Script::new(schema);
    for txn in 0..3 {
        script.begin();
        for id in txn * 5 + 1..=txn * 5 + 5 {
            script.write(id, "x");
        }
        script.commit();
    }
    let pos_of_7 = match &script.events[1 + 7 + 1] {
        SourceEvent::Change(c) => {
            assert_eq!(c.after.as_ref().unwrap()[0], strata_core::Value::Int(7));
            c.event_pos
        }
        other => panic!("unexpected event {other:?}"),
    };
    (script, pos_of_7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_stops_with_table_key_position_and_keeps_the_checkpoint_before_it() {
    let schema = unique_schema("reject");
    let (mut script, pos_of_7) = refusal_script(&schema);
    let sink = MemorySink::new("strict");
    sink.reject_key("7", true);
    let store = MemoryCheckpoints::new();
    // One op per batch: T1 is durable before T2's refused row is tried.
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(1, 1));

    let err = pipeline
        .run(
            stream(script.take()),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Rejected);
    let msg = err.to_string();
    assert!(msg.contains(&format!("{schema}.items")), "{msg}");
    assert!(msg.contains("key `7`"), "{msg}");
    assert!(msg.contains(&format!("binlog.000001:{pos_of_7}")), "{msg}");
    assert!(msg.contains("mapping conflict"), "{msg}");
    assert!(msg.contains("the write to"), "{msg}");
    assert_eq!(store.last(), Some(script.commits[0].position.clone()));
    for saved in store.saves() {
        assert_eq!(saved.position, script.commits[0].position);
    }
    let progress = pipeline.progress().borrow().clone();
    assert_eq!(progress.state, strata_pipeline::RunState::Failed);
    assert!(progress.last_error.unwrap().contains("key `7`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_without_an_op_index_is_bisected_to_the_row() {
    let schema = unique_schema("bisect");
    let (mut script, pos_of_7) = refusal_script(&schema);
    let sink = MemorySink::new("strict");
    sink.reject_key("7", false);
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(1, 100));

    let err = pipeline
        .run(
            stream(script.take()),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();

    let PipelineError::Rejected(rejection) = &err else {
        panic!("{err}");
    };
    assert_eq!(rejection.key, "7");
    assert!(rejection.exact);
    assert_eq!(rejection.position.pos, pos_of_7);
    // T2 (and T3, which share the batch) are never checkpointed.
    let later: Vec<_> = script.commits[1..].iter().map(|c| &c.position).collect();
    for saved in store.saves() {
        assert!(!later.contains(&&saved.position), "{saved:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_checkpoints_the_last_complete_transaction_only() {
    let schema = unique_schema("shutdown");
    let mut script = Script::new(&schema);
    for txn in 0..2 {
        script.begin();
        for id in txn * 10..txn * 10 + 10 {
            script.write(id, "done");
        }
        script.commit();
    }
    script.begin();
    for id in 100..110 {
        script.write(id, "cut short");
    }
    let t2 = script.commits[1].clone();

    let sink = MemorySink::new("s");
    let store = MemoryCheckpoints::new();
    // A long batch delay: the shutdown itself must flush what is pending.
    let mut s = settings(2, 1000);
    s.batch_max_delay = Duration::from_secs(3600);
    let pipeline = Arc::new(Pipeline::new(sinks(&[&sink]), store.clone(), s));
    let (tx, rx) = mpsc::channel(64);
    for e in script.take() {
        tx.send(Ok(e)).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let run = {
        let (pipeline, shutdown, schema) = (pipeline.clone(), shutdown.clone(), schema.clone());
        tokio::spawn(async move { pipeline.run(rx, &mut router(&schema), &shutdown).await })
    };
    let mut progress = pipeline.progress();
    progress
        .wait_for(|p| p.last_read_commit.as_ref() == Some(&t2))
        .await
        .unwrap();
    wait_until("the reader took every event", || tx.capacity() == 64).await;
    assert!(store.saves().is_empty(), "nothing durable before the flush");

    shutdown.cancel();
    let summary = run.await.unwrap().unwrap();

    assert_eq!(summary.stop, StopReason::Shutdown);
    assert!(summary.drained);
    assert_eq!(summary.last_applied.as_ref(), Some(&t2));
    assert_eq!(store.last(), Some(t2.position.clone()));
    let rows = sink.rows("items");
    for id in 0..20 {
        assert_eq!(
            rows[&id.to_string()][1],
            strata_core::Value::String("done".into())
        );
    }
    assert_eq!(
        pipeline.progress().borrow().state,
        strata_pipeline::RunState::Stopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_events_is_all_stale_and_changes_nothing() {
    let schema = unique_schema("replay");
    let mut script = busy_script(&schema);
    let events = script.take();
    let sink = MemorySink::new("s");
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(4, 16));
    let mut router = router(&schema);

    pipeline
        .run(
            stream(events.clone()),
            &mut router,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let first = sink.snapshot();
    let after_first = pipeline.progress().borrow().sinks[0].clone();
    assert!(after_first.applied > 0);

    // The same pipeline runs again (as after a reconnect) over the same events.
    let summary = pipeline
        .run(stream(events), &mut router, &CancellationToken::new())
        .await
        .unwrap();
    let after_second = pipeline.progress().borrow().sinks[0].clone();

    assert_eq!(sink.snapshot(), first, "state unchanged");
    assert_eq!(after_second.applied, after_first.applied, "nothing applied");
    let written = (after_second.stale - after_first.stale)
        + (after_second.superseded - after_first.superseded);
    assert_eq!(written, summary.ops, "every op of the replay was stale");
    assert_eq!(sink.rows("items"), script.expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_error_checkpoints_what_is_durable_and_the_run_can_resume() {
    let schema = unique_schema("srcerr");
    let mut script = Script::new(&schema);
    script.begin();
    for id in 0..10 {
        script.write(id, "a");
    }
    let t1 = script.commit();
    let mut events: Vec<_> = script.take().into_iter().map(Ok).collect();
    // T2 is cut by the connection loss; after reconnecting, the source sends it again whole.
    script.begin();
    script.write(50, "b");
    let t2 = script.commit();
    let t2_events = script.take();
    events.extend(t2_events[..2].iter().cloned().map(Ok));
    events.push(Err(SourceFailure::new(
        ErrorKind::Connection,
        "connection lost at binlog.000001:9999",
    )));
    let (tx, rx) = mpsc::channel(events.len());
    for e in events {
        tx.try_send(e).unwrap();
    }
    drop(tx);

    let sink = MemorySink::new("s");
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(2, 100));
    let mut router = router(&schema);
    let err = pipeline
        .run(rx, &mut router, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Source(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(err.to_string().contains("connection lost"), "{err}");
    assert_eq!(store.last(), Some(t1.position.clone()));

    // The caller reconnects from the checkpoint: the cut transaction comes again, whole.
    let summary = pipeline
        .run(stream(t2_events), &mut router, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.last_applied, Some(t2.clone()));
    assert_eq!(store.last(), Some(t2.position));
    assert_eq!(sink.rows("items"), script.expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_key_stops_the_run_with_the_fix_and_the_checkpoint_before_it() {
    let schema = unique_schema("nokey");
    let mut script = Script::new(&schema);
    script.begin();
    script.write(1, "a");
    let t1 = script.commit();
    let mut keyless = Script::new(&schema);
    let mut table = (*keyless.table).clone();
    table.primary_key.clear();
    table.id.table = "logs".into();
    keyless.table = Arc::new(table);
    keyless.begin();
    keyless.write(2, "b");
    keyless.commit();
    let mut events = script.take();
    events.extend(keyless.take());

    let sink = MemorySink::new("s");
    let store = MemoryCheckpoints::new();
    let pipeline = Pipeline::new(sinks(&[&sink]), store.clone(), settings(1, 10));
    let err = pipeline
        .run(
            stream(events),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("tables.logs] key"), "{err}");
    assert_eq!(store.last(), Some(t1.position));
}

#[tokio::test]
async fn unusable_settings_are_refused_before_reading() {
    let sink = MemorySink::new("s");
    let mut s = settings(1, 10);
    s.workers_per_sink = 0;
    let pipeline = Pipeline::new(sinks(&[&sink]), MemoryCheckpoints::new(), s);
    let err = pipeline
        .run(stream(vec![]), &mut router("x"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("workers must be at least 1"),
        "{err}"
    );
    let pipeline = Pipeline::new(vec![], MemoryCheckpoints::new(), settings(1, 10));
    let err = pipeline
        .run(stream(vec![]), &mut router("x"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sinks"), "{err}");
}

struct PanickingSink;

#[async_trait::async_trait]
impl Sink for PanickingSink {
    fn name(&self) -> &'static str {
        "panicky"
    }
    async fn apply(
        &self,
        _: &[strata_core::SinkOp],
    ) -> Result<strata_core::ApplyStats, strata_core::SinkError> {
        panic!("a bug in a sink (test double)");
    }
    async fn check(&self) -> Result<(), strata_core::SinkError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_sink_stops_the_run_instead_of_hanging_it() {
    let schema = unique_schema("panic");
    let mut script = busy_script(&schema);
    let store = MemoryCheckpoints::new();
    // Tiny queues: the reader would wait forever on a queue nobody empties.
    let mut s = settings(1, 4);
    s.queue_capacity = 2;
    let pipeline = Pipeline::new(vec![Arc::new(PanickingSink)], store.clone(), s);
    let err = pipeline
        .run(
            stream(script.take()),
            &mut router(&schema),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Internal(_)), "{err}");
    assert!(err.to_string().contains("panicky panicked"), "{err}");
    assert!(store.saves().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_sink_down_gives_up_after_the_drain_timeout() {
    let schema = unique_schema("down");
    let mut script = Script::new(&schema);
    script.begin();
    script.write(1, "never applied");
    script.commit();
    let sink = MemorySink::new("down");
    sink.fail_transiently(u32::MAX);
    let store = MemoryCheckpoints::new();
    let mut s = settings(1, 10);
    s.drain_timeout = Duration::from_millis(200);
    let pipeline = Arc::new(Pipeline::new(sinks(&[&sink]), store.clone(), s));
    let (tx, rx) = mpsc::channel(16);
    for e in script.take() {
        tx.send(Ok(e)).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let run = {
        let (pipeline, shutdown, schema) = (pipeline.clone(), shutdown.clone(), schema.clone());
        tokio::spawn(async move { pipeline.run(rx, &mut router(&schema), &shutdown).await })
    };
    let mut progress = pipeline.progress();
    progress
        .wait_for(|p| p.sinks[0].retries >= 3)
        .await
        .unwrap();

    shutdown.cancel();
    let summary = run.await.unwrap().unwrap();

    assert!(!summary.drained);
    assert_eq!(summary.last_applied, None);
    assert!(
        store.saves().is_empty(),
        "nothing durable, nothing checkpointed"
    );
    assert!(sink.rows("items").is_empty());
}
