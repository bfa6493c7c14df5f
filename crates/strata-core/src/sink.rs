//! What a target store is asked to do, and the contract it keeps.

use crate::error::ErrorKind;
use crate::schema::{Column, TableId};
use crate::value::Value;
use crate::version::Version;
use std::sync::Arc;

/// A source table as one version writes it to its targets: the routed name, the columns
/// kept (excluded ones removed) and the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetTable {
    /// The source table.
    pub source: TableId,
    /// The table's name in targets (the source table name unless configured otherwise).
    pub name: String,
    /// The columns written, in source order.
    pub columns: Vec<Column>,
    /// Indices into `columns` of the key that identifies a row.
    pub key: Vec<usize>,
}

impl TargetTable {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.key.iter().map(|&i| &self.columns[i])
    }
}

/// What a sink does to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkOpKind {
    /// Make the row equal to these values (aligned with `TargetTable::columns`).
    Upsert(Vec<Value>),
    /// Remove the row, leaving a tombstone with the op's version.
    Delete,
}

/// One versioned write for one row of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOp {
    pub table: Arc<TargetTable>,
    /// The key values, aligned with `table.key`.
    pub key: Vec<Value>,
    pub kind: SinkOpKind,
    pub version: Version,
}

impl SinkOp {
    /// The row's id in targets (see [`crate::value::key_id`]).
    pub fn id(&self) -> String {
        crate::value::key_id(&self.key)
    }

    /// [`row_hash`] of this op's row.
    pub fn row_hash(&self) -> u64 {
        row_hash(&self.table.name, &self.id())
    }
}

/// A fixed hash of a row: its target table's name and its id. The pipeline picks a row's
/// worker by it (`row_hash % workers`), and a sink that locks rows against other writers
/// locks by it, so that one pipeline's workers never wait for each other's locks when the
/// lock count is a multiple of the worker count. Stable across runs, processes and
/// platforms (FNV-1a, the high half folded into the low).
pub fn row_hash(table: &str, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [table.as_bytes(), id.as_bytes()] {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^ (h >> 32)
}

/// What a sink reports for a batch it applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Writes that changed the target.
    pub applied: u64,
    /// Writes skipped because the target already held an equal or newer version.
    pub stale: u64,
}

impl std::ops::AddAssign for ApplyStats {
    fn add_assign(&mut self, rhs: Self) {
        self.applied += rhs.applied;
        self.stale += rhs.stale;
    }
}

/// A sink's failure, with the kind the retry policy reads.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {message}")]
pub struct SinkError {
    pub sink: &'static str,
    pub kind: ErrorKind,
    pub message: String,
    /// For a write the store rejected: the index in the batch of the op it rejected.
    pub op_index: Option<usize>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    pub fn new(sink: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        SinkError {
            sink,
            kind,
            message: message.into(),
            op_index: None,
            source: None,
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn at_op(mut self, index: usize) -> Self {
        self.op_index = Some(index);
        self
    }
}

/// A target store.
///
/// Contract:
/// - Delivery is at-least-once: a batch may be applied again after a crash or a retry, and
///   ops may arrive older than what the store holds. `apply` must therefore be idempotent
///   and guarded: a write lands only if its version is greater than the stored version of
///   the row or of its tombstone; an equal or lower version is a no-op counted as stale.
/// - Ops for one row arrive in version order inside a batch; rows are independent.
/// - `Ok` means every op of the batch is durable in the store. Only then may the caller
///   advance the checkpoint past them.
/// - An `Err` says which kind of failure it was; a permanent one names the op it refers to
///   when it can (`op_index`).
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// The store's short name (`redis`, `mongodb`, `opensearch`, `postgres`).
    fn name(&self) -> &'static str;

    /// Applies a batch of ops (see the trait's contract).
    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError>;

    /// Checks that the store is reachable (used by readiness checks and start-up).
    async fn check(&self) -> Result<(), SinkError>;
}
