//! Checks that the source can be streamed from, before streaming: every failed check is
//! collected and reported on one line with the statement or option that fixes it.

use crate::config::SourceConfig;
use crate::connect::{self, query_rows, query_text, Flavor, ServerInfo};
use crate::error::{PreflightFailure, SourceError};
use mysql_async::Conn;
use strata_core::position::file_seq;
use strata_core::StartFrom;
use strata_core::{BinlogPos, GtidSet, MariaGtidPos};

/// Checks the source server against what strata needs and returns what it is and where its
/// binlog stands.
///
/// Checked: the binary log is on, `binlog_format=ROW`, `binlog_row_image=FULL`,
/// `binlog_row_metadata=FULL`, no MariaDB binlog compression, the user's grants
/// (REPLICATION SLAVE, REPLICATION CLIENT / BINLOG MONITOR, SELECT), that the `server_id` is
/// not the source's own (another replica's only warns), and that the start position still
/// exists on the server (not purged, not beyond the end). All failures are returned together
/// as [`SourceError::Preflight`], one line each.
pub async fn preflight(cfg: &SourceConfig) -> Result<ServerInfo, SourceError> {
    cfg.validate()?;
    let mut conn = connect::connect(cfg).await?;
    let result = run_checks(cfg, &mut conn).await;
    let _ = conn.disconnect().await;
    result
}

/// The server variables the checks read.
struct Settings {
    version: String,
    flavor: Flavor,
    log_bin: bool,
    binlog_format: String,
    row_image: String,
    row_metadata: Option<String>,
    compress: bool,
    server_id: u32,
    gtid_mode: Option<String>,
}

async fn settings(conn: &mut Conn) -> Result<Settings, SourceError> {
    let version = query_text(conn, "SELECT VERSION()")
        .await?
        .unwrap_or_default();
    let flavor = connect::flavor_of(&version);
    let var = |name: &str| format!("SELECT @@GLOBAL.{name}");
    let log_bin = query_text(conn, &var("log_bin")).await?;
    let binlog_format = query_text(conn, &var("binlog_format"))
        .await?
        .unwrap_or_default();
    let row_image = query_text(conn, &var("binlog_row_image"))
        .await?
        .unwrap_or_default();
    // Absent before MySQL 8.0.1 / MariaDB 10.5: report it, do not fail the query.
    let row_metadata = optional_var(conn, "binlog_row_metadata").await;
    let compress = match flavor {
        Flavor::MariaDb => optional_var(conn, "log_bin_compress")
            .await
            .is_some_and(|v| is_on(&v)),
        Flavor::MySql => false,
    };
    let server_id = query_text(conn, &var("server_id"))
        .await?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let gtid_mode = match flavor {
        Flavor::MySql => optional_var(conn, "gtid_mode").await,
        Flavor::MariaDb => None,
    };
    Ok(Settings {
        version,
        flavor,
        log_bin: log_bin.as_deref().is_some_and(is_on),
        binlog_format,
        row_image,
        row_metadata,
        compress,
        server_id,
        gtid_mode,
    })
}

async fn optional_var(conn: &mut Conn, name: &str) -> Option<String> {
    query_text(conn, &format!("SELECT @@GLOBAL.{name}"))
        .await
        .ok()
        .flatten()
}

fn is_on(v: &str) -> bool {
    matches!(v.to_ascii_uppercase().as_str(), "1" | "ON")
}

/// The fix line for a global variable that must have a value.
fn set_global(name: &str, value: &str) -> String {
    format!(
        "run `SET GLOBAL {name} = '{value}'` on the source and add `{name} = {value}` under [mysqld] in its my.cnf so it survives a restart (sessions opened before keep the old value until they reconnect)"
    )
}

