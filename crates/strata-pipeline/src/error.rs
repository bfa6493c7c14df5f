//! What can stop a pipeline run, and what the caller does about each.

use crate::events::SourceFailure;
use strata_core::{BinlogPos, CheckpointError, ErrorKind, TableId, Version};

/// A change that cannot be turned into sink operations.
///
/// Routing problems (a table without a key, a missing or unsuitable guard column) are
/// configuration errors; problems with one row (a NULL key, a missing row image) are data
/// errors. Either way the change is not applied and the checkpoint stays before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The table has no primary key and no key columns are configured.
    #[error(
        "table {table} has no primary key, so its rows cannot be identified in targets; \
         configure key columns for it: [versions.<version>.tables.{name}] key = [\"col\"]",
        name = table.table
    )]
    NoKey {
        /// The source table.
        table: TableId,
    },
    /// A configured key or guard column does not exist in the table.
    #[error(
        "table {table} has no column `{column}` (configured as its {role}); \
         its columns are: {columns}; fix [versions.<version>.tables.{name}] {role}",
        name = table.table
    )]
    UnknownColumn {
        /// The source table.
        table: TableId,
        /// The column concerned.
        column: String,
        /// What the column was configured as (`key` or `guard`).
        role: &'static str,
        /// The table's columns, for the message.
        columns: String,
    },
    /// A key column is also listed as excluded.
    #[error(
        "column `{column}` of table {table} is part of its key but is excluded; \
         remove it from exclude_columns (targets need the key to identify rows)"
    )]
    KeyExcluded {
        /// The source table.
        table: TableId,
        /// The excluded key column.
        column: String,
    },
    /// The guard column's type cannot order writes.
    #[error(
        "guard column `{column}` of table {table} has type {ty}; a guard must be an integer, \
         DATE, DATETIME or TIMESTAMP column (e.g. updated_at); fix \
         [versions.<version>.tables.{name}] guard or remove it to order by binlog position",
        name = table.table
    )]
    GuardType {
        /// The source table.
        table: TableId,
        /// The column concerned.
        column: String,
        /// The column's type.
        ty: String,
    },
    /// A key value of the row is NULL.
    #[error(
        "row of table {table} at {position} has a NULL in key column `{column}`; a key must \
         identify the row: configure NOT NULL key columns ([versions.<version>.tables.{name}] key)",
        name = table.table
    )]
    NullKey {
        /// The source table.
        table: TableId,
        /// The column concerned.
        column: String,
        /// The binlog position of the rows event that carried the change.
        position: BinlogPos,
    },
    /// A row image is missing or does not match the table's columns.
    #[error("change to {table} at {position} is malformed: {reason}; this is a bug in the source, please report it")]
    Malformed {
        /// The source table.
        table: TableId,
        /// The binlog position of the rows event that carried the change.
        position: BinlogPos,
        /// What is wrong.
        reason: String,
    },
    /// A guard value cannot be represented as a signed 64-bit version.
    #[error(
        "guard column `{column}` of table {table} at {position} holds a value above \
         9223372036854775807, which cannot order writes; use a smaller guard column or none"
    )]
    GuardOutOfRange {
        /// The source table.
        table: TableId,
        /// The column concerned.
        column: String,
        /// The binlog position of the rows event that carried the change.
        position: BinlogPos,
    },
}

impl PlanError {
    /// Config for routing problems, Data for problems with one row.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlanError::NoKey { .. }
            | PlanError::UnknownColumn { .. }
            | PlanError::KeyExcluded { .. }
            | PlanError::GuardType { .. } => ErrorKind::Config,
            PlanError::NullKey { .. } | PlanError::GuardOutOfRange { .. } => ErrorKind::Data,
            PlanError::Malformed { .. } => ErrorKind::Internal,
        }
    }
}

/// A write that a sink refused for good: which row, where in the binlog, and why.
#[derive(Debug)]
pub struct Rejection {
    /// The sink's name (`redis`, `mongodb`, …).
    pub sink: &'static str,
    /// The source table of the rejected op.
    pub table: TableId,
    /// The table's name in targets.
    pub target: String,
    /// The row's id in targets (its key values joined, see `strata_core::value::key_id`).
    pub key: String,
    /// The op's version.
    pub version: Version,
    /// The binlog position of the rows event that carried the change.
    pub position: BinlogPos,
    /// The sink's error kind (Rejected, Config, Data or Internal).
    pub kind: ErrorKind,
    /// Whether the sink named this op (or a bisection isolated it); when false, the op is the
    /// first of a batch the sink refused as a whole.
    pub exact: bool,
    /// The sink's message.
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let which = if self.exact {
            "the write to"
        } else {
            "a batch starting with the write to"
        };
        write!(
            f,
            "{sink} refused ({kind}) {which} table {table} (target `{target}`) key `{key}` \
             from binlog position {position} (version {version}): {reason}. \
             The checkpoint stays before this transaction; fix the cause (target mapping, \
             column type, or the row) and restart to retry it",
            sink = self.sink,
            kind = self.kind.as_str(),
            table = self.table,
            target = self.target,
            key = self.key,
            position = self.position,
            version = self.version,
            reason = self.reason,
        )
    }
}

/// Why a pipeline run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed. What was durable was checkpointed first; a caller resumes (or
    /// reconnects) from the checkpoint when the kind's retry directive is Backoff.
    #[error("source failed ({}): {}", .0.kind.as_str(), .0.message)]
    Source(SourceFailure),
    /// A change could not be planned (see [`PlanError`]).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A sink refused a write for good.
    #[error("{0}")]
    Rejected(Box<Rejection>),
    /// The checkpoint could not be loaded or saved.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The apply settings are unusable.
    #[error("invalid apply settings: {0}")]
    Settings(String),
    /// A worker died (a panic in a sink); see the log for the panic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    /// The error's kind, for exit codes and for deciding whether to restart.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Source(f) => f.kind,
            PipelineError::Plan(e) => e.kind(),
            PipelineError::Rejected(r) => r.kind,
            PipelineError::Checkpoint(_) => ErrorKind::Internal,
            PipelineError::Settings(_) => ErrorKind::Config,
            PipelineError::Internal(_) => ErrorKind::Internal,
        }
    }
}
