//! `strata inspect`: print a source's decoded row changes as JSON lines.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use strata_core::{RowChange, SourceEvent, Value};
use strata_mysql::{BinlogSource, SourceConfig, SourceError, StartFrom, TableFilter, TlsMode};

const EXAMPLES: &str = "\
Output: one JSON object per row change, in a Debezium-like envelope:
  {\"op\":\"c\",\"source\":{\"schema\":\"shop\",\"table\":\"orders\",\"file\":\"binlog.000042\",
   \"pos\":1337,\"gtid\":\"0-1-12\",\"ts_ms\":1700000000000},\"before\":null,
   \"after\":{\"id\":7,\"total\":\"19.90\"},\"key\":{\"id\":7}}
op is c (insert), u (update) or d (delete); pos is the offset of the binlog event that
carried the change. Columns appear in table order. DECIMAL is a string (exact), binary
strings are base64, TIMESTAMP is UTC with a Z, DATETIME has no zone, JSON columns are
JSON. key holds the primary-key columns (null for tables without one).

Examples:
  # Everything still in the binlog, then stop at the server's current end:
  strata inspect --source mysql://strata:secret@db:3306 --from oldest

  # Follow new changes of two tables live, like tail -f:
  strata inspect --source mysql://strata:secret@db:3306 --include shop.orders \\
      --include shop.customers --follow

  # Replay from a position strata (or SHOW BINARY LOG STATUS) printed, 10 changes:
  strata inspect --source mysql://strata:secret@db:3306 --from binlog.000042:1337 --limit 10

  # From a GTID set (MySQL) or a GTID position (MariaDB):
  strata inspect --source mysql://strata:secret@db:3306 --from 3E11FA47-71CA-11E1-9E33-C80AA9429562:1-77
  strata inspect --source mysql://strata:secret@db:3306 --from 0-1-120

  # Pipe into jq: the orders whose total changed
  strata inspect --source \"$SRC\" --include shop.orders --follow \\
      | jq 'select(.op==\"u\" and .before.total != .after.total)'

The source user needs REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR)
and SELECT; the server needs binlog_format=ROW, binlog_row_image=FULL and
binlog_row_metadata=FULL. strata checks all of this first and prints one line per
problem with the statement that fixes it (exit code 2).";

/// Print decoded row changes of a MySQL/MariaDB binlog as JSON lines.
///
/// Connects as a replica, checks the server's settings and the user's privileges, then
/// prints one JSON object per row change. Without --follow it stops at the server's current
/// end. Nothing is written anywhere: this is the tool to see what strata sees.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct InspectArgs {
    /// The source: mysql://USER:PASSWORD@HOST:PORT.
    #[arg(
        long,
        value_name = "URL",
        env = "STRATA_SOURCE_URL",
        hide_env_values = true
    )]
    source: String,

    /// Where to start: oldest (the oldest binlog the server has), current (only new
    /// changes), FILE:POS (e.g. binlog.000042:1337, a commit position), a MySQL GTID set
    /// (uuid:1-100) or a MariaDB GTID position (0-1-100). Default: oldest, or current with
    /// --follow.
    #[arg(long, value_name = "oldest|current|FILE:POS|GTID")]
    from: Option<String>,

    /// Only this schema or table; `*` and `?` are wildcards; repeat for more. Default:
    /// every table outside mysql, sys, information_schema and performance_schema.
    #[arg(long = "include", value_name = "SCHEMA[.TABLE]")]
    include: Vec<String>,

    /// Stop after N row changes.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

    /// Keep waiting for new changes instead of stopping at the server's current end.
    #[arg(long)]
    follow: bool,

    /// Connection encryption: disabled, preferred, required, verify-ca, verify-identity.
    #[arg(long, value_name = "MODE", default_value = "preferred")]
    tls: String,

    /// CA certificate (PEM) for --tls verify-ca / verify-identity.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// The replica server_id to register with; must differ from every other replica of the
    /// source. Default: derived from this process id (1000000 + pid).
    #[arg(long, value_name = "ID")]
    server_id: Option<u32>,

    /// Seconds between server heartbeats while idle; the connection counts as lost after
    /// three missed heartbeats.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    heartbeat: u64,
}

