//! How the apply engine batches, parallelises, retries and checkpoints.

use crate::retry::RetryPolicy;
use std::time::Duration;

/// Settings of the apply engine. Memory held by a run is bounded by roughly
/// `sinks × workers_per_sink × (queue_capacity + batch_max_rows)` ops (see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ApplySettings {
    /// Parallel writers per sink; ops are partitioned among them by a hash of (table, key).
    pub workers_per_sink: usize,
    /// Messages (ops and commit markers) each worker's queue holds before the reader waits.
    pub queue_capacity: usize,
    /// A worker applies its pending ops once it holds this many.
    pub batch_max_rows: usize,
    /// … or once their approximate size reaches this many bytes.
    pub batch_max_bytes: usize,
    /// … or once this long has passed since the first pending op arrived.
    pub batch_max_delay: Duration,
    /// The checkpoint is saved at most this often (always the newest durable commit), and
    /// once more when a run ends.
    pub checkpoint_interval: Duration,
    /// How long a run waits, after being asked to stop, for queued ops to be applied before
    /// it gives up on them (they were not checkpointed, so they are read again next time).
    pub drain_timeout: Duration,
    /// Backoff for transient sink errors (retried forever).
    pub retry: RetryPolicy,
}

impl Default for ApplySettings {
    fn default() -> Self {
        ApplySettings {
            workers_per_sink: 4,
            queue_capacity: 10_000,
            batch_max_rows: 1_000,
            batch_max_bytes: 4 * 1024 * 1024,
            batch_max_delay: Duration::from_millis(50),
            checkpoint_interval: Duration::from_millis(200),
            drain_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

impl ApplySettings {
    /// Checks that every setting is usable; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("workers", self.workers_per_sink),
            ("queue_capacity", self.queue_capacity),
            ("batch_max_rows", self.batch_max_rows),
            ("batch_max_bytes", self.batch_max_bytes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.checkpoint_interval.is_zero() {
            return Err("checkpoint_interval must be above zero".into());
        }
        self.retry.validate()
    }

    /// The most ops a run holds in its queues and batches at once, as stated in the crate docs.
    pub fn max_ops_held(&self, sinks: usize) -> usize {
        sinks
            .saturating_mul(self.workers_per_sink)
            .saturating_mul(self.queue_capacity.saturating_add(self.batch_max_rows))
    }
}