async fn run_checks(cfg: &SourceConfig, conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let s = settings(conn).await?;
    let mut failures = Vec::new();
    let mut fail =
        |check: &'static str, message: String| failures.push(PreflightFailure { check, message });

    if !s.log_bin {
        fail("log_bin", connect::binlog_disabled_message());
    }
    if !s.binlog_format.eq_ignore_ascii_case("ROW") {
        fail(
            "binlog_format",
            format!(
                "binlog_format is {} on the source but strata needs ROW: {}",
                s.binlog_format,
                set_global("binlog_format", "ROW")
            ),
        );
    }
    if !s.row_image.eq_ignore_ascii_case("FULL") {
        fail(
            "binlog_row_image",
            format!(
                "binlog_row_image is {} on the source but strata needs FULL: {}",
                s.row_image,
                set_global("binlog_row_image", "FULL")
            ),
        );
    }
    match s.row_metadata.as_deref() {
        Some(v) if v.eq_ignore_ascii_case("FULL") => {}
        Some(v) => fail(
            "binlog_row_metadata",
            format!(
                "binlog_row_metadata is {v} on the source but strata needs FULL (column names, signedness, ENUM/SET members): {}",
                set_global("binlog_row_metadata", "FULL")
            ),
        ),
        None => fail(
            "binlog_row_metadata",
            format!(
                "the source ({}) has no binlog_row_metadata setting: strata needs MySQL 8.0.1+ or MariaDB 10.5+ with binlog_row_metadata=FULL; upgrade the server",
                s.version
            ),
        ),
    }
    if s.compress {
        fail(
            "log_bin_compress",
            format!(
                "log_bin_compress is ON on the source and strata cannot read MariaDB's compressed binlog events: {}",
                set_global("log_bin_compress", "OFF")
            ),
        );
    }
    if s.server_id == cfg.server_id {
        fail(
            "server_id",
            format!(
                "the replica server_id {} is the source's own server_id: choose another one, e.g. --server-id {}",
                cfg.server_id,
                cfg.server_id.wrapping_add(1000).max(1)
            ),
        );
    }
    if let StartFrom::Gtid(gtid) = &cfg.start {
        match (gtid, s.flavor) {
            (GtidSet::Mysql(_), Flavor::MariaDb) => fail(
                "start_position",
                format!("the start position {gtid} is a MySQL GTID set but the source is MariaDB: give a MariaDB GTID position such as 0-1-100 (see SELECT @@gtid_binlog_pos)"),
            ),
            (GtidSet::MariaDb(_), Flavor::MySql) => fail(
                "start_position",
                format!("the start position {gtid} is a MariaDB GTID position but the source is MySQL: give a MySQL GTID set such as uuid:1-100 (see SELECT @@gtid_executed)"),
            ),
            (GtidSet::Mysql(_), Flavor::MySql)
                if !s.gtid_mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("ON")) =>
            {
                fail(
                    "gtid_mode",
                    format!(
                        "a GTID start position needs gtid_mode=ON but the source has gtid_mode={}: start from FILE:POS instead, or enable GTIDs (gtid_mode=ON, enforce_gtid_consistency=ON in my.cnf)",
                        s.gtid_mode.as_deref().unwrap_or("OFF")
                    ),
                );
            }
            _ => {}
        }
    }

    let grants_ok = check_grants(cfg, conn, s.flavor, &mut failures).await?;
    if !s.log_bin || !grants_ok {
        return Err(SourceError::Preflight(failures));
    }
    let info = connect::server_info(conn).await?;
    warn_if_server_id_taken(cfg, conn, &info).await;
    check_start(cfg, conn, &info, &mut failures).await?;
    if failures.is_empty() {
        Ok(info)
    } else {
        Err(SourceError::Preflight(failures))
    }
}

/// Privileges granted on `*.*` and per schema, from `SHOW GRANTS`.
#[derive(Debug, Default)]
struct Grants {
    global: Vec<String>,
    schemas: Vec<(String, Vec<String>)>,
    has_roles: bool,
}

fn parse_grants(lines: &[String]) -> Grants {
    let mut grants = Grants::default();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privs, after)) = rest.split_once(" ON ") else {
            // `GRANT role TO user`: privileges arrive through a role.
            grants.has_roles = true;
            continue;
        };
        let object = after.split(" TO ").next().unwrap_or("").trim();
        let privs: Vec<String> = privs
            .split(',')
            .map(|p| p.trim().to_ascii_uppercase())
            .collect();
        if object == "*.*" {
            grants.global.extend(privs);
        } else if let Some(schema) = object.strip_suffix(".*") {
            grants
                .schemas
                .push((schema.trim_matches('`').replace("\\_", "_"), privs));
        }
    }
    grants
}

