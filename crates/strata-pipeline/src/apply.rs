//! The apply engine: reads source events, routes and plans each change, partitions the ops
//! over bounded worker queues per sink, and lets the checkpointer save the newest commit
//! every worker has made durable.

use crate::batch::{approx_bytes, OpMeta, Routed, WorkItem};
use crate::checkpointer::{run_checkpointer, CheckpointOutcome, Ledger};
use crate::error::{PipelineError, PlanError};
use crate::events::{EventSource, SourceFailure};
use crate::plan::plan;
use crate::progress::{BatchObserver, Progress, RowsRead, RunState, SinkProgress};
use crate::route::Router;
use crate::settings::ApplySettings;
use crate::worker::{Halt, HaltReason, Worker};
use std::collections::HashMap;
use std::sync::Arc;
use strata_core::{Checkpoint, CheckpointStore, CommitInfo, RowChange, Sink, SinkOp, SourceEvent};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The shutdown token was cancelled.
    Shutdown,
    /// The source ended its stream.
    SourceEnded,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Why the run ended.
    pub stop: StopReason,
    /// Transactions (commits) read.
    pub transactions: u64,
    /// Row changes read, by operation.
    pub rows: RowsRead,
    /// Ops planned (each is sent to every sink).
    pub ops: u64,
    /// The newest transaction every sink made durable during the run.
    pub last_applied: Option<CommitInfo>,
    /// The last checkpoint saved during the run.
    pub checkpoint: Option<Checkpoint>,
    /// False when the drain timeout passed before every queued op was applied (those ops
    /// were not checkpointed, so the next run reads them again).
    pub drained: bool,
}

/// A version's apply engine. One `run` at a time; `run` may be called again (e.g. after a
/// source error, with a fresh stream resuming from the checkpoint).
pub struct Pipeline {
    sinks: Vec<Arc<dyn Sink>>,
    checkpoints: Arc<dyn CheckpointStore>,
    settings: Arc<ApplySettings>,
    progress: watch::Sender<Progress>,
    observer: Option<Arc<dyn BatchObserver>>,
}

impl Pipeline {
    /// An engine writing to `sinks` and saving checkpoints to `checkpoints`.
    pub fn new(
        sinks: Vec<Arc<dyn Sink>>,
        checkpoints: Arc<dyn CheckpointStore>,
        settings: ApplySettings,
    ) -> Self {
        let progress = Progress {
            sinks: sinks
                .iter()
                .map(|s| SinkProgress {
                    name: s.name(),
                    ..SinkProgress::default()
                })
                .collect(),
            ..Progress::default()
        };
        Pipeline {
            sinks,
            checkpoints,
            settings: Arc::new(settings),
            progress: watch::Sender::new(progress),
            observer: None,
        }
    }

    /// Reports every durable batch (sink, size, latency) to `observer`, e.g. for metrics.
    /// Takes effect from the next `run`.
    pub fn observe_batches(&mut self, observer: Arc<dyn BatchObserver>) {
        self.observer = Some(observer);
    }

    /// A live view of the engine's progress.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The engine's settings.
    pub fn settings(&self) -> &ApplySettings {
        &self.settings
    }

