//! `strata lag --follow`: under a pseudo-terminal it redraws a live view with the expected
//! fields; piped, it prints one `key=value` line per interval; exit code 1 when the
//! replicator cannot be reached.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod ops_support;

use ops_support::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VERSION: &str = "viewv";

/// A running version with a row applied; returns the test's strata and its source schema.
async fn running_version(name: &str, db: u8) -> (Strata, SourceSchema) {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), name).await;
    let mut strata = Strata::with_config(
        name,
        &redis_config(
            &source.url,
            &source.name,
            VERSION,
            &env_url("STRATA_TEST_REDIS_URL"),
            db,
            "300s",
        ),
    );
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;
    source.insert(1..=1).await;
    (strata, source)
}

/// Collects a child's stdout in the background.
struct Output {
    child: Child,
    text: Arc<Mutex<Vec<u8>>>,
}

impl Output {
    fn spawn(mut cmd: Command) -> Output {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Output { child, text }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Waits until `done(text)` or the deadline, then stops the child; returns the text.
    async fn until(mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        while !done(&self.text()) && Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("exited early ({status}): {err}\n{}", self.text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.text()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_follow_on_a_terminal_redraws_the_live_view() {
    let (strata, source) = running_version("ops_view_tty", 10).await;
    let bin = env!("CARGO_BIN_EXE_strata");
    let command = format!(
        "{bin} lag --config {} --version {VERSION} --follow --interval 300ms",
        strata.config.display()
    );
    // util-linux `script` runs the command with a pseudo-terminal as its stdout.
    let mut cmd = Command::new("script");
    cmd.args(["-qfc", &command, "/dev/null"])
        .env("NO_COLOR", "1");
    const CLEAR: &str = "\x1b[H\x1b[2J";
    let text = Output::spawn(cmd)
        .until(Duration::from_secs(20), |t| t.matches(CLEAR).count() >= 4)
        .await;
    let frames: Vec<&str> = text.split(CLEAR).filter(|f| !f.trim().is_empty()).collect();
    assert!(
        frames.len() >= 3,
        "the view is redrawn each interval: {text:?}"
    );
    let last = frames[frames.len() - 2]; // the final one may be cut short by the kill
    for field in [
        &format!("version {VERSION}"),
        "lag",
        "behind",
        "row changes",
        "apply rate",
        "redis",
        "last minute",
        "applied",
        "checkpoint",
        "Ctrl-C to quit",
    ] {
        assert!(last.contains(field), "`{field}` in the view:\n{last}");
    }
    assert!(last.contains("/s"), "rates per second:\n{last}");
    assert!(
        last.chars().any(|c| ('▁'..='█').contains(&c)),
        "a sparkline of the last minute:\n{last}"
    );
    assert!(
        !text.contains("lag_seconds="),
        "not the piped form on a terminal"
    );
    source.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_follow_piped_prints_one_line_per_interval() {
    let (strata, source) = running_version("ops_view_pipe", 9).await;
    let config = strata.config.to_str().unwrap().to_owned();
    let started = Instant::now();
    let cmd = strata.command(&[
        "lag",
        "--config",
        &config,
        "--version",
        VERSION,
        "--follow",
        "--interval",
        "250ms",
    ]);
    let text = Output::spawn(cmd)
        .until(Duration::from_secs(20), |t| t.lines().count() >= 6)
        .await;
    let elapsed = started.elapsed();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 6, "{text}");
    // One line per interval: six lines take at least five intervals.
    assert!(
        elapsed >= Duration::from_millis(5 * 250),
        "{elapsed:?} for {} lines",
        lines.len()
    );
    assert!(
        !text.contains('\x1b'),
        "no terminal escapes when piped: {text:?}"
    );
    for line in &lines {
        let pairs: Vec<(&str, &str)> = line
            .split(' ')
            .map(|kv| {
                kv.split_once('=')
                    .unwrap_or_else(|| panic!("`{kv}` in `{line}`"))
            })
            .collect();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "time",
                "version",
                "state",
                "lag_seconds",
                "caught_up",
                "behind_bytes",
                "rows_per_second",
                "redis_writes_per_second"
            ],
            "{line}"
        );
        assert_eq!(pairs[1].1, VERSION);
        assert!(pairs[3].1.parse::<f64>().is_ok(), "lag seconds in `{line}`");
        assert!(["true", "false"].contains(&pairs[4].1), "{line}");
    }
    // Rates need two readings: the first line has none, the next ones do.
    assert!(lines[0].contains("rows_per_second=-"), "{}", lines[0]);
    assert!(
        lines[1].split(' ').any(|kv| kv
            .strip_prefix("rows_per_second=")
            .is_some_and(|v| v.parse::<f64>().is_ok())),
        "{}",
        lines[1]
    );
    source.drop_schema().await;
}

#[tokio::test]
async fn lag_exits_1_when_the_replicator_cannot_be_reached() {
    let source_url = env_url("STRATA_TEST_MARIADB_URL");
    let strata = Strata::with_config(
        "ops_view_down",
        &redis_config(
            &source_url,
            "ops_view_down_never",
            VERSION,
            &env_url("STRATA_TEST_REDIS_URL"),
            8,
            "300s",
        ),
    );
    let config = strata.config.to_str().unwrap().to_owned();
    // Never started.
    let out = strata
        .command(&["lag", "--config", &config, "--version", VERSION])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not running") && err.contains("strata run"),
        "{err}"
    );

    // Recorded as running, but nothing answers there any more.
    let dir = strata.data_dir().join(VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("replicator.json"),
        format!(r#"{{"pid": 1, "http": "127.0.0.1:{port}", "started_at_ms": 1, "stopped_at_ms": null, "error": null}}"#),
    )
    .unwrap();
    let out = strata
        .command(&["lag", "--config", &config, "--version", VERSION, "--follow"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the replicator"), "{err}");
}
