//! `strata snapshot` (backfill) and the copy behind `strata run --snapshot`.
//!
//! 1. The start position P is recorded first, such that every transaction before it is
//!    visible to the reads that follow (no global read lock; see
//!    [`strata_mysql::SnapshotReader::record_start`]).
//! 2. The version's streaming checkpoint is made to be at or before P (written at P when the
//!    version has none), so `strata run` streams every change since.
//! 3. Each table is read in primary-key order, `--chunk-rows` rows per statement (keyset
//!    pagination: no long-held lock, no long transaction), and every chunk goes through the
//!    version's ordinary pipeline (routing, planning, batching, retries, the same guarded
//!    sinks) as one transaction of inserts, all with P's binlog order as their version: any
//!    later binlog change of a row beats the snapshot's write, and the snapshot's write beats
//!    every earlier one. Streaming after the copy (from P, or from an earlier checkpoint)
//!    therefore replays every change made during it harmlessly.
//! 4. Progress — P, and per table the last key durable in every target — is persisted in
//!    `<data_dir>/<version>/snapshot.json` whenever the pipeline makes chunks durable; a
//!    killed snapshot run again continues after the last durable chunk, with the same P.

mod copy;
mod display;
mod feed;
/// The persisted progress file (also its hex and time helpers, shared with verify).
pub mod state;
mod throttle;

use crate::exit;
use anyhow::Context as _;
use clap::Args;
use copy::{Copier, Mode, Planned, Stopped};
pub use display::ProgressMode;
use feed::{ChunkEvents, ChunkStore, Feed, Progress};
use state::{SnapshotState, TableProgress};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use strata_config::{Config, SourceSettings, VersionConfig};
use strata_core::version::binlog_order;
use strata_core::{Checkpoint, CheckpointStore, GtidSet, TableId};
use strata_mysql::{pages_by_key, SnapshotReader, SourceConfig, SourceError, TableFilter};
use strata_pipeline::{
    ApplySettings, CancellationToken, FileCheckpointStore, Pipeline, Route, Router,
};
use throttle::{Limits, Throttle};
use tokio::sync::mpsc;

/// Backfill the rows a version's tables already hold, through its targets' guarded writes.
///
/// Records the source's binlog position first, then copies each table in primary-key
/// order, in chunks, with no global read lock and no long-held table lock. Every row is
/// written with the recorded position as its version, so a change streamed by `strata
/// run` (now or later) always wins over the copy. If the version has no checkpoint yet, one
/// is written at the recorded position: `strata run` afterwards streams every change made
/// since the snapshot began.
///
/// It may run while the version's replicator runs (`strata run`): whichever writes a row
/// last, the newer change wins. `strata run --snapshot` does both in one process.
///
/// Progress is saved in <data_dir>/<version>/snapshot.json; a snapshot that was killed or
/// interrupted continues where it stopped when the same command is run again (--restart
/// starts a new one).
///
/// A table without a primary key is paged by its first unique NOT NULL key (the key InnoDB
/// and the binlog use for it). A table with neither is refused, unless the config names its
/// key (`[versions.<v>.tables.<t>] key = [...]`, which it needs to be replicated at all);
/// it is then copied whole in one scan.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  strata snapshot --config prod.toml --version future
  strata snapshot --config prod.toml --version future --table users --table orders
  strata snapshot --config prod.toml --version future --max-rows-per-sec 20000
  strata snapshot --config prod.toml --version future --restart    # start over, new position

Exit codes: 0 every table copied (or already copied); 1 a failure or an interruption (run
the command again to resume); 2 configuration or source-setup error (nothing written).")]
pub struct SnapshotArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "STRATA_CONFIG", value_name = "FILE")]
    config: PathBuf,

    /// The version to backfill (a `[versions.NAME]` section of the config).
    #[arg(long, env = "STRATA_VERSION", value_name = "NAME")]
    version: String,

    #[command(flatten)]
    options: SnapshotOptions,

    /// How progress is shown: bars on a terminal, else log lines (auto), or always one way.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
}