    /// Reads `events` until the source ends, fails, a change cannot be planned, a sink
    /// refuses a write, or `shutdown` is cancelled.
    ///
    /// Whatever ends the run, queued ops are applied (unless a sink refused a write, which
    /// stops everything at once), and the newest transaction durable on every sink is
    /// checkpointed before this returns. A transaction cut short is never checkpointed.
    pub async fn run<S: EventSource>(
        &self,
        mut events: S,
        router: &mut Router,
        shutdown: &CancellationToken,
    ) -> Result<RunSummary, PipelineError> {
        self.settings.validate().map_err(PipelineError::Settings)?;
        if self.sinks.is_empty() {
            return Err(PipelineError::Settings(
                "no sinks: configure at least one target for the version".into(),
            ));
        }
        let loaded = self.checkpoints.load().await?;
        self.progress.send_modify(|p| {
            p.state = RunState::Running;
            if loaded.is_some() {
                p.last_checkpoint = loaded;
            }
        });

        let per_sink = self.settings.workers_per_sink;
        let ledger = Arc::new(Ledger::new(self.sinks.len() * per_sink));
        let halt = Arc::new(Halt::default());
        let mut queues = Vec::with_capacity(self.sinks.len());
        let mut handles = Vec::with_capacity(self.sinks.len() * per_sink);
        for (sink_index, sink) in self.sinks.iter().enumerate() {
            let mut senders = Vec::with_capacity(per_sink);
            for w in 0..per_sink {
                let (tx, rx) = mpsc::channel(self.settings.queue_capacity);
                let worker = Worker {
                    slot: sink_index * per_sink + w,
                    sink_index,
                    sink: sink.clone(),
                    settings: self.settings.clone(),
                    ledger: ledger.clone(),
                    progress: self.progress.clone(),
                    halt: halt.clone(),
                    observer: self.observer.clone(),
                };
                handles.push(tokio::spawn(worker.run(rx)));
                senders.push(tx);
            }
            queues.push(senders);
        }
        let checkpointer_stop = CancellationToken::new();
        let checkpointer = tokio::spawn(run_checkpointer(
            ledger.clone(),
            self.checkpoints.clone(),
            self.settings.checkpoint_interval,
            self.progress.clone(),
            checkpointer_stop.clone(),
        ));

        let mut reader = Reader {
            queues,
            ledger,
            halt: halt.clone(),
            progress: &self.progress,
            router,
            seq: 0,
            unpublished: RowsRead::default(),
            unpublished_tables: HashMap::new(),
            rows: RowsRead::default(),
            transactions: 0,
            ops: 0,
        };
        let end = reader.read(&mut events, shutdown).await;
        let (rows, transactions, ops) = (reader.rows, reader.transactions, reader.ops);
        reader.publish_rows();
        drop(reader); // closes the queues: workers drain what they hold and stop
        self.progress.send_modify(|p| p.state = RunState::Draining);

        let drained = self.join_workers(&mut handles, &halt).await;
        checkpointer_stop.cancel();
        let outcome = checkpointer.await.unwrap_or_else(|e| CheckpointOutcome {
            error: Some(strata_core::CheckpointError::Io {
                location: "checkpointer".into(),
                source: std::io::Error::other(e.to_string()),
            }),
            ..CheckpointOutcome::default()
        });

        let result = self.outcome(end, halt.take_reason(), outcome, drained);
        let result = result.map(|(stop, last_applied, checkpoint)| RunSummary {
            stop,
            transactions,
            rows,
            ops,
            last_applied,
            checkpoint,
            drained,
        });
        self.progress.send_modify(|p| match &result {
            Ok(_) => p.state = RunState::Stopped,
            Err(e) => {
                p.state = RunState::Failed;
                p.last_error = Some(e.to_string());
            }
        });
        result
    }

    /// Waits for the workers to drain; past the drain timeout, stops them. True when every
    /// worker finished on its own.
    async fn join_workers(&self, handles: &mut [JoinHandle<()>], halt: &Halt) -> bool {
        let all = async {
            for handle in handles.iter_mut() {
                // A panicked worker has already halted the run (see worker::PanicGuard).
                let _ = handle.await;
            }
        };
        if tokio::time::timeout(self.settings.drain_timeout, all)
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(
            timeout_ms = self.settings.drain_timeout.as_millis() as u64,
            "queued ops were not all applied within the drain timeout; they will be read again on the next start"
        );
        halt.stop(HaltReason::Abandoned);
        for handle in handles.iter_mut() {
            // A handle awaited to completion above must not be polled again (tokio panics).
            if handle.is_finished() {
                continue;
            }
            handle.abort();
            let _ = handle.await;
        }
        false
    }

