//! Turning worker acknowledgements into checkpoints: the newest commit every worker of every
//! sink has made durable is saved, at most every `checkpoint_interval`, and once at the end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_core::{Checkpoint, CheckpointError, CheckpointStore, CommitInfo};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::progress::Progress;

/// Commits read but not yet durable everywhere, and each worker's acknowledgement.
///
/// Commit sequence numbers start at 1; a worker's `acked` value `n` means every op it was
/// sent before the marker of commit `n` is durable.
#[derive(Debug)]
pub(crate) struct Ledger {
    acked: Vec<AtomicU64>,
    /// Commits in sequence order. Its length is bounded by the markers the queues hold: a
    /// worker that lags keeps its queue full of markers, which stops the reader.
    pending: Mutex<VecDeque<(u64, CommitInfo)>>,
}

impl Ledger {
    pub fn new(workers: usize) -> Self {
        Ledger {
            acked: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// Records a commit before its markers are sent.
    pub fn record(&self, seq: u64, info: CommitInfo) {
        self.lock().push_back((seq, info));
    }

    /// Worker `worker` has made everything before marker `seq` durable.
    pub fn ack(&self, worker: usize, seq: u64) {
        if let Some(slot) = self.acked.get(worker) {
            slot.fetch_max(seq, Ordering::Release);
        }
    }

    /// The newest commit acknowledged by every worker, removed from the pending list with
    /// every older one; `None` when nothing new is fully acknowledged.
    pub fn take_durable(&self) -> Option<CommitInfo> {
        let durable = self
            .acked
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let mut pending = self.lock();
        let mut newest = None;
        while pending.front().is_some_and(|(seq, _)| *seq <= durable) {
            newest = pending.pop_front().map(|(_, info)| info);
        }
        newest
    }

    /// The oldest commit read but not yet acknowledged by every worker.
    pub fn oldest_pending(&self) -> Option<CommitInfo> {
        self.lock().front().map(|(_, info)| info.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, CommitInfo)>> {
        // The lists stay consistent even if a holder panicked: each push/pop is atomic.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the checkpointer leaves when it stops.
#[derive(Debug, Default)]
pub(crate) struct CheckpointOutcome {
    /// The newest commit durable everywhere during the run.
    pub last_applied: Option<CommitInfo>,
    /// The last checkpoint saved during the run.
    pub saved: Option<Checkpoint>,
    /// The error of the final save, if it failed.
    pub error: Option<CheckpointError>,
}

/// Saves checkpoints until `stop` is cancelled, then saves the final one.
pub(crate) async fn run_checkpointer(
    ledger: Arc<Ledger>,
    store: Arc<dyn CheckpointStore>,
    interval: Duration,
    progress: watch::Sender<Progress>,
    stop: CancellationToken,
) -> CheckpointOutcome {
    let mut outcome = CheckpointOutcome::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            biased;
            _ = stop.cancelled() => true,
            _ = ticker.tick() => false,
        };
        advance(&ledger, &progress, &mut outcome);
        if let Err(e) = save_if_newer(&*store, &progress, &mut outcome).await {
            if stopping {
                outcome.error = Some(e);
            } else {
                // Keep running: the next tick saves a newer commit; replaying more after a
                // crash is harmless, stopping the stream is not needed for that.
                tracing::error!(error = %e, "cannot save the checkpoint; retrying at the next interval");
                progress.send_modify(|p| p.last_error = Some(e.to_string()));
            }
        }
        if stopping {
            return outcome;
        }
    }
}

fn advance(ledger: &Ledger, progress: &watch::Sender<Progress>, outcome: &mut CheckpointOutcome) {
    let durable = ledger.take_durable();
    let oldest = ledger.oldest_pending();
    progress.send_if_modified(|p| {
        let mut changed = false;
        if let Some(info) = &durable {
            p.last_applied_commit = Some(info.clone());
            changed = true;
        }
        if p.oldest_unapplied_commit != oldest {
            p.oldest_unapplied_commit = oldest;
            changed = true;
        }
        changed
    });
    if let Some(info) = durable {
        outcome.last_applied = Some(info);
    }
}

async fn save_if_newer(
    store: &dyn CheckpointStore,
    progress: &watch::Sender<Progress>,
    outcome: &mut CheckpointOutcome,
) -> Result<(), CheckpointError> {
    let Some(info) = &outcome.last_applied else {
        return Ok(());
    };
    let already = outcome
        .saved
        .as_ref()
        .is_some_and(|c| c.position == info.position && c.gtid_set == info.gtid_set);
    if already {
        return Ok(());
    }
    let checkpoint = Checkpoint {
        position: info.position.clone(),
        gtid_set: info.gtid_set.clone(),
        commit_ts_ms: info.ts_ms,
        written_at_ms: now_ms(),
    };
    store.save(&checkpoint).await?;
    tracing::debug!(position = %checkpoint.position, "checkpoint saved");
    progress.send_modify(|p| p.last_checkpoint = Some(checkpoint.clone()));
    outcome.saved = Some(checkpoint);
    Ok(())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::BinlogPos;

    fn info(pos: u64) -> CommitInfo {
        CommitInfo {
            position: BinlogPos::new("binlog.000001", pos),
            gtid_set: None,
            ts_ms: pos,
        }
    }

    #[test]
    fn durable_commit_is_the_minimum_over_workers() {
        let ledger = Ledger::new(3);
        for seq in 1..=4 {
            ledger.record(seq, info(seq * 100));
        }
        assert_eq!(ledger.take_durable(), None);
        ledger.ack(0, 4);
        ledger.ack(1, 2);
        assert_eq!(ledger.take_durable(), None, "worker 2 has acked nothing");
        ledger.ack(2, 3);
        assert_eq!(ledger.take_durable(), Some(info(200)));
        assert_eq!(ledger.take_durable(), None, "nothing new");
        ledger.ack(1, 4);
        ledger.ack(2, 1); // acks never go backwards
        assert_eq!(ledger.take_durable(), Some(info(300)));
        ledger.ack(2, 4);
        assert_eq!(ledger.take_durable(), Some(info(400)));
    }

    #[test]
    fn oldest_pending_is_the_first_commit_not_durable_everywhere() {
        let ledger = Ledger::new(2);
        assert_eq!(ledger.oldest_pending(), None);
        for seq in 1..=3 {
            ledger.record(seq, info(seq * 100));
        }
        assert_eq!(ledger.oldest_pending(), Some(info(100)));
        ledger.ack(0, 3);
        ledger.ack(1, 1);
        ledger.take_durable();
        assert_eq!(ledger.oldest_pending(), Some(info(200)));
        ledger.ack(1, 3);
        ledger.take_durable();
        assert_eq!(ledger.oldest_pending(), None);
    }
}
