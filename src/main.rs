//! `strata`: MySQL/MariaDB binlog change-data-capture, one isolated replicator per
//! application version. This file is wiring only: parse the command line, set up logging
//! and TLS, run the command, map its outcome to an exit code.

#[cfg(test)]
mod deploy_check;
mod exit;
mod heartbeat;
mod http;
mod inspect;
mod instance_file;
mod lag;
mod lag_view;
mod monitor;
mod replicator;
mod report;
mod run;
mod snapshot;
mod status;
mod targets;
mod telemetry;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// strata keeps MongoDB, Redis, Elasticsearch/OpenSearch and PostgreSQL in step with a
/// MySQL or MariaDB source by streaming its binlog, one isolated replicator per application
/// version.
///
/// Exit codes: 0 success; 1 runtime failure (or differences found by `verify`);
/// 2 usage, configuration or server-setup error.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about)]
struct Cli {
    /// Log filter, e.g. `info`, `strata=debug` (also from RUST_LOG).
    #[arg(
        long,
        global = true,
        env = "STRATA_LOG",
        default_value = "info,tokio_postgres=warn"
    )]
    log: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "STRATA_LOG_JSON")]
    log_json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Inspect(inspect::InspectArgs),
    Run(run::RunArgs),
    Status(status::StatusArgs),
    Lag(lag_view::LagArgs),
    Snapshot(snapshot::SnapshotArgs),
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0, usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    init_logging(&cli.log, cli.log_json);
    // One TLS stack for every client: rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Inspect(args) => inspect::run(args).await,
            Command::Run(args) => run::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Lag(args) => lag_view::run(args).await,
            Command::Snapshot(args) => snapshot::run(args).await,
            Command::Verify(args) => verify::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
