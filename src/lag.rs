//! Replication lag that tells the truth: how long the oldest change not yet in every target
//! has waited, how many binlog bytes are still to apply, and how old the checkpoint is.
//!
//! A pure function of what the pipeline applied ([`Progress`]) and where the server's
//! binlog ends ([`ServerEnd`], polled from the server, and the heartbeat position the
//! stream delivers), so every case has a plain unit test. The rules:
//!
//! - **Caught up** (lag 0, bytes 0) only when the server's end is known from a recent poll,
//!   everything read has been applied, and the stream has delivered up to that end (its
//!   last commit, DDL or heartbeat is at or past it). Never merely because nothing arrived:
//!   a silent stream with a server ahead of it is behind.
//! - Otherwise, when transactions were read but are not yet in every target: now − the
//!   commit time of the oldest of them (exactly how long its changes have waited).
//! - Otherwise (the server is ahead of what was read, e.g. after a restart, while the source
//!   reconnects, or while the server's end cannot be read): now − the latest instant before
//!   which everything is known to be applied: the newest of the last applied commit's time,
//!   the checkpoint's commit time and the last time the version was seen caught up. That is
//!   an upper bound (the first unread change was committed after it): lag never reads lower
//!   than the truth.

use strata_core::{BinlogPos, Checkpoint, CommitInfo};
use strata_pipeline::Progress;

/// The end of the server's binlog as a poll read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEnd {
    /// Where the next transaction will be written.
    pub end: BinlogPos,
    /// The binlog files the server has, oldest first, with their sizes in bytes (to count
    /// bytes behind across files).
    pub files: Vec<(String, u64)>,
}

/// What the lag was measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagBasis {
    /// Everything the server has written is applied: lag is zero.
    CaughtUp,
    /// The commit time of the oldest transaction read but not yet applied everywhere.
    OldestUnapplied,
    /// The commit time of the last transaction applied everywhere (an upper bound).
    LastApplied,
    /// The commit time recorded in the checkpoint (an upper bound; nothing applied since
    /// this process started).
    Checkpoint,
    /// The last time the version was seen caught up (an upper bound).
    LastCaughtUp,
    /// Nothing is known yet: no checkpoint, nothing applied.
    Unknown,
}

impl LagBasis {
    /// A short, stable name for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            LagBasis::CaughtUp => "caught_up",
            LagBasis::OldestUnapplied => "oldest_unapplied",
            LagBasis::LastApplied => "last_applied",
            LagBasis::Checkpoint => "checkpoint",
            LagBasis::LastCaughtUp => "last_caught_up",
            LagBasis::Unknown => "unknown",
        }
    }
}

/// One lag reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    /// Seconds the oldest change not in every target has waited (see the module docs);
    /// `None` when nothing is known yet.
    pub seconds: Option<f64>,
    /// Binlog bytes between what is applied and the server's end; `None` when either is
    /// unknown (or a file's size is).
    pub bytes: Option<u64>,
    /// Everything the server has written is applied.
    pub caught_up: bool,
    /// What `seconds` was measured from.
    pub basis: LagBasis,
    /// The position up to which every target holds the changes.
    pub applied: Option<BinlogPos>,
    /// The server's end, as far as known (the poll or a later heartbeat).
    pub server_end: Option<BinlogPos>,
    /// Seconds since the checkpoint was saved while newer applied changes wait for the next
    /// save; 0 when the checkpoint holds everything applied; `None` without a checkpoint.
    pub checkpoint_age_seconds: Option<f64>,
}

/// What the lag is computed from.
#[derive(Debug, Clone, Copy)]
pub struct LagInputs<'a> {
    /// Wall-clock time, milliseconds since the epoch.
    pub now_ms: u64,
    /// The pipeline's progress (default when the pipeline has not started).
    pub progress: &'a Progress,
    /// The checkpoint the version resumes from, when the progress has none yet.
    pub checkpoint: Option<&'a Checkpoint>,
    /// The server's end from a recent poll; `None` when unknown or too old to trust.
    pub server: Option<&'a ServerEnd>,
    /// The last time a reading was caught up, milliseconds since the epoch.
    pub last_caught_up_ms: Option<u64>,
}

