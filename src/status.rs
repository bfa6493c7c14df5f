//! `strata status`: one table of every version in the config.
//!
//! A running replicator is asked over its `/status` endpoint (found through
//! `<data_dir>/<version>/replicator.json`, or the configured `http` address). A version that
//! is not running is described from its files: the checkpoint, and how its last run ended;
//! its lag is then measured against the source's current binlog end, read once.

use crate::instance_file::{self, Instance};
use crate::lag::{self, LagInputs, ServerEnd};
use crate::monitor::now_ms;
use crate::replicator::Replicator;
use crate::report::{
    self, CheckpointStatus, LagStatus, Positions, SourceStatus, State, VersionStatus,
};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use strata_config::{Config, SourceSettings, VersionConfig};
use strata_core::CheckpointStore;
use strata_pipeline::{FileCheckpointStore, Progress};

/// Show every version's state (running, failing, stopped, failed), position, checkpoint,
/// lag and last error.
///
/// Running replicators are asked over their /status endpoint; stopped ones are described
/// from their checkpoint files, with their lag measured against the source's current end.
#[derive(Debug, Args)]
#[command(after_long_help = "\
States:
  starting  connecting to its targets and the source
  running   streaming, every target reachable
  failing   running but a target or the source is down and being retried, or the
            replicator does not answer
  stopping  applying what is in flight before it stops
  stopped   not running; stopped cleanly (or never started)
  failed    not running; its last run ended with an error (see LAST ERROR)

Examples:
  strata status --config examples/jobfirst.toml
  strata status --config examples/jobfirst.toml --json | jq '.[] | {version, state, lag}'")]
pub struct StatusArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "STRATA_CONFIG", value_name = "FILE")]
    config: PathBuf,

    /// Show only this version.
    #[arg(long, value_name = "NAME")]
    version: Option<String>,

    /// Print the statuses as a JSON array (the /status documents) instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let versions: Vec<VersionConfig> = match &args.version {
        Some(name) => vec![config
            .version(name)
            .map_err(|e| crate::exit::UsageError(e.to_string()))?
            .clone()],
        None => config.versions.values().cloned().collect(),
    };
    let statuses = collect(&config.source, &versions).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        print!("{}", table(&statuses));
    }
    Ok(ExitCode::SUCCESS)
}

/// The status of each version, in the order given.
pub async fn collect(
    source: &SourceSettings,
    versions: &[VersionConfig],
) -> anyhow::Result<Vec<VersionStatus>> {
    let client = report::client()?;
    let mut answers = Vec::with_capacity(versions.len());
    for version in versions {
        answers.push(ask_running(&client, version).await);
    }
    // One look at the source's end serves every stopped version.
    let needs_source = answers.iter().any(|a| matches!(a, Answer::NotRunning(_)));
    let server = match (needs_source, versions.first()) {
        (true, Some(v)) => server_end(source, v).await,
        _ => None,
    };
    let mut statuses = Vec::with_capacity(versions.len());
    for (version, answer) in versions.iter().zip(answers) {
        statuses.push(match answer {
            Answer::Live(status) => *status,
            Answer::NotRunning(instance) => from_files(version, instance, server.as_ref()).await,
        });
    }
    Ok(statuses)
}

enum Answer {
    Live(Box<VersionStatus>),
    /// Not reachable; what its file says about its last run.
    NotRunning(Option<Instance>),
}

