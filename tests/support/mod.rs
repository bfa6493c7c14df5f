//! Shared support for strata's end-to-end tests: server URLs, unique namespaces, the source
//! database, running the `strata` binary, waiting on conditions, and reading each target.
#![allow(dead_code)]

mod env;
// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use env::{env_url, install_tls_provider, unique, wait_for};

pub mod config;
pub mod json_text;
pub mod matrix;
pub mod source;
pub mod targets;
pub mod workload;

use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One row in a comparable form: column name → the value's text; NULL columns are absent.
pub type Row = BTreeMap<String, String>;
/// A table's rows by key id (the key column's text).
pub type Rows = BTreeMap<String, Row>;

/// A server_id no other test run uses (replica ids must be unique per source server).
pub fn unique_server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    100_000 + (std::process::id() % 10_000) * 100 + N.fetch_add(1, Ordering::Relaxed)
}

pub async fn mysql(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// Runs each statement in order on `conn`.
pub async fn exec(conn: &mut mysql_async::Conn, statements: &[&str]) {
    for s in statements {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// A `strata` process with its own data directory and config file.
pub struct Strata {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    /// The binary to run: this package's (the benchmark may point it at another build).
    pub bin: PathBuf,
    /// `STRATA_LOG` for the process.
    pub log_filter: String,
    log: PathBuf,
}

impl Strata {
    /// Writes `config_toml` (which may use `{data_dir}`) into a fresh directory.
    pub fn with_config(name: &str, config_toml: &str) -> Strata {
        let dir = std::env::temp_dir().join(unique(&format!("strata_{name}")));
        std::fs::create_dir_all(&dir).expect("create test dir");
        let config = dir.join("strata.toml");
        let toml = config_toml.replace("{data_dir}", &dir.join("data").to_string_lossy());
        std::fs::write(&config, toml).expect("write config");
        let log = dir.join("strata.log");
        Strata {
            dir,
            config,
            child: None,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_strata")),
            log_filter: "info,strata=debug".into(),
            log,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env("STRATA_LOG", &self.log_filter);
        cmd
    }

    /// Starts `strata run --config <config> <args…>` in the background, logging to a file.
    pub fn spawn(&mut self, args: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let mut all = vec!["run", "--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strata");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().ok().and_then(|s| s.code())
    }

    /// The process's exit code if it has exited.
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        let c = self.child.as_mut()?;
        c.try_wait().ok().flatten().map(|s| s.code())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- strata log ({}) ---\n{}",
                self.log.display(),
                tail(&self.log_text(), 80)
            );
        } else {
            // Kept after a failure (log, checkpoint); removed after a success.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Runs a finished `strata` command, returning (exit code, stdout, stderr).
pub fn run_cmd(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// How long a replicator may take to catch up with a small workload (debug build, two
/// cores shared with the rest of the suite).
pub const CATCH_UP: Duration = Duration::from_secs(90);

impl Strata {
    /// `<data_dir>/<version>/checkpoint.json`.
    pub fn checkpoint_path(&self, version: &str) -> PathBuf {
        self.data_dir().join(version).join("checkpoint.json")
    }

    /// The version's checkpoint position, if it has one.
    pub fn checkpoint(&self, version: &str) -> Option<source::Pos> {
        source::Pos::from_checkpoint_file(&self.checkpoint_path(version))
    }

    /// Fails the test, with the log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(code) = self.try_exit_code() {
            panic!(
                "strata exited early with {code:?}; log:\n{}",
                tail(&self.log_text(), 60)
            );
        }
    }

    /// Waits until every version has written its start position (the replicator does so
    /// before it streams), so changes written from now on are read.
    pub async fn wait_started(&mut self, versions: &[&str]) {
        let deadline = Instant::now() + CATCH_UP;
        for version in versions {
            while self.checkpoint(version).is_none() {
                self.assert_running();
                assert!(
                    Instant::now() < deadline,
                    "version {version} wrote no checkpoint within {CATCH_UP:?}; log:\n{}",
                    tail(&self.log_text(), 60)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Waits until every version's checkpoint reaches the source's binlog end as it is now:
    /// everything written before this call is then durable in every target.
    ///
    /// A checkpoint only moves at commits, and the binlog may end with another test's DDL,
    /// so a one-row heartbeat transaction is committed after reading the end.
    pub async fn wait_caught_up(&mut self, versions: &[&str], source: &mut source::Source) {
        let end = source.binlog_end().await;
        source.beat().await;
        let deadline = Instant::now() + CATCH_UP;
        for version in versions {
            loop {
                let at = self.checkpoint(version);
                if at.as_ref().is_some_and(|p| *p >= end) {
                    break;
                }
                self.assert_running();
                assert!(
                    Instant::now() < deadline,
                    "version {version}: checkpoint {at:?} did not reach the binlog end {end} within {CATCH_UP:?}; log:\n{}",
                    tail(&self.log_text(), 60)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A TCP port free on loopback right now (for a version's `http` endpoint).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The sum of a Prometheus counter's samples whose labels include every `labels` pair,
/// from `GET http://127.0.0.1:<port>/metrics`; `None` when nothing answers there.
pub async fn metric_sum(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        {
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    Some(sum)
}
