//! Backfill under load, and resuming a killed backfill.
//!
//! - 1,000,000 rows copied into Redis and PostgreSQL by `strata run --snapshot` while a
//!   workload keeps updating, inserting and deleting rows of the same table; with the
//!   replicator still running afterwards, both targets equal the source row for row.
//! - The same into MongoDB and OpenSearch with 50,000 rows (the MongoDB test server,
//!   SecantusDB, takes a few thousand documents per second), copying with `strata snapshot`
//!   while the workload writes and streaming with `strata run` after it.
//! - A snapshot killed (SIGKILL) mid-way and run again continues after the last durable
//!   chunk, with the same recorded position, copying only the rows it had not copied.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use mysql_async::prelude::Queryable;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::{env_url, path_str, run_cmd, unique, wait_for, Strata};

const BIG: &str = "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(48) NOT NULL, \
     qty INT NOT NULL, price DECIMAL(12,2) NOT NULL, note VARCHAR(64) NULL)";

/// Fills `big` with rows 1..=n in batches (MariaDB's sequence engine).
async fn fill(source: &mut Source, schema: &str, n: u32) {
    let batch = 100_000;
    let mut from = 1;
    while from <= n {
        let to = (from + batch - 1).min(n);
        source
            .run(format!(
                "INSERT INTO `{schema}`.big SELECT seq, CONCAT('item ', seq), seq % 1000, seq / 100, \
                 IF(seq % 3 = 0, NULL, CONCAT('note ', seq)) FROM seq_{from}_to_{to}"
            ))
            .await;
        from = to + 1;
    }
}

/// Writes random transactions (updates, inserts of new ids, deletes) on `big` until
/// stopped; counts the transactions.
struct Workload {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Workload {
    /// `pace`: a pause between transactions, to keep the load within what the targets
    /// replicate (MongoDB's test server is slow).
    fn start(url: String, schema: String, n: u32, pace: Option<Duration>) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU32::new(0));
        let (s, r) = (stop.clone(), rounds.clone());
        let task = tokio::spawn(async move {
            let mut source = Source::connect(&url).await;
            let mut rng = fastrand::Rng::with_seed(11);
            let mut next = 10_000_000u32;
            while !s.load(Ordering::SeqCst) {
                let round = r.fetch_add(1, Ordering::SeqCst) + 1;
                let mut statements = vec!["BEGIN".to_owned()];
                for _ in 0..rng.u32(1..=5) {
                    let id = rng.u32(1..=n);
                    match rng.u32(0..10) {
                        0..=5 => statements.push(format!(
                            "UPDATE `{schema}`.big SET qty = qty + 1, price = price + 0.01, \
                             note = 'w{round}' WHERE id = {id}"
                        )),
                        6 | 7 => {
                            next += 1;
                            statements.push(format!(
                                "INSERT INTO `{schema}`.big VALUES ({next}, 'new {next}', {round}, 1.25, NULL)"
                            ));
                        }
                        _ => statements.push(format!("DELETE FROM `{schema}`.big WHERE id = {id}")),
                    }
                }
                statements.push("COMMIT".to_owned());
                for statement in statements {
                    source.run(statement).await;
                }
                if let Some(pause) = pace {
                    tokio::time::sleep(pause).await;
                }
            }
        });
        Workload { stop, rounds, task }
    }

    async fn stop(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.rounds.load(Ordering::SeqCst)
    }
}