async fn ask_running(client: &reqwest::Client, version: &VersionConfig) -> Answer {
    let instance = instance_file::read(&instance_file::path(version))
        .ok()
        .flatten();
    let mut last_failure = None;
    if let Some(inst) = instance.as_ref().filter(|i| i.stopped_at_ms.is_none()) {
        match report::fetch(client, inst.http).await {
            Ok(status) if status.version == version.name => return Answer::Live(Box::new(status)),
            Ok(other) => {
                last_failure = Some(format!(
                    "http://{}/status answers for version {}, not {}",
                    inst.http, other.version, version.name
                ))
            }
            Err(e) => last_failure = Some(e.to_string()),
        }
    }
    // A replicator started from another directory still answers on a fixed address.
    if version.http.port() != 0 && instance.as_ref().is_none_or(|i| i.http != version.http) {
        if let Ok(status) = report::fetch(client, version.http).await {
            if status.version == version.name {
                return Answer::Live(Box::new(status));
            }
        }
    }
    match (instance, last_failure) {
        (Some(inst), Some(failure)) if instance_file::process_alive(inst.pid) => {
            Answer::Live(Box::new(unresponsive(version, &inst, failure)))
        }
        (Some(mut inst), Some(_)) => {
            // Recorded as running, but the process is gone: killed or crashed.
            inst.error.get_or_insert_with(|| {
                format!(
                    "the replicator (pid {}) ended without stopping cleanly (killed or crashed); it resumes from its checkpoint when started again",
                    inst.pid
                )
            });
            Answer::NotRunning(Some(inst))
        }
        (instance, _) => Answer::NotRunning(instance),
    }
}

/// A replicator whose process runs but does not answer.
fn unresponsive(version: &VersionConfig, inst: &Instance, failure: String) -> VersionStatus {
    VersionStatus {
        version: version.name.clone(),
        state: State::Failing,
        phase: "unknown".into(),
        ready: false,
        not_ready: vec![failure.clone()],
        pid: Some(inst.pid),
        started_at_ms: Some(inst.started_at_ms),
        at_ms: now_ms(),
        position: Positions::default(),
        checkpoint: None,
        lag: unknown_lag(version),
        source: SourceStatus::default(),
        sinks: Vec::new(),
        last_error: Some(format!(
            "the replicator (pid {}) runs but does not answer: {failure}",
            inst.pid
        )),
    }
}

fn unknown_lag(version: &VersionConfig) -> LagStatus {
    LagStatus {
        seconds: None,
        bytes: None,
        caught_up: false,
        basis: lag::LagBasis::Unknown.as_str().into(),
        threshold_seconds: version.apply.lag_alert.as_secs_f64(),
        over_threshold: false,
    }
}

