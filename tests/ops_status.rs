//! `strata status` shows running, failing, stopped and failed versions correctly: running
//! ones answer over their endpoint, stopped ones are read from their checkpoint files.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod ops_support;

use ops_support::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn version(name: &str, schema: &str, redis: &str) -> String {
    format!(
        r#"
[versions.{name}]
server_id = {server_id}
schemas = ["{schema}"]

[versions.{name}.redis]
{redis}
key_prefix = "{schema}:"
"#,
        server_id = unique_server_id(),
    )
}

/// `strata status` rows by version: (state, position, checkpoint, whole line).
fn rows(table: &str) -> BTreeMap<String, (String, String, String, String)> {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("VERSION") && header.contains("STATE") && header.contains("LAST ERROR"),
        "{table}"
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (
                cells[0].to_owned(),
                (
                    cells[1].to_owned(),
                    cells[2].to_owned(),
                    cells[3].to_owned(),
                    line.to_owned(),
                ),
            )
        })
        .collect()
}

fn is_position(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(file, pos)| file.contains('.') && pos.parse::<u64>().is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_running_failing_stopped_and_failed_versions() {
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let schemas = [
        SourceSchema::create(&url, "ops_status_run").await,
        SourceSchema::create(&url, "ops_status_fail").await,
        SourceSchema::create(&url, "ops_status_stop").await,
        SourceSchema::create(&url, "ops_status_kill").await,
    ];
    // Nothing listens on this port: the failing version retries its Redis target forever.
    let dead_redis = format!("redis://127.0.0.1:{}", free_port());
    let config = format!(
        r#"
[source]
url = "{url}"
tls = {{ mode = "disabled" }}
heartbeat = "1s"
read_timeout = "10s"

[servers]
redis = {{ url = "{redis}" }}

[defaults]
data_dir = "{{data_dir}}"
{runv}{failv}{stopv}{killv}"#,
        redis = env_url("STRATA_TEST_REDIS_URL"),
        runv = version("runv", &schemas[0].name, "db = 13"),
        failv = version(
            "failv",
            &schemas[1].name,
            &format!("db = 0\nurl = \"{dead_redis}\"")
        ),
        stopv = version("stopv", &schemas[2].name, "db = 14"),
        killv = version("killv", &schemas[3].name, "db = 15"),
    );
    let mut strata = Strata::with_config("ops_status", &config);
    for v in ["runv", "failv", "stopv", "killv"] {
        strata.start(v);
    }
    let client = http();
    for v in ["runv", "stopv", "killv"] {
        let addr = strata.address(v).await;
        wait_caught_up(&client, addr, Duration::from_secs(60)).await;
    }
    schemas[2].insert(1..=2).await;
    let stop_addr = strata.address("stopv").await;
    wait_for(
        "stopv to apply its rows",
        Duration::from_secs(30),
        || async {
            let s = status(&client, stop_addr).await?;
            Ok((s["sinks"][0]["applied"].as_u64() == Some(2)).then_some(()))
        },
    )
    .await;
    assert_eq!(strata.stop("stopv"), Some(0));
    strata.kill("killv");
    let fail_addr = strata.address("failv").await;
    let failing = wait_for(
        "failv to report its Redis target down",
        Duration::from_secs(60),
        || async {
            let s = status(&client, fail_addr).await?;
            if s["state"] == "failing" {
                Ok(Some(s))
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    assert_eq!(failing["phase"], "connecting_targets", "{failing}");
    assert_eq!(failing["sinks"][0]["state"], "connecting", "{failing}");
    let (code, _) = get(&client, fail_addr, "/health/ready").await.unwrap();
    assert_eq!(code, 503);
    let (code, _) = get(&client, fail_addr, "/health/live").await.unwrap();
    assert_eq!(code, 200, "retrying is alive");

    let config_path = strata.config.to_str().unwrap().to_owned();
    let out = strata
        .command(&["status", "--config", &config_path])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{table}");
    let rows = rows(&table);
    assert_eq!(rows.len(), 4, "{table}");

    let (state, position, checkpoint, line) = &rows["runv"];
    assert_eq!(state, "running", "{table}");
    assert!(is_position(position) && is_position(checkpoint), "{table}");
    assert!(line.trim_end().ends_with(" -"), "no error: {table}");

    let (state, _, _, line) = &rows["failv"];
    assert_eq!(state, "failing", "{table}");
    assert!(
        line.contains("target redis"),
        "the error names the target: {table}"
    );

    let (state, position, checkpoint, line) = &rows["stopv"];
    assert_eq!(state, "stopped", "{table}");
    assert!(
        is_position(checkpoint),
        "the checkpoint file is read: {table}"
    );
    assert_eq!(
        position, checkpoint,
        "stopped: applied up to its checkpoint: {table}"
    );
    assert!(
        line.trim_end().ends_with(" -"),
        "a clean stop is no error: {table}"
    );

    let (state, _, checkpoint, line) = &rows["killv"];
    assert_eq!(state, "failed", "{table}");
    assert!(is_position(checkpoint), "{table}");
    assert!(line.contains("without stopping cleanly"), "{table}");

    // The JSON form carries the same states, and the whole status documents.
    let out = strata
        .command(&["status", "--config", &config_path, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let states: BTreeMap<String, String> = docs
        .iter()
        .map(|d| {
            (
                d["version"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("failv", "failing"),
            ("killv", "failed"),
            ("runv", "running"),
            ("stopv", "stopped")
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect::<BTreeMap<_, _>>()
    );
    let stopped = docs.iter().find(|d| d["version"] == "stopv").unwrap();
    assert!(
        stopped["checkpoint"]["commit_ts_ms"].as_u64().unwrap() > 0,
        "{stopped}"
    );
    assert!(
        stopped["lag"]["bytes"].is_u64(),
        "measured against the source's end: {stopped}"
    );

    // One version only.
    let out = strata
        .command(&["status", "--config", &config_path, "--version", "runv"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(rows_of(&table), vec!["runv".to_owned()], "{table}");

    for s in &schemas {
        s.drop_schema().await;
    }
}

fn rows_of(table: &str) -> Vec<String> {
    rows(table).into_keys().collect()
}