/// Computes one lag reading (see the module docs for the rules).
pub fn compute(input: LagInputs<'_>) -> Lag {
    let p = input.progress;
    let checkpoint = p.last_checkpoint.as_ref().or(input.checkpoint);
    let applied_commit = newest_commit(p.last_applied_commit.as_ref(), checkpoint);
    let applied = applied_commit.as_ref().map(|c| c.position.clone());

    let server_end = max_pos(input.server.map(|s| &s.end), p.idle_position.as_ref());
    // How far the stream has delivered: its last commit or DDL, or the heartbeat that came
    // after them (heartbeats are sent only once everything before them was sent).
    let stream_end = [
        p.read_position.as_ref(),
        p.idle_position.as_ref(),
        applied.as_ref(),
    ]
    .into_iter()
    .flatten()
    .max();
    let read_all_applied = p.oldest_unapplied_commit.is_none()
        && match (&p.last_read_commit, &applied) {
            (None, _) => true,
            (Some(read), Some(applied)) => read.position <= *applied,
            (Some(_), None) => false,
        };
    let caught_up = input.server.is_some()
        && read_all_applied
        && matches!((stream_end, &server_end), (Some(s), Some(e)) if s >= e);

    let checkpoint_age_seconds = checkpoint.map(|cp| match &applied {
        Some(a) if *a > cp.position => seconds_between(cp.written_at_ms, input.now_ms),
        _ => 0.0,
    });

    if caught_up {
        return Lag {
            seconds: Some(0.0),
            bytes: Some(0),
            caught_up,
            basis: LagBasis::CaughtUp,
            applied,
            server_end,
            checkpoint_age_seconds,
        };
    }

    let (since_ms, basis) = match &p.oldest_unapplied_commit {
        Some(oldest) => (Some(oldest.ts_ms), LagBasis::OldestUnapplied),
        None => {
            let candidates = [
                (
                    p.last_applied_commit.as_ref().map(|c| c.ts_ms),
                    LagBasis::LastApplied,
                ),
                (checkpoint.map(|c| c.commit_ts_ms), LagBasis::Checkpoint),
                (input.last_caught_up_ms, LagBasis::LastCaughtUp),
            ];
            candidates
                .into_iter()
                .filter_map(|(ts, basis)| ts.map(|ts| (ts, basis)))
                .max_by_key(|(ts, _)| *ts)
                .map_or((None, LagBasis::Unknown), |(ts, basis)| (Some(ts), basis))
        }
    };
    let bytes = match (&applied, &server_end, input.server) {
        (Some(from), Some(to), Some(server)) => bytes_between(from, to, &server.files),
        _ => None,
    };
    Lag {
        seconds: since_ms.map(|ts| seconds_between(ts, input.now_ms)),
        bytes,
        caught_up,
        basis,
        applied,
        server_end,
        checkpoint_age_seconds,
    }
}

/// The newer of the last applied commit and the checkpoint (a fresh process has applied
/// nothing yet, but everything up to its checkpoint is in every target).
fn newest_commit(
    applied: Option<&CommitInfo>,
    checkpoint: Option<&Checkpoint>,
) -> Option<CommitInfo> {
    let from_checkpoint = checkpoint.map(|cp| CommitInfo {
        position: cp.position.clone(),
        gtid_set: cp.gtid_set.clone(),
        ts_ms: cp.commit_ts_ms,
    });
    match (applied, from_checkpoint) {
        (Some(a), Some(c)) if c.position > a.position => Some(c),
        (Some(a), _) => Some(a.clone()),
        (None, c) => c,
    }
}

fn max_pos<'a>(a: Option<&'a BinlogPos>, b: Option<&'a BinlogPos>) -> Option<BinlogPos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b).clone()),
        (a, b) => a.or(b).cloned(),
    }
}