/// The source's binlog end, or `None` when it cannot be read (lag then shows as unknown).
async fn server_end(source: &SourceSettings, any_version: &VersionConfig) -> Option<ServerEnd> {
    let probe = Replicator {
        version: any_version.clone(),
        source: source.clone(),
        from: None,
    }
    .position_probe()
    .ok()?;
    match tokio::time::timeout(
        Duration::from_secs(5),
        strata_mysql::current_position(&probe),
    )
    .await
    {
        Ok(Ok(info)) => Some(ServerEnd {
            end: info.end,
            files: info.binlogs.into_iter().map(|f| (f.name, f.size)).collect(),
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the source's binlog end; lag of stopped versions is unknown");
            None
        }
        Err(_) => {
            tracing::warn!(
                "the source did not answer within 5 s; lag of stopped versions is unknown"
            );
            None
        }
    }
}

/// A version that is not running, described from its checkpoint and replicator files.
async fn from_files(
    version: &VersionConfig,
    instance: Option<Instance>,
    server: Option<&ServerEnd>,
) -> VersionStatus {
    let store = FileCheckpointStore::new(version.checkpoint_path().to_path_buf());
    let (checkpoint, checkpoint_error) = match store.load().await {
        Ok(cp) => (cp, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let progress = Progress::default();
    let reading = lag::compute(LagInputs {
        now_ms: now_ms(),
        progress: &progress,
        checkpoint: checkpoint.as_ref(),
        server,
        last_caught_up_ms: None,
    });
    let threshold = version.apply.lag_alert.as_secs_f64();
    let error = instance
        .as_ref()
        .and_then(|i| i.error.clone())
        .or(checkpoint_error);
    let state = if error.is_some() {
        State::Failed
    } else {
        State::Stopped
    };
    VersionStatus {
        version: version.name.clone(),
        state,
        phase: state.as_str().into(),
        ready: false,
        not_ready: vec!["not running".into()],
        pid: None,
        started_at_ms: instance.as_ref().map(|i| i.started_at_ms),
        at_ms: now_ms(),
        position: Positions {
            read: None,
            applied: reading.applied.as_ref().map(|p| p.to_string()),
            server_end: reading.server_end.as_ref().map(|p| p.to_string()),
            heartbeat: None,
        },
        checkpoint: checkpoint.map(|cp| CheckpointStatus {
            position: cp.position.to_string(),
            gtid_set: cp.gtid_set.as_ref().map(|g| g.to_string()),
            commit_ts_ms: cp.commit_ts_ms,
            written_at_ms: cp.written_at_ms,
            age_seconds: reading.checkpoint_age_seconds,
        }),
        lag: LagStatus {
            seconds: reading.seconds,
            bytes: reading.bytes,
            caught_up: reading.caught_up,
            basis: reading.basis.as_str().into(),
            threshold_seconds: threshold,
            over_threshold: reading.seconds.is_some_and(|s| s > threshold),
        },
        source: SourceStatus::default(),
        sinks: Vec::new(),
        last_error: error,
    }
}

/// The table `strata status` prints.
pub fn table(statuses: &[VersionStatus]) -> String {
    let header = [
        "VERSION",
        "STATE",
        "POSITION",
        "CHECKPOINT",
        "LAG",
        "BEHIND",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 7]> = statuses
        .iter()
        .map(|s| {
            [
                s.version.clone(),
                s.state.as_str().to_owned(),
                s.position.applied.clone().unwrap_or_else(|| "-".into()),
                s.checkpoint
                    .as_ref()
                    .map_or_else(|| "-".into(), |c| c.position.clone()),
                format_lag(&s.lag),
                s.lag.bytes.map_or_else(|| "-".into(), format_bytes),
                s.last_error
                    .as_deref()
                    .map_or_else(|| "-".into(), |e| shorten(e, 100)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// Lag for people: `0s`, `12s`, `5m 03s`, `2h 05m`, `?` when unknown; `!` marks a lag over
/// the alert threshold.
pub fn format_lag(lag: &LagStatus) -> String {
    let Some(seconds) = lag.seconds else {
        return "?".into();
    };
    let text = format_seconds(seconds);
    if lag.over_threshold {
        format!("{text} !")
    } else {
        text
    }
}

/// Seconds for people: `0s`, `1.5s`, `12s`, `5m 03s`, `2h 05m`, `3d 04h`.
pub fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 10.0 && seconds.fract() != 0.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m {:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// Bytes for people: `0 B`, `512 B`, `12.3 KiB`, `4.0 MiB`, `1.2 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(format_seconds(0.0), "0s");
        assert_eq!(format_seconds(1.5), "1.5s");
        assert_eq!(format_seconds(42.0), "42s");
        assert_eq!(format_seconds(303.0), "5m 03s");
        assert_eq!(format_seconds(7_500.0), "2h 05m");
        assert_eq!(format_seconds(f64::NAN), "?");
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(12_595), "12.3 KiB");
        assert_eq!(format_bytes(4 << 20), "4.0 MiB");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let lag = LagStatus {
            seconds: Some(400.0),
            bytes: Some(2048),
            caught_up: false,
            basis: "oldest_unapplied".into(),
            threshold_seconds: 300.0,
            over_threshold: true,
        };
        let status = VersionStatus {
            version: "future".into(),
            state: State::Failing,
            phase: "streaming".into(),
            ready: false,
            not_ready: vec![],
            pid: Some(1),
            started_at_ms: None,
            at_ms: 0,
            position: Positions {
                read: None,
                applied: Some("binlog.000001:4".into()),
                server_end: None,
                heartbeat: None,
            },
            checkpoint: None,
            lag,
            source: SourceStatus::default(),
            sinks: vec![],
            last_error: Some("target redis: connection refused".into()),
        };
        let text = table(&[status]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("VERSION  STATE    POSITION"), "{text}");
        assert!(
            lines[1].starts_with("future   failing  binlog.000001:4"),
            "{text}"
        );
        assert!(lines[1].contains("6m 40s !"), "{text}");
        assert!(lines[1].contains("2.0 KiB"), "{text}");
        assert!(
            lines[1].ends_with("target redis: connection refused"),
            "{text}"
        );
    }
}
