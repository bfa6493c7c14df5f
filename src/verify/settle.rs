//! Waiting for the version's replicator to apply past a source position, so that a change
//! in flight while verify reads is not reported as a difference. The replicator's progress
//! is its checkpoint file (the commit every target has made durable).

use std::time::{Duration, Instant};
use strata_core::{BinlogPos, CheckpointStore};
use strata_pipeline::FileCheckpointStore;

/// A checkpoint that has not moved for this long while behind means no replicator is
/// applying (or it is stuck): differences are then reported as read.
const IDLE_AFTER: Duration = Duration::from_secs(5);
/// The longest wait for one position, even while the checkpoint moves (a lagging
/// replicator).
const MAX_WAIT: Duration = Duration::from_secs(120);

/// Tracks whether a replicator is applying, and waits for it.
pub struct Settle {
    store: FileCheckpointStore,
    live: bool,
}

impl Settle {
    /// Live when the version has a checkpoint (a replicator ran, and may run now).
    pub async fn new(store: FileCheckpointStore) -> Settle {
        let live = matches!(store.load().await, Ok(Some(_)));
        Settle { store, live }
    }

    /// Whether differences are re-checked after the replicator catches up.
    pub fn live(&self) -> bool {
        self.live
    }

    /// Waits until the checkpoint is at or past `position`. When it stops moving first,
    /// concludes that no replicator runs, and stops waiting from then on.
    pub async fn wait(&mut self, position: &BinlogPos) {
        if !self.live {
            return;
        }
        let started = Instant::now();
        let mut last_written = None;
        let mut last_change = Instant::now();
        loop {
            match self.store.load().await {
                Ok(Some(cp)) if cp.position >= *position => return,
                Ok(Some(cp)) => {
                    if last_written != Some(cp.written_at_ms) {
                        last_written = Some(cp.written_at_ms);
                        last_change = Instant::now();
                    }
                }
                Ok(None) | Err(_) => {}
            }
            if last_change.elapsed() > IDLE_AFTER || started.elapsed() > MAX_WAIT {
                tracing::warn!(
                    position = %position,
                    "the version's checkpoint is not reaching the position verify read at (is its replicator running?); differences are reported as read"
                );
                self.live = false;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
