//! Shared helpers of the strata-mysql integration tests (real servers only).
#![allow(dead_code, clippy::unwrap_used)] // shared by several test binaries; tests may unwrap

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use strata_core::{CommitInfo, RowChange, SourceEvent};
use strata_mysql::{BinlogSource, SourceConfig, StartFrom, TableFilter};

/// How long a test waits for its changes before failing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The URL in `var`, or a failure that says how to get the servers.
pub fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh (or eval \"$(scripts/services.sh env)\")")
    })
}

pub fn mariadb_url() -> String {
    url("STRATA_TEST_MARIADB_URL")
}

pub fn mysql_url() -> String {
    url("STRATA_TEST_MYSQL_URL")
}

/// Both ROW-format servers, named for messages.
pub fn both() -> [(&'static str, String); 2] {
    [("mariadb", mariadb_url()), ("mysql", mysql_url())]
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique to this process and call.
pub fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A replica server_id no other running test uses (the source drops a replica whose
/// server_id another one registers with).
pub fn unique_server_id() -> u32 {
    2_000_000 + (std::process::id() % 100_000) * 100 + unique() % 100
}

/// A schema name owned by one test: `strata_t_<name>_<pid>_<n>`.
pub fn schema_name(name: &str) -> String {
    format!("strata_t_{name}_{}_{}", std::process::id(), unique())
}

/// A writing connection: no strict mode (zero dates, out-of-range ENUM on purpose), UTC.
pub async fn connect(url: &str) -> Conn {
    let opts = OptsBuilder::from_opts(Opts::from_url(url).unwrap()).prefer_socket(false);
    let mut conn = Conn::new(opts).await.unwrap();
    conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    conn.query_drop("SET SESSION time_zone = '+00:00'")
        .await
        .unwrap();
    conn
}

/// A test's own schema on a server, with a connection to write in it.
pub struct TestDb {
    pub conn: Conn,
    pub schema: String,
    pub url: String,
}

impl TestDb {
    pub async fn new(url: &str, name: &str) -> TestDb {
        let mut conn = connect(url).await;
        let schema = schema_name(name);
        conn.query_drop(format!("CREATE DATABASE `{schema}`"))
            .await
            .unwrap();
        conn.query_drop(format!("USE `{schema}`")).await.unwrap();
        TestDb {
            conn,
            schema,
            url: url.to_owned(),
        }
    }

    pub async fn exec(&mut self, sql: &str) {
        self.conn
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A source config reading only this schema, from the server's current end.
    pub fn source_config(&self) -> SourceConfig {
        source_config(&self.url, &[self.schema.as_str()])
    }

    pub async fn drop_schema(mut self) {
        let _ = self
            .conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.schema))
            .await;
        let _ = self.conn.disconnect().await;
    }
}

/// A source config for `url` reading `patterns`, from the server's current end.
pub fn source_config(url: &str, patterns: &[&str]) -> SourceConfig {
    let mut cfg = SourceConfig::new(url);
    cfg.server_id = unique_server_id();
    cfg.start = StartFrom::Current;
    cfg.filter = TableFilter::parse(patterns).unwrap();
    cfg.heartbeat = Duration::from_secs(1);
    cfg.read_timeout = Duration::from_secs(10);
    cfg
}

/// One transaction as the source delivered it.
#[derive(Debug, Clone)]
pub struct Tx {
    pub gtid: Option<String>,
    pub changes: Vec<RowChange>,
    pub commit: CommitInfo,
}

/// Reads until `expected` row changes have arrived and their transaction committed;
/// returns the transactions that had changes. Fails on stream errors, a transaction that
/// did not arrive whole, or the deadline.
pub async fn collect(source: &mut BinlogSource, expected: usize) -> Vec<Tx> {
    let deadline = Instant::now() + DEADLINE;
    let mut txs = Vec::new();
    let mut current: Option<(Option<String>, Vec<RowChange>)> = None;
    let mut total = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, source.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out after {total} of {expected} changes ({} transactions)",
                    txs.len()
                )
            });
        match item {
            None => panic!("stream ended after {total} of {expected} changes"),
            Some(Err(e)) => panic!("stream failed after {total} changes: {e}"),
            Some(Ok(SourceEvent::Begin { gtid, .. })) => {
                assert!(current.is_none(), "Begin inside a transaction");
                current = Some((gtid.map(|g| g.to_string()), Vec::new()));
            }
            Some(Ok(SourceEvent::Change(change))) => {
                let (_, changes) = current.as_mut().expect("a change outside Begin/Commit");
                changes.push(change);
                total += 1;
            }
            Some(Ok(SourceEvent::Commit(commit))) => {
                let (gtid, changes) = current.take().expect("Commit without Begin");
                if !changes.is_empty() {
                    txs.push(Tx {
                        gtid,
                        changes,
                        commit,
                    });
                }
                if total >= expected {
                    assert_eq!(total, expected, "more changes than written");
                    return txs;
                }
            }
            Some(Ok(SourceEvent::Idle { .. } | SourceEvent::Ddl { .. })) => {}
        }
    }
}

/// All changes of `txs`, in order.
pub fn changes(txs: &[Tx]) -> Vec<RowChange> {
    txs.iter().flat_map(|t| t.changes.clone()).collect()
}

/// A TCP proxy in front of a server that can be frozen: while frozen it forwards nothing
/// from the server, like a network that silently stopped delivering.
pub struct FreezableProxy {
    pub port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: std::net::SocketAddr) -> FreezableProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0_u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if flag.load(Ordering::SeqCst) {
                            // Swallow everything from now on.
                            continue;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FreezableProxy { port, frozen }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

/// `host:port` of a mysql:// URL.
pub fn socket_addr(url: &str) -> std::net::SocketAddr {
    let opts = Opts::from_url(url).unwrap();
    format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port())
        .parse()
        .unwrap()
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
pub fn via_port(url: &str, port: u16) -> String {
    let opts = Opts::from_url(url).unwrap();
    let user = opts.user().unwrap_or("root");
    match opts.pass() {
        Some(pass) => format!("mysql://{user}:{pass}@127.0.0.1:{port}"),
        None => format!("mysql://{user}@127.0.0.1:{port}"),
    }
}

/// Polls `cond` every 10 ms until it holds or the deadline passes.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Purges the server's binlogs before `keep`, and waits (with a deadline) until `gone` is
/// no longer listed. MariaDB does not purge a file a binlog dump thread still reads, and a
/// replicator killed by an earlier test can leave one behind until the server notices; the
/// scratch server belongs to one test at a time, so such threads are ended here.
pub async fn purge_binlogs_to(conn: &mut mysql_async::Conn, keep: &str, gone: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        conn.query_drop(format!("PURGE BINARY LOGS TO '{keep}'"))
            .await
            .unwrap();
        let logs: Vec<String> = conn
            .query("SHOW BINARY LOGS")
            .await
            .unwrap()
            .into_iter()
            .map(|row: mysql_async::Row| row.get::<String, _>(0).unwrap_or_default())
            .collect();
        if !logs.iter().any(|f| f == gone) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{gone} is still listed after PURGE BINARY LOGS TO '{keep}': {logs:?}"
        );
        let dumps: Vec<u64> = conn
            .query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            )
            .await
            .unwrap();
        for id in dumps {
            let _ = conn.query_drop(format!("KILL {id}")).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