impl Grants {
    fn global_has(&self, privilege: &str) -> bool {
        self.global
            .iter()
            .any(|p| p == privilege || p == "ALL PRIVILEGES" || p == "ALL")
    }

    fn schema_has_select(&self, schema: &str) -> bool {
        self.global_has("SELECT")
            || self.schemas.iter().any(|(s, privs)| {
                (s == schema || s == "%")
                    && privs
                        .iter()
                        .any(|p| p == "SELECT" || p == "ALL PRIVILEGES" || p == "ALL")
            })
    }
}

/// Adds a failure per missing privilege group; true when streaming is possible.
async fn check_grants(
    cfg: &SourceConfig,
    conn: &mut Conn,
    flavor: Flavor,
    failures: &mut Vec<PreflightFailure>,
) -> Result<bool, SourceError> {
    let user = query_text(conn, "SELECT CURRENT_USER()")
        .await?
        .unwrap_or_default();
    let grantee = match user.rsplit_once('@') {
        Some((name, host)) => format!("'{name}'@'{host}'"),
        None => format!("'{user}'"),
    };
    let rows = query_rows(conn, "SHOW GRANTS").await?;
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|r| connect::cell_text(r, 0))
        .collect();
    let grants = parse_grants(&lines);
    let client_privilege = match flavor {
        Flavor::MySql => "REPLICATION CLIENT",
        Flavor::MariaDb => "BINLOG MONITOR",
    };
    let mut missing = Vec::new();
    if !grants.global_has("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    if !grants.global_has(client_privilege)
        && !grants.global_has("REPLICATION CLIENT")
        && !grants.global_has("SUPER")
    {
        missing.push(client_privilege);
    }
    // Privileges given through roles are not listed here; do not fail on a guess.
    if grants.has_roles && !missing.is_empty() {
        tracing::warn!(user = %user, "the source user has roles; skipping the privilege check for them");
        return Ok(true);
    }
    let mut ok = true;
    if !missing.is_empty() {
        ok = false;
        failures.push(PreflightFailure {
            check: "grants",
            message: format!(
                "the source user {grantee} lacks {} (needed to read the binlog): run `GRANT {} ON *.* TO {grantee}` as an administrator",
                missing.join(" and "),
                missing.join(", ")
            ),
        });
    }
    // SELECT is needed for snapshots and verification of the tables read.
    let mut schemas: Vec<String> = cfg.filter.schema_patterns().map(str::to_owned).collect();
    schemas.dedup();
    let lacking_select: Vec<String> = if schemas.is_empty() {
        if grants.global_has("SELECT") {
            Vec::new()
        } else {
            vec!["*".into()]
        }
    } else {
        schemas
            .into_iter()
            .filter(|s| !s.contains(['*', '?']) && !grants.schema_has_select(s))
            .collect()
    };
    if !lacking_select.is_empty() {
        let on = lacking_select
            .iter()
            .map(|s| {
                if s == "*" {
                    "*.*".to_owned()
                } else {
                    format!("`{s}`.*")
                }
            })
            .collect::<Vec<_>>();
        let statements = on
            .iter()
            .map(|o| format!("GRANT SELECT ON {o} TO {grantee}"))
            .collect::<Vec<_>>()
            .join("; ");
        failures.push(PreflightFailure {
            check: "grants",
            message: format!(
                "the source user {grantee} lacks SELECT on {} (needed for snapshots and verification): run `{statements}` as an administrator",
                on.join(", ")
            ),
        });
    }
    Ok(ok)
}

