//! Row changes and the transaction boundaries around them, as the source emits them.

use crate::position::{BinlogPos, GtidSet};
use crate::schema::TableSchema;
use crate::value::Value;
use std::sync::Arc;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    /// Debezium's letter: `c`, `u`, `d`.
    pub fn letter(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// One row's change, decoded exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// The table as the binlog described it when the change was written.
    pub table: Arc<TableSchema>,
    pub op: Op,
    /// The row before the change (updates, deletes), aligned with `table.columns`.
    pub before: Option<Vec<Value>>,
    /// The row after the change (inserts, updates), aligned with `table.columns`.
    pub after: Option<Vec<Value>>,
    /// The binlog file and the offset of the rows event that carried the change.
    pub file: Arc<str>,
    pub event_pos: u64,
    /// The GTID of the change's transaction, when the server uses GTIDs.
    pub gtid: Option<Arc<str>>,
    /// The transaction's timestamp on the source, milliseconds since the epoch.
    pub ts_ms: u64,
    /// The total binlog order of this change ([`crate::version::binlog_order`]); unique and
    /// increasing across the binlog, also between several changes of one event.
    pub order: u64,
}

impl RowChange {
    /// The row image that identifies the row: `after` for inserts and updates, else `before`.
    pub fn current_image(&self) -> Option<&[Value]> {
        self.after.as_deref().or(self.before.as_deref())
    }
}

/// Where a transaction ended, and when it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The position just after the transaction's commit event: resuming here starts with
    /// the next transaction.
    pub position: BinlogPos,
    /// The executed GTID set including this transaction, when known.
    pub gtid_set: Option<GtidSet>,
    /// The commit time on the source, milliseconds since the epoch.
    pub ts_ms: u64,
}

/// What the source emits. A transaction arrives as `Begin`, its changes, then `Commit`;
/// its changes stream through a bounded channel, so a transaction of any size keeps memory
/// bounded. A `Commit` is the only point at which a consumer may checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Begin {
        gtid: Option<Arc<str>>,
        ts_ms: u64,
    },
    Change(RowChange),
    Commit(CommitInfo),
    /// The server has nothing more to send for now; `position` is the end of its binlog as
    /// the server last told it (heartbeat). Lets consumers tell "idle and caught up" apart
    /// from "no event arrived".
    Idle {
        position: BinlogPos,
    },
    /// A DDL statement (e.g. `ALTER TABLE`) on a schema the source reads. The next row events
    /// of the table carry the new columns; consumers may use this to evolve targets early.
    Ddl {
        schema: String,
        statement: String,
        position: BinlogPos,
    },
}
