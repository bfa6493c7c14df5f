//! `strata run`: one version's replicator, or every version of the file in one process.

use crate::exit;
use crate::instance_file::{self, Instance};
use crate::monitor::{now_ms, Monitor};
use crate::replicator::Replicator;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
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
///
/// Each version serves /metrics, /health/live, /health/ready and /status on its `http`
/// address (loopback with an ephemeral port by default; `strata status` and `strata lag`
/// find it through `<data_dir>/<version>/replicator.json`).
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
    #[arg(
        long,
        env = "STRATA_VERSION",
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    version: Option<String>,

    /// Run every version of the config in this process, each isolated from the others.
    #[arg(long)]
    all: bool,

    /// Where a FIRST start reads from: oldest, current, FILE:POS, a MySQL GTID set or a
    /// MariaDB GTID position. Refused when the version already has a checkpoint.
    #[arg(long, value_name = "POSITION")]
    from: Option<String>,

    /// Also backfill the rows the tables already hold (as `strata snapshot` does, resuming
    /// one in progress), while streaming. Streaming starts at once from the snapshot's
    /// recorded position (or the checkpoint), so lag does not build up during a long copy;
    /// every change streamed beats the copy's older rows, whichever lands first. A failed
    /// copy stops the process with its error; an interrupted one continues next time.
    #[arg(long, conflicts_with = "from")]
    snapshot: bool,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config =
        strata_config::Config::load(&args.config).map_err(|e| exit::UsageError(e.to_string()))?;
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
    // Stops the endpoints and monitors once every version has returned.
    let endpoints = CancellationToken::new();
    let _stop_endpoints = endpoints.clone().drop_guard();

    // Bind every version's endpoint first: a taken address is a configuration error, and
    // nothing has started yet when it is reported.
    let mut listeners = Vec::new();
    for name in &names {
        let version = config
            .version(name)
            .map_err(|e| exit::UsageError(e.to_string()))?
            .clone();
        let listener = tokio::net::TcpListener::bind(version.http)
            .await
            .map_err(|e| {
                exit::UsageError(format!(
                    "version {name}: cannot listen on {} for /metrics and /status ({e}); set `versions.{name}.http` to a free address, or port 0 for any",
                    version.http
                ))
            })?;
        listeners.push((version, listener));
    }

    // Before any replicator starts: preparing a snapshot writes the checkpoint it starts
    // from. The copies themselves run beside the replicators (spawned below).
    let copies = if args.snapshot {
        crate::snapshot::prepare_copies(&config, &names).await?
    } else {
        Vec::new()
    };

    let mut tasks = Vec::new();
    let mut copy_stops = Vec::new();
    for (version, listener) in listeners {
        let name = version.name.clone();
        let replicator = Replicator {
            version,
            source: config.source.clone(),
            from: from.clone(),
        };
        let monitor = Arc::new(Monitor::new(&replicator.version).await);
        let addr = listener
            .local_addr()
            .context("reading the endpoint's address")?;
        let instance_path = instance_file::path(&replicator.version);
        let mut instance = Instance {
            pid: std::process::id(),
            http: local_reach(addr),
            started_at_ms: now_ms(),
            stopped_at_ms: None,
            error: None,
        };
        if let Err(e) = instance_file::write(&instance_path, &instance) {
            // Status falls back to the configured address; not worth refusing to run for.
            tracing::warn!(version = %name, file = %instance_path.display(), error = %e, "cannot record the endpoint's address; `strata status` may not find this replicator");
        }
        crate::http::serve(listener, monitor.clone(), endpoints.clone());
        tracing::info!(version = %name, address = %addr, "serving /metrics, /health/live, /health/ready and /status");
        let probe = replicator.position_probe().ok();
        monitor.spawn_tasks(probe, shutdown.clone(), endpoints.clone());

        let span = tracing::info_span!("version", name = %name);
        let token = shutdown.child_token();
        // The version's copy (with --snapshot) stops when its replicator stops.
        let copy_stop = token.child_token();
        copy_stops.push((name.clone(), copy_stop.clone()));
        // Each version is its own task: one failing or stalling does not stop the others.
        let task = async move {
            let result = replicator.run(token, monitor.clone()).await;
            copy_stop.cancel();
            let error = result.as_ref().err().map(|e| e.to_string());
            monitor.finished(error.as_deref());
            instance.stopped_at_ms = Some(now_ms());
            instance.error = error;
            if let Err(e) = instance_file::write(&instance_path, &instance) {
                tracing::warn!(file = %instance_path.display(), error = %e, "cannot record how the version stopped");
            }
            result
        };
        tasks.push((name, tokio::spawn(task.instrument(span))));
    }

    let copies: Vec<_> = copies
        .into_iter()
        .map(|job| {
            let stop = copy_stops
                .iter()
                .find(|(name, _)| name == job.version_name())
                .map_or_else(|| shutdown.child_token(), |(_, stop)| stop.clone());
            tokio::spawn(crate::snapshot::copy_beside(job, stop, shutdown.clone()))
        })
        .collect();

    let mut code = 0u8;
    for copy in copies {
        match copy.await {
            Ok(c) => code = code.max(c),
            Err(join) => {
                eprintln!("error: a snapshot crashed: {join}");
                shutdown.cancel();
                code = code.max(exit::FAILURE);
            }
        }
    }
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

/// How a client on this machine reaches `addr`: a listener on every interface (`0.0.0.0`,
/// `[::]`) answers on loopback, which is what `strata status` and `strata lag` connect to.
fn local_reach(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
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
