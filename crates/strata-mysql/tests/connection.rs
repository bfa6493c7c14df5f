//! Connecting (password plugins, TLS), idle periods, and telling a dropped connection
//! apart from the end of the stream.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use mysql_async::prelude::Queryable;
use std::time::Duration;
use strata_core::{ErrorKind, SourceEvent};
use strata_mysql::{current_position, BinlogSource, Flavor, SourceConfig, StartFrom, TlsMode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_with_native_and_caching_sha2_passwords_with_and_without_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cases = [
        // MariaDB: mysql_native_password; its test server offers no TLS.
        (
            "STRATA_TEST_MARIADB_USER_URL",
            TlsMode::Disabled,
            Flavor::MariaDb,
        ),
        (
            "STRATA_TEST_MARIADB_USER_URL",
            TlsMode::Preferred,
            Flavor::MariaDb,
        ),
        // MySQL 9: caching_sha2_password, over TLS and over plain TCP (RSA key exchange).
        (
            "STRATA_TEST_MYSQL_USER_URL",
            TlsMode::Required,
            Flavor::MySql,
        ),
        (
            "STRATA_TEST_MYSQL_USER_URL",
            TlsMode::Preferred,
            Flavor::MySql,
        ),
        (
            "STRATA_TEST_MYSQL_USER_URL",
            TlsMode::Disabled,
            Flavor::MySql,
        ),
    ];
    for (var, tls, flavor) in cases {
        let mut cfg = SourceConfig::new(url(var));
        cfg.tls = tls;
        let info = current_position(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{var} with {tls:?}: {e}"));
        assert_eq!(info.flavor, flavor);
        assert!(!info.end.file.is_empty() && info.end.pos >= 4);
    }
    // TLS required from a server without TLS: a configuration error saying so.
    let mut cfg = SourceConfig::new(mariadb_url());
    cfg.tls = TlsMode::Required;
    let err = current_position(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_config_error() {
    let mut cfg = SourceConfig::new(
        via_port(&url("STRATA_TEST_MARIADB_USER_URL"), 3307).replace(":strata@", ":wrong@"),
    );
    cfg.tls = TlsMode::Disabled;
    let err = current_position(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );
}

/// Idle: heartbeats arrive as `Idle`; the end of a non-blocking stream is a clean `None`; a
/// killed connection is a `Connection` error, not an end.
async fn idle_end_and_drop(server: &str, url: &str) {
    let db = TestDb::new(url, "idle").await;

    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{server}: no heartbeat"
        );
        match tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
            Some(Ok(SourceEvent::Idle { position })) => {
                assert!(position.pos >= 4, "{position}");
                assert!(
                    position.file.starts_with("binlog.") && position.file_seq() > 0,
                    "{server}: heartbeat file name {:?}",
                    position.file
                );
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("{server}: {other:?}"),
        }
    }

    // Killing the replica connection: an error of kind Connection naming the position.
    let mut admin = connect(url).await;
    admin
        .query_drop(format!("KILL {}", source.connection_id()))
        .await
        .unwrap();
    let err = loop {
        match tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
            Some(Err(e)) => break e,
            Some(Ok(_)) => {}
            None => panic!("{server}: a dropped connection looked like the end of the stream"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Connection, "{server}: {err}");
    assert!(
        err.to_string().contains("connection to the source lost at"),
        "{err}"
    );
    assert!(source.next().await.is_none(), "nothing after the error");

    // stop_at_end: the stream ends cleanly at the server's current end.
    let mut cfg = db.source_config();
    cfg.stop_at_end = true;
    let mut source = BinlogSource::start(cfg).await.unwrap();
    loop {
        match tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{server}: {e}"),
        }
    }
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_heartbeats_and_dropped_connections_are_not_the_end() {
    for (server, url) in both() {
        idle_end_and_drop(server, &url).await;
    }
}

/// A connection that silently stops delivering (no FIN, no RST) is declared lost after the
/// read timeout; heartbeats keep a healthy idle one alive far longer than that.
async fn silent_network(server: &str, url: &str) {
    let proxy = FreezableProxy::start(socket_addr(url)).await;
    let mut cfg = source_config(&via_port(url, proxy.port), &["strata_t_nothing_here"]);
    cfg.tls = TlsMode::Disabled;
    cfg.heartbeat = Duration::from_millis(500);
    cfg.read_timeout = Duration::from_millis(1600);
    let mut source = BinlogSource::start(cfg).await.unwrap();
    // Three times the read timeout of idleness, kept alive by heartbeats.
    let healthy_until = std::time::Instant::now() + Duration::from_millis(4800);
    let mut idles = 0;
    while std::time::Instant::now() < healthy_until {
        match tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
            Some(Ok(SourceEvent::Idle { .. })) => idles += 1,
            Some(Ok(_)) => {}
            other => panic!("{server}: healthy idle stream failed: {other:?}"),
        }
    }
    assert!(idles >= 3, "{server}: {idles} heartbeats");
    proxy.freeze();
    let err = loop {
        match tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
            Some(Err(e)) => break e,
            Some(Ok(_)) => {}
            None => panic!("{server}: silence looked like the end of the stream"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert!(err.to_string().contains("no event or heartbeat"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_declared_lost_after_the_read_timeout() {
    for (server, url) in both() {
        silent_network(server, &url).await;
    }
}

async fn ddl(server: &str, url: &str) {
    let mut db = TestDb::new(url, "ddl").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("ALTER TABLE t ADD COLUMN v VARCHAR(10)").await;
    db.exec("INSERT INTO t VALUES (1, 'new')").await;
    let mut saw_ddl = false;
    loop {
        match tokio::time::timeout(DEADLINE, source.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            SourceEvent::Ddl {
                schema, statement, ..
            } => {
                assert_eq!(schema, db.schema);
                assert!(statement.contains("ALTER TABLE"), "{statement}");
                saw_ddl = true;
            }
            SourceEvent::Change(c) => {
                assert!(saw_ddl, "{server}: the change came before its DDL");
                // Decoded with the columns it was written with.
                assert_eq!(c.table.columns.len(), 2);
                assert_eq!(c.table.columns[1].name, "v");
                break;
            }
            _ => {}
        }
    }
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_of_wanted_schemas_is_reported_before_the_changes_it_shapes() {
    for (server, url) in both() {
        ddl(server, &url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_from_oldest_reads_the_first_binlog_file() {
    let mut cfg = SourceConfig::new(mariadb_url());
    cfg.server_id = unique_server_id();
    cfg.start = StartFrom::Oldest;
    cfg.stop_at_end = true;
    cfg.filter = strata_mysql::TableFilter::parse(&["strata_t_nothing_here"]).unwrap();
    let mut source = BinlogSource::start(cfg).await.unwrap();
    let oldest = source.server().oldest().unwrap();
    assert_eq!(source.start_position(), &oldest);
    let mut commits = 0;
    while let Some(item) = tokio::time::timeout(DEADLINE, source.next()).await.unwrap() {
        if let SourceEvent::Commit(c) = item.unwrap() {
            commits += 1;
            assert!(
                c.gtid_set.is_some(),
                "GTID state learnt from the file's GTID_LIST"
            );
        }
    }
    assert!(commits > 0);
}
