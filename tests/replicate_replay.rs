//! Replays are harmless: every write carries its binlog version and a target keeps a row's
//! write only when it is newer.
//!
//! A workload (inserts, repeated updates of one row, a row inserted, updated and deleted)
//! is replicated with `--from FILE:POS` into fresh namespaces; then the checkpoint is
//! deleted and the same range is replayed from the same `--from`. The targets must equal
//! the source after the first run, and be identical after the second, stored versions
//! included: every replayed write is older than or equal to what the target holds (an
//! older write after a newer one is ignored), and the deleted row's replayed insert and
//! update do not bring it back (its tombstone wins). The second run's /metrics count no
//! write applied and the replayed ones stale.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Targets};
use support::workload::{item_values, scripted, ITEMS, ORDERS};
use support::{env_url, free_port, metric_sum, unique, Strata};

const TABLES: [&str; 2] = ["items", "orders"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_binlog_range_changes_nothing() {
    let targets = Targets::connect().await;
    let mut source = Source::connect(&env_url("STRATA_TEST_MARIADB_URL")).await;
    let schema = unique("e2e_replay");
    source.create_schema(&schema, &[ITEMS, ORDERS]).await;
    let from = source.binlog_end().await;

    for statement in scripted(&schema, "r", 40) {
        source.run(statement).await;
    }
    // Row 500: written three times, the last write wins. Row 501: inserted, updated,
    // deleted. Row 502: inserted and deleted in one transaction.
    let items = format!("`{schema}`.items");
    source
        .exec(&[
            &format!(
                "INSERT INTO {items} VALUES {}",
                item_values(500, "first", 0)
            ),
            &format!("UPDATE {items} SET name = 'second', qty = 2 WHERE id = 500"),
            &format!("UPDATE {items} SET name = 'third', qty = 3 WHERE id = 500"),
            &format!(
                "INSERT INTO {items} VALUES {}",
                item_values(501, "doomed", 0)
            ),
            &format!("UPDATE {items} SET name = 'doomed again' WHERE id = 501"),
            &format!("DELETE FROM {items} WHERE id = 501"),
            "BEGIN",
            &format!(
                "INSERT INTO {items} VALUES {}",
                item_values(502, "brief", 0)
            ),
            &format!("DELETE FROM {items} WHERE id = 502"),
            "COMMIT",
        ])
        .await;

    let ns = Namespace::new("e2e_replay", 4);
    let port = free_port();
    let mut spec = VersionSpec::new("replay", &[&schema], ns.clone());
    spec.extra = format!("http = \"127.0.0.1:{port}\"");
    let mut strata = Strata::with_config("replay", &config_toml(&source.url, &[spec]));
    let from_arg = from.to_string();
    let args = ["--version", "replay", "--from", from_arg.as_str()];

    // First run: the range from `from` to the end.
    strata.spawn(&args);
    strata.wait_started(&["replay"]).await;
    strata.wait_caught_up(&["replay"], &mut source).await;
    let want = source.tables(&schema, &TABLES).await;
    assert_eq!(want["items"]["500"]["name"], "third");
    assert!(!want["items"].contains_key("501") && !want["items"].contains_key("502"));
    targets.assert_equal(&ns, &want).await;
    let first = targets.snapshot(&ns, &TABLES).await;
    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");

    // Second run over the same range: nothing may change.
    std::fs::remove_file(strata.checkpoint_path("replay")).unwrap();
    strata.spawn(&args);
    strata.wait_started(&["replay"]).await;
    strata.wait_caught_up(&["replay"], &mut source).await;
    let second = targets.snapshot(&ns, &TABLES).await;
    for (table, rows) in &first {
        let diff = support::targets::row_differences(rows, &second[table]);
        assert!(
            diff.is_empty(),
            "{table} changed on replay:\n{}",
            diff.join("\n")
        );
    }
    targets.assert_equal(&ns, &want).await;

    // The replayed writes were refused as stale, as the version's /metrics counts them.
    let name = "strata_sink_writes_total";
    let count = |result: &'static str| async move {
        metric_sum(port, name, &[("result", result)])
            .await
            .unwrap_or_else(|| panic!("no /metrics on 127.0.0.1:{port}"))
    };
    assert_eq!(count("applied").await, 0.0, "a replayed write was applied");
    assert!(
        count("stale").await > 0.0,
        "no replayed write was counted stale"
    );
    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}
