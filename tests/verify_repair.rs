//! `strata verify` against every store: differences planted by hand in a target — a row
//! missing, a row the source does not have, a changed field — are all found, left alone by
//! `--repair --dry-run`, and fixed by `--repair` through the guarded write path; and a
//! clean version verified while the replicator streams a live workload reports nothing.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use bson::doc;
use std::path::Path;
use std::time::Duration;
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::workload::{item_values, ITEMS};
use support::{env_url, path_str, run_cmd, unique, wait_for, Strata};

/// A version's `strata verify` run: (exit code, stdout, the JSON report).
fn verify(strata: &Strata, version: &str, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let report = strata.dir.join(format!("{}.json", unique("report")));
    let mut args = vec![
        "verify",
        "--config",
        path_str(&strata.config),
        "--version",
        version,
        "--report",
        path_str(&report),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_cmd(strata.command(&args));
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no report from verify (exit {code}):\n{stdout}\n{stderr}"));
    (code, stdout, json)
}

fn snapshot(strata: &Strata, version: &str) {
    let (code, stdout, stderr) = run_cmd(strata.command(&[
        "snapshot",
        "--config",
        path_str(&strata.config),
        "--version",
        version,
        "--progress",
        "none",
    ]));
    assert_eq!(code, 0, "snapshot failed:\n{stdout}\n{stderr}");
}

/// The differences of a report as (id digits, kind, fields), sorted.
fn differences(report: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id: String = d["id"]
                .as_str()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let fields = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (id, d["kind"].as_str().unwrap().to_owned(), fields)
        })
        .collect();
    out.sort();
    out
}

const VERSION_TEXT: &str = "00000000000000000000000000000000000000001";

