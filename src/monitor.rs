//! One version's monitor: what its replicator is doing, how far behind it is, whether its
//! targets answer. It feeds `/metrics`, `/health/*` and `/status`, and logs a warning when lag
//! crosses the version's threshold.
//!
//! The replicator reports its phases (connecting, streaming, reconnecting, stopped) and
//! hands over the pipeline's `Progress` channel; three light background tasks do the rest:
//! - every second: a lag reading, metrics, the lag alert;
//! - every [`POLL_INTERVAL`]: the server's binlog end and file sizes (`current_position`),
//!   so "caught up" and bytes behind are measured against the server, not inferred from
//!   silence (heartbeats also move the end forward between polls);
//! - every [`CHECK_INTERVAL`]: each target's health check, bounded by [`CHECK_TIMEOUT`].

use crate::lag::{self, Lag, LagInputs, ServerEnd};
use crate::report::{
    CheckpointStatus, LagStatus, Positions, SinkStatus, SourceStatus, State, VersionStatus,
};
use crate::telemetry::{Sample, Telemetry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_config::VersionConfig;
use strata_core::{Checkpoint, CheckpointStore, ErrorKind, Sink, SinkError};
use strata_mysql::SourceConfig;
use strata_pipeline::{BatchObserver, CancellationToken, FileCheckpointStore, Progress, RunState};
use tokio::sync::watch;

/// How often the server's binlog end is polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// A poll older than this is not trusted to say "caught up".
const POLL_FRESH_FOR: Duration = Duration::from_secs(15);
/// How often each target's health check runs.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// A health check that takes longer than this counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// While lag stays over the threshold, the warning is repeated this often.
const ALERT_REPEAT: Duration = Duration::from_secs(60);

/// What the replicator is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting its targets (retrying those that are down).
    ConnectingTargets,
    /// Connecting to the source (retrying while it is down).
    ConnectingSource,
    /// Streaming the binlog into the targets.
    Streaming,
    /// The source connection was lost; resuming from the checkpoint.
    Reconnecting,
    /// Asked to stop; applying what is in flight.
    Stopping,
    /// Stopped cleanly.
    Stopped,
    /// Stopped with an error.
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::ConnectingTargets => "connecting_targets",
            Phase::ConnectingSource => "connecting_source",
            Phase::Streaming => "streaming",
            Phase::Reconnecting => "reconnecting",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Failed => "failed",
        }
    }
}

/// A target as the monitor follows it.
struct SinkSlot {
    name: &'static str,
    sink: Option<Arc<dyn Sink>>,
    /// The last health check: `None` before the first one.
    check: Option<Result<(), String>>,
    /// The last error met while connecting it.
    connect_error: Option<String>,
    /// Failed batches are being retried (retries went up, no batch succeeded since).
    retrying: bool,
    seen_retries: u64,
    seen_batches: u64,
}

impl SinkSlot {
    fn state(&self) -> &'static str {
        match (&self.sink, &self.check) {
            (None, _) => "connecting",
            (Some(_), Some(Err(_))) => "unreachable",
            _ if self.retrying => "retrying",
            _ => "ok",
        }
    }
}

struct Shared {
    phase: Phase,
    /// Failed attempts since the current connecting phase began.
    failures: u32,
    last_error: Option<String>,
    progress: Option<watch::Receiver<Progress>>,
    sinks: Vec<SinkSlot>,
    source_errors: BTreeMap<&'static str, u64>,
    server: Option<(ServerEnd, Instant)>,
    poll_error: Option<String>,
    initial_checkpoint: Option<Checkpoint>,
    last_caught_up_ms: Option<u64>,
    over_threshold: bool,
    last_alert_log: Option<Instant>,
}

/// A version's monitor; shared by its replicator, its HTTP server and its background tasks.
pub struct Monitor {
    version: String,
    threshold: Duration,
    pid: u32,
    started_at_ms: u64,
    telemetry: Telemetry,
    shared: Mutex<Shared>,
}

