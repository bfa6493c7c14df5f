//! strata's domain: what a row change is, where it sits in the binlog, how it becomes a
//! versioned write, and the contracts that sinks and checkpoint stores keep.
//!
//! Nothing in this crate does I/O.

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

pub mod change;
pub mod checkpoint;
pub mod error;
pub mod position;
pub mod readback;
pub mod rules;
pub mod schema;
pub mod sink;
pub mod value;
pub mod version;

pub use change::{CommitInfo, Op, RowChange, SourceEvent};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
pub use error::{ErrorKind, RetryDirective};
pub use position::{BinlogPos, GtidSet, MariaGtidPos, MysqlGtidSet, PositionError, StartFrom};
pub use readback::{ScanPage, StoredKey, StoredRow, StoredVersion, TargetReader};
pub use rules::{ColumnPattern, Guard, PatternError, TableOptions, TablePattern, TableRules};
pub use schema::{Column, ColumnType, TableId, TableSchema};
pub use sink::{row_hash, ApplyStats, Sink, SinkError, SinkOp, SinkOpKind, TargetTable};
pub use value::{Date, DateTime, Time, Value};
pub use version::Version;
