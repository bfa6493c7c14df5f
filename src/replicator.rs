//! One version's replicator: connect its targets, resume from its checkpoint, stream the
//! binlog through the pipeline, and reconnect after a lost source connection.

use crate::monitor::Monitor;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_config::{CheckpointSettings, SourceSettings, VersionConfig};
use strata_core::{Checkpoint, CheckpointStore, ErrorKind, RetryDirective, SourceEvent, StartFrom};
use strata_mysql::{BinlogSource, SourceConfig, SourceError, TableFilter};
use strata_pipeline::{
    ApplySettings, CancellationToken, EventSource, FileCheckpointStore, Pipeline, PipelineError,
    RetryPolicy, Router, RunSummary, SourceFailure,
};

/// Why a version stopped with an error, and whether a human must fix something first.
#[derive(Debug, thiserror::Error)]
#[error("version {version}: {message}")]
pub struct VersionError {
    pub version: String,
    pub kind: ErrorKind,
    pub message: String,
}

impl VersionError {
    fn new(version: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        VersionError {
            version: version.to_owned(),
            kind,
            message: message.into(),
        }
    }
}

/// What `--from` and the config say about where a first start reads from.
pub struct Replicator {
    pub version: VersionConfig,
    pub source: SourceSettings,
    /// `--from` for a first start; refused when a checkpoint exists.
    pub from: Option<StartFrom>,
}

