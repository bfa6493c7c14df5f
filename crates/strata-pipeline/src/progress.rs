//! What a run has read, applied and checkpointed, published through a `watch` channel for
//! `status`, `/metrics` and lag. Updated per commit and per batch, never per row.

use std::collections::BTreeMap;
use std::time::Duration;
use strata_core::{BinlogPos, Checkpoint, CommitInfo, ErrorKind};

/// Told about every batch a sink made durable, for apply-latency and batch-size histograms.
///
/// Called once per durable batch by the worker that applied it (never per row), so it must
/// be cheap and must not block: record into a histogram and return.
pub trait BatchObserver: Send + Sync {
    /// `sink` made a batch of `ops` ops durable; `elapsed` runs from the first attempt to
    /// the acknowledgement, retries included (what a change waited for the target).
    fn batch_applied(&self, sink: &'static str, ops: usize, elapsed: Duration);
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunState {
    /// No run has started yet.
    #[default]
    Idle,
    /// Reading events and applying them.
    Running,
    /// Asked to stop (or the source ended or failed): applying what is queued.
    Draining,
    /// The last run ended cleanly.
    Stopped,
    /// The last run ended with an error (see `last_error`).
    Failed,
}

impl RunState {
    /// A short, stable name for status output and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Running => "running",
            RunState::Draining => "draining",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
        }
    }
}

/// Row changes read from the source, by operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowsRead {
    /// Inserts read.
    pub inserts: u64,
    /// Updates read.
    pub updates: u64,
    /// Deletes read.
    pub deletes: u64,
    /// Changes of tables the rules do not replicate.
    pub skipped: u64,
}

impl RowsRead {
    /// Counts one change of `op`.
    pub(crate) fn count(&mut self, op: strata_core::Op) {
        match op {
            strata_core::Op::Insert => self.inserts += 1,
            strata_core::Op::Update => self.updates += 1,
            strata_core::Op::Delete => self.deletes += 1,
        }
    }

    /// Adds `delta` to these counts.
    pub(crate) fn add(&mut self, delta: &RowsRead) {
        self.inserts += delta.inserts;
        self.updates += delta.updates;
        self.deletes += delta.deletes;
        self.skipped += delta.skipped;
    }

    /// Every change read, skipped ones included.
    pub fn total(&self) -> u64 {
        self.inserts + self.updates + self.deletes + self.skipped
    }
}

/// One sink's counters, cumulative over the pipeline's runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkProgress {
    /// The sink's name.
    pub name: &'static str,
    /// Writes that changed the target.
    pub applied: u64,
    /// Writes the target skipped because it held an equal or newer version.
    pub stale: u64,
    /// Ops dropped inside a batch because a newer op of the same row was in the same batch
    /// (the target would have ignored them).
    pub superseded: u64,
    /// Batches made durable.
    pub batches: u64,
    /// Retries of transiently failed batches.
    pub retries: u64,
    /// Failures by error kind (`connection`, `timeout`, `rejected`, …), retried ones included.
    pub errors: BTreeMap<&'static str, u64>,
}

impl SinkProgress {
    pub(crate) fn count_error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind.as_str()).or_default() += 1;
    }
}

/// A pipeline's progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// Where the current (or last) run is.
    pub state: RunState,
    /// The position of the last commit or DDL read from the source.
    pub read_position: Option<BinlogPos>,
    /// The last transaction read from the source.
    pub last_read_commit: Option<CommitInfo>,
    /// The last transaction every worker of every sink has durably applied.
    pub last_applied_commit: Option<CommitInfo>,
    /// The oldest transaction read but not yet durable on every sink (its commit time is
    /// how long the oldest waiting change has waited); `None` when everything read is
    /// applied. Refreshed at each checkpoint interval.
    pub oldest_unapplied_commit: Option<CommitInfo>,
    /// The last checkpoint saved (or loaded when a run starts).
    pub last_checkpoint: Option<Checkpoint>,
    /// The end of the server's binlog as its last heartbeat told it: when
    /// `last_applied_commit` reaches it, the version is caught up.
    pub idle_position: Option<BinlogPos>,
    /// Row changes read, cumulative over runs.
    pub rows_read: RowsRead,
    /// Row changes of replicated tables read, by target table name, cumulative over runs
    /// (`skipped` stays 0 here: skipped tables are counted in `rows_read` only).
    pub rows_by_table: BTreeMap<String, RowsRead>,
    /// Transactions read, cumulative over runs.
    pub transactions_read: u64,
    /// Per-sink counters, in the order the sinks were given.
    pub sinks: Vec<SinkProgress>,
    /// The last error that stopped a run or a checkpoint save, as its message.
    pub last_error: Option<String>,
}

impl Progress {
    /// True when nothing read is waiting to be applied and the source reported no more:
    /// the last commit read is applied and reaches the server's end from the last heartbeat.
    /// Relies on the source emitting a commit for every transaction, including those with
    /// no wanted rows (otherwise the last applied commit stays behind the server's end).
    pub fn caught_up(&self) -> bool {
        match (&self.last_applied_commit, &self.idle_position) {
            (Some(applied), Some(end)) => {
                self.last_read_commit.as_ref() == Some(applied) && applied.position >= *end
            }
            _ => false,
        }
    }
}
