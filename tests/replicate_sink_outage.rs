//! A target outage stays inside its version: version A writes to a private Redis (and
//! PostgreSQL), version B to the shared Redis (and PostgreSQL), both in one `strata run
//! --all`. A's Redis is killed mid-stream: B keeps replicating (its checkpoint reaches the
//! binlog end and its targets equal its schema) while A's checkpoint stays behind. A's
//! Redis comes back on the same port with its data (append-only file, fsync always), and
//! A catches up with nothing lost.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::workload::{RandomWriter, ITEMS};
use support::{env_url, free_port, unique, wait_for, Strata};

/// A redis-server of this test's own, persisting every write before acknowledging it.
struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    async fn start(port: u16, dir: &Path) -> PrivateRedis {
        std::fs::create_dir_all(dir).unwrap();
        let mut redis = PrivateRedis {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and directory; waits until it answers.
    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/services.sh");
        self.child = Some(child);
        let url = self.url();
        wait_for(
            "the private Redis to answer",
            Duration::from_secs(20),
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
                    let Ok(mut con) = client.get_multiplexed_async_connection().await else {
                        return Ok(None);
                    };
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut con).await;
                    Ok(pong.ok().map(|_| ()))
                }
            },
        )
        .await;
    }

    /// SIGKILL: the server is gone at once.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_versions_redis_outage_does_not_stop_another() {
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema_a = unique("e2e_outage_a");
    let schema_b = unique("e2e_outage_b");
    source.create_schema(&schema_a, &[ITEMS]).await;
    source.create_schema(&schema_b, &[ITEMS]).await;

    let redis_dir = std::env::temp_dir().join(unique("strata_private_redis"));
    let mut private = PrivateRedis::start(free_port(), &redis_dir).await;
    let mut ns_a = Namespace::new("e2e_outage_a", 0).only(&[Store::Redis, Store::Postgres]);
    ns_a.redis_url = Some(private.url());
    let ns_b = Namespace::new("e2e_outage_b", 6).only(&[Store::Redis, Store::Postgres]);
    let specs = [
        VersionSpec::new("a", &[&schema_a], ns_a.clone()),
        VersionSpec::new("b", &[&schema_b], ns_b.clone()),
    ];
    let mut strata = Strata::with_config("outage", &config_toml(&url, &specs));
    strata.spawn(&["--all"]);
    strata.wait_started(&["a", "b"]).await;

    let mut writer_a = RandomWriter::new(&schema_a, 1);
    let mut writer_b = RandomWriter::new(&schema_b, 2);
    for _ in 0..20 {
        writer_a.write(&mut source).await;
        writer_b.write(&mut source).await;
    }
    strata.wait_caught_up(&["a", "b"], &mut source).await;
    targets
        .assert_equal(&ns_a, &source.tables(&schema_a, &["items"]).await)
        .await;

    // A's Redis goes away mid-stream; both schemas keep changing, and B catches up twice
    // while A cannot.
    private.kill();
    let a_before = strata.checkpoint("a").unwrap();
    for _round in 0..2 {
        for _ in 0..30 {
            writer_a.write(&mut source).await;
            writer_b.write(&mut source).await;
        }
        let end = source.binlog_end().await;
        strata.wait_caught_up(&["b"], &mut source).await;
        targets
            .assert_equal(&ns_b, &source.tables(&schema_b, &["items"]).await)
            .await;
        let a_at = strata.checkpoint("a").unwrap();
        assert!(
            a_at < end,
            "A's checkpoint {a_at} passed {end} with its Redis down"
        );
        // A may only have finished what its Redis acknowledged before the kill.
        assert!(a_at >= a_before);
        strata.assert_running();
    }

    // A's Redis returns with its data; A catches up on everything since its checkpoint.
    private.restart().await;
    for _ in 0..10 {
        writer_a.write(&mut source).await;
        writer_b.write(&mut source).await;
    }
    strata.wait_caught_up(&["a", "b"], &mut source).await;
    targets
        .assert_equal(&ns_a, &source.tables(&schema_a, &["items"]).await)
        .await;
    targets
        .assert_equal(&ns_b, &source.tables(&schema_b, &["items"]).await)
        .await;

    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns_a).await;
    targets.cleanup(&ns_b).await;
    source.drop_schema(&schema_a).await;
    source.drop_schema(&schema_b).await;
}