/// Seconds from `from_ms` to `to_ms`, never negative (a source clock ahead of ours must not
/// make lag negative).
fn seconds_between(from_ms: u64, to_ms: u64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

/// Binlog bytes from `from` to `to`, counting the rest of `from`'s file, every file in
/// between and `to`'s offset. `None` when a file needed is not in `files` (purged, or the
/// list is older than a rotation).
pub fn bytes_between(from: &BinlogPos, to: &BinlogPos, files: &[(String, u64)]) -> Option<u64> {
    if to <= from {
        return Some(0);
    }
    if from.file == to.file {
        return Some(to.pos - from.pos);
    }
    let start = files.iter().position(|(name, _)| *name == from.file)?;
    let end = files.iter().position(|(name, _)| *name == to.file)?;
    if end <= start {
        return None;
    }
    let rest_of_first = files[start].1.saturating_sub(from.pos);
    let between: u64 = files[start + 1..end].iter().map(|(_, size)| size).sum();
    Some(rest_of_first + between + to.pos)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_100_000;

    fn pos(file: u32, offset: u64) -> BinlogPos {
        BinlogPos::new(format!("binlog.{file:06}"), offset)
    }

    fn commit(file: u32, offset: u64, ts_ms: u64) -> CommitInfo {
        CommitInfo {
            position: pos(file, offset),
            gtid_set: None,
            ts_ms,
        }
    }

    fn server(file: u32, offset: u64) -> ServerEnd {
        ServerEnd {
            end: pos(file, offset),
            files: (1..=file)
                .map(|f| {
                    (
                        format!("binlog.{f:06}"),
                        if f == file { offset } else { 10_000 },
                    )
                })
                .collect(),
        }
    }

    fn checkpoint(file: u32, offset: u64, commit_ts_ms: u64, written_at_ms: u64) -> Checkpoint {
        Checkpoint {
            position: pos(file, offset),
            gtid_set: None,
            commit_ts_ms,
            written_at_ms,
        }
    }

    fn lag(progress: &Progress, server: Option<&ServerEnd>, last_caught_up_ms: Option<u64>) -> Lag {
        compute(LagInputs {
            now_ms: NOW,
            progress,
            checkpoint: None,
            server,
            last_caught_up_ms,
        })
    }

    #[test]
    fn idle_and_caught_up_reads_zero_however_old_the_last_commit() {
        let applied = commit(1, 500, NOW - 3_600_000); // an hour of silence since
        let progress = Progress {
            last_read_commit: Some(applied.clone()),
            last_applied_commit: Some(applied),
            read_position: Some(pos(1, 500)),
            idle_position: Some(pos(1, 500)),
            ..Progress::default()
        };
        let l = lag(&progress, Some(&server(1, 500)), None);
        assert!(l.caught_up);
        assert_eq!(l.seconds, Some(0.0));
        assert_eq!(l.bytes, Some(0));
        assert_eq!(l.basis, LagBasis::CaughtUp);
    }

    #[test]
    fn a_heartbeat_past_non_data_events_still_counts_as_caught_up() {
        // After a rotation the binlog ends past the last commit (new file header events);
        // the heartbeat says the stream has delivered up to there.
        let applied = commit(1, 500, NOW - 60_000);
        let progress = Progress {
            last_read_commit: Some(applied.clone()),
            last_applied_commit: Some(applied),
            read_position: Some(pos(1, 500)),
            idle_position: Some(pos(2, 256)),
            ..Progress::default()
        };
        let l = lag(&progress, Some(&server(2, 256)), None);
        assert!(l.caught_up, "{l:?}");
        assert_eq!(l.seconds, Some(0.0));
    }

    #[test]
    fn silence_is_not_caught_up_when_the_server_is_ahead() {
        // No event arrived, but the poll says the server has written past what we applied.
        let applied = commit(1, 500, NOW - 20_000);
        let progress = Progress {
            last_read_commit: Some(applied.clone()),
            last_applied_commit: Some(applied),
            read_position: Some(pos(1, 500)),
            idle_position: Some(pos(1, 500)),
            ..Progress::default()
        };
        let l = lag(&progress, Some(&server(1, 900)), None);
        assert!(!l.caught_up);
        assert_eq!(l.seconds, Some(20.0));
        assert_eq!(l.basis, LagBasis::LastApplied);
        assert_eq!(l.bytes, Some(400));
    }

    #[test]
    fn unknown_server_end_is_never_caught_up() {
        let applied = commit(1, 500, NOW - 7_000);
        let progress = Progress {
            last_read_commit: Some(applied.clone()),
            last_applied_commit: Some(applied),
            idle_position: Some(pos(1, 500)),
            ..Progress::default()
        };
        let l = lag(&progress, None, Some(NOW - 5_000));
        assert!(!l.caught_up);
        assert_eq!(l.basis, LagBasis::LastCaughtUp);
        assert_eq!(l.seconds, Some(5.0));
        assert_eq!(l.bytes, None);
    }

    #[test]
    fn a_stalled_sink_measures_from_the_oldest_unapplied_commit() {
        let applied = commit(1, 500, NOW - 3_600_000);
        let progress = Progress {
            last_applied_commit: Some(applied),
            oldest_unapplied_commit: Some(commit(1, 700, NOW - 12_000)),
            last_read_commit: Some(commit(1, 900, NOW - 2_000)),
            read_position: Some(pos(1, 900)),
            ..Progress::default()
        };
        let l = lag(&progress, Some(&server(1, 900)), Some(NOW - 13_000));
        assert!(!l.caught_up);
        assert_eq!(l.basis, LagBasis::OldestUnapplied);
        assert_eq!(l.seconds, Some(12.0));
        assert_eq!(l.bytes, Some(400));
    }

    #[test]
    fn read_but_not_yet_marked_unapplied_is_not_caught_up() {
        // The checkpointer publishes the oldest unapplied commit at its interval; between
        // two ticks a newer read commit alone must prevent "caught up".
        let progress = Progress {
            last_applied_commit: Some(commit(1, 500, NOW - 1_000)),
            last_read_commit: Some(commit(1, 900, NOW - 500)),
            read_position: Some(pos(1, 900)),
            ..Progress::default()
        };
        let l = lag(&progress, Some(&server(1, 900)), None);
        assert!(!l.caught_up);
        assert_eq!(l.seconds, Some(1.0));
    }

    #[test]
    fn restarted_behind_measures_from_the_checkpoint_and_counts_bytes_across_files() {
        let cp = checkpoint(1, 9_000, NOW - 30_000, NOW - 29_000);
        let progress = Progress::default();
        let l = compute(LagInputs {
            now_ms: NOW,
            progress: &progress,
            checkpoint: Some(&cp),
            server: Some(&server(3, 100)),
            last_caught_up_ms: None,
        });
        assert!(!l.caught_up);
        assert_eq!(l.basis, LagBasis::Checkpoint);
        assert_eq!(l.seconds, Some(30.0));
        // 1,000 left in file 1, all 10,000 of file 2, 100 into file 3.
        assert_eq!(l.bytes, Some(11_100));
        assert_eq!(
            l.checkpoint_age_seconds,
            Some(0.0),
            "nothing applied past it"
        );
    }

    #[test]
    fn restarted_at_the_servers_end_is_caught_up() {
        let cp = checkpoint(2, 400, NOW - 86_400_000, NOW - 86_400_000);
        let progress = Progress::default();
        let l = compute(LagInputs {
            now_ms: NOW,
            progress: &progress,
            checkpoint: Some(&cp),
            server: Some(&server(2, 400)),
            last_caught_up_ms: None,
        });
        assert!(l.caught_up);
        assert_eq!(l.seconds, Some(0.0));
    }

    #[test]
    fn nothing_known_is_unknown_not_zero() {
        let l = lag(&Progress::default(), None, None);
        assert!(!l.caught_up);
        assert_eq!(l.seconds, None);
        assert_eq!(l.basis, LagBasis::Unknown);
    }

    #[test]
    fn checkpoint_age_counts_only_while_applied_changes_wait_for_it() {
        let cp = checkpoint(1, 500, NOW - 10_000, NOW - 4_000);
        let mut progress = Progress {
            last_checkpoint: Some(cp),
            last_applied_commit: Some(commit(1, 500, NOW - 10_000)),
            ..Progress::default()
        };
        assert_eq!(lag(&progress, None, None).checkpoint_age_seconds, Some(0.0));
        progress.last_applied_commit = Some(commit(1, 800, NOW - 1_000));
        assert_eq!(lag(&progress, None, None).checkpoint_age_seconds, Some(4.0));
    }

    #[test]
    fn a_source_clock_ahead_of_ours_never_makes_lag_negative() {
        let progress = Progress {
            oldest_unapplied_commit: Some(commit(1, 700, NOW + 5_000)),
            ..Progress::default()
        };
        assert_eq!(lag(&progress, None, None).seconds, Some(0.0));
    }

    #[test]
    fn bytes_between_positions() {
        let files = vec![
            ("binlog.000007".to_owned(), 1_000),
            ("binlog.000008".to_owned(), 50),
        ];
        let p = |f: &str, o| BinlogPos::new(f, o);
        assert_eq!(
            bytes_between(&p("binlog.000007", 100), &p("binlog.000007", 400), &files),
            Some(300)
        );
        assert_eq!(
            bytes_between(&p("binlog.000007", 400), &p("binlog.000007", 100), &files),
            Some(0)
        );
        assert_eq!(
            bytes_between(&p("binlog.000007", 900), &p("binlog.000008", 50), &files),
            Some(150)
        );
        assert_eq!(
            bytes_between(&p("binlog.000006", 900), &p("binlog.000008", 50), &files),
            None,
            "purged file"
        );
    }
}
