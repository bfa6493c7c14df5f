//! The type matrix backfilled: rows that exist before strata starts are copied by `strata
//! snapshot` into all four stores value for value, in each sink's documented form (checked
//! by `support::matrix`, independently of strata's own code), and `strata verify` finds the
//! targets equal to the source for every type — then, after `strata run` streams more
//! changes of the same rows, equal again.
//!
//! MariaDB 10.11 (JSON as text) and MySQL 9 (binary JSON, GTIDs) each run the matrix.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::config::{config_toml, VersionSpec};
use support::matrix;
use support::source::Source;
use support::targets::{Namespace, Targets};
use support::{env_url, path_str, run_cmd, unique, Strata};

fn strata_ok(strata: &Strata, args: &[&str]) -> String {
    let mut all = vec![
        args[0],
        "--config",
        path_str(&strata.config),
        "--version",
        "types",
    ];
    all.extend_from_slice(&args[1..]);
    let (code, stdout, stderr) = run_cmd(strata.command(&all));
    assert_eq!(code, 0, "strata {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

async fn snapshot_matrix(url_var: &str, tag: &str) {
    let targets = Targets::connect().await;
    let mut source = Source::connect(&env_url(url_var)).await;
    let schema = unique(tag);
    source
        .create_schema(&schema, &[&matrix::create_table()])
        .await;
    // The whole workload runs before strata exists: only a snapshot can bring these rows.
    let workload = matrix::workload(source.mysql);
    let half = workload.len() / 2;
    for statement in &workload[..half] {
        source.run(statement).await;
    }
    let ns = Namespace::new(tag, 2);
    let version = VersionSpec::new("types", &[&schema], ns.clone());
    let mut strata = Strata::with_config(tag, &config_toml(&source.url, &[version]));
    strata_ok(
        &strata,
        &["snapshot", "--progress", "none", "--chunk-rows", "2"],
    );

    let want = matrix::source_rows(&mut source, &schema).await;
    let mut problems = Vec::new();
    problems.extend(matrix::redis_differences(&targets, &ns, &want).await);
    problems.extend(matrix::mongo_differences(&targets, &ns, &want).await);
    problems.extend(matrix::search_differences(&targets, &ns, &want).await);
    problems.extend(matrix::pg_differences(&targets, &ns, &want).await);
    assert!(
        problems.is_empty(),
        "{} snapshot values differ from the source:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let stdout = strata_ok(&strata, &["verify"]);
    assert!(stdout.contains("no differences"), "{stdout}");

    // The rest of the workload streamed on top of the snapshot: still equal.
    strata.spawn(&["--version", "types"]);
    strata.wait_started(&["types"]).await;
    for statement in &workload[half..] {
        source.run(statement).await;
    }
    strata.wait_caught_up(&["types"], &mut source).await;
    let stdout = strata_ok(&strata, &["verify"]);
    assert!(stdout.contains("no differences"), "{stdout}");
    let want = matrix::source_rows(&mut source, &schema).await;
    let mut problems = Vec::new();
    problems.extend(matrix::redis_differences(&targets, &ns, &want).await);
    problems.extend(matrix::pg_differences(&targets, &ns, &want).await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_type_matrix_mariadb_into_every_sink() {
    snapshot_matrix("STRATA_TEST_MARIADB_URL", "snap_types_maria").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_type_matrix_mysql_into_every_sink() {
    snapshot_matrix("STRATA_TEST_MYSQL_URL", "snap_types_mysql").await;
}