/// The snapshot state file of `version`, parsed.
fn state(dir: &Path, version: &str) -> Option<serde_json::Value> {
    let text =
        std::fs::read_to_string(dir.join("data").join(version).join("snapshot.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn rows_done(state: &serde_json::Value) -> u64 {
    state["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rows"].as_u64().unwrap())
        .sum()
}

/// Compares `big` at the source with PostgreSQL and Redis, 20,000 rows at a time, value
/// for value, and checks that neither target has rows the source does not have.
async fn assert_big_equal(source: &mut Source, targets: &Targets, ns: &Namespace, schema: &str) {
    let mut after = 0i64;
    let mut total = 0u64;
    let mut redis = targets.redis(ns).await;
    loop {
        let rows: Vec<(i64, String, i64, String, Option<String>)> = source
            .conn
            .exec(
                format!("SELECT id, name, qty, CAST(price AS CHAR), note FROM `{schema}`.big WHERE id > ? ORDER BY id LIMIT 20000"),
                (after,),
            )
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        let last = rows.last().unwrap().0;
        let pg: Vec<(i64, String, i64, String, Option<String>)> = targets
            .pg
            .query(
                &format!(
                    "SELECT id::int8, name, qty::int8, price::text, note FROM \"{}\".big \
                     WHERE id > $1 AND id <= $2 ORDER BY id",
                    ns.pg_schema
                ),
                &[&(after as i32), &(last as i32)],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        if pg != rows {
            let diff = rows.iter().zip(&pg).find(|(a, b)| a != b);
            panic!(
                "PostgreSQL differs from the source in ids ({after}, {last}]: {} rows vs {}; first difference {diff:?}",
                rows.len(),
                pg.len()
            );
        }
        let mut pipe = redis::pipe();
        for row in &rows {
            pipe.cmd("HGETALL")
                .arg(format!("{}big:{}", ns.redis_prefix, row.0));
        }
        let hashes: Vec<std::collections::HashMap<String, String>> =
            pipe.query_async(&mut redis).await.unwrap();
        for (row, hash) in rows.iter().zip(&hashes) {
            let want = [
                ("id", Some(row.0.to_string())),
                ("name", Some(row.1.clone())),
                ("qty", Some(row.2.to_string())),
                ("price", Some(row.3.clone())),
                ("note", row.4.clone()),
            ];
            for (field, value) in want {
                assert_eq!(
                    hash.get(field),
                    value.as_ref(),
                    "Redis row {} field {field} differs from the source",
                    row.0
                );
            }
        }
        total += rows.len() as u64;
        after = last;
    }
    let pg_count: i64 = targets
        .pg
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".big", ns.pg_schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        pg_count as u64, total,
        "PostgreSQL has rows the source does not have"
    );
    let redis_count = targets
        .redis_keys(ns, &format!("{}big:*", ns.redis_prefix))
        .await
        .len() as u64;
    assert_eq!(
        redis_count, total,
        "Redis has rows the source does not have"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_a_million_rows_under_writes_converges() {
    let started = Instant::now();
    let n = 1_000_000;
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("snap_big");
    source.create_schema(&schema, &[BIG]).await;
    fill(&mut source, &schema, n).await;
    let filled = started.elapsed();

    let ns = Namespace::new("snap_big", 13).only(&[Store::Redis, Store::Postgres]);
    let mut spec = VersionSpec::new("big", &[&schema], ns.clone());
    spec.extra = "batch_max_rows = 2000\n".into();
    let mut strata = Strata::with_config("snap_big", &config_toml(&url, &[spec]));
    let workload = Workload::start(
        url.clone(),
        schema.clone(),
        n,
        Some(Duration::from_millis(2)),
    );
    strata.spawn(&["--version", "big", "--snapshot"]);
    let copy_started = Instant::now();
    // Streaming runs beside the copy: the checkpoint moves on before the copy ends.
    let dir = strata.dir.clone();
    let deadline = copy_started + Duration::from_secs(600);
    let mut first_checkpoint = None;
    let mut streamed_during_copy = false;
    while !state(&dir, "big").is_some_and(|s| s["finished_at_ms"].is_u64()) {
        if let Some(now) = strata.checkpoint("big") {
            let first = first_checkpoint.get_or_insert_with(|| now.clone());
            streamed_during_copy |= now != *first;
        }
        strata.assert_running();
        assert!(
            Instant::now() < deadline,
            "the snapshot did not finish within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let copied = copy_started.elapsed();
    assert!(
        streamed_during_copy,
        "the replicator streamed while the copy ran (its checkpoint moved)"
    );
    let rounds = workload.stop().await;
    assert!(
        rounds > 50,
        "the workload wrote while the snapshot ran ({rounds} transactions)"
    );
    strata.wait_caught_up(&["big"], &mut source).await;

    assert_big_equal(&mut source, &targets, &ns, &schema).await;
    strata.assert_running();
    eprintln!(
        "1M-row backfill: fill {filled:?}, copy {copied:?} ({:.0} rows/s) under {rounds} concurrent transactions, whole test {:?}",
        f64::from(n) / copied.as_secs_f64(),
        started.elapsed()
    );
    assert_eq!(strata.terminate(), Some(0));
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

/// Every document of `table`'s index in the comparable text form, through a scroll.
async fn search_rows(targets: &Targets, ns: &Namespace, table: &str) -> support::Rows {
    let base = &targets.search_url;
    let index = targets.index(ns, table);
    targets
        .http
        .post(format!("{base}/{index}/_refresh"))
        .send()
        .await
        .unwrap();
    let mut out = support::Rows::new();
    let mut page: serde_json::Value = targets
        .http
        .post(format!("{base}/{index}/_search?scroll=2m"))
        .json(&serde_json::json!({ "size": 5000, "sort": ["_doc"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    loop {
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            return out;
        }
        for hit in hits {
            let row = hit["_source"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            out.insert(hit["_id"].as_str().unwrap().to_owned(), row);
        }
        page = targets
            .http
            .post(format!("{base}/_search/scroll"))
            .json(&serde_json::json!({ "scroll": "2m", "scroll_id": page["_scroll_id"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_beside_a_running_replicator_converges_in_mongodb_and_opensearch() {
    // The test servers for these two stores are slow: a table and a write rate that the
    // replicator keeps up with while the copy shares the servers.
    let n = 20_000;
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("snap_docs");
    source.create_schema(&schema, &[BIG]).await;
    fill(&mut source, &schema, n).await;

    let ns = Namespace::new("snap_docs", 13).only(&[Store::Mongo, Store::Search]);
    let spec = VersionSpec::new("docs", &[&schema], ns.clone());
    let mut strata = Strata::with_config("snap_docs", &config_toml(&url, &[spec]));
    // The replicator runs first, and goes on running while `strata snapshot` copies the
    // same rows and the workload updates and deletes them: two writers of one row.
    strata.spawn(&["--version", "docs"]);
    strata.wait_caught_up(&["docs"], &mut source).await;
    let workload = Workload::start(
        url.clone(),
        schema.clone(),
        n,
        Some(Duration::from_millis(150)),
    );
    let (code, stdout, stderr) = run_cmd(strata.command(&[
        "snapshot",
        "--config",
        path_str(&strata.config),
        "--version",
        "docs",
        "--progress",
        "log",
    ]));
    assert_eq!(code, 0, "snapshot failed:\n{stdout}\n{stderr}");
    let rounds = workload.stop().await;
    assert!(
        rounds > 10,
        "the workload wrote while the snapshot ran ({rounds} transactions)"
    );
    strata.assert_running();
    strata.wait_caught_up(&["docs"], &mut source).await;

    let expected = source.tables(&schema, &["big"]).await;
    assert!(expected["big"].len() > n as usize / 2);
    // MongoDB through the shared reader; OpenSearch with a scroll (the shared reader reads
    // one page of 10,000 hits).
    targets
        .assert_equal(&ns.clone().only(&[Store::Mongo]), &expected)
        .await;
    let got = search_rows(&targets, &ns, "big").await;
    let problems = support::targets::row_differences(&expected["big"], &got);
    assert!(
        problems.is_empty(),
        "OpenSearch differs from the source ({} problems):\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(strata.terminate(), Some(0));
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_snapshot_resumes_where_it_stopped() {
    let n = 40_000u64;
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("snap_kill");
    source.create_schema(&schema, &[BIG]).await;
    fill(&mut source, &schema, n as u32).await;
    let ns = Namespace::new("snap_kill", 13).only(&[Store::Redis, Store::Postgres]);
    let spec = VersionSpec::new("kill", &[&schema], ns.clone());
    let strata = Strata::with_config("snap_kill", &config_toml(&url, &[spec]));
    let config = path_str(&strata.config).to_owned();

    // A slow snapshot (throttled), killed without warning once part of it is durable.
    let mut child = strata
        .command(&[
            "snapshot",
            "--config",
            &config,
            "--version",
            "kill",
            "--chunk-rows",
            "500",
            "--max-rows-per-sec",
            "4000",
            "--progress",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let spawned = Instant::now();
    let dir = strata.dir.clone();
    let before = wait_for(
        "part of the snapshot to be durable",
        Duration::from_secs(120),
        || {
            let s = state(&dir, "kill").filter(|s| rows_done(s) >= 8_000);
            async move { Ok(s) }
        },
    )
    .await;
    // --max-rows-per-sec 4000: 8,000 rows take two seconds at least.
    assert!(
        spawned.elapsed() >= Duration::from_millis(1_900),
        "the rate cap holds: {:?}",
        spawned.elapsed()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = state(&dir, "kill").unwrap();
    let done_before = rows_done(&killed);
    assert!(killed["finished_at_ms"].is_null(), "killed before the end");
    assert!(
        done_before >= rows_done(&before) && done_before < n,
        "{done_before}"
    );

    let (code, stdout, stderr) = run_cmd(strata.command(&[
        "snapshot",
        "--config",
        &config,
        "--version",
        "kill",
        "--chunk-rows",
        "500",
        "--progress",
        "none",
    ]));
    assert_eq!(code, 0, "the resumed snapshot failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("resuming the snapshot in progress"),
        "{stderr}"
    );
    let copied_now = n - done_before;
    assert!(
        stderr.contains(&format!("({copied_now} copied by this run)")),
        "only the {copied_now} rows not yet durable are copied again:\n{stderr}"
    );
    let finished = state(&dir, "kill").unwrap();
    assert_eq!(
        finished["position"], killed["position"],
        "the same recorded position"
    );
    assert_eq!(rows_done(&finished), n);

    // Run again: nothing left to do.
    let (code, stdout, _) =
        run_cmd(strata.command(&["snapshot", "--config", &config, "--version", "kill"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("already complete"), "{stdout}");

    assert_big_equal(&mut source, &targets, &ns, &schema).await;
    let (code, stdout, _) =
        run_cmd(strata.command(&["verify", "--config", &config, "--version", "kill"]));
    assert_eq!(code, 0, "{stdout}");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_without_a_key_are_refused_unless_the_config_names_one() {
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("snap_nokey");
    source
        .create_schema(
            &schema,
            &[
                "CREATE TABLE loose (a INT NOT NULL, b VARCHAR(10))",
                "INSERT INTO loose VALUES (1, 'x'), (2, NULL), (3, 'z')",
            ],
        )
        .await;
    let ns = Namespace::new("snap_nokey", 13).only(&[Store::Redis, Store::Postgres]);
    let spec = VersionSpec::new("nokey", &[&schema], ns.clone());
    let strata = Strata::with_config("snap_nokey", &config_toml(&url, &[spec]));
    let config = path_str(&strata.config).to_owned();
    let (code, _, stderr) =
        run_cmd(strata.command(&["snapshot", "--config", &config, "--version", "nokey"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no primary key and no unique NOT NULL key") && stderr.contains("key = "),
        "the refusal says what is wrong and how to opt in:\n{stderr}"
    );
    assert!(
        !strata.dir.join("data/nokey/snapshot.json").exists(),
        "nothing recorded"
    );

    // Naming the key opts the table into a whole-table copy.
    let mut spec = VersionSpec::new("nokey", &[&schema], ns.clone());
    spec.extra = "[versions.nokey.tables.loose]\nkey = [\"a\"]\n".into();
    let strata = Strata::with_config("snap_nokey2", &config_toml(&url, &[spec]));
    let config = path_str(&strata.config).to_owned();
    let (code, stdout, stderr) =
        run_cmd(strata.command(&["snapshot", "--config", &config, "--version", "nokey"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("copying the whole table in one scan"),
        "{stderr}"
    );
    let mut want = source.rows(&schema, "loose", "a").await;
    // Targets key the rows by `a` too; the shared reader keys PostgreSQL rows by `id`.
    let redis = targets.rows(Store::Redis, &ns, "loose").await;
    assert_eq!(
        redis,
        std::mem::take(&mut want),
        "Redis holds the copied rows"
    );
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}
