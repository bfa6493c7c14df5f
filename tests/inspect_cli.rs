//! `strata inspect` end to end: the binary against both real servers, JSON lines checked
//! field by field.
#![allow(clippy::unwrap_used)] // tests may unwrap

use mysql_async::prelude::Queryable;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh (or eval \"$(scripts/services.sh env)\")")
    })
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn server_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    (3_000_000 + (std::process::id() % 10_000) * 100 + N.fetch_add(1, Ordering::Relaxed))
        .to_string()
}

fn strata(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(args)
        .env("STRATA_LOG", "warn")
        .env_remove("STRATA_SOURCE_URL");
    cmd
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = strata(args).output().expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn connect(url: &str) -> mysql_async::Conn {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    conn.query_drop("SET SESSION time_zone = '+00:00'")
        .await
        .unwrap();
    conn
}

/// The binlog end as FILE:POS.
async fn binlog_end(conn: &mut mysql_async::Conn, mysql: bool) -> String {
    let statement = if mysql {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    };
    let row: mysql_async::Row = conn.query_first(statement).await.unwrap().unwrap();
    let file: String = row.get(0).unwrap();
    let pos: u64 = row.get(1).unwrap();
    format!("{file}:{pos}")
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

async fn inspect_prints_envelopes(server: &str, url: &str) {
    let mysql = server == "mysql";
    let mut conn = connect(url).await;
    let schema = unique("strata_t_cli");
    conn.query_drop(format!("CREATE DATABASE {schema}"))
        .await
        .unwrap();
    conn.query_drop(format!("USE {schema}")).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, d DECIMAL(10,2), s VARCHAR(20), j JSON, b VARBINARY(4), f FLOAT, ts TIMESTAMP(3) NULL, big BIGINT UNSIGNED)")
        .await
        .unwrap();
    let from = binlog_end(&mut conn, mysql).await;
    let json = if mysql {
        "JSON_OBJECT('a', CAST('1.50' AS DECIMAL(4,2)))"
    } else {
        r#"'{"a": 1.50}'"#
    };
    conn.query_drop(format!("INSERT INTO t VALUES (1, 12.30, 'héllo', {json}, x'00ff', 1.1, '2024-01-02 03:04:05.678', 18446744073709551615)"))
        .await
        .unwrap();
    conn.query_drop("UPDATE t SET d = 13.30 WHERE id = 1")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM t WHERE id = 1").await.unwrap();

    let sid = server_id();
    let (code, stdout, stderr) = run(&[
        "inspect",
        "--source",
        url,
        "--from",
        &from,
        "--include",
        &schema,
        "--server-id",
        &sid,
    ]);
    assert_eq!(code, 0, "{server}: {stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 3, "{server}: {stdout}");
    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["c", "u", "d"]);
    let c = &lines[0];
    assert_eq!(c["source"]["schema"], schema.as_str());
    assert_eq!(c["source"]["table"], "t");
    assert!(c["source"]["file"].as_str().unwrap().starts_with("binlog."));
    assert!(c["source"]["pos"].as_u64().unwrap() > 4);
    assert!(
        c["source"]["gtid"].is_string(),
        "{server}: GTID {}",
        c["source"]["gtid"]
    );
    assert!(c["source"]["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(c["before"].is_null());
    assert_eq!(c["after"]["d"], "12.30");
    assert_eq!(c["after"]["s"], "héllo");
    assert_eq!(c["after"]["b"], "AP8=");
    assert_eq!(c["after"]["ts"], "2024-01-02T03:04:05.678000Z");
    assert_eq!(c["key"], serde_json::json!({"id": 1}));
    assert_eq!(lines[1]["before"]["d"], "12.30");
    assert_eq!(lines[1]["after"]["d"], "13.30");
    assert!(lines[2]["after"].is_null());
    assert_eq!(lines[2]["before"]["d"], "13.30");
    // Exactness that a JSON parser would hide: column order, FLOAT as written, u64 max,
    // and the decimal inside MySQL's JSON.
    let raw = stdout.lines().next().unwrap();
    assert!(
        raw.contains(r#""after":{"id":1,"d":"12.30","s":"héllo","#),
        "{raw}"
    );
    assert!(raw.contains(r#""f":1.1,"#), "{raw}");
    assert!(raw.contains(r#""big":18446744073709551615"#), "{raw}");
    assert!(raw.contains(r#""j":{"a":1.50}"#), "{raw}");

    // --limit stops early.
    let sid = server_id();
    let (code, stdout, stderr) = run(&[
        "inspect",
        "--source",
        url,
        "--from",
        &from,
        "--include",
        &schema,
        "--limit",
        "2",
        "--server-id",
        &sid,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 2);

    // --include of another table prints nothing.
    let other = format!("{schema}.nope");
    let sid = server_id();
    let (code, stdout, _) = run(&[
        "inspect",
        "--source",
        url,
        "--from",
        &from,
        "--include",
        &other,
        "--server-id",
        &sid,
    ]);
    assert_eq!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");

    conn.query_drop(format!("DROP DATABASE {schema}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_debezium_like_lines_mariadb() {
    inspect_prints_envelopes("mariadb", &env_url("STRATA_TEST_MARIADB_URL")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_prints_debezium_like_lines_mysql() {
    inspect_prints_envelopes("mysql", &env_url("STRATA_TEST_MYSQL_URL")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_follow_prints_new_changes_as_they_commit() {
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut conn = connect(&url).await;
    let schema = unique("strata_t_follow");
    conn.query_drop(format!("CREATE DATABASE {schema}"))
        .await
        .unwrap();
    conn.query_drop(format!("CREATE TABLE {schema}.t (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let sid = server_id();
    let mut child = strata(&[
        "inspect",
        "--source",
        &url,
        "--follow",
        "--include",
        &schema,
        "--server-id",
        &sid,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Insert until one arrives: the stream may start after the first insert.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 0;
    let line = loop {
        assert!(Instant::now() < deadline, "no line from inspect --follow");
        id += 1;
        conn.query_drop(format!("INSERT INTO {schema}.t VALUES ({id})"))
            .await
            .unwrap();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            break line.unwrap();
        }
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["op"], "c");
    assert_eq!(v["source"]["schema"], schema.as_str());
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "--follow must keep running"
    );
    let _ = child.kill();
    let _ = child.wait();
    conn.query_drop(format!("DROP DATABASE {schema}"))
        .await
        .unwrap();
}

#[test]
fn inspect_help_teaches_with_examples() {
    let (code, stdout, _) = run(&["inspect", "--help"]);
    assert_eq!(code, 0);
    for needle in [
        "--from",
        "--include",
        "--follow",
        "--limit",
        "Examples:",
        "FILE:POS",
        "jq",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}:\n{stdout}");
    }
}

#[test]
fn bad_arguments_exit_2_with_the_expected_form() {
    let (code, stdout, stderr) = run(&[
        "inspect",
        "--source",
        "mysql://root@127.0.0.1:1",
        "--from",
        "yesterday",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("FILE:POS"), "{stderr}");

    let (code, _, stderr) = run(&[
        "inspect",
        "--source",
        "mysql://root@127.0.0.1:1",
        "--include",
        "a.b.c",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SCHEMA.TABLE"), "{stderr}");
}
