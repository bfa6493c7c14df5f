//! The `/status` document a running replicator serves, and the client `strata status` and
//! `strata lag` use to read it. One schema for both sides, so they cannot drift apart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Where a version is in its life, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Connecting to its targets and the source for the first time.
    Starting,
    /// Streaming, every target reachable.
    Running,
    /// Up but not making progress as it should: a target or the source is unreachable and
    /// being retried, or the process does not answer. See `last_error`.
    Failing,
    /// Asked to stop: applying what is in flight, then saving the checkpoint.
    Stopping,
    /// Not running; stopped cleanly (or never started).
    Stopped,
    /// Not running; its last run ended with an error (see `last_error`).
    Failed,
}

impl State {
    /// The lowercase name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Failing => "failing",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// A version's status: what `/status` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionStatus {
    /// The version's name.
    pub version: String,
    /// Its state.
    pub state: State,
    /// What the replicator is doing: `connecting_targets`, `connecting_source`,
    /// `streaming`, `reconnecting`, `stopping`, `stopped`, `failed`.
    pub phase: String,
    /// Whether `/health/ready` answers 200.
    pub ready: bool,
    /// Why it is not ready (empty when ready).
    pub not_ready: Vec<String>,
    /// The replicator's process id (absent when read from files only).
    pub pid: Option<u32>,
    /// When the replicator started, milliseconds since the epoch.
    pub started_at_ms: Option<u64>,
    /// When this document was made, milliseconds since the epoch.
    pub at_ms: u64,
    /// Positions in the source's binlog.
    pub position: Positions,
    /// The saved checkpoint, if any.
    pub checkpoint: Option<CheckpointStatus>,
    /// Replication lag.
    pub lag: LagStatus,
    /// What was read from the source.
    pub source: SourceStatus,
    /// Each target, in configuration order.
    pub sinks: Vec<SinkStatus>,
    /// The last error the version met (a retried one included), without row values.
    pub last_error: Option<String>,
}

/// Positions in the source's binlog, as `FILE:POS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Positions {
    /// The last commit (or DDL) read from the source.
    pub read: Option<String>,
    /// Every target holds the changes up to here.
    pub applied: Option<String>,
    /// The end of the server's binlog, as last polled or told by a heartbeat.
    pub server_end: Option<String>,
    /// The server's position in its last heartbeat (sent when it has nothing else to
    /// send: the stream has delivered everything up to here).
    pub heartbeat: Option<String>,
}

/// The checkpoint a restart resumes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointStatus {
    /// `FILE:POS`.
    pub position: String,
    /// The GTID set, when the source uses GTIDs.
    pub gtid_set: Option<String>,
    /// Source commit time of the checkpointed transaction, ms since the epoch.
    pub commit_ts_ms: u64,
    /// When it was saved, ms since the epoch.
    pub written_at_ms: u64,
    /// Seconds since it was saved while newer applied changes wait for the next save (0
    /// when it holds everything applied).
    pub age_seconds: Option<f64>,
}

/// Replication lag (see `src/lag.rs` for how it is measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagStatus {
    /// Seconds the oldest change not yet in every target has waited; 0 only when caught up.
    pub seconds: Option<f64>,
    /// Binlog bytes between the applied position and the server's end.
    pub bytes: Option<u64>,
    /// Everything the server has written is applied.
    pub caught_up: bool,
    /// What `seconds` was measured from (`caught_up`, `oldest_unapplied`, `last_applied`,
    /// `checkpoint`, `last_caught_up`, `unknown`).
    pub basis: String,
    /// The version's alert threshold (`lag_alert`), in seconds.
    pub threshold_seconds: f64,
    /// Lag is above the threshold.
    pub over_threshold: bool,
}

/// What was read from the source (cumulative since the process started).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Row changes by operation: `insert`, `update`, `delete`, `skipped`.
    pub row_changes: BTreeMap<String, u64>,
    /// Transactions read.
    pub transactions: u64,
    /// Source errors by kind (lost connections, failed connects).
    pub errors: BTreeMap<String, u64>,
}

impl SourceStatus {
    /// Every row change read, skipped ones included.
    pub fn total_row_changes(&self) -> u64 {
        self.row_changes.values().sum()
    }
}

/// One target's state and counters (cumulative since the process started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// The store (`redis`, `mongodb`, `opensearch`, `postgres`).
    pub name: String,
    /// `ok`, `retrying` (failed writes are being retried), `unreachable` (its health check
    /// fails) or `connecting`.
    pub state: String,
    /// Writes that changed the target.
    pub applied: u64,
    /// Writes skipped because the target held an equal or newer version.
    pub stale: u64,
    /// Writes dropped in a batch for a newer write of the same row.
    pub superseded: u64,
    /// Batches made durable.
    pub batches: u64,
    /// Retries of failed batches.
    pub retries: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// The last error of its health check or connection, if any.
    pub last_error: Option<String>,
}

/// Why a replicator's status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not reachable, or no answer in time.
    #[error("no answer from http://{addr}/status: {reason}")]
    Unreachable {
        /// Where it was asked.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// It answered something that is not a status document.
    #[error("http://{addr}/status answered something else than a strata status ({reason}); is another program listening there?")]
    Unexpected {
        /// Where it was asked.
        addr: SocketAddr,
        /// What was wrong with the answer.
        reason: String,
    },
}

/// Asks the replicator listening on `addr` for its status.
pub async fn fetch(
    client: &reqwest::Client,
    addr: SocketAddr,
) -> Result<VersionStatus, FetchError> {
    let url = format!("http://{addr}/status");
    let response = client
        .get(&url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| FetchError::Unreachable {
            addr,
            reason: without_url(e),
        })?;
    if !response.status().is_success() {
        return Err(FetchError::Unexpected {
            addr,
            reason: format!("HTTP {}", response.status()),
        });
    }
    response
        .json::<VersionStatus>()
        .await
        .map_err(|e| FetchError::Unexpected {
            addr,
            reason: without_url(e),
        })
}

/// A client for [`fetch`]: plain HTTP, no proxy (replicators listen on local or cluster
/// addresses that a proxy would not reach).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().no_proxy().build()
}

/// reqwest's message with its URL removed (the caller names the address already).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
