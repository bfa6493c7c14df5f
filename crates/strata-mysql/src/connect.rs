//! Connecting to the source and asking it where its binlog stands.

use crate::config::{SourceConfig, TlsMode};
use crate::error::SourceError;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts};
use strata_core::{BinlogPos, GtidSet};

/// Which server family the source is; they differ in GTIDs, events and status statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Oracle MySQL (and compatible servers such as Percona Server).
    MySql,
    /// MariaDB.
    MariaDb,
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        })
    }
}

/// A binlog file the server still has, and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogFile {
    /// e.g. `binlog.000042`.
    pub name: String,
    /// Bytes written to it so far.
    pub size: u64,
}

/// What the source server is and where its binlog stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// `SELECT VERSION()`, e.g. `10.11.6-MariaDB-log` or `9.1.0`.
    pub version: String,
    /// `(major, minor, patch)` as the handshake reported it.
    pub version_triple: (u16, u16, u16),
    /// The end of the binlog: the next transaction will be written here.
    pub end: BinlogPos,
    /// The executed GTID set (MySQL) or binlog GTID position (MariaDB) at `end`, when the
    /// server uses GTIDs.
    pub gtid: Option<GtidSet>,
    /// The binlog files the server still has, oldest first.
    pub binlogs: Vec<BinlogFile>,
}

impl ServerInfo {
    /// The start of the oldest binlog file the server still has.
    pub fn oldest(&self) -> Option<BinlogPos> {
        self.binlogs.first().map(|f| BinlogPos::new(&f.name, 4))
    }
}

/// `host:port` of the URL, for messages (never the credentials).
pub(crate) fn target_of(opts: &Opts) -> String {
    format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port())
}

fn parse_url(url: &str) -> Result<Opts, SourceError> {
    Opts::from_url(url).map_err(|e| {
        SourceError::Config(format!(
            "the source URL is invalid ({e}): expected mysql://USER:PASSWORD@HOST:PORT"
        ))
    })
}

