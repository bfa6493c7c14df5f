//! Schema changes mid-stream: ALTER TABLE … ADD COLUMN, RENAME COLUMN and DROP COLUMN,
//! with writes before and after each, while `strata run` streams into all four stores.
//! Replication continues; rows written after the last change equal the source in every
//! store; PostgreSQL's table has exactly the source's columns; OpenSearch maps the new
//! ones; MongoDB documents lose the dropped and renamed-away fields. Once every row is
//! written again, every store equals the source whole.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeSet;
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{row_differences, Namespace, Targets, STORES};
use support::workload::{item_values, ITEMS};
use support::{env_url, unique, Rows, Strata};

fn values(ids: std::ops::RangeInclusive<u32>, tag: &str) -> String {
    ids.map(|id| item_values(id, tag, 0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_added_renamed_and_dropped_mid_stream() {
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("e2e_ddl");
    source.create_schema(&schema, &[ITEMS]).await;
    let ns = Namespace::new("e2e_ddl", 7);
    let spec = VersionSpec::new("ddl", &[&schema], ns.clone());
    let mut strata = Strata::with_config("ddl", &config_toml(&url, &[spec]));
    strata.spawn(&["--version", "ddl"]);
    strata.wait_started(&["ddl"]).await;

    let items = format!("`{schema}`.items");
    source
        .exec(&[
            &format!("INSERT INTO {items} VALUES {}", values(1..=10, "before")),
            &format!("UPDATE {items} SET qty = qty + 100 WHERE id <= 5"),
            // Added column, then rows with and without it.
            &format!("ALTER TABLE {items} ADD COLUMN color VARCHAR(16) NULL"),
            &format!(
                "INSERT INTO {items} (id, name, qty, price, note, color) VALUES \
                 (11, 'added 11', 11, 1.10, 'n11', 'red'), (12, 'added 12', 12, 1.20, NULL, 'blue'), \
                 (13, 'added 13', 13, 1.30, 'n13', NULL)"
            ),
            &format!("UPDATE {items} SET color = 'green' WHERE id IN (1, 2, 3)"),
            // Renamed column.
            &format!("ALTER TABLE {items} RENAME COLUMN qty TO quantity"),
            &format!(
                "INSERT INTO {items} (id, name, quantity, price, note, color) VALUES \
                 (21, 'renamed 21', 21, 2.10, 'n21', 'red'), (22, 'renamed 22', 22, 2.20, NULL, NULL)"
            ),
            &format!("UPDATE {items} SET quantity = quantity + 1 WHERE id IN (4, 5, 11)"),
            // Dropped column.
            &format!("ALTER TABLE {items} DROP COLUMN note"),
            &format!(
                "INSERT INTO {items} (id, name, quantity, price, color) VALUES \
                 (31, 'dropped 31', 31, 3.10, 'red'), (32, 'dropped 32', 32, 3.20, NULL)"
            ),
            &format!("UPDATE {items} SET name = CONCAT(name, '!') WHERE id IN (6, 7, 12, 21)"),
            &format!("DELETE FROM {items} WHERE id IN (8, 13)"),
        ])
        .await;
    strata.wait_caught_up(&["ddl"], &mut source).await;

    let want = source.rows(&schema, "items", "id").await;
    let columns: BTreeSet<&str> = ["id", "name", "quantity", "price", "color"].into();
    let after_last_change = ["31", "32", "6", "7", "12", "21"];
    let mut problems = Vec::new();
    for store in STORES {
        let got = targets.rows(store, &ns, "items").await;
        let ids = |rows: &Rows| rows.keys().cloned().collect::<BTreeSet<_>>();
        if ids(&got) != ids(&want) {
            problems.push(format!(
                "{store:?}: rows {:?}, want {:?}",
                ids(&got),
                ids(&want)
            ));
        }
        let written: Rows = want
            .iter()
            .filter(|(id, _)| after_last_change.contains(&id.as_str()))
            .map(|(id, row)| (id.clone(), row.clone()))
            .collect();
        let got_written: Rows = got
            .into_iter()
            .filter(|(id, _)| after_last_change.contains(&id.as_str()))
            .collect();
        problems.extend(
            row_differences(&written, &got_written)
                .into_iter()
                .map(|d| format!("{store:?} (written after the last change): {d}")),
        );
    }
    // PostgreSQL: the table has exactly the source's columns now.
    let pg: BTreeSet<String> = targets.pg_columns(&ns, "items").await.into_iter().collect();
    let mut pg_want: BTreeSet<String> = columns.iter().map(|c| c.to_string()).collect();
    pg_want.insert("_strata_version".into());
    if pg != pg_want {
        problems.push(format!("postgres columns {pg:?}, want {pg_want:?}"));
    }
    // OpenSearch: the new columns are mapped (a mapping never loses a field).
    let mapped = targets.search_fields(&ns, "items").await;
    for column in &columns {
        if !mapped.contains(*column) {
            problems.push(format!("opensearch mapping lacks {column}: {mapped:?}"));
        }
    }
    // MongoDB: the dropped column and the rename's old name are gone from every document.
    for (id, doc) in targets.mongo_docs(&ns, "items").await {
        for gone in ["note", "qty"] {
            if doc.contains_key(gone) {
                problems.push(format!(
                    "mongo row {id} still has {gone}: {:?}",
                    doc.get(gone)
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "after the schema changes:\n{}",
        problems.join("\n")
    );

    // Every row written again: every store equals the source whole.
    source
        .run(format!("UPDATE {items} SET price = price + 1"))
        .await;
    strata.wait_caught_up(&["ddl"], &mut source).await;
    let want = source.tables(&schema, &["items"]).await;
    targets.assert_equal(&ns, &want).await;

    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}