impl Replicator {
    /// Runs until `shutdown`, a permanent error, or a configuration problem, reporting its
    /// phases and the pipeline's progress to `monitor` (for /status, /metrics and lag).
    pub async fn run(
        self,
        shutdown: CancellationToken,
        monitor: Arc<Monitor>,
    ) -> Result<Option<RunSummary>, VersionError> {
        let name = self.version.name.clone();
        let err = |kind, msg: String| VersionError::new(&name, kind, msg);
        let CheckpointSettings::File { path } = &self.version.checkpoint;
        let store = Arc::new(FileCheckpointStore::new(path.clone()));
        let checkpoint = store
            .load()
            .await
            .map_err(|e| err(ErrorKind::Config, e.to_string()))?;
        if let (Some(cp), Some(from)) = (&checkpoint, &self.from) {
            return Err(err(
                ErrorKind::Config,
                format!(
                    "--from {from} only applies to a first start, but the version has a checkpoint at {} ({}); resume without --from, or move the checkpoint file away to start over",
                    cp.position,
                    path.display()
                ),
            ));
        }

        let on_retry = |target: &str, e: &strata_core::SinkError| monitor.target_retry(target, e);
        let Some(sinks) = crate::targets::connect_all(
            &self.version,
            crate::targets::Writer::Replicator,
            &shutdown,
            &on_retry,
        )
        .await
        .map_err(|e| err(e.kind, format!("cannot use target {e}")))?
        else {
            return Ok(None);
        };
        let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        tracing::info!(targets = ?names, "targets connected");

        monitor.targets_connected(&sinks);
        let mut pipeline = Pipeline::new(sinks, store.clone(), apply_settings(&self.version));
        pipeline.observe_batches(monitor.clone());
        monitor.pipeline_created(pipeline.progress());
        let mut router = Router::new(self.version.rules.clone());
        // The opt-in heartbeat row; it stops with the version, however the version stops.
        let _heartbeat = self.start_heartbeat(&shutdown);
        let reconnect = RetryPolicy {
            max: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let mut attempt = 0u32;
        let mut first_start = checkpoint.is_none();
        loop {
            let resume = store
                .load()
                .await
                .map_err(|e| err(ErrorKind::Config, e.to_string()))?;
            let start = match &resume {
                Some(cp) => StartFrom::FilePos(cp.position.clone()),
                None => self
                    .from
                    .clone()
                    .unwrap_or_else(|| self.version.start.clone()),
            };
            monitor.connecting_source();
            let started = match self.source_config(start.clone()) {
                Ok(cfg) => BinlogSource::start(cfg).await,
                Err(e) => Err(e),
            };
            let source = match started {
                Ok(s) => s,
                Err(e) => {
                    let msg = match &resume {
                        Some(cp) => format!(
                            "resuming from its checkpoint {} ({}): {e}{}",
                            cp.position,
                            path.display(),
                            if e.kind() == ErrorKind::Config {
                                format!(
                                    " (the checkpoint wins over --from: to start over, move {} away, then run `strata snapshot` to backfill, or `strata run --from oldest|current`)",
                                    path.display()
                                )
                            } else {
                                String::new()
                            }
                        ),
                        None => format!("starting from {start}: {e}"),
                    };
                    if e.kind().retry_directive() == RetryDirective::Stop {
                        return Err(err(e.kind(), msg));
                    }
                    monitor.source_error(e.kind(), &msg);
                    let delay = reconnect.delay(attempt);
                    attempt += 1;
                    tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %msg, "cannot reach the source; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            if first_start {
                // Record where a first start begins before streaming, so a crash before the
                // first commit resumes here instead of at a later "current" end (which would
                // skip the changes in between).
                let cp = Checkpoint {
                    position: source.start_position().clone(),
                    gtid_set: None,
                    commit_ts_ms: now_ms(),
                    written_at_ms: now_ms(),
                };
                store
                    .save(&cp)
                    .await
                    .map_err(|e| err(ErrorKind::Config, e.to_string()))?;
                first_start = false;
            }
            tracing::info!(from = %source.start_position(), "streaming");
            monitor.streaming();
            match pipeline.run(Events(source), &mut router, &shutdown).await {
                Ok(summary) => return Ok(Some(summary)),
                Err(PipelineError::Source(f))
                    if f.kind.retry_directive() == RetryDirective::Backoff =>
                {
                    monitor.source_error(f.kind, &f.message);
                    let delay = reconnect.delay(attempt.min(3));
                    attempt += 1;
                    tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %f, "source connection lost; resuming from the checkpoint");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => return Err(err(e.kind(), e.to_string())),
            }
        }
    }

    /// Starts the heartbeat row task when the version has one; dropping the returned guard
    /// stops it (as does `shutdown`).
    fn start_heartbeat(&self, shutdown: &CancellationToken) -> Option<crate::heartbeat::Stop> {
        let settings = self.version.heartbeat.clone()?;
        let source = match self.position_probe() {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat row off: cannot use the source settings");
                return None;
            }
        };
        let heartbeat = crate::heartbeat::Heartbeat {
            settings,
            version: self.version.name.clone(),
            source,
            user: self.source.url.username().unwrap_or("strata").to_owned(),
        };
        let stop = shutdown.child_token();
        tokio::spawn(heartbeat.run(stop.clone()));
        Some(crate::heartbeat::Stop(stop))
    }

    /// The source settings for polling the server's binlog end (lag and bytes behind).
    pub fn position_probe(&self) -> Result<SourceConfig, SourceError> {
        self.source_config(StartFrom::Current)
    }

    fn source_config(&self, start: StartFrom) -> Result<SourceConfig, SourceError> {
        let mut cfg = SourceConfig::new(self.source.url.expose());
        cfg.tls = match self.source.tls.mode {
            strata_config::TlsMode::Disabled => strata_mysql::TlsMode::Disabled,
            strata_config::TlsMode::Preferred => strata_mysql::TlsMode::Preferred,
            strata_config::TlsMode::Required => strata_mysql::TlsMode::Required,
            strata_config::TlsMode::VerifyCa => strata_mysql::TlsMode::VerifyCa,
            strata_config::TlsMode::VerifyFull => strata_mysql::TlsMode::VerifyIdentity,
        };
        cfg.tls_ca = self.source.tls.ca_file.clone();
        cfg.server_id = self.version.server_id;
        cfg.start = start;
        // Whole schemas at the source (rows of other schemas are skipped before decoding);
        // the router applies the include/exclude table patterns.
        cfg.filter = TableFilter::parse(self.version.rules.schemas())?;
        cfg.heartbeat = self.source.heartbeat;
        cfg.read_timeout = self.source.read_timeout;
        Ok(cfg)
    }
}

fn apply_settings(version: &VersionConfig) -> ApplySettings {
    let a = &version.apply;
    ApplySettings {
        workers_per_sink: a.workers,
        queue_capacity: a.queue_capacity,
        batch_max_rows: a.batch_max_rows,
        batch_max_bytes: usize::try_from(a.batch_max_bytes).unwrap_or(usize::MAX),
        batch_max_delay: a.batch_max_delay,
        ..ApplySettings::default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The binlog source as the pipeline reads it.
struct Events(BinlogSource);

#[async_trait::async_trait]
impl EventSource for Events {
    async fn next_event(&mut self) -> Option<Result<SourceEvent, SourceFailure>> {
        self.0
            .next()
            .await
            .map(|r| r.map_err(|e: SourceError| SourceFailure::new(e.kind(), e.to_string())))
    }
}