/// Deletes row 5, changes `name` of row 6, and adds row 7, which the source never had.
async fn plant(targets: &Targets, store: Store, ns: &Namespace) {
    match store {
        Store::Redis => {
            let mut con = targets.redis(ns).await;
            let p = &ns.redis_prefix;
            let _: () = redis::cmd("DEL")
                .arg(format!("{p}items:5"))
                .query_async(&mut con)
                .await
                .unwrap();
            let _: () = redis::cmd("HSET")
                .arg(format!("{p}items:6"))
                .arg("name")
                .arg("tampered")
                .query_async(&mut con)
                .await
                .unwrap();
            let _: () = redis::cmd("HSET")
                .arg(format!("{p}items:7"))
                .arg("id")
                .arg("7")
                .arg("name")
                .arg("ghost")
                .arg("_strata_version")
                .arg(VERSION_TEXT)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        Store::Postgres => {
            let s = &ns.pg_schema;
            targets
                .pg
                .batch_execute(&format!(
                    "DELETE FROM \"{s}\".items WHERE id = 5; \
                     UPDATE \"{s}\".items SET name = 'tampered' WHERE id = 6; \
                     INSERT INTO \"{s}\".items (id, name, qty, price, _strata_version) \
                       VALUES (7, 'ghost', 1, 1.00, '{VERSION_TEXT}')"
                ))
                .await
                .unwrap();
        }
        Store::Mongo => {
            let items = targets.mongo_db(ns).collection::<bson::Document>("items");
            items.delete_one(doc! { "_id": 5 }).await.unwrap();
            items
                .update_one(doc! { "_id": 6 }, doc! { "$set": { "name": "tampered" } })
                .await
                .unwrap();
            items
                .insert_one(
                    doc! { "_id": 7, "id": 7, "name": "ghost", "_strata_version": VERSION_TEXT },
                )
                .await
                .unwrap();
        }
        Store::Search => {
            let base = &targets.search_url;
            let index = targets.index(ns, "items");
            let http = &targets.http;
            let ok = |r: reqwest::Response| {
                assert!(
                    r.status().is_success(),
                    "planting in OpenSearch: {}",
                    r.status()
                );
            };
            ok(http
                .delete(format!("{base}/{index}/_doc/5"))
                .send()
                .await
                .unwrap());
            ok(http
                .post(format!("{base}/{index}/_update/6"))
                .json(&serde_json::json!({ "doc": { "name": "tampered" } }))
                .send()
                .await
                .unwrap());
            ok(http
                .put(format!(
                    "{base}/{index}/_doc/7?version=1&version_type=external"
                ))
                .json(&serde_json::json!({ "id": 7, "name": "ghost", "qty": 1, "price": "1.00" }))
                .send()
                .await
                .unwrap());
        }
    }
}

async fn planted_differences(store: Store, tag: &str, redis_db: u8) {
    let targets = Targets::connect().await;
    let mut source = Source::connect(&env_url("STRATA_TEST_MARIADB_URL")).await;
    let schema = unique(tag);
    source.create_schema(&schema, &[ITEMS]).await;
    // More rows than one scan page (1,000), so every reader pages; without row 7, which
    // is planted in the target as an extra row. A reader that paged in text order would
    // skip it: its cursor after the first page ("1899") is numerically past 7.
    let values: Vec<String> = (1..=2_501)
        .filter(|&id| id != 7)
        .map(|id| item_values(id, "v", 0))
        .collect();
    source
        .run(format!(
            "INSERT INTO `{schema}`.items VALUES {}",
            values.join(", ")
        ))
        .await;
    let ns = Namespace::new(tag, redis_db).only(&[store]);
    let spec = VersionSpec::new("vrf", &[&schema], ns.clone());
    let strata = Strata::with_config(tag, &config_toml(&source.url, &[spec]));
    snapshot(&strata, "vrf");

    let (code, stdout, _) = verify(&strata, "vrf", &[]);
    assert_eq!(
        code, 0,
        "{store:?}: a fresh snapshot verifies clean:\n{stdout}"
    );

    plant(&targets, store, &ns).await;
    let want = vec![
        ("5".to_owned(), "missing".to_owned(), vec![]),
        (
            "6".to_owned(),
            "changed".to_owned(),
            vec!["name".to_owned()],
        ),
        ("7".to_owned(), "extra".to_owned(), vec![]),
    ];
    let (code, stdout, report) = verify(&strata, "vrf", &[]);
    assert_eq!(code, 1, "{store:?}: differences exit with 1:\n{stdout}");
    assert_eq!(
        differences(&report),
        want,
        "{store:?}: every planted difference, nothing else"
    );
    assert_eq!(report["clean"], false);

    let before = targets.snapshot(&ns, &["items"]).await;
    let (code, stdout, report) = verify(&strata, "vrf", &["--repair", "--dry-run"]);
    assert_eq!(
        code, 1,
        "{store:?}: a dry run leaves the differences:\n{stdout}"
    );
    assert_eq!(differences(&report), want);
    for line in [
        "would insert",
        "would update (fields: name)",
        "would delete",
    ] {
        assert!(
            stdout.contains(line),
            "{store:?}: dry run lists `{line}`:\n{stdout}"
        );
    }
    assert_eq!(
        targets.snapshot(&ns, &["items"]).await,
        before,
        "{store:?}: --dry-run changed the target"
    );

    let (code, stdout, report) = verify(&strata, "vrf", &["--repair"]);
    assert_eq!(
        code, 0,
        "{store:?}: --repair fixes every difference:\n{stdout}"
    );
    let repaired: Vec<bool> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["repaired"].as_bool().unwrap())
        .collect();
    assert_eq!(repaired, vec![true, true, true], "{store:?}: {report:#}");

    let (code, stdout, _) = verify(&strata, "vrf", &[]);
    assert_eq!(
        code, 0,
        "{store:?}: verified clean after the repair:\n{stdout}"
    );
    let (code, stdout, report) = verify(&strata, "vrf", &["--sample", "50", "--chunk-rows", "100"]);
    assert_eq!(
        code, 0,
        "{store:?}: a sampled verify is clean too:\n{stdout}"
    );
    let checked = report["tables"][0]["stats"]["checked_rows"]
        .as_u64()
        .unwrap();
    assert!(
        checked > 0 && checked < 2_500,
        "{store:?}: about half the chunks compared: {report:#}"
    );
    // Independently of verify: the target holds exactly the source's rows.
    let expected = source.tables(&schema, &["items"]).await;
    targets.assert_equal(&ns, &expected).await;

    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_and_repairs_planted_differences_in_redis() {
    planted_differences(Store::Redis, "vrf_redis", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_and_repairs_planted_differences_in_postgres() {
    planted_differences(Store::Postgres, "vrf_pg", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_and_repairs_planted_differences_in_mongodb() {
    planted_differences(Store::Mongo, "vrf_mongo", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_and_repairs_planted_differences_in_opensearch() {
    planted_differences(Store::Search, "vrf_search", 10).await;
}

/// A writer of random transactions on rows 1..=n (updates and deletes) and new rows from
/// `next` on (inserts), until `stop`.
async fn live_workload(url: String, schema: String, n: u32, stop: tokio_util_stop::Stop) -> u32 {
    let mut source = Source::connect(&url).await;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut next = 1_000_000u32;
    let mut round = 0;
    while !stop.is_set() {
        round += 1;
        stop.wrote(round);
        let mut statements = vec!["BEGIN".to_owned()];
        for _ in 0..rng.u32(1..=4) {
            let id = rng.u32(1..=n);
            match rng.u32(0..10) {
                0..=5 => statements.push(format!(
                    "UPDATE `{schema}`.items SET qty = qty + 1, price = price + 0.01, note = 'live {round}' WHERE id = {id}"
                )),
                6 | 7 => {
                    next += 1;
                    statements.push(format!(
                        "INSERT INTO `{schema}`.items VALUES {}",
                        item_values(next, "live", round)
                    ));
                }
                _ => statements.push(format!("DELETE FROM `{schema}`.items WHERE id = {id}")),
            }
        }
        statements.push("COMMIT".to_owned());
        for s in statements {
            source.run(s).await;
        }
    }
    round
}

/// A flag shared with the workload task.
mod tokio_util_stop {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    pub struct Stop(Arc<(AtomicBool, AtomicU32)>);

    impl Stop {
        pub fn set(&self) {
            self.0 .0.store(true, Ordering::SeqCst);
        }
        pub fn is_set(&self) -> bool {
            self.0 .0.load(Ordering::SeqCst)
        }
        /// Records that `rounds` transactions were started.
        pub fn wrote(&self, rounds: u32) {
            self.0 .1.store(rounds, Ordering::SeqCst);
        }
        pub fn rounds(&self) -> u32 {
            self.0 .1.load(Ordering::SeqCst)
        }
    }
}

fn snapshot_done(dir: &Path, version: &str) -> bool {
    std::fs::read_to_string(dir.join("data").join(version).join("snapshot.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|j| j["finished_at_ms"].is_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_during_live_replication_reports_no_differences() {
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("vrf_live");
    source.create_schema(&schema, &[ITEMS]).await;
    let n = 3_000;
    let values: Vec<String> = (1..=n).map(|id| item_values(id, "l", 0)).collect();
    source
        .run(format!(
            "INSERT INTO `{schema}`.items VALUES {}",
            values.join(", ")
        ))
        .await;
    let ns = Namespace::new("vrf_live", 11).only(&[Store::Redis, Store::Postgres]);
    let spec = VersionSpec::new("live", &[&schema], ns.clone());
    let mut strata = Strata::with_config("vrf_live", &config_toml(&url, &[spec]));
    strata.spawn(&["--version", "live", "--snapshot"]);
    let dir = strata.dir.clone();
    wait_for("the snapshot to finish", Duration::from_secs(120), || {
        let done = snapshot_done(&dir, "live");
        async move { Ok(done.then_some(())) }
    })
    .await;
    strata.wait_caught_up(&["live"], &mut source).await;

    let stop = tokio_util_stop::Stop::default();
    let writer = tokio::spawn(live_workload(url.clone(), schema.clone(), n, stop.clone()));
    // Let the workload get going, so verify reads while changes are in flight.
    let progress = stop.clone();
    wait_for(
        "the workload to start writing",
        Duration::from_secs(30),
        || {
            let going = progress.rounds() >= 20;
            async move { Ok(going.then_some(())) }
        },
    )
    .await;
    let (code, stdout, report) = verify(&strata, "live", &[]);
    stop.set();
    let rounds = writer.await.unwrap();
    strata.assert_running();
    assert!(
        rounds > 10,
        "the workload wrote while verify ran ({rounds} transactions)"
    );
    assert_eq!(
        code, 0,
        "no differences while replication is live:\n{stdout}\n{report:#}"
    );
    let checked: u64 = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stats"]["checked_rows"].as_u64().unwrap())
        .sum();
    assert!(
        checked >= 2 * u64::from(n) * 9 / 10,
        "both targets were compared: {report:#}"
    );

    // And once the workload is over and applied, targets equal the source.
    strata.wait_caught_up(&["live"], &mut source).await;
    let expected = source.tables(&schema, &["items"]).await;
    targets.assert_equal(&ns, &expected).await;
    assert_eq!(strata.terminate(), Some(0));
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}
