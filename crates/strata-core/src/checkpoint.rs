//! Checkpoints: the commit position up to which every target of a version is durable.

use crate::position::{BinlogPos, GtidSet};

/// The commit position of the last transaction every target of a version has applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: BinlogPos,
    pub gtid_set: Option<GtidSet>,
    /// Source commit time of that transaction, milliseconds since the epoch.
    pub commit_ts_ms: u64,
    /// When the checkpoint was written, milliseconds since the epoch.
    pub written_at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint store {location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {location} is corrupt: {reason}; move it away to start from the configured position")]
    Corrupt { location: String, reason: String },
}

/// Where a version's checkpoint lives.
///
/// `save` returns only once the checkpoint is durable (a crash after `Ok` keeps it).
#[async_trait::async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError>;
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;
}