/// One observation: what `/status`, `/health` and `/metrics` show.
struct Observation {
    lag: Lag,
    progress: Progress,
    state: State,
    phase: Phase,
    ready: bool,
    not_ready: Vec<String>,
    over_threshold: bool,
}

impl Monitor {
    /// A monitor for `version`, reading its checkpoint file for lag before the pipeline runs.
    pub async fn new(version: &VersionConfig) -> Monitor {
        let store = FileCheckpointStore::new(version.checkpoint_path().to_path_buf());
        // The replicator reports a checkpoint it cannot read; here it only seeds the lag.
        let initial_checkpoint = store.load().await.ok().flatten();
        let telemetry = Telemetry::new(&version.name);
        let sinks = version
            .targets
            .names()
            .into_iter()
            .map(|name| {
                telemetry.add_sink(name);
                SinkSlot {
                    name,
                    sink: None,
                    check: None,
                    connect_error: None,
                    retrying: false,
                    seen_retries: 0,
                    seen_batches: 0,
                }
            })
            .collect();
        Monitor {
            version: version.name.clone(),
            threshold: version.apply.lag_alert,
            pid: std::process::id(),
            started_at_ms: now_ms(),
            telemetry,
            shared: Mutex::new(Shared {
                phase: Phase::ConnectingTargets,
                failures: 0,
                last_error: None,
                progress: None,
                sinks,
                source_errors: BTreeMap::new(),
                server: None,
                poll_error: None,
                initial_checkpoint,
                last_caught_up_ms: None,
                over_threshold: false,
                last_alert_log: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every update leaves the state consistent; a panic elsewhere must not stop status.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- what the replicator reports -------------------------------------------------

    /// Connecting a target failed (it is retried).
    pub fn target_retry(&self, target: &str, error: &SinkError) {
        let mut s = self.lock();
        s.failures += 1;
        // The error names the store already ("redis: …").
        s.last_error = Some(format!("target {error}"));
        if let Some(slot) = s.sinks.iter_mut().find(|slot| slot.name == target) {
            slot.connect_error = Some(error.to_string());
        }
    }

    /// Every target is connected; the monitor health-checks them from now on.
    pub fn targets_connected(&self, sinks: &[Arc<dyn Sink>]) {
        let mut s = self.lock();
        for sink in sinks {
            match s.sinks.iter_mut().find(|slot| slot.name == sink.name()) {
                Some(slot) => {
                    slot.sink = Some(sink.clone());
                    slot.connect_error = None;
                }
                None => {
                    self.telemetry.add_sink(sink.name());
                    s.sinks.push(SinkSlot {
                        name: sink.name(),
                        sink: Some(sink.clone()),
                        check: None,
                        connect_error: None,
                        retrying: false,
                        seen_retries: 0,
                        seen_batches: 0,
                    });
                }
            }
        }
        s.phase = Phase::ConnectingSource;
        s.failures = 0;
    }

    /// The pipeline exists; its progress is what lag and counters are read from.
    pub fn pipeline_created(&self, progress: watch::Receiver<Progress>) {
        self.lock().progress = Some(progress);
    }

    /// Connecting to the source (again).
    pub fn connecting_source(&self) {
        let mut s = self.lock();
        if s.phase != Phase::Reconnecting {
            s.phase = Phase::ConnectingSource;
        }
    }

    /// The binlog stream started.
    pub fn streaming(&self) {
        let mut s = self.lock();
        s.phase = Phase::Streaming;
        s.failures = 0;
    }

    /// The source failed (a refused connect or a lost stream); it is retried.
    pub fn source_error(&self, kind: ErrorKind, message: &str) {
        let mut s = self.lock();
        *s.source_errors.entry(kind.as_str()).or_default() += 1;
        s.failures += 1;
        s.last_error = Some(format!("source: {message}"));
        if s.phase == Phase::Streaming {
            s.phase = Phase::Reconnecting;
        }
    }

    /// The replicator returned: `Ok` stopped cleanly, `Err` with its message.
    pub fn finished(&self, error: Option<&str>) {
        let mut s = self.lock();
        match error {
            None => s.phase = Phase::Stopped,
            Some(message) => {
                s.phase = Phase::Failed;
                s.last_error = Some(message.to_owned());
            }
        }
    }

    fn stopping(&self) {
        let mut s = self.lock();
        if !matches!(s.phase, Phase::Stopped | Phase::Failed) {
            s.phase = Phase::Stopping;
        }
    }

    // ---- background tasks ------------------------------------------------------------

    /// Starts the ticker, the server poller (when `probe` is given) and the target checks;
    /// they run until `stop`. `shutdown` marks the version as stopping.
    pub fn spawn_tasks(
        self: &Arc<Self>,
        probe: Option<SourceConfig>,
        shutdown: CancellationToken,
        stop: CancellationToken,
    ) {
        let me = self.clone();
        let stop_ticker = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop_ticker.cancelled() => return,
                    _ = shutdown.cancelled(), if !shutdown.is_cancelled() => me.stopping(),
                    _ = tick.tick() => { me.refresh_metrics(); }
                }
            }
        });
        if let Some(cfg) = probe {
            let me = self.clone();
            let stop_poller = stop.clone();
            tokio::spawn(async move {
                loop {
                    me.poll_server(&cfg).await;
                    tokio::select! {
                        _ = stop_poller.cancelled() => return,
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                }
            });
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.check_sinks().await;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(CHECK_INTERVAL) => {}
                }
            }
        });
    }

    async fn poll_server(&self, cfg: &SourceConfig) {
        let polled = tokio::time::timeout(POLL_INTERVAL, strata_mysql::current_position(cfg)).await;
        let mut s = self.lock();
        match polled {
            Ok(Ok(info)) => {
                let end = ServerEnd {
                    end: info.end,
                    files: info.binlogs.into_iter().map(|f| (f.name, f.size)).collect(),
                };
                s.server = Some((end, Instant::now()));
                s.poll_error = None;
            }
            Ok(Err(e)) => s.poll_error = Some(e.to_string()),
            Err(_) => {
                s.poll_error = Some(format!(
                    "reading the binlog position took longer than {POLL_INTERVAL:?}"
                ))
            }
        }
    }

    async fn check_sinks(&self) {
        let sinks: Vec<Arc<dyn Sink>> = self
            .lock()
            .sinks
            .iter()
            .filter_map(|s| s.sink.clone())
            .collect();
        for sink in sinks {
            let result = match tokio::time::timeout(CHECK_TIMEOUT, sink.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "{}: no answer to the health check within {CHECK_TIMEOUT:?}",
                    sink.name()
                )),
            };
            let mut s = self.lock();
            if let Some(slot) = s.sinks.iter_mut().find(|slot| slot.name == sink.name()) {
                slot.check = Some(result);
            }
        }
    }

    // ---- observations ----------------------------------------------------------------

    fn observe(&self) -> Observation {
        let now = now_ms();
        let mut s = self.lock();
        let progress = s
            .progress
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default();

        for sp in &progress.sinks {
            if let Some(slot) = s.sinks.iter_mut().find(|slot| slot.name == sp.name) {
                if sp.batches > slot.seen_batches {
                    slot.retrying = false;
                } else if sp.retries > slot.seen_retries {
                    slot.retrying = true;
                }
                slot.seen_batches = sp.batches;
                slot.seen_retries = sp.retries;
            }
        }

        let server = s
            .server
            .as_ref()
            .filter(|(_, at)| at.elapsed() <= POLL_FRESH_FOR)
            .map(|(end, _)| end);
        let lag = lag::compute(LagInputs {
            now_ms: now,
            progress: &progress,
            checkpoint: s.initial_checkpoint.as_ref(),
            server,
            last_caught_up_ms: s.last_caught_up_ms,
        });
        if lag.caught_up {
            s.last_caught_up_ms = Some(now);
        }
        let over_threshold = lag
            .seconds
            .is_some_and(|secs| secs > self.threshold.as_secs_f64());
        self.log_alert(&mut s, &lag, over_threshold);

        let mut not_ready = Vec::new();
        if s.phase != Phase::Streaming {
            not_ready.push(format!(
                "not streaming: {}",
                s.phase.as_str().replace('_', " ")
            ));
        }
        if let Some(e) = &s.poll_error {
            not_ready.push(format!("cannot read the source's binlog position: {e}"));
        }
        let mut sink_trouble = false;
        for slot in &s.sinks {
            match slot.state() {
                "unreachable" => {
                    sink_trouble = true;
                    let why = match &slot.check {
                        Some(Err(e)) => e.as_str(),
                        _ => "",
                    };
                    not_ready.push(format!("target {} unreachable: {why}", slot.name));
                }
                "retrying" => {
                    sink_trouble = true;
                    not_ready.push(format!(
                        "target {}: failed writes are being retried",
                        slot.name
                    ));
                }
                "connecting" if slot.connect_error.is_some() => sink_trouble = true,
                _ => {}
            }
        }
        if over_threshold {
            not_ready.push(format!(
                "lag {:.0} s is over the {} s threshold",
                lag.seconds.unwrap_or_default(),
                self.threshold.as_secs()
            ));
        }
        let state = match s.phase {
            Phase::ConnectingTargets | Phase::ConnectingSource if s.failures > 0 => State::Failing,
            Phase::ConnectingTargets | Phase::ConnectingSource => State::Starting,
            Phase::Reconnecting => State::Failing,
            Phase::Streaming
                if sink_trouble || s.poll_error.is_some() || progress.state == RunState::Failed =>
            {
                State::Failing
            }
            Phase::Streaming => State::Running,
            Phase::Stopping => State::Stopping,
            Phase::Stopped => State::Stopped,
            Phase::Failed => State::Failed,
        };
        Observation {
            ready: not_ready.is_empty(),
            not_ready,
            lag,
            progress,
            state,
            phase: s.phase,
            over_threshold,
        }
    }

    fn log_alert(&self, s: &mut Shared, lag: &Lag, over: bool) {
        let seconds = lag.seconds.unwrap_or_default();
        let threshold = self.threshold.as_secs_f64();
        if over {
            let due = s.last_alert_log.is_none_or(|t| t.elapsed() >= ALERT_REPEAT);
            if !s.over_threshold || due {
                tracing::warn!(
                    version = %self.version,
                    lag_seconds = seconds,
                    threshold_seconds = threshold,
                    behind_bytes = lag.bytes,
                    "replication lag is over the alert threshold"
                );
                s.last_alert_log = Some(Instant::now());
            }
        } else if s.over_threshold {
            tracing::info!(
                version = %self.version,
                lag_seconds = seconds,
                threshold_seconds = threshold,
                "replication lag is back under the alert threshold"
            );
            s.last_alert_log = None;
        }
        s.over_threshold = over;
    }

    /// Refreshes every metric; returns the observation's state (for tests and logs).
    pub fn refresh_metrics(&self) -> State {
        let o = self.observe();
        self.update_metrics(&o);
        o.state
    }

    fn update_metrics(&self, o: &Observation) {
        let (sinks_up, source_errors) = {
            let s = self.lock();
            let up: Vec<(&'static str, bool)> = s
                .sinks
                .iter()
                .map(|slot| {
                    (
                        slot.name,
                        slot.sink.is_some() && !matches!(slot.check, Some(Err(_))),
                    )
                })
                .collect();
            (up, s.source_errors.clone())
        };
        self.telemetry.update(&Sample {
            lag: &o.lag,
            progress: &o.progress,
            state: o.state,
            ready: o.ready,
            threshold: self.threshold,
            over_threshold: o.over_threshold,
            sinks_up: &sinks_up,
            source_errors: &source_errors,
        });
    }

    /// `/metrics`: every series, refreshed now.
    pub fn metrics_text(&self) -> String {
        let o = self.observe();
        self.update_metrics(&o);
        self.telemetry.render()
    }

    /// `/health/live`: false once the replicator has failed for good.
    pub fn live(&self) -> bool {
        self.lock().phase != Phase::Failed
    }

    /// `/health/ready`: whether it is ready, and why not.
    pub fn ready(&self) -> (bool, Vec<String>) {
        let o = self.observe();
        (o.ready, o.not_ready)
    }

    /// `/status`.
    pub fn status(&self) -> VersionStatus {
        let o = self.observe();
        let s = self.lock();
        let p = &o.progress;
        let checkpoint = p
            .last_checkpoint
            .as_ref()
            .or(s.initial_checkpoint.as_ref())
            .map(|cp| CheckpointStatus {
                position: cp.position.to_string(),
                gtid_set: cp.gtid_set.as_ref().map(|g| g.to_string()),
                commit_ts_ms: cp.commit_ts_ms,
                written_at_ms: cp.written_at_ms,
                age_seconds: o.lag.checkpoint_age_seconds,
            });
        let rows = &p.rows_read;
        let row_changes = [
            ("insert", rows.inserts),
            ("update", rows.updates),
            ("delete", rows.deletes),
            ("skipped", rows.skipped),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sinks = s
            .sinks
            .iter()
            .map(|slot| {
                let counters = p.sinks.iter().find(|sp| sp.name == slot.name);
                let last_error = match &slot.check {
                    Some(Err(e)) => Some(e.clone()),
                    _ => slot.connect_error.clone(),
                };
                SinkStatus {
                    name: slot.name.to_owned(),
                    state: slot.state().to_owned(),
                    applied: counters.map_or(0, |c| c.applied),
                    stale: counters.map_or(0, |c| c.stale),
                    superseded: counters.map_or(0, |c| c.superseded),
                    batches: counters.map_or(0, |c| c.batches),
                    retries: counters.map_or(0, |c| c.retries),
                    errors: counters
                        .map(|c| {
                            c.errors
                                .iter()
                                .map(|(k, v)| ((*k).to_owned(), *v))
                                .collect()
                        })
                        .unwrap_or_default(),
                    last_error,
                }
            })
            .collect();
        VersionStatus {
            version: self.version.clone(),
            state: o.state,
            phase: o.phase.as_str().to_owned(),
            ready: o.ready,
            not_ready: o.not_ready,
            pid: Some(self.pid),
            started_at_ms: Some(self.started_at_ms),
            at_ms: now_ms(),
            position: Positions {
                read: p.read_position.as_ref().map(|p| p.to_string()),
                applied: o.lag.applied.as_ref().map(|p| p.to_string()),
                server_end: o.lag.server_end.as_ref().map(|p| p.to_string()),
                heartbeat: p.idle_position.as_ref().map(|p| p.to_string()),
            },
            checkpoint,
            lag: LagStatus {
                seconds: o.lag.seconds,
                bytes: o.lag.bytes,
                caught_up: o.lag.caught_up,
                basis: o.lag.basis.as_str().to_owned(),
                threshold_seconds: self.threshold.as_secs_f64(),
                over_threshold: o.over_threshold,
            },
            source: SourceStatus {
                row_changes,
                transactions: p.transactions_read,
                errors: s
                    .source_errors
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect(),
            },
            sinks,
            last_error: s.last_error.clone().or_else(|| p.last_error.clone()),
        }
    }
}

impl BatchObserver for Monitor {
    fn batch_applied(&self, sink: &'static str, ops: usize, elapsed: Duration) {
        self.telemetry.batch_applied(sink, ops, elapsed);
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
