//! The type matrix end to end: a table with every MySQL type strata maps (integers of every
//! width, signed and unsigned, to BIGINT UNSIGNED's maximum; DECIMAL(65,30); FLOAT, DOUBLE;
//! DATE, DATETIME(6), TIMESTAMP(6), negative TIME(6), YEAR; utf8mb4 and latin1 text;
//! binary data with 0x00/0xff; ENUM, SET, BIT(64), JSON, GEOMETRY; an all-NULL row) is
//! written with inserts, updates and deletes while `strata run` streams it into all four
//! stores; then each store must hold every source row value for value, in the form its
//! sink documents (see `support::matrix`), and no deleted row.
//!
//! MariaDB 10.11 (JSON as text) and MySQL 9 (binary JSON, GTIDs) each run the matrix.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::config::{config_toml, VersionSpec};
use support::matrix;
use support::source::Source;
use support::targets::{Namespace, Targets};
use support::{env_url, unique, Strata};

async fn type_matrix(url_var: &str, tag: &str) {
    let targets = Targets::connect().await;
    let mut source = Source::connect(&env_url(url_var)).await;
    let schema = unique(tag);
    source
        .create_schema(&schema, &[&matrix::create_table()])
        .await;
    let ns = Namespace::new(tag, 1);
    let version = VersionSpec::new("types", &[&schema], ns.clone());
    let mut strata = Strata::with_config(tag, &config_toml(&source.url, &[version]));
    strata.spawn(&["--version", "types"]);
    strata.wait_started(&["types"]).await;

    for statement in matrix::workload(source.mysql) {
        source.run(statement).await;
    }
    strata.wait_caught_up(&["types"], &mut source).await;

    let want = matrix::source_rows(&mut source, &schema).await;
    assert_eq!(
        want.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 6, 7],
        "the workload left rows 1-4, 6 and 7 at the source"
    );
    let mut problems = Vec::new();
    problems.extend(matrix::redis_differences(&targets, &ns, &want).await);
    problems.extend(matrix::mongo_differences(&targets, &ns, &want).await);
    problems.extend(matrix::search_differences(&targets, &ns, &want).await);
    problems.extend(matrix::pg_differences(&targets, &ns, &want).await);
    assert!(
        problems.is_empty(),
        "{} values differ from the source:\n{}",
        problems.len(),
        problems.join("\n")
    );

    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_mariadb_into_every_sink() {
    type_matrix("STRATA_TEST_MARIADB_URL", "e2e_types_maria").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_mysql_into_every_sink() {
    type_matrix("STRATA_TEST_MYSQL_URL", "e2e_types_mysql").await;
}
