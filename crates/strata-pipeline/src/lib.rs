//! strata's pipeline: route → plan → batch & partition → apply → acknowledge → checkpoint.
//!
//! - [`route`]: which tables a version replicates and how each is written ([`Router`],
//!   [`Route`]), from the version's [`TableRules`] (strata-core's, re-exported here).
//! - [`plan`](mod@plan): a pure function from a row change to versioned upserts and deletes.
//! - [`Pipeline`]: the apply engine. The reader takes [`strata_core::SourceEvent`]s from an
//!   [`EventSource`], plans each change, and sends every op, for each sink, to the worker
//!   `hash(target table, row id) % workers_per_sink` over a bounded queue, so one row's ops
//!   stay in order while rows go in parallel. Each commit gets a sequence number and a marker
//!   sent to every worker after the transaction's ops. A worker batches ops (by rows, bytes
//!   and delay), applies a batch with retries (transient errors forever, with backoff and
//!   jitter), and once it is durable acknowledges the markers it covers. The checkpointer
//!   saves the newest commit acknowledged by every worker of every sink, at most every
//!   `checkpoint_interval`, so a checkpoint is always a transaction boundary whose changes
//!   every target holds.
//! - [`FileCheckpointStore`]: the default checkpoint store (temp file, fsync, rename, fsync
//!   the directory).
//! - [`Progress`]: what was read, applied and checkpointed, as a `watch` channel.
//!
//! # Wiring
//!
//! ```ignore
//! let pipeline = Pipeline::new(sinks, Arc::new(FileCheckpointStore::new(path)), settings);
//! let mut router = Router::new(rules);
//! let progress = pipeline.progress(); // for status, /metrics and lag
//! loop {
//!     let events = /* a source resuming from `checkpoints.load()` */;
//!     match pipeline.run(events, &mut router, &shutdown).await {
//!         Ok(summary) => break, // shutdown or source ended: checkpoint saved
//!         Err(e) if e.kind().retry_directive() == RetryDirective::Backoff => continue, // reconnect
//!         Err(e) => return Err(e), // config, data, rejected: say why, exit non-zero
//!     }
//! }
//! ```
//!
//! # Memory bound
//!
//! A run holds at most `sinks × workers_per_sink × (queue_capacity + batch_max_rows)` ops
//! ([`ApplySettings::max_ops_held`]): each worker's queue holds `queue_capacity` messages
//! (ops or commit markers) and its batch at most `batch_max_rows` ops. When a sink is slow,
//! its workers' queues fill and the reader waits for room, so it stops pulling from the
//! source; the source's own bounded channel adds its capacity in events. Beyond ops, the run
//! keeps one `CommitInfo` per transaction read but not yet durable everywhere; markers take
//! queue slots, so that list is bounded by the same queues (plus the markers a worker
//! absorbs during one `batch_max_delay`). A transaction's size does not matter: a
//! 1,000,000-row transaction streams through in batches. With the defaults (4 workers,
//! queues of 10,000, batches of 1,000) that is 44,000 ops per sink; at ~1 KiB per op, about
//! 45 MiB per sink.
//!
//! # Failures
//!
//! - A transient sink error (connection, timeout, throttling) is retried forever with
//!   exponential backoff and jitter, each retry logged at `warn` and counted.
//! - A permanent sink error stops the run at once with [`PipelineError::Rejected`], naming
//!   the sink, table, key, binlog position, version and reason; the checkpoint stays at the
//!   last commit fully durable before it.
//! - A change that cannot be planned (no key, NULL key) stops the run with
//!   [`PipelineError::Plan`] after what is durable was checkpointed.
//! - A source error ends the run with [`PipelineError::Source`] after queued ops were applied
//!   and checkpointed; the caller reconnects and calls [`Pipeline::run`] again with a fresh
//!   stream from the checkpoint.
//! - Shutdown (the token cancelled): the reader stops taking events, workers apply what is
//!   queued (within `drain_timeout`), the final checkpoint is saved, and `run` returns `Ok`.
//!   A transaction cut short is not checkpointed; replaying it later is harmless because
//!   every write is guarded by its version.

// Tests may unwrap; library code may not (the workspace lint stays on for it).
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(missing_docs)]

mod apply;
mod batch;
mod checkpoint_file;
mod checkpointer;
mod error;
mod events;
pub mod plan;
mod progress;
mod retry;
pub mod route;
mod settings;
mod worker;

pub use apply::{Pipeline, RunSummary, StopReason};
pub use checkpoint_file::FileCheckpointStore;
pub use error::{PipelineError, PlanError, Rejection};
pub use events::{EventSource, SourceFailure};
pub use plan::{guard_value, plan, Planned};
pub use progress::{BatchObserver, Progress, RowsRead, RunState, SinkProgress};
pub use retry::RetryPolicy;
pub use route::{Route, Router};
pub use settings::ApplySettings;
/// The table rules `Router::new` takes, re-exported from strata-core.
pub use strata_core::rules::{ColumnPattern, Guard, TableOptions, TablePattern, TableRules};
/// The shutdown token `Pipeline::run` takes, re-exported so callers need no extra import.
pub use tokio_util::sync::CancellationToken;
