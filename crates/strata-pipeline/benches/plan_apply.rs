//! Plan and dispatch throughput: how many row changes per second the pipeline routes, plans,
//! partitions, batches and acknowledges when the sinks cost nothing.
//!
//! `cargo bench -p strata-pipeline --bench plan_apply [-- ROWS]` (default 1,000,000 rows in
//! transactions of 100 rows, three columns each).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic on setup failure

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::version::binlog_order;
use strata_core::{
    ApplyStats, BinlogPos, Checkpoint, CheckpointError, CheckpointStore, Column, ColumnType,
    CommitInfo, Op, RowChange, Sink, SinkError, SinkOp, SourceEvent, TableId, TableSchema, Value,
};
use strata_pipeline::{
    plan, ApplySettings, CancellationToken, Pipeline, Router, TablePattern, TableRules,
};
use tokio::sync::mpsc;

struct NoopSink;

#[async_trait::async_trait]
impl Sink for NoopSink {
    fn name(&self) -> &'static str {
        "noop"
    }
    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        Ok(ApplyStats {
            applied: batch.len() as u64,
            stale: 0,
        })
    }
    async fn check(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

struct NoopCheckpoints;

#[async_trait::async_trait]
impl CheckpointStore for NoopCheckpoints {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(None)
    }
    async fn save(&self, _: &Checkpoint) -> Result<(), CheckpointError> {
        Ok(())
    }
}

fn table() -> Arc<TableSchema> {
    let col = |name: &str, ty| Column {
        name: name.into(),
        ty,
        nullable: true,
    };
    Arc::new(TableSchema {
        id: TableId::new("bench", "orders"),
        columns: vec![
            col(
                "id",
                ColumnType::Int {
                    bytes: 8,
                    unsigned: false,
                },
            ),
            col("customer", ColumnType::Text { charset: None }),
            col(
                "total",
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
        ],
        primary_key: vec![0],
    })
}

fn events(rows: u64, per_txn: u64) -> Vec<SourceEvent> {
    let table = table();
    let file: Arc<str> = Arc::from("binlog.000001");
    let mut out = Vec::with_capacity((rows + rows / per_txn * 2 + 2) as usize);
    let mut pos = 4;
    for i in 0..rows {
        if i % per_txn == 0 {
            out.push(SourceEvent::Begin {
                gtid: None,
                ts_ms: 1,
            });
        }
        pos += 60;
        let op = if i % 10 == 9 { Op::Update } else { Op::Insert };
        let row = vec![
            Value::Int((i % 50_000) as i64),
            Value::String(format!("customer-{}", i % 977)),
            Value::Decimal(format!("{}.{:02}", i % 10_000, i % 100)),
        ];
        out.push(SourceEvent::Change(RowChange {
            table: table.clone(),
            op,
            before: (op == Op::Update).then(|| row.clone()),
            after: Some(row),
            file: file.clone(),
            event_pos: pos,
            gtid: None,
            ts_ms: 1,
            order: binlog_order(1, pos, 0),
        }));
        if i % per_txn == per_txn - 1 || i == rows - 1 {
            pos += 31;
            out.push(SourceEvent::Commit(CommitInfo {
                position: BinlogPos::new("binlog.000001", pos),
                gtid_set: None,
                ts_ms: 1,
            }));
        }
    }
    out
}

/// Rules replicating every table of the bench schema.
fn every_table() -> TableRules {
    TableRules::new(
        vec!["bench".into()],
        vec![TablePattern::parse("*").expect("`*` is a table pattern")],
        vec![],
        vec![],
        BTreeMap::new(),
    )
}

fn plan_only(events: &[SourceEvent]) -> (u64, Duration) {
    let mut router = Router::new(every_table());
    let started = Instant::now();
    let mut ops = 0u64;
    for e in events {
        if let SourceEvent::Change(c) = e {
            let route = router.route(&c.table).unwrap().unwrap();
            ops += plan(c, &route).unwrap().into_iter().count() as u64;
        }
    }
    (ops, started.elapsed())
}

async fn pipeline_run(events: Vec<SourceEvent>, sinks: usize) -> Duration {
    let sinks: Vec<Arc<dyn Sink>> = (0..sinks)
        .map(|_| Arc::new(NoopSink) as Arc<dyn Sink>)
        .collect();
    let pipeline = Pipeline::new(sinks, Arc::new(NoopCheckpoints), ApplySettings::default());
    let (tx, rx) = mpsc::channel(4096);
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        for e in events {
            if tx.send(Ok(e)).await.is_err() {
                break;
            }
        }
    });
    let summary = pipeline
        .run(
            rx,
            &mut Router::new(every_table()),
            &CancellationToken::new(),
        )
        .await
        .expect("the pipeline run failed");
    producer.await.unwrap();
    assert!(summary.last_applied.is_some());
    started.elapsed()
}

fn main() {
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let all = events(rows, 100);
    let (ops, took) = plan_only(&all);
    println!(
        "plan only:              {rows} rows -> {ops} ops in {:.3} s = {:.0} rows/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for sinks in [1, 3] {
        let took = runtime.block_on(pipeline_run(all.clone(), sinks));
        println!(
            "plan + dispatch + ack:  {rows} rows, {sinks} no-op sink(s) x 4 workers in {:.3} s = {:.0} rows/s",
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64()
        );
    }
}
