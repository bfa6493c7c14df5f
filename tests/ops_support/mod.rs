//! Support for the operations tests (`tests/ops_*.rs`): server URLs, unique namespaces, a
//! private Redis a test can stall, `strata run` processes and their endpoints, and waiting
//! on conditions with a deadline.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests may unwrap

use mysql_async::prelude::Queryable;
use serde_json::Value as Json;
#[path = "../support/env.rs"]
mod env;
// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use env::{env_url, install_tls_provider, unique, wait_for};

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A replica server_id no other test run uses on the same source.
pub fn unique_server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    // A range apart from tests/support's (100_000 + …) so both can run at once.
    2_000_000 + (std::process::id() % 100_000) * 20 + N.fetch_add(1, Ordering::Relaxed)
}

/// A free TCP port on loopback (bound and released; good enough for a test's own server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A schema of the source server that the test owns, dropped at the end.
pub struct SourceSchema {
    pub url: String,
    pub name: String,
}

impl SourceSchema {
    /// Creates schema `<prefix>_<pid>_<n>` with table `items (id INT PRIMARY KEY, v
    /// VARCHAR(64))`.
    pub async fn create(url: &str, prefix: &str) -> SourceSchema {
        let name = unique(prefix);
        let mut conn = mysql(url).await;
        exec(
            &mut conn,
            &[
                &format!("DROP DATABASE IF EXISTS {name}"),
                &format!("CREATE DATABASE {name}"),
                &format!("CREATE TABLE {name}.items (id INT PRIMARY KEY, v VARCHAR(64))"),
            ],
        )
        .await;
        SourceSchema {
            url: url.to_owned(),
            name,
        }
    }

    pub async fn exec(&self, statements: &[String]) {
        let mut conn = mysql(&self.url).await;
        let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
        exec(&mut conn, &refs).await;
    }

    /// Inserts rows `ids` with value `v<id>`.
    pub async fn insert(&self, ids: std::ops::RangeInclusive<u32>) {
        let values: Vec<String> = ids.map(|i| format!("({i}, 'v{i}')")).collect();
        self.exec(&[format!(
            "INSERT INTO {}.items VALUES {}",
            self.name,
            values.join(",")
        )])
        .await;
    }

    pub async fn drop_schema(&self) {
        let mut conn = mysql(&self.url).await;
        let _ = conn
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.name))
            .await;
    }
}