/// Runs `strata inspect`.
pub async fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(&args)?;
    let mut source = match BinlogSource::start(cfg).await {
        Ok(source) => source,
        Err(SourceError::Preflight(failures)) => {
            for failure in &failures {
                eprintln!("error: {failure}");
            }
            return Ok(ExitCode::from(crate::exit::USAGE));
        }
        Err(e) => return Err(e).context("cannot start streaming from the source"),
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0_u64;
    while let Some(item) = source.next().await {
        match item.context("the binlog stream failed")? {
            SourceEvent::Change(change) => {
                let line = envelope(&change);
                if !write_line(&mut out, &line)? {
                    return Ok(ExitCode::SUCCESS);
                }
                printed += 1;
                if args.limit.is_some_and(|limit| printed >= limit) {
                    break;
                }
            }
            SourceEvent::Commit(_) | SourceEvent::Idle { .. } => {
                if !flush(&mut out)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            SourceEvent::Ddl {
                schema, position, ..
            } => tracing::info!(%schema, %position, "DDL statement"),
            SourceEvent::Begin { .. } => {}
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

fn config(args: &InspectArgs) -> anyhow::Result<SourceConfig> {
    let mut cfg = SourceConfig::new(args.source.clone());
    cfg.start = match &args.from {
        Some(from) => from.parse::<StartFrom>().map_err(SourceError::from)?,
        None if args.follow => StartFrom::Current,
        None => StartFrom::Oldest,
    };
    cfg.filter = TableFilter::parse(&args.include)?;
    cfg.tls = args.tls.parse::<TlsMode>()?;
    cfg.tls_ca = args.tls_ca.clone();
    cfg.server_id = args
        .server_id
        .unwrap_or(1_000_000 + std::process::id() % 1_000_000);
    if args.heartbeat == 0 {
        return Err(crate::exit::UsageError("--heartbeat must be at least 1 second".into()).into());
    }
    cfg.heartbeat = Duration::from_secs(args.heartbeat);
    cfg.read_timeout = cfg.heartbeat * 3;
    cfg.stop_at_end = !args.follow;
    cfg.validate()?;
    Ok(cfg)
}

/// Writes one line; false when the reader of stdout went away (e.g. `| head`).
fn write_line(out: &mut impl std::io::Write, line: &str) -> anyhow::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn flush(out: &mut impl std::io::Write) -> anyhow::Result<bool> {
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// The Debezium-like JSON line of a change. Written by hand so that columns keep table
/// order and JSON columns keep their exact numbers.
pub fn envelope(change: &RowChange) -> String {
    let table = &change.table;
    let mut s = String::with_capacity(256);
    s.push_str("{\"op\":");
    push_json_str(&mut s, change.op.letter());
    s.push_str(",\"source\":{\"schema\":");
    push_json_str(&mut s, &table.id.schema);
    s.push_str(",\"table\":");
    push_json_str(&mut s, &table.id.table);
    s.push_str(",\"file\":");
    push_json_str(&mut s, &change.file);
    s.push_str(&format!(",\"pos\":{},\"gtid\":", change.event_pos));
    match &change.gtid {
        Some(g) => push_json_str(&mut s, g),
        None => s.push_str("null"),
    }
    s.push_str(&format!(",\"ts_ms\":{}}}", change.ts_ms));
    s.push_str(",\"before\":");
    push_image(&mut s, change, change.before.as_deref(), None);
    s.push_str(",\"after\":");
    push_image(&mut s, change, change.after.as_deref(), None);
    s.push_str(",\"key\":");
    if table.primary_key.is_empty() {
        s.push_str("null");
    } else {
        push_image(
            &mut s,
            change,
            change.current_image(),
            Some(&table.primary_key),
        );
    }
    s.push('}');
    s
}

fn push_image(s: &mut String, change: &RowChange, image: Option<&[Value]>, only: Option<&[usize]>) {
    let Some(values) = image else {
        s.push_str("null");
        return;
    };
    s.push('{');
    let columns = &change.table.columns;
    let indices: Box<dyn Iterator<Item = usize>> = match only {
        Some(idx) => Box::new(idx.iter().copied()),
        None => Box::new(0..values.len().min(columns.len())),
    };
    for (n, i) in indices.enumerate() {
        if n > 0 {
            s.push(',');
        }
        push_json_str(s, &columns[i].name);
        s.push(':');
        push_value(s, values.get(i).unwrap_or(&Value::Null));
    }
    s.push('}');
}

fn push_value(s: &mut String, value: &Value) {
    match value {
        // JSON documents are written as they are, keeping decimals exact; text that is
        // not valid JSON (MariaDB's JSON is LONGTEXT) is written as a string.
        Value::Json(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            s.push_str(text)
        }
        Value::Json(text) => push_json_str(s, text),
        // f32 printed as f32 (1.1, not 1.100000023841858).
        Value::Float(f) if f.is_finite() => s.push_str(&f.to_string()),
        other => s.push_str(&other.to_json().to_string()),
    }
}

fn push_json_str(s: &mut String, text: &str) {
    s.push_str(&serde_json::Value::String(text.to_owned()).to_string());
}