    fn outcome(
        &self,
        end: ReadEnd,
        halt: Option<HaltReason>,
        checkpoint: CheckpointOutcome,
        drained: bool,
    ) -> Result<(StopReason, Option<CommitInfo>, Option<Checkpoint>), PipelineError> {
        let save_error = checkpoint.error;
        if let Some(e) = &save_error {
            tracing::error!(error = %e, "cannot save the final checkpoint");
        }
        match halt {
            Some(HaltReason::Rejected(r)) => return Err(PipelineError::Rejected(r)),
            Some(HaltReason::Panicked(m)) => return Err(PipelineError::Internal(m)),
            Some(HaltReason::Abandoned) | None => {}
        }
        let stop = match end {
            ReadEnd::Plan(e) => return Err(PipelineError::Plan(e)),
            ReadEnd::Source(f) => return Err(PipelineError::Source(f)),
            ReadEnd::Shutdown | ReadEnd::Halted => StopReason::Shutdown,
            ReadEnd::SourceEnded => StopReason::SourceEnded,
        };
        if let Some(e) = save_error {
            return Err(PipelineError::Checkpoint(e));
        }
        if !drained {
            tracing::warn!("run stopped before its queues were drained");
        }
        Ok((stop, checkpoint.last_applied, checkpoint.saved))
    }
}

/// Why the reader stopped.
#[derive(Debug)]
enum ReadEnd {
    Shutdown,
    SourceEnded,
    Source(SourceFailure),
    Plan(PlanError),
    /// A worker stopped the run (its reason is in the `Halt`).
    Halted,
}

/// The reading side of a run: owns the queue senders, so dropping it closes the queues.
struct Reader<'a> {
    /// Per sink, one sender per worker.
    queues: Vec<Vec<mpsc::Sender<WorkItem>>>,
    ledger: Arc<Ledger>,
    halt: Arc<Halt>,
    progress: &'a watch::Sender<Progress>,
    router: &'a mut Router,
    /// The last commit's sequence number (1-based).
    seq: u64,
    /// Rows counted since the last progress update.
    unpublished: RowsRead,
    /// Per target table, rows counted since the last progress update.
    unpublished_tables: HashMap<String, RowsRead>,
    rows: RowsRead,
    transactions: u64,
    ops: u64,
}