/// A redis-server of the test's own, on a free port, that the test can stall and resume.
pub struct PrivateRedis {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("strata_ops_redis"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services.sh installs it)");
        let redis = PrivateRedis { port, child, dir };
        let url = redis.url();
        wait_for(
            "the private redis-server to answer",
            Duration::from_secs(10),
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
                    match client.get_multiplexed_async_connection().await {
                        Ok(_) => Ok(Some(())),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGSTOP: the server accepts connections (the kernel does) but answers nothing.
    pub fn stall(&self) {
        signal(self.child.id(), "STOP");
    }

    /// SIGCONT: the server answers again, including what it was sent while stalled.
    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }

    /// The hash fields of `key` in DB `db`.
    pub async fn hash(&self, db: u8, key: &str) -> std::collections::HashMap<String, String> {
        let client = redis::Client::open(format!("{}/{db}", self.url())).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `SIG<name>` to `pid`.
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{name} {pid} failed");
}

/// A test's own strata directory, config file and `strata run` processes.
pub struct Strata {
    pub dir: PathBuf,
    pub config: PathBuf,
    children: Vec<(String, Child)>,
}

impl Strata {
    /// Writes `config_toml` (which may use `{data_dir}`) into a fresh directory.
    pub fn with_config(name: &str, config_toml: &str) -> Strata {
        let dir = std::env::temp_dir().join(unique(&format!("strata_{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("strata.toml");
        let toml = config_toml.replace("{data_dir}", &dir.join("data").to_string_lossy());
        std::fs::write(&config, toml).unwrap();
        Strata {
            dir,
            config,
            children: Vec::new(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(args)
            .env("STRATA_LOG", "info,strata=debug")
            .env("NO_COLOR", "1")
            .current_dir(&self.dir);
        cmd
    }

    fn log_path(&self, version: &str) -> PathBuf {
        self.dir.join(format!("{version}.log"))
    }

    /// Starts `strata run --config <config> --version <version>` in the background.
    pub fn start(&mut self, version: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(version))
            .unwrap();
        let config = self.config.to_str().unwrap().to_owned();
        let child = self
            .command(&["run", "--config", &config, "--version", version])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strata");
        self.children.push((version.to_owned(), child));
    }

    /// SIGTERM to `version`'s process; waits for its exit code.
    pub fn stop(&mut self, version: &str) -> Option<i32> {
        let i = self.children.iter().position(|(v, _)| v == version)?;
        let (_, mut child) = self.children.remove(i);
        signal(child.id(), "TERM");
        child.wait().ok().and_then(|s| s.code())
    }

    /// SIGKILL to `version`'s process: no chance to record how it stopped.
    pub fn kill(&mut self, version: &str) {
        if let Some(i) = self.children.iter().position(|(v, _)| v == version) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self, version: &str) -> String {
        std::fs::read_to_string(self.log_path(version)).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The address `version`'s replicator recorded, once it has.
    pub async fn address(&self, version: &str) -> SocketAddr {
        let file = self.data_dir().join(version).join("replicator.json");
        wait_for(
            &format!(
                "{version}'s replicator to record its address in {}",
                file.display()
            ),
            Duration::from_secs(60),
            || {
                let file = file.clone();
                async move {
                    let text = match std::fs::read_to_string(&file) {
                        Ok(t) => t,
                        Err(e) => return Err(e.to_string()),
                    };
                    let doc: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    if !doc["stopped_at_ms"].is_null() {
                        return Err(format!("it stopped: {text}"));
                    }
                    Ok(doc["http"].as_str().and_then(|a| a.parse().ok()))
                }
            },
        )
        .await
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        for (version, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "--- strata log of {version} ---\n{}",
                    tail(&self.log_text(&version), 60)
                );
            }
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// An HTTP client for the replicator endpoints (no proxy).
pub fn http() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GET `http://<addr><path>`: (status code, body).
pub async fn get(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
) -> Result<(u16, String), String> {
    let response = client
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((code, body))
}

/// `/status` as JSON.
pub async fn status(client: &reqwest::Client, addr: SocketAddr) -> Result<Json, String> {
    let (code, body) = get(client, addr, "/status").await?;
    if code != 200 {
        return Err(format!("/status answered {code}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
}

/// Lag seconds from a status document (`None` when unknown).
pub fn lag_seconds(status: &Json) -> Option<f64> {
    status["lag"]["seconds"].as_f64()
}

/// Waits until the version is streaming and caught up.
pub async fn wait_caught_up(client: &reqwest::Client, addr: SocketAddr, timeout: Duration) -> Json {
    wait_for(
        "the version to be streaming and caught up",
        timeout,
        || async {
            let s = status(client, addr).await?;
            if s["phase"] == "streaming" && s["lag"]["caught_up"] == true {
                Ok(Some(s))
            } else {
                Err(s.to_string())
            }
        },
    )
    .await
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A one-version config reading `schema` from `source_url` into `redis_url` (DB `db`,
/// prefix `<schema>:`), heartbeats every second, lag alert at `lag_alert`.
pub fn redis_config(
    source_url: &str,
    schema: &str,
    version: &str,
    redis_url: &str,
    db: u8,
    lag_alert: &str,
) -> String {
    format!(
        r#"
[source]
url = "{source_url}"
tls = {{ mode = "disabled" }}
heartbeat = "1s"
read_timeout = "10s"

[servers]
redis = {{ url = "{redis_url}" }}

[defaults]
data_dir = "{{data_dir}}"
batch_max_delay = "10ms"

[versions.{version}]
server_id = {server_id}
schemas = ["{schema}"]
lag_alert = "{lag_alert}"

[versions.{version}.redis]
db = {db}
key_prefix = "{schema}:"
"#,
        server_id = unique_server_id(),
    )
}

/// Whether `path` exists (for readability in assertions).
pub fn exists(path: &Path) -> bool {
    path.exists()
}