/// A replica already registered with our `server_id` is disconnected by the source when we
/// register (or disconnects us). Only a warning: after a dropped connection our own previous
/// registration is still listed until the server notices, and failing then would turn a
/// reconnect into a configuration error.
async fn warn_if_server_id_taken(cfg: &SourceConfig, conn: &mut Conn, info: &ServerInfo) {
    let statement = match info.flavor {
        Flavor::MySql if info.version_triple >= (8, 0, 22) => "SHOW REPLICAS",
        _ => "SHOW SLAVE HOSTS",
    };
    let Ok(rows) = query_rows(conn, statement).await else {
        return;
    };
    for row in rows {
        let id = connect::cell_text(&row, 0).and_then(|s| s.parse::<u32>().ok());
        if id == Some(cfg.server_id) {
            let host = connect::cell_text(&row, 1).unwrap_or_default();
            tracing::warn!(
                server_id = cfg.server_id,
                host = %host,
                "a replica with this server_id is registered at the source; if it is another replicator, give each its own server_id, or they will keep disconnecting each other"
            );
        }
    }
}

/// The start position must still be on the server.
async fn check_start(
    cfg: &SourceConfig,
    conn: &mut Conn,
    info: &ServerInfo,
    failures: &mut Vec<PreflightFailure>,
) -> Result<(), SourceError> {
    match &cfg.start {
        StartFrom::Oldest | StartFrom::Current => {}
        StartFrom::FilePos(pos) => {
            if let Some(message) = file_pos_problem(pos, info) {
                failures.push(PreflightFailure {
                    check: "start_position",
                    message,
                });
            }
        }
        StartFrom::Gtid(GtidSet::Mysql(set)) if info.flavor == Flavor::MySql => {
            let text = set.to_string();
            let purged = query_text(conn, "SELECT @@GLOBAL.gtid_purged")
                .await?
                .unwrap_or_default();
            let covers_purged = query_text(
                conn,
                &format!(
                    "SELECT GTID_SUBSET(@@GLOBAL.gtid_purged, '{}')",
                    sql_quote(&text)
                ),
            )
            .await?;
            if covers_purged.as_deref() == Some("0") {
                failures.push(PreflightFailure {
                    check: "start_position",
                    message: format!(
                        "the start GTID set {text} misses transactions the source has purged from its binlog (gtid_purged = {}): those changes can no longer be streamed; re-snapshot the tables and start from --from current (or --from oldest)",
                        purged.split_whitespace().collect::<String>()
                    ),
                });
            }
            let known = query_text(
                conn,
                &format!(
                    "SELECT GTID_SUBSET('{}', @@GLOBAL.gtid_executed)",
                    sql_quote(&text)
                ),
            )
            .await?;
            if known.as_deref() == Some("0") {
                failures.push(PreflightFailure {
                    check: "start_position",
                    message: format!(
                        "the start GTID set {text} has transactions this source never executed (is it from another server?): use a set from SELECT @@GLOBAL.gtid_executed on this source"
                    ),
                });
            }
        }
        StartFrom::Gtid(GtidSet::MariaDb(wanted)) if info.flavor == Flavor::MariaDb => {
            let Some(oldest) = info.binlogs.first() else {
                return Ok(());
            };
            let at_oldest = query_text(
                conn,
                &format!("SELECT BINLOG_GTID_POS('{}', 4)", sql_quote(&oldest.name)),
            )
            .await?
            .unwrap_or_default();
            if let Ok(at_oldest) = at_oldest.parse::<MariaGtidPos>() {
                if let Some(message) = maria_gtid_problem(wanted, &at_oldest, &oldest.name) {
                    failures.push(PreflightFailure {
                        check: "start_position",
                        message,
                    });
                }
            }
        }
        // Flavour mismatches were reported with the settings.
        StartFrom::Gtid(_) => {}
    }
    Ok(())
}

fn sql_quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Why a FILE:POS start cannot be used, if it cannot.
pub(crate) fn file_pos_problem(pos: &BinlogPos, info: &ServerInfo) -> Option<String> {
    let oldest = info.binlogs.first()?;
    let newest = info.binlogs.last()?;
    if pos.pos < 4 {
        return Some(format!(
            "the start position {pos} is not an event boundary (offsets start at 4): use a commit position such as {}:4",
            pos.file
        ));
    }
    match info.binlogs.iter().find(|f| f.name == pos.file) {
        Some(file) if pos.pos > file.size => Some(format!(
            "the start position {pos} is beyond the end of {} ({} bytes): use a commit position strata printed, or --from current",
            file.name, file.size
        )),
        Some(_) => None,
        None if file_seq(&pos.file) < file_seq(&oldest.name) => Some(format!(
            "the start position {pos} was purged from the source (the oldest binlog it has is {}): the changes in between are lost to streaming; re-snapshot the tables, or accept the gap with --from oldest",
            oldest.name
        )),
        None => Some(format!(
            "the start position {pos} names a binlog file the source does not have (it has {} to {}): check the file name, or use --from oldest / --from current",
            oldest.name, newest.name
        )),
    }
}

