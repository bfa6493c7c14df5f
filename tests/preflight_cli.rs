//! Preflight through the binary: misconfigured servers give one line per problem with its
//! fix, and exit code 2.
#![allow(clippy::unwrap_used)] // tests may unwrap

use mysql_async::prelude::Queryable;
use std::process::Command;

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh (or eval \"$(scripts/services.sh env)\")")
    })
}

fn inspect(url: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["inspect", "--source", url])
        .args(extra)
        .env("STRATA_LOG", "warn")
        .output()
        .expect("run strata");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect()
}

#[test]
fn statement_binlog_format_exits_2_with_the_fix() {
    let (code, stdout, stderr) = inspect(&env_url("STRATA_TEST_MARIADB_STMT_URL"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    let lines = error_lines(&stderr);
    let line = lines
        .iter()
        .find(|l| l.contains("binlog_format"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("is STATEMENT"), "{line}");
    assert!(line.contains("SET GLOBAL binlog_format = 'ROW'"), "{line}");
}

#[test]
fn disabled_binlog_exits_2_with_the_fix() {
    let (code, stdout, stderr) = inspect(&env_url("STRATA_TEST_MARIADB_NOBINLOG_URL"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    let lines = error_lines(&stderr);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("log_bin=OFF") && l.contains("--log-bin")),
        "{stderr}"
    );
    // One line per failed check, nothing else.
    assert_eq!(lines.len(), stderr.lines().count(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_start_position_exits_2_with_the_fix() {
    let url = env_url("STRATA_TEST_MARIADB_SCRATCH_URL");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    let old_file: String = row.get(0).unwrap();
    let old_pos: u64 = row.get(1).unwrap();
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    let new_file: String = row.get(0).unwrap();
    purge_binlogs_to(&mut conn, &new_file, &old_file).await;

    let from = format!("{old_file}:{old_pos}");
    let (code, stdout, stderr) = inspect(&url, &["--from", &from]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&format!("{from} was purged")), "{stderr}");
    assert!(lines[0].contains("--from oldest"), "{stderr}");
}

#[test]
fn unreachable_server_is_a_runtime_failure_not_a_config_error() {
    let (code, _, stderr) = inspect("mysql://root@127.0.0.1:1", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot connect to the source 127.0.0.1:1"),
        "{stderr}"
    );
}

/// Purges the server's binlogs before `keep`, and waits (with a deadline) until `gone` is
/// no longer listed. MariaDB does not purge a file a binlog dump thread still reads, and a
/// replicator killed by an earlier test can leave one behind until the server notices; the
/// scratch server belongs to one test at a time, so such threads are ended here.
async fn purge_binlogs_to(conn: &mut mysql_async::Conn, keep: &str, gone: &str) {
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
