//! Keeping a snapshot gentle on the source: an optional cap on rows read per second, and a
//! pause while the source is busy (its `Threads_running` above a threshold), resuming
//! when it calms down.

use std::time::{Duration, Instant};
use strata_mysql::{SnapshotReader, SourceError};
use strata_pipeline::CancellationToken;

/// How often the source's load is sampled at most, and polled while paused.
const BUSY_POLL: Duration = Duration::from_secs(1);

/// The limits of one snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows read per second at most (`None`: as fast as the targets take them).
    pub max_rows_per_sec: Option<u64>,
    /// Pause while `Threads_running` exceeds this (`None`: never pause).
    pub max_threads_running: Option<u64>,
}

/// Applies [`Limits`] between chunks.
pub struct Throttle {
    limits: Limits,
    /// Start of the current rate window (reset after a pause, so a pause is not made up
    /// for with a burst).
    window_start: Instant,
    window_rows: u64,
    last_check: Option<Instant>,
}

impl Throttle {
    /// A throttle applying `limits`, its rate window starting now.
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            window_start: Instant::now(),
            window_rows: 0,
            last_check: None,
        }
    }

    /// Waits, before reading the next chunk, until the rate cap allows it and the source
    /// is not busy. `false` when `shutdown` came first.
    pub async fn before_chunk(
        &mut self,
        reader: &mut SnapshotReader,
        shutdown: &CancellationToken,
    ) -> Result<bool, SourceError> {
        if let Some(rate) = self.limits.max_rows_per_sec.filter(|r| *r > 0) {
            let due =
                self.window_start + Duration::from_secs_f64(self.window_rows as f64 / rate as f64);
            let now = Instant::now();
            if due > now && !sleep(due - now, shutdown).await {
                return Ok(false);
            }
        }
        let Some(max) = self.limits.max_threads_running else {
            return Ok(true);
        };
        if self.last_check.is_some_and(|t| t.elapsed() < BUSY_POLL) {
            return Ok(true);
        }
        self.last_check = Some(Instant::now());
        let mut running = reader.threads_running().await?;
        if running <= max {
            return Ok(true);
        }
        tracing::warn!(
            threads_running = running,
            threshold = max,
            "the source is busy; pausing the snapshot until it calms down"
        );
        let paused = Instant::now();
        while running > max {
            if !sleep(BUSY_POLL, shutdown).await {
                return Ok(false);
            }
            running = reader.threads_running().await?;
        }
        tracing::info!(
            threads_running = running,
            paused_ms = paused.elapsed().as_millis() as u64,
            "the source calmed down; resuming the snapshot"
        );
        self.window_start = Instant::now();
        self.window_rows = 0;
        Ok(true)
    }

    /// Counts rows read.
    pub fn read(&mut self, rows: u64) {
        self.window_rows += rows;
    }
}

/// Sleeps for `d`; `false` when `shutdown` came first.
async fn sleep(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
