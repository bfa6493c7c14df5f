//! Recovery from the source side: a replica connection the server drops mid-stream is
//! re-established from the checkpoint with nothing lost, and a checkpoint whose position
//! the server has purged stops start-up with a message and exit code 2.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use mysql_async::prelude::Queryable;
use std::time::Duration;
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::workload::{RandomWriter, ITEMS};
use support::{env_url, run_cmd, unique, wait_for, Strata};

/// The ids of the binlog dump threads on the server at `url`. Only this file's tests
/// stream from the scratch server (test binaries run one after another), so every dump
/// thread there is strata's.
async fn dump_threads(url: &str) -> Vec<u64> {
    let mut conn = support::mysql(url).await;
    conn.query("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_source_connection_is_resumed_from_the_checkpoint() {
    let targets = Targets::connect().await;
    // The scratch server: killing its dump threads disturbs no other test's stream.
    let url = env_url("STRATA_TEST_MARIADB_SCRATCH_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("e2e_reconnect");
    source.create_schema(&schema, &[ITEMS]).await;
    let ns = Namespace::new("e2e_reconnect", 1).only(&[Store::Redis, Store::Postgres]);
    let spec = VersionSpec::new("v", &[&schema], ns.clone());
    let mut strata = Strata::with_config("reconnect", &config_toml(&url, &[spec]));
    strata.spawn(&["--version", "v"]);
    strata.wait_started(&["v"]).await;

    let mut writer = RandomWriter::new(&schema, 7);
    for _ in 0..20 {
        writer.write(&mut source).await;
    }
    strata.wait_caught_up(&["v"], &mut source).await;

    // The server drops the replica: kill every binlog dump thread serving it.
    let before = dump_threads(&url).await;
    assert!(!before.is_empty(), "strata's dump thread is on the server");
    let mut admin = support::mysql(&url).await;
    for id in &before {
        let _ = admin.query_drop(format!("KILL {id}")).await;
    }
    // Writes while (and after) the connection is gone must all arrive.
    for _ in 0..30 {
        writer.write(&mut source).await;
    }
    // A new dump thread appears: strata reconnected by itself.
    wait_for(
        "strata to open a new dump thread",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            let before = before.clone();
            async move {
                let now = dump_threads(&url).await;
                Ok(now.iter().any(|id| !before.contains(id)).then_some(()))
            }
        },
    )
    .await;
    strata.wait_caught_up(&["v"], &mut source).await;
    targets
        .assert_equal(&ns, &source.tables(&schema, &["items"]).await)
        .await;
    strata.assert_running();
    assert!(
        strata.log_text().contains("resuming from the checkpoint"),
        "the reconnect is logged"
    );
    assert_eq!(strata.terminate(), Some(0));
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_the_server_has_purged_stops_start_up_with_exit_code_2() {
    let url = env_url("STRATA_TEST_MARIADB_SCRATCH_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("e2e_purged");
    source.create_schema(&schema, &[ITEMS]).await;
    let ns = Namespace::new("e2e_purged", 2).only(&[Store::Redis]);
    let spec = VersionSpec::new("v", &[&schema], ns.clone());
    let strata = Strata::with_config("purged", &config_toml(&url, &[spec]));

    // A checkpoint in a binlog file the server no longer has.
    let old = source.binlog_end().await;
    source.run("FLUSH BINARY LOGS").await;
    source
        .run(format!(
            "INSERT INTO {schema}.items VALUES (1, 'a', 1, 1.00, NULL)"
        ))
        .await;
    let now = source.binlog_end().await;
    wait_for(
        "the old binlog to be purged",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            let (old_file, now_file) = (old.file.clone(), now.file.clone());
            async move {
                let mut conn = support::mysql(&url).await;
                let _ = conn
                    .query_drop(format!("PURGE BINARY LOGS TO '{now_file}'"))
                    .await;
                let files: Vec<(String, u64)> = conn
                    .query("SHOW BINARY LOGS")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((!files.iter().any(|(f, _)| *f == old_file)).then_some(()))
            }
        },
    )
    .await;
    let dir = strata.data_dir().join("v");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("checkpoint.json"),
        format!(
            r#"{{"position":{{"file":"{}","pos":{}}},"gtid_set":null,"commit_ts_ms":0,"written_at_ms":0,"format":1}}"#,
            old.file, old.pos
        ),
    )
    .unwrap();

    let config = strata.config.to_str().unwrap().to_owned();
    let (code, _out, err) =
        run_cmd(strata.command(&["run", "--config", &config, "--version", "v"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("checkpoint"), "names the checkpoint: {err}");
    assert!(err.contains("purged"), "says it was purged: {err}");
    assert!(err.contains(&old.file), "names the purged position: {err}");
    source.drop_schema(&schema).await;
}