/// Why a MariaDB GTID start cannot be used, given the GTID state at the oldest binlog.
fn maria_gtid_problem(
    wanted: &MariaGtidPos,
    at_oldest: &MariaGtidPos,
    oldest: &str,
) -> Option<String> {
    for (domain, _, seq) in wanted.iter() {
        if let Some((_, _, first)) = at_oldest.iter().find(|(d, _, _)| *d == domain) {
            if seq < first {
                return Some(format!(
                    "the start GTID position {wanted} was purged from the source: domain {domain} starts at {first} in the oldest binlog {oldest}, so the changes after {seq} are lost to streaming; re-snapshot the tables, or accept the gap with --from oldest"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::connect::BinlogFile;

    fn info(files: &[(&str, u64)]) -> ServerInfo {
        ServerInfo {
            flavor: Flavor::MariaDb,
            version: "10.11".into(),
            version_triple: (10, 11, 0),
            end: BinlogPos::new("binlog.000003", 100),
            gtid: None,
            binlogs: files
                .iter()
                .map(|(n, s)| BinlogFile {
                    name: (*n).into(),
                    size: *s,
                })
                .collect(),
        }
    }

    #[test]
    fn purged_and_unknown_file_positions_are_named() {
        let i = info(&[("binlog.000002", 500), ("binlog.000003", 100)]);
        let purged = file_pos_problem(&BinlogPos::new("binlog.000001", 4), &i).unwrap();
        assert!(
            purged.contains("was purged") && purged.contains("binlog.000002"),
            "{purged}"
        );
        let future = file_pos_problem(&BinlogPos::new("binlog.000009", 4), &i).unwrap();
        assert!(future.contains("does not have"), "{future}");
        let beyond = file_pos_problem(&BinlogPos::new("binlog.000002", 501), &i).unwrap();
        assert!(beyond.contains("beyond the end"), "{beyond}");
        assert!(file_pos_problem(&BinlogPos::new("binlog.000002", 500), &i).is_none());
    }

    #[test]
    fn grants_parse_from_both_flavours() {
        let lines = [
            "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `strata`@`%` IDENTIFIED BY PASSWORD '*X'".to_owned(),
            "GRANT SELECT ON `shop`.* TO `strata`@`%`".to_owned(),
        ];
        let g = parse_grants(&lines);
        assert!(g.global_has("REPLICATION SLAVE"));
        assert!(g.global_has("BINLOG MONITOR"));
        assert!(g.schema_has_select("anything"));
        let g = parse_grants(&[
            "GRANT USAGE ON *.* TO `u`@`%`".to_owned(),
            "GRANT SELECT ON `shop`.* TO `u`@`%`".to_owned(),
        ]);
        assert!(!g.global_has("REPLICATION SLAVE"));
        assert!(g.schema_has_select("shop"));
        assert!(!g.schema_has_select("crm"));
        let g = parse_grants(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION".to_owned(),
        ]);
        assert!(g.global_has("REPLICATION SLAVE"));
    }

    #[test]
    fn purged_mariadb_gtid_positions_are_named() {
        let wanted: MariaGtidPos = "0-1-5".parse().unwrap();
        let oldest: MariaGtidPos = "0-1-9".parse().unwrap();
        assert!(maria_gtid_problem(&wanted, &oldest, "binlog.000004")
            .unwrap()
            .contains("purged"));
        let fine: MariaGtidPos = "0-1-12".parse().unwrap();
        assert!(maria_gtid_problem(&fine, &oldest, "binlog.000004").is_none());
    }
}
