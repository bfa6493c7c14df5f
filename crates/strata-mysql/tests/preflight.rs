//! Preflight against misconfigured servers: each failed check is reported with its fix.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use mysql_async::prelude::Queryable;
use strata_core::{BinlogPos, ErrorKind, GtidSet};
use strata_mysql::{preflight, BinlogSource, SourceConfig, SourceError, StartFrom};
use support::*;

fn failures(err: &SourceError) -> Vec<(String, String)> {
    err.preflight_failures()
        .unwrap_or_else(|| panic!("not a preflight error: {err}"))
        .iter()
        .map(|f| (f.check.to_owned(), f.message.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_format_is_refused_with_the_fix() {
    let cfg = SourceConfig::new(url("STRATA_TEST_MARIADB_STMT_URL"));
    let err = preflight(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let found = failures(&err);
    let (_, message) = found
        .iter()
        .find(|(check, _)| check == "binlog_format")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert!(message.contains("STATEMENT"), "{message}");
    assert!(
        message.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{message}"
    );
    // BinlogSource::start runs the same checks.
    let err = BinlogSource::start(cfg).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_binlog_is_refused_with_the_fix() {
    let cfg = SourceConfig::new(url("STRATA_TEST_MARIADB_NOBINLOG_URL"));
    let err = preflight(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let found = failures(&err);
    let (_, message) = found
        .iter()
        .find(|(check, _)| check == "log_bin")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert!(message.contains("--log-bin"), "{message}");
    // One line per failure.
    assert!(err.to_string().lines().count() == found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_start_position_is_refused_with_the_fix() {
    let url = url("STRATA_TEST_MARIADB_SCRATCH_URL");
    let mut db = TestDb::new(&url, "purge").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let before = strata_mysql::current_position(&SourceConfig::new(url.clone()))
        .await
        .unwrap();
    db.exec("INSERT INTO t VALUES (1)").await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (2)").await;
    let now = strata_mysql::current_position(&SourceConfig::new(url.clone()))
        .await
        .unwrap();
    let mut conn = connect(&url).await;
    purge_binlogs_to(&mut conn, &now.end.file, &before.end.file).await;

    let mut cfg = SourceConfig::new(url.clone());
    cfg.start = StartFrom::FilePos(before.end.clone());
    let err = preflight(&cfg).await.unwrap_err();
    let found = failures(&err);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "start_position");
    assert!(found[0].1.contains("was purged"), "{}", found[0].1);
    assert!(found[0].1.contains("--from oldest"), "{}", found[0].1);

    let mut cfg = SourceConfig::new(url.clone());
    cfg.start = StartFrom::Gtid(before.gtid.clone().expect("MariaDB GTID position"));
    let err = preflight(&cfg).await.unwrap_err();
    let found = failures(&err);
    assert!(found[0].1.contains("purged"), "{found:?}");

    // A position beyond the end of an existing file is refused too.
    let mut cfg = SourceConfig::new(url);
    cfg.start = StartFrom::FilePos(BinlogPos::new(&now.end.file, 1 << 40));
    let found = failures(&preflight(&cfg).await.unwrap_err());
    assert!(found[0].1.contains("beyond the end"), "{found:?}");
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_grants_are_listed_with_the_grant_statement() {
    let url = mariadb_url();
    let mut admin = connect(&url).await;
    let user = format!("strata_t_weak_{}", std::process::id());
    admin
        .query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await
        .unwrap();
    let opts = mysql_async::Opts::from_url(&url).unwrap();
    let weak = format!(
        "mysql://{user}:pw@{}:{}",
        opts.ip_or_hostname(),
        opts.tcp_port()
    );
    let mut cfg = SourceConfig::new(weak);
    cfg.filter = strata_mysql::TableFilter::parse(&["shop"]).unwrap();
    let err = preflight(&cfg).await.unwrap_err();
    let found = failures(&err);
    let text: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        text.iter().any(|m| m.contains("REPLICATION SLAVE")
            && m.contains(&format!(
                "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
            ))),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains(&format!("GRANT SELECT ON `shop`.* TO '{user}'@'%'"))),
        "{text:?}"
    );
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtid_of_the_wrong_flavour_or_server_id_clash_is_refused() {
    let mut cfg = SourceConfig::new(mariadb_url());
    cfg.start = StartFrom::Gtid(
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"
            .parse::<GtidSet>()
            .unwrap(),
    );
    let found = failures(&preflight(&cfg).await.unwrap_err());
    assert!(found[0].1.contains("MariaDB GTID position"), "{found:?}");

    let mut cfg = SourceConfig::new(mysql_url());
    cfg.start = StartFrom::Gtid("0-1-5".parse::<GtidSet>().unwrap());
    cfg.server_id = 1; // the test MySQL's own server_id
    let found = failures(&preflight(&cfg).await.unwrap_err());
    let checks: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert!(
        checks.contains(&"start_position") && checks.contains(&"server_id"),
        "{found:?}"
    );

    // A MySQL GTID set with transactions the server never ran.
    let mut cfg = SourceConfig::new(mysql_url());
    cfg.start = StartFrom::Gtid(
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"
            .parse::<GtidSet>()
            .unwrap(),
    );
    let found = failures(&preflight(&cfg).await.unwrap_err());
    assert!(found[0].1.contains("never executed"), "{found:?}");
}