/// Options shared by `strata snapshot` and `strata run --snapshot`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotOptions {
    /// Copy only this table (`table` or `schema.table`); repeat for several. Default: every
    /// table the version replicates.
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,

    /// Rows read per chunk (one SELECT, one pipeline transaction).
    #[arg(long, value_name = "ROWS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub chunk_rows: u64,

    /// Read at most this many rows per second.
    #[arg(long, value_name = "ROWS")]
    pub max_rows_per_sec: Option<u64>,

    /// Pause while the source's Threads_running is above this; 0 never pauses.
    #[arg(long, value_name = "THREADS", default_value_t = 64)]
    pub max_threads_running: u64,

    /// Start a new snapshot (new position) even if one is in progress or done.
    #[arg(long)]
    pub restart: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            tables: Vec::new(),
            chunk_rows: 5_000,
            max_rows_per_sec: None,
            max_threads_running: 64,
            restart: false,
        }
    }
}

/// `strata snapshot`.
pub async fn run(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| exit::UsageError(e.to_string()))?;
    let version = config
        .version(&args.version)
        .map_err(|e| exit::UsageError(e.to_string()))?
        .clone();
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;
    let job = match Job::prepare(&config.source, &version, &args.options).await? {
        Prepared::Done(state) => {
            println!(
                "snapshot of version {} already complete at {}:{} ({} rows); run with --restart to take a new one",
                version.name,
                state.position.file,
                state.position.pos,
                state.rows()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Prepared::Ready(job) => job,
    };
    let outcome = job.copy(&shutdown, args.progress).await?;
    Ok(ExitCode::from(outcome.report()))
}

/// `strata run --snapshot`, before the replicators start: prepares each version's
/// backfill (resuming one in progress; a finished one needs none), which records its
/// position and writes the checkpoint the replicator then starts from.
///
/// The copies then run beside the replicators ([`copy_beside`]): a row the copy writes
/// carries the recorded position as its version, so every change streamed since beats it,
/// and the sinks keep a newer delete from losing to an older copy even when both write the
/// same row at once (PostgreSQL with row locks, MongoDB by checking its copies again).
pub async fn prepare_copies(config: &Config, versions: &[String]) -> anyhow::Result<Vec<Box<Job>>> {
    let mut jobs = Vec::new();
    for name in versions {
        let version = config
            .version(name)
            .map_err(|e| exit::UsageError(e.to_string()))?
            .clone();
        match Job::prepare(&config.source, &version, &SnapshotOptions::default()).await? {
            Prepared::Done(_) => {
                tracing::info!(version = %name, "snapshot already complete; streaming only");
            }
            Prepared::Ready(job) => jobs.push(job),
        }
    }
    Ok(jobs)
}

/// Runs a prepared copy beside its version's replicator, with log lines for progress,
/// until it finishes or `stop` (the version's replicator stopped, or the process is
/// shutting down). Returns the exit code it calls for: 0 when it finished or was stopped
/// (the next run continues it); otherwise a failure, after cancelling `shutdown` so that
/// the replicators stop too and the process exits with the error.
pub async fn copy_beside(
    job: Box<Job>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> u8 {
    let version = job.version.name.clone();
    let code = match job.copy(&stop, ProgressMode::Log).await {
        Ok(outcome) => outcome.report(),
        Err(e) => {
            eprintln!("error: snapshot of version {version}: {e:#}");
            exit::FAILURE
        }
    };
    if code == 0 || stop.is_cancelled() {
        return 0;
    }
    tracing::error!(version = %version, "the snapshot failed: stopping every version");
    shutdown.cancel();
    code
}

/// The source connection settings of a version (its own TLS settings, its schemas).
pub fn source_config(
    source: &SourceSettings,
    version: &VersionConfig,
) -> anyhow::Result<SourceConfig> {
    let mut cfg = SourceConfig::new(source.url.expose());
    cfg.tls = match source.tls.mode {
        strata_config::TlsMode::Disabled => strata_mysql::TlsMode::Disabled,
        strata_config::TlsMode::Preferred => strata_mysql::TlsMode::Preferred,
        strata_config::TlsMode::Required => strata_mysql::TlsMode::Required,
        strata_config::TlsMode::VerifyCa => strata_mysql::TlsMode::VerifyCa,
        strata_config::TlsMode::VerifyFull => strata_mysql::TlsMode::VerifyIdentity,
    };
    cfg.tls_ca = source.tls.ca_file.clone();
    cfg.server_id = version.server_id;
    cfg.filter =
        TableFilter::parse(version.rules.schemas()).map_err(|e| exit::UsageError(e.to_string()))?;
    Ok(cfg)
}

/// The pipeline settings of a version.
pub fn apply_settings(version: &VersionConfig) -> ApplySettings {
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

/// A source error as an anyhow error whose exit code says whether a human must act.
pub fn source_error(e: SourceError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// What `prepare` found.
enum Prepared {
    /// The snapshot is complete already.
    Done(SnapshotState),
    Ready(Box<Job>),
}

/// A snapshot ready to copy: position recorded, tables checked, checkpoint in place.
pub struct Job {
    version: VersionConfig,
    reader: SnapshotReader,
    tables: Vec<Planned>,
    progress: Arc<Progress>,
    limits: Limits,
    chunk_rows: usize,
}

/// How a copy ended.
pub struct Outcome {
    version: String,
    state: SnapshotState,
    /// Rows this run made durable (the rest were durable before it started).
    copied: u64,
    stopped: Option<String>,
}

impl Outcome {
    /// Prints the summary; the exit code it calls for.
    fn report(&self) -> u8 {
        let position = format!("{}:{}", self.state.position.file, self.state.position.pos);
        match &self.stopped {
            None => {
                eprintln!(
                    "snapshot of version {} complete: {} rows in {} tables ({} copied by this run), at {position}; streaming continues from there",
                    self.version,
                    self.state.rows(),
                    self.state.tables.len(),
                    self.copied
                );
                0
            }
            Some(why) => {
                eprintln!(
                    "snapshot of version {} stopped ({why}) after {} rows ({} copied by this run); run the same command again to continue where it stopped",
                    self.version,
                    self.state.rows(),
                    self.copied
                );
                exit::FAILURE
            }
        }
    }
}

impl Job {
    /// The version it copies.
    pub fn version_name(&self) -> &str {
        &self.version.name
    }
}

impl Job {
    async fn prepare(
        source: &SourceSettings,
        version: &VersionConfig,
        options: &SnapshotOptions,
    ) -> anyhow::Result<Prepared> {
        let cfg = source_config(source, version)?;
        let mut reader = SnapshotReader::connect(&cfg).await.map_err(source_error)?;
        let path = version.data_dir().join("snapshot.json");
        let existing = if options.restart {
            None
        } else {
            state::load(&path)?
        };
        let (state, tables) = match existing {
            Some(state) => {
                if state.version != version.name {
                    return Err(exit::UsageError(format!(
                        "{} belongs to version {}, not {}; move it away or run with --restart",
                        path.display(),
                        state.version,
                        version.name
                    ))
                    .into());
                }
                if !options.tables.is_empty() {
                    let wanted = select_tables(version, &state_table_ids(&state), &options.tables)?;
                    if wanted.len() != state.tables.len() {
                        return Err(exit::UsageError(format!(
                            "a snapshot of other tables ({}) is in progress for version {}; run it to the end without --table, or start a new one with --restart",
                            state.tables.iter().map(|t| t.table.as_str()).collect::<Vec<_>>().join(", "),
                            version.name
                        ))
                        .into());
                    }
                }
                if state.done() {
                    ensure_checkpoint(version, &state).await?;
                    return Ok(Prepared::Done(state));
                }
                let ids = state_table_ids(&state);
                let mut state = state;
                let tables = plan_tables(&mut reader, version, &ids).await?;
                for (planned, progress) in tables.iter().zip(state.tables.iter_mut()) {
                    let key = key_names(planned);
                    if key != progress.key {
                        return Err(exit::UsageError(format!(
                            "table {} is now paged by ({}) but the snapshot in progress paged it by ({}); run with --restart",
                            planned.info.schema.id,
                            key.join(", "),
                            progress.key.join(", ")
                        ))
                        .into());
                    }
                    if planned.mode == Mode::Full && !progress.done {
                        // A full copy cannot resume mid-table: it starts over.
                        progress.rows = 0;
                    }
                }
                tracing::info!(
                    version = %version.name,
                    position = %state.position.to_pos(),
                    rows_done = state.rows(),
                    "resuming the snapshot in progress"
                );
                (state, tables)
            }
            None => {
                let all = reader
                    .list_tables(version.rules.schemas())
                    .await
                    .map_err(source_error)?;
                let ids = select_tables(version, &all, &options.tables)?;
                if ids.is_empty() {
                    return Err(exit::UsageError(format!(
                        "version {} replicates no table of schemas {:?}: nothing to snapshot",
                        version.name,
                        version.rules.schemas()
                    ))
                    .into());
                }
                let tables = plan_tables(&mut reader, version, &ids).await?;
                let start = reader.record_start(&ids).await.map_err(source_error)?;
                let progress = tables
                    .iter()
                    .map(|t| TableProgress {
                        table: t.info.schema.id.to_string(),
                        key: key_names(t),
                        last_key: None,
                        rows: 0,
                        estimated_rows: t.info.estimated_rows,
                        done: false,
                    })
                    .collect();
                let state = SnapshotState::new(
                    &version.name,
                    &start.position,
                    start.gtid.as_ref().map(ToString::to_string),
                    progress,
                );
                state::save(&path, &state)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(version = %version.name, position = %start.position, tables = tables.len(), "snapshot position recorded");
                (state, tables)
            }
        };
        ensure_checkpoint(version, &state).await?;
        Ok(Prepared::Ready(Box::new(Job {
            version: version.clone(),
            reader,
            tables,
            progress: Progress::new(state, path),
            limits: Limits {
                max_rows_per_sec: options.max_rows_per_sec.filter(|r| *r > 0),
                max_threads_running: Some(options.max_threads_running).filter(|t| *t > 0),
            },
            chunk_rows: usize::try_from(options.chunk_rows).unwrap_or(5_000),
        })))
    }

    /// Copies every table not yet done through the version's pipeline.
    async fn copy(
        self,
        shutdown: &CancellationToken,
        mode: ProgressMode,
    ) -> anyhow::Result<Outcome> {
        let name = self.version.name.clone();
        let Some(sinks) = crate::targets::connect_all(
            &self.version,
            crate::targets::Writer::BesideReplicator,
            shutdown,
            &|_, _| {},
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot use target {e}"))?
        else {
            return Ok(Outcome {
                version: name,
                state: self.progress.snapshot(),
                copied: 0,
                stopped: Some("interrupted".into()),
            });
        };
        let state = self.progress.snapshot();
        let rows_before = state.rows();
        let position = state.position.to_pos();
        let events = ChunkEvents {
            file: Arc::from(position.file.as_str()),
            order: binlog_order(position.file_seq(), position.pos, 0),
            position,
            ts_ms: state.started_at_ms,
        };
        let pipeline = Pipeline::new(
            sinks,
            Arc::new(ChunkStore {
                progress: self.progress.clone(),
            }),
            apply_settings(&self.version),
        );
        let mut router = Router::new(self.version.rules.clone());
        let (tx, rx) = mpsc::channel(self.chunk_rows.saturating_mul(2).max(64));
        let copy_stop = shutdown.child_token();
        let copier = Copier {
            reader: self.reader,
            tables: self.tables,
            progress: self.progress.clone(),
            events,
            tx,
            throttle: Throttle::new(self.limits),
            chunk_rows: self.chunk_rows,
        };
        let copying = tokio::spawn(copier.run(copy_stop.clone()));
        let display_stop = CancellationToken::new();
        let display = tokio::spawn(display::report(
            self.progress.clone(),
            mode,
            display_stop.clone(),
        ));

        let applied = pipeline.run(Feed(rx), &mut router, shutdown).await;
        // The pipeline stopped taking events: stop reading (a no-op once the copy is done).
        copy_stop.cancel();
        let copied = copying.await;
        display_stop.cancel();
        let _ = display.await;
        let state = self.progress.snapshot();

        let summary = applied.map_err(|e| anyhow::anyhow!("snapshot of version {name}: {e}"))?;
        tracing::debug!(
            transactions = summary.transactions,
            "snapshot pipeline finished"
        );
        let stopped = match copied {
            Ok(Ok(())) if state.done() => None,
            Ok(Ok(())) => Some("not every chunk became durable".to_owned()),
            Ok(Err(Stopped::Interrupted)) => Some("interrupted".to_owned()),
            Ok(Err(Stopped::Source(e))) => {
                return Err(anyhow::Error::new(e).context(format!("snapshot of version {name}")))
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "snapshot of version {name}: the copy task crashed: {e}"
                ))
            }
        };
        Ok(Outcome {
            version: name,
            copied: state.rows().saturating_sub(rows_before),
            state,
            stopped,
        })
    }
}

/// Makes the version's streaming checkpoint be at or before the snapshot's position: when
/// it has none, one is written at the position; one that exists (before or after it) is
/// kept, as guarded writes make any overlap harmless.
async fn ensure_checkpoint(version: &VersionConfig, state: &SnapshotState) -> anyhow::Result<()> {
    let store = FileCheckpointStore::new(version.checkpoint_path());
    let position = state.position.to_pos();
    match store
        .load()
        .await
        .context("cannot read the version's checkpoint")?
    {
        Some(cp) => {
            tracing::info!(checkpoint = %cp.position, snapshot = %position, "the version already has a checkpoint; streaming resumes from it");
        }
        None => {
            let now = state::now_ms();
            let checkpoint = Checkpoint {
                position: position.clone(),
                gtid_set: state
                    .gtid
                    .as_deref()
                    .and_then(|g| g.parse::<GtidSet>().ok()),
                commit_ts_ms: state.started_at_ms,
                written_at_ms: now,
            };
            store
                .save(&checkpoint)
                .await
                .context("cannot write the version's checkpoint")?;
            tracing::info!(checkpoint = %position, "checkpoint written at the snapshot position: strata run streams every change since");
        }
    }
    Ok(())
}

fn state_table_ids(state: &SnapshotState) -> Vec<TableId> {
    state
        .tables
        .iter()
        .filter_map(|t| t.table.split_once('.').map(|(s, n)| TableId::new(s, n)))
        .collect()
}

fn key_names(planned: &Planned) -> Vec<String> {
    planned
        .info
        .chunk_key
        .columns()
        .iter()
        .filter(|_| planned.mode == Mode::Paged)
        .map(|&i| planned.info.schema.columns[i].name.clone())
        .collect()
}

/// The tables among `all` the version replicates, narrowed to `only` (`table` or
/// `schema.table`) when given; a name in `only` that matches nothing is an error.
pub fn select_tables(
    version: &VersionConfig,
    all: &[TableId],
    only: &[String],
) -> anyhow::Result<Vec<TableId>> {
    let wanted: Vec<TableId> = all
        .iter()
        .filter(|t| version.rules.wants(&t.schema, &t.table))
        .cloned()
        .collect();
    if only.is_empty() {
        return Ok(wanted);
    }
    let mut out = Vec::new();
    for name in only {
        let matches: Vec<&TableId> = wanted
            .iter()
            .filter(|t| t.table == *name || t.to_string() == *name)
            .collect();
        if matches.is_empty() {
            return Err(exit::UsageError(format!(
                "--table {name}: version {} replicates no such table (its tables: {})",
                version.name,
                wanted
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        for m in matches {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
    }
    Ok(out)
}

/// Describes each table and decides how to read it; refuses, before anything is written,
/// a table that cannot be routed or read.
async fn plan_tables(
    reader: &mut SnapshotReader,
    version: &VersionConfig,
    ids: &[TableId],
) -> anyhow::Result<Vec<Planned>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut problems = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let Some(info) = reader.table_info(id).await.map_err(source_error)? else {
            problems.push(format!("table {id} does not exist (any more)"));
            continue;
        };
        if let Err(e) = Route::build(&version.rules, &info.schema) {
            problems.push(if info.chunk_key.columns().is_empty() {
                format!(
                    "table {id} has no primary key and no unique NOT NULL key, so strata can neither page through it nor identify its rows in targets: {e} (naming its key also opts it into a full-table copy)"
                )
            } else {
                e.to_string()
            });
            continue;
        }
        let mode = if pages_by_key(&info) {
            Mode::Paged
        } else {
            // Only reachable with a configured key (else the route failed above).
            Mode::Full
        };
        out.push(Planned { info, index, mode });
    }
    if !problems.is_empty() {
        return Err(exit::UsageError(problems.join("\n")).into());
    }
    Ok(out)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
fn spawn_signal_handler(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight writes, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing in-flight writes, then stopping"),
        }
        shutdown.cancel();
    });
    Ok(())
}
