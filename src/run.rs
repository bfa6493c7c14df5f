//! `strata run`: one version's replicator, or every version of the file in one process.

use crate::exit;
use crate::replicator::Replicator;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_core::{ErrorKind, StartFrom};
use strata_pipeline::CancellationToken;
use tracing::Instrument as _;

/// Replicate one application version (or all of them) from the binlog into its targets.
///
/// Each version reads only its own schemas and writes only its own namespaces, with its own
/// source connection (its `server_id`), checkpoint and queues. A version resumes from its
/// checkpoint; its very first start reads from `start` in the config (default: the current
/// end of the binlog; backfill existing rows with `strata snapshot`) or from `--from`.
///
/// A target that is down is retried with backoff and the version catches up when it
/// returns; a lost source connection is re-established from the last checkpoint. A write
/// a target refuses for good stops that version with a message naming the table, key,
/// position and reason, and its checkpoint stays before it.
///
/// SIGINT/SIGTERM: stop reading, apply what is in flight, save the checkpoint, exit 0.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  strata run --config examples/jobfirst.toml --version future
  strata run --config examples/jobfirst.toml --all
  strata run --config prod.toml --version dao --from binlog.000042:4    # first start only
  STRATA_SOURCE__URL=mysql://strata@db:3306 strata run --config prod.toml --version dao

Exit codes: 0 stopped cleanly; 1 a version failed at run time; 2 configuration or
source-setup error (nothing was written).")]
pub struct RunArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "STRATA_CONFIG", value_name = "FILE")]
    config: PathBuf,

    /// The version to run (a `[versions.NAME]` section of the config).
    #[arg(long, env = "STRATA_VERSION", value_name = "NAME", required_unless_present = "all", conflicts_with = "all")]
    version: Option<String>,

    /// Run every version of the config in this process, each isolated from the others.
    #[arg(long)]
    all: bool,

    /// Where a FIRST start reads from: oldest, current, FILE:POS, a MySQL GTID set or a
    /// MariaDB GTID position. Refused when the version already has a checkpoint.
    #[arg(long, value_name = "POSITION")]
    from: Option<String>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = strata_config::Config::load(&args.config)
        .map_err(|e| exit::UsageError(e.to_string()))?;
    let from = match &args.from {
        Some(text) => Some(
            text.parse::<StartFrom>()
                .map_err(|e| exit::UsageError(format!("--from: {e}")))?,
        ),
        None => None,
    };
    let names: Vec<String> = match &args.version {
        Some(name) => {
            config
                .version(name)
                .map_err(|e| exit::UsageError(e.to_string()))?;
            vec![name.clone()]
        }
        None => config.versions.keys().cloned().collect(),
    };

    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone()).context("cannot install signal handlers")?;

    let mut tasks = Vec::new();
    for name in &names {
        let version = config
            .version(name)
            .map_err(|e| exit::UsageError(e.to_string()))?
            .clone();
        let replicator = Replicator {
            version,
            source: config.source.clone(),
            from: from.clone(),
        };
        let span = tracing::info_span!("version", name = %name);
        // Each version is its own task: one failing or stalling does not stop the others.
        tasks.push((
            name.clone(),
            tokio::spawn(replicator.run(shutdown.child_token(), None).instrument(span)),
        ));
    }

    let mut code = 0u8;
    for (name, task) in tasks {
        match task.await {
            Ok(Ok(summary)) => {
                if let Some(s) = summary {
                    tracing::info!(version = %name, transactions = s.transactions, checkpoint = ?s.checkpoint.map(|c| c.position.to_string()), "stopped");
                }
            }
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                let c = if e.kind == ErrorKind::Config {
                    exit::USAGE
                } else {
                    exit::FAILURE
                };
                code = code.max(c);
            }
            Err(join) => {
                eprintln!("error: version {name} crashed: {join}");
                code = code.max(exit::FAILURE);
            }
        }
    }
    Ok(ExitCode::from(code))
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