/// The connection options for `cfg`, with TLS on or off.
fn build_opts(cfg: &SourceConfig, tls: bool) -> Result<Opts, SourceError> {
    let base = parse_url(&cfg.url)?;
    let mut builder = OptsBuilder::from_opts(base)
        // Keep the connection on the address given: a local server may otherwise be reached
        // through a socket path that means something else on this machine.
        .prefer_socket(false)
        .tcp_nodelay(true);
    if tls {
        let mut ssl = SslOpts::default();
        match cfg.tls {
            TlsMode::Disabled => {}
            TlsMode::Preferred | TlsMode::Required => {
                ssl = ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            TlsMode::VerifyCa => {
                ssl = ssl.with_danger_skip_domain_validation(true);
            }
            TlsMode::VerifyIdentity => {}
        }
        if let Some(ca) = &cfg.tls_ca {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        builder = builder.ssl_opts(ssl);
    } else {
        builder = builder.ssl_opts(None::<SslOpts>);
    }
    Ok(builder.into())
}

/// Opens one connection as `cfg` asks (TLS preferred falls back to plain TCP when the
/// server does not offer TLS).
pub async fn connect(cfg: &SourceConfig) -> Result<Conn, SourceError> {
    let want_tls = !matches!(cfg.tls, TlsMode::Disabled);
    let opts = build_opts(cfg, want_tls)?;
    let target = target_of(&opts);
    match Conn::new(opts).await {
        Ok(conn) => Ok(conn),
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if cfg.tls == TlsMode::Preferred =>
        {
            tracing::debug!(target = %target, "source offers no TLS; connecting without it");
            let opts = build_opts(cfg, false)?;
            Conn::new(opts)
                .await
                .map_err(|source| SourceError::Connect { target, source })
        }
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {
            Err(SourceError::Config(format!(
                "the source {target} does not offer TLS but --tls {:?} requires it: configure ssl_cert/ssl_key on the server, or use --tls preferred",
                cfg.tls
            )))
        }
        Err(source) => Err(SourceError::Connect { target, source }),
    }
}

/// Runs a query and returns its rows, naming the query in the error.
pub(crate) async fn query_rows(conn: &mut Conn, query: &str) -> Result<Vec<Row>, SourceError> {
    conn.query::<Row, _>(query)
        .await
        .map_err(|source| SourceError::Query {
            query: query.to_owned(),
            source,
        })
}

/// Runs a statement whose result is not needed.
pub(crate) async fn exec(conn: &mut Conn, query: &str) -> Result<(), SourceError> {
    conn.query_drop(query)
        .await
        .map_err(|source| SourceError::Query {
            query: query.to_owned(),
            source,
        })
}

/// The first column of the first row of `query`, as text (`None` for SQL NULL or no row).
pub(crate) async fn query_text(
    conn: &mut Conn,
    query: &str,
) -> Result<Option<String>, SourceError> {
    let rows = query_rows(conn, query).await?;
    Ok(rows.into_iter().next().and_then(|row| cell_text(&row, 0)))
}

/// A cell as text, whatever its wire type.
pub(crate) fn cell_text(row: &Row, idx: usize) -> Option<String> {
    match row.as_ref(idx)? {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::Int(i) => Some(i.to_string()),
        mysql_async::Value::UInt(u) => Some(u.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// The server's flavour from its version string.
pub(crate) fn flavor_of(version: &str) -> Flavor {
    if version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    }
}

/// The server's flavour, version, binlog end, GTID state and binlog files.
///
/// Needs the REPLICATION CLIENT privilege (BINLOG MONITOR on MariaDB).
pub(crate) async fn server_info(conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let version = query_text(conn, "SELECT VERSION()")
        .await?
        .unwrap_or_default();
    let flavor = flavor_of(&version);
    let triple = conn.server_version();
    let (end, mysql_gtid) = binlog_end(conn, flavor, triple).await?;
    let gtid = match flavor {
        Flavor::MySql => match mysql_gtid.filter(|s| !s.trim().is_empty()) {
            Some(text) => Some(parse_gtid(&text)?),
            None => None,
        },
        Flavor::MariaDb => {
            let text = query_text(conn, "SELECT @@GLOBAL.gtid_binlog_pos")
                .await?
                .unwrap_or_default();
            let pos = text
                .parse::<strata_core::MariaGtidPos>()
                .map_err(|e| SourceError::Config(format!("unexpected gtid_binlog_pos: {e}")))?;
            Some(GtidSet::MariaDb(pos))
        }
    };
    let binlogs = binlog_files(conn).await?;
    Ok(ServerInfo {
        flavor,
        version,
        version_triple: triple,
        end,
        gtid,
        binlogs,
    })
}

fn parse_gtid(text: &str) -> Result<GtidSet, SourceError> {
    // MySQL prints long sets over several lines.
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact
        .parse::<strata_core::MysqlGtidSet>()
        .map(GtidSet::Mysql)
        .map_err(|e| SourceError::Config(format!("unexpected Executed_Gtid_Set: {e}")))
}

/// The statement that shows the binlog end on this server.
pub(crate) fn status_statement(flavor: Flavor, version: (u16, u16, u16)) -> &'static str {
    // MySQL 8.2 renamed SHOW MASTER STATUS and 8.4 removed the old name.
    if flavor == Flavor::MySql && version >= (8, 2, 0) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    }
}

/// The binlog end position and, on MySQL, the executed GTID set text.
async fn binlog_end(
    conn: &mut Conn,
    flavor: Flavor,
    version: (u16, u16, u16),
) -> Result<(BinlogPos, Option<String>), SourceError> {
    let statement = status_statement(flavor, version);
    let rows = query_rows(conn, statement).await?;
    let row = rows.into_iter().next().ok_or_else(|| {
        SourceError::Preflight(vec![crate::error::PreflightFailure {
            check: "log_bin",
            message: binlog_disabled_message(),
        }])
    })?;
    let file = cell_text(&row, 0).unwrap_or_default();
    let pos = cell_text(&row, 1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(4);
    let gtid = if flavor == Flavor::MySql {
        cell_text(&row, 4)
    } else {
        None
    };
    Ok((BinlogPos::new(file, pos), gtid))
}

/// The one-line message for a server without a binary log.
pub(crate) fn binlog_disabled_message() -> String {
    "the binary log is disabled on the source (log_bin=OFF): start the server with --log-bin (e.g. `log_bin = binlog` under [mysqld] in my.cnf) and restart it".to_owned()
}

/// `SHOW BINARY LOGS`, oldest first.
pub(crate) async fn binlog_files(conn: &mut Conn) -> Result<Vec<BinlogFile>, SourceError> {
    let rows = query_rows(conn, "SHOW BINARY LOGS").await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(BinlogFile {
                name: cell_text(row, 0)?,
                size: cell_text(row, 1)?.parse().ok()?,
            })
        })
        .collect())
}

/// Connects, reads where the source's binlog stands, and disconnects.
///
/// Use `info.end` to "stop at the server's current end", or as the start position of a
/// snapshot.
pub async fn current_position(cfg: &SourceConfig) -> Result<ServerInfo, SourceError> {
    let mut conn = connect(cfg).await?;
    let info = server_info(&mut conn).await;
    let _ = conn.disconnect().await;
    info
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn flavour_comes_from_the_version_string() {
        assert_eq!(flavor_of("10.11.6-MariaDB-log"), Flavor::MariaDb);
        assert_eq!(flavor_of("9.1.0"), Flavor::MySql);
        assert_eq!(
            status_statement(Flavor::MySql, (9, 1, 0)),
            "SHOW BINARY LOG STATUS"
        );
        assert_eq!(
            status_statement(Flavor::MariaDb, (10, 11, 6)),
            "SHOW MASTER STATUS"
        );
    }

    #[test]
    fn bad_urls_say_the_expected_form() {
        let cfg = SourceConfig::new("postgres://x");
        let err = build_opts(&cfg, false).unwrap_err().to_string();
        assert!(err.contains("mysql://USER:PASSWORD@HOST:PORT"), "{err}");
    }

    #[test]
    fn multi_line_gtid_sets_parse() {
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let other = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        let set = parse_gtid(&format!("{uuid}:1-5,\n{other}:1-2")).unwrap();
        assert_eq!(set.to_string(), format!("{uuid}:1-5,{other}:1-2"));
    }
}