impl Reader<'_> {
    async fn read<S: EventSource>(
        &mut self,
        events: &mut S,
        shutdown: &CancellationToken,
    ) -> ReadEnd {
        let halt = self.halt.token().clone();
        loop {
            let next = tokio::select! {
                biased;
                _ = halt.cancelled() => return ReadEnd::Halted,
                _ = shutdown.cancelled() => return ReadEnd::Shutdown,
                next = events.next_event() => next,
            };
            let event = match next {
                None => return ReadEnd::SourceEnded,
                Some(Err(failure)) => {
                    tracing::warn!(kind = failure.kind.as_str(), error = %failure, "source failed; applying what was read, then stopping");
                    return ReadEnd::Source(failure);
                }
                Some(Ok(event)) => event,
            };
            if let Err(end) = self.handle(event, shutdown).await {
                return end;
            }
        }
    }

    async fn handle(
        &mut self,
        event: SourceEvent,
        shutdown: &CancellationToken,
    ) -> Result<(), ReadEnd> {
        match event {
            SourceEvent::Begin { .. } => Ok(()),
            SourceEvent::Change(change) => self.change(change, shutdown).await,
            SourceEvent::Commit(info) => self.commit(info, shutdown).await,
            SourceEvent::Idle { position } => {
                self.publish_rows();
                self.progress
                    .send_modify(|p| p.idle_position = Some(position));
                Ok(())
            }
            SourceEvent::Ddl {
                schema, position, ..
            } => {
                // The statement is not logged: it may carry literal values.
                tracing::info!(schema = %schema, position = %position, "DDL read; later rows carry the new columns");
                self.progress
                    .send_modify(|p| p.read_position = Some(position));
                Ok(())
            }
        }
    }

    async fn change(
        &mut self,
        change: RowChange,
        shutdown: &CancellationToken,
    ) -> Result<(), ReadEnd> {
        let route = match self.router.route(&change.table) {
            Ok(Some(route)) => route,
            Ok(None) => {
                self.unpublished.skipped += 1;
                self.rows.skipped += 1;
                return Ok(());
            }
            Err(e) => return Err(self.plan_failed(e)),
        };
        self.unpublished.count(change.op);
        self.rows.count(change.op);
        // A map lookup per row, like the router's; allocates only for a table's first row.
        let table = &route.target.name;
        match self.unpublished_tables.get_mut(table) {
            Some(counts) => counts.count(change.op),
            None => {
                let mut counts = RowsRead::default();
                counts.count(change.op);
                self.unpublished_tables.insert(table.clone(), counts);
            }
        }
        let planned = plan(&change, &route).map_err(|e| self.plan_failed(e))?;
        for op in planned {
            self.dispatch(op, &change, shutdown).await?;
        }
        Ok(())
    }

    fn plan_failed(&self, e: PlanError) -> ReadEnd {
        tracing::error!(kind = e.kind().as_str(), error = %e, "cannot plan a change; stopping the version");
        ReadEnd::Plan(e)
    }

    /// Sends one op to its partition's worker of every sink.
    async fn dispatch(
        &mut self,
        op: SinkOp,
        change: &RowChange,
        shutdown: &CancellationToken,
    ) -> Result<(), ReadEnd> {
        self.ops += 1;
        let id = op.id();
        let worker = partition(&op.table.name, &id, self.queues[0].len());
        let meta = OpMeta {
            bytes: approx_bytes(&op, &id),
            id,
            file: change.file.clone(),
            event_pos: change.event_pos,
        };
        let last = self.queues.len() - 1;
        for sink in 0..last {
            let item = WorkItem::Op(Routed {
                op: op.clone(),
                meta: meta.clone(),
            });
            send(&self.queues[sink][worker], item, &self.halt, shutdown).await?;
        }
        send(
            &self.queues[last][worker],
            WorkItem::Op(Routed { op, meta }),
            &self.halt,
            shutdown,
        )
        .await
    }

    /// Records the commit and sends its marker to every worker (after the transaction's ops).
    async fn commit(
        &mut self,
        info: CommitInfo,
        shutdown: &CancellationToken,
    ) -> Result<(), ReadEnd> {
        self.seq += 1;
        self.transactions += 1;
        let seq = self.seq;
        self.ledger.record(seq, info.clone());
        for senders in &self.queues {
            for tx in senders {
                send(tx, WorkItem::Commit(seq), &self.halt, shutdown).await?;
            }
        }
        let rows = std::mem::take(&mut self.unpublished);
        let tables = std::mem::take(&mut self.unpublished_tables);
        self.progress.send_modify(|p| {
            p.read_position = Some(info.position.clone());
            p.last_read_commit = Some(info);
            p.transactions_read += 1;
            add_rows(p, &rows, tables);
        });
        Ok(())
    }

    fn publish_rows(&mut self) {
        let rows = std::mem::take(&mut self.unpublished);
        let tables = std::mem::take(&mut self.unpublished_tables);
        if rows != RowsRead::default() || !tables.is_empty() {
            self.progress.send_modify(|p| add_rows(p, &rows, tables));
        }
    }
}

fn add_rows(progress: &mut Progress, rows: &RowsRead, tables: HashMap<String, RowsRead>) {
    progress.rows_read.add(rows);
    for (table, delta) in tables {
        progress.rows_by_table.entry(table).or_default().add(&delta);
    }
}

/// The worker of a row: a fixed hash of (target table, row id), so one row's ops always go
/// to the same worker (and stay in order) while rows spread over the workers.
fn partition(table: &str, id: &str, workers: usize) -> usize {
    (strata_core::row_hash(table, id) % workers.max(1) as u64) as usize
}

/// Sends without waiting when the queue has room; otherwise waits for room (backpressure)
/// unless the run halts or is shut down meanwhile.
async fn send(
    tx: &mpsc::Sender<WorkItem>,
    item: WorkItem,
    halt: &Halt,
    shutdown: &CancellationToken,
) -> Result<(), ReadEnd> {
    match tx.try_send(item) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(item)) => tokio::select! {
            biased;
            _ = halt.token().cancelled() => Err(ReadEnd::Halted),
            _ = shutdown.cancelled() => Err(ReadEnd::Shutdown),
            sent = tx.send(item) => sent.map_err(|_| ReadEnd::Halted),
        },
        Err(TrySendError::Closed(_)) => Err(ReadEnd::Halted),
    }
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partition_is_stable_and_spreads_rows() {
        assert_eq!(partition("users", "42", 4), partition("users", "42", 4));
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            seen[partition("users", &i.to_string(), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
        assert_eq!(partition("t", "x", 1), 0);
    }
}
