//! Isolation end to end: three versions replicate from one server in one process
//! (`strata run --all`) while transactions write to all three schemas and to a fourth
//! schema no version owns, some of them spanning every schema at once. Afterwards each
//! version's namespace in every store holds exactly its own schema's rows: no row, key,
//! collection, index or table of another version or of the unowned schema.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Targets};
use support::workload::{item_values, scripted, ITEMS, ORDERS};
use support::{env_url, unique, Strata};

const VERSIONS: [&str; 3] = ["alpha", "beta", "gamma"];

async fn three_versions_stay_isolated(url_var: &str, tag: &str) {
    let targets = Targets::connect().await;
    let mut source = Source::connect(&env_url(url_var)).await;
    let schemas: Vec<String> = (0..4).map(|i| unique(&format!("{tag}_s{i}"))).collect();
    for schema in &schemas[..3] {
        source.create_schema(schema, &[ITEMS, ORDERS]).await;
    }
    // The unowned schema has a table of the same name as the versions' (a leak would
    // show up as foreign rows) and one of its own (a leak would show up as a table).
    source
        .create_schema(
            &schemas[3],
            &[ITEMS, "CREATE TABLE stray (id INT PRIMARY KEY, v INT)"],
        )
        .await;

    let namespaces: Vec<Namespace> = (0..3)
        .map(|i| Namespace::new(&format!("{tag}_{}", VERSIONS[i]), 1 + i as u8))
        .collect();
    let specs: Vec<VersionSpec> = (0..3)
        .map(|i| VersionSpec::new(VERSIONS[i], &[&schemas[i]], namespaces[i].clone()))
        .collect();
    let mut strata = Strata::with_config(tag, &config_toml(&source.url, &specs));
    strata.spawn(&["--all"]);
    strata.wait_started(&VERSIONS).await;

    // Transactions that touch every schema at once, then each schema's own script.
    for round in 0..3u32 {
        source.run("BEGIN").await;
        for (i, schema) in schemas.iter().enumerate() {
            let id = 1000 + round;
            source
                .run(format!(
                    "INSERT INTO `{schema}`.items VALUES {}",
                    item_values(id, &format!("cross{i}"), round)
                ))
                .await;
        }
        source
            .run(format!(
                "INSERT INTO `{}`.stray VALUES ({round}, {round})",
                schemas[3]
            ))
            .await;
        source.run("COMMIT").await;
    }
    for (i, schema) in schemas.iter().enumerate() {
        for statement in scripted(schema, &format!("s{i}"), 30) {
            // The unowned schema has no `orders`.
            if i == 3 && statement.contains(".orders") {
                continue;
            }
            source.run(statement).await;
        }
    }
    source
        .run(format!(
            "DELETE FROM `{}`.items WHERE id = 1001",
            schemas[1]
        ))
        .await;
    strata.wait_caught_up(&VERSIONS, &mut source).await;

    for i in 0..3 {
        let want = source.tables(&schemas[i], &["items", "orders"]).await;
        assert!(want["items"].len() > 20 && want["orders"].len() > 20);
        let problems = targets.differences(&namespaces[i], &want).await;
        assert!(
            problems.is_empty(),
            "version {} differs from its schema:\n{}",
            VERSIONS[i],
            problems.join("\n")
        );
        // No other version's keys in this version's Redis DB either.
        for (j, other) in namespaces.iter().enumerate() {
            if i != j {
                let pattern = format!("{}*", other.redis_prefix);
                let mut mine = namespaces[i].clone();
                mine.redis_prefix = other.redis_prefix.clone();
                let stray = targets.redis_keys(&mine, &pattern).await;
                assert!(
                    stray.is_empty(),
                    "version {} DB holds {stray:?}",
                    VERSIONS[i]
                );
            }
        }
    }

    assert_eq!(
        strata.terminate(),
        Some(0),
        "SIGTERM stops every version cleanly"
    );
    for ns in &namespaces {
        targets.cleanup(ns).await;
    }
    for schema in &schemas {
        source.drop_schema(schema).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_versions_stay_isolated_mariadb() {
    three_versions_stay_isolated("STRATA_TEST_MARIADB_URL", "e2e_iso_maria").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_versions_stay_isolated_mysql() {
    three_versions_stay_isolated("STRATA_TEST_MYSQL_URL", "e2e_iso_mysql").await;
}
