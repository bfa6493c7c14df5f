//! End-to-end throughput: rows/s applied through `strata run` into each sink, against the
//! same rows written straight into that store with its own bulk API (the store's limit on
//! this machine), and their ratio.
//!
//! For each sink separately: a fresh source table; `strata run` with that one target,
//! started first (its start position written); then 100,000 rows inserted in 1,000-row
//! transactions. The end-to-end time runs from the first write to the version's checkpoint
//! reaching the binlog end after the last commit (everything durable in the target). The
//! bulk figure writes the same rows, same fields and a version field, straight into the
//! store in 1,000-row requests: Redis pipelined `HSET`, MongoDB `insert_many`, OpenSearch
//! `_bulk` `index`, PostgreSQL `COPY` — the plain paths of the sink benches in
//! `crates/strata-sinks/benches/`.
//!
//! Run: `scripts/bench-e2e.sh` (builds the release binary, starts the servers). Settings:
//! `STRATA_BIN` (the strata binary; default this package's), `BENCH_ROWS` (default
//! 100000), `BENCH_SINKS` (e.g. `redis,postgres`; default all four).
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/support/mod.rs"]
mod support;

use bson::{doc, Bson, Document};
use futures_util::SinkExt;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::{env_url, unique, Strata};

/// Rows per source transaction and per bulk request.
const BATCH: usize = 1_000;
const TABLE: &str = "bench";
const CREATE: &str = "CREATE TABLE bench (id INT PRIMARY KEY, account BIGINT NOT NULL, \
     name VARCHAR(64) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, \
     created DATETIME(6) NOT NULL, active TINYINT NOT NULL, note VARCHAR(255) NULL)";

/// One benchmark row.
struct Row {
    id: i32,
    account: i64,
    name: String,
    qty: i32,
    price: String,
    /// Microseconds since 1970 (2024-01-01 plus `id` milliseconds and a fraction).
    created_us: i64,
    active: i32,
    note: Option<String>,
}

const BASE_US: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z

fn rows(n: usize) -> Vec<Row> {
    (1..=n as i32)
        .map(|id| Row {
            id,
            account: i64::from(id) * 7919 % 1_000_000_007,
            name: format!("customer {id}"),
            qty: id % 1000,
            price: format!("{}.{:02}", id % 10_000, id % 100),
            created_us: BASE_US + i64::from(id) * 1000 + i64::from(id % 1000),
            active: id % 2,
            note: (id % 5 != 0).then(|| format!("note for row {id}, a little text to carry")),
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of microseconds since 1970.
fn datetime(us: i64, sep: char) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (days, tod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}.{frac:06}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

fn version(row: &Row) -> String {
    format!("{:041}", row.id)
}

fn insert_statement(schema: &str, chunk: &[Row]) -> String {
    let values: Vec<String> = chunk
        .iter()
        .map(|r| {
            let note = r
                .note
                .as_ref()
                .map_or("NULL".to_owned(), |n| format!("'{n}'"));
            format!(
                "({}, {}, '{}', {}, {}, '{}', {}, {note})",
                r.id,
                r.account,
                r.name,
                r.qty,
                r.price,
                datetime(r.created_us, ' '),
                r.active
            )
        })
        .collect();
    format!(
        "INSERT INTO `{schema}`.{TABLE} VALUES {}",
        values.join(", ")
    )
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Rows/s through `strata run` into `store` alone, and the time the source took to
/// accept the writes.
async fn end_to_end(store: Store, targets: &Targets, rows: &[Row]) -> (f64, Duration, Duration) {
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("bench_e2e");
    source.create_schema(&schema, &[CREATE]).await;
    let ns = Namespace::new(&format!("bench_e2e_{store:?}"), 9).only(&[store]);
    let spec = VersionSpec::new("bench", &[&schema], ns.clone());
    let mut strata = Strata::with_config("bench", &config_toml(&url, &[spec]));
    if let Ok(bin) = std::env::var("STRATA_BIN") {
        strata.bin = PathBuf::from(bin);
    }
    strata.log_filter = "info".into();
    strata.spawn(&["--version", "bench"]);
    strata.wait_started(&["bench"]).await;

    let statements: Vec<String> = rows
        .chunks(BATCH)
        .map(|chunk| insert_statement(&schema, chunk))
        .collect();
    let started = Instant::now();
    for statement in &statements {
        source.run(statement).await;
    }
    let written = started.elapsed();
    let end = source.binlog_end().await;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while strata.checkpoint("bench").is_none_or(|p| p < end) {
        strata.assert_running();
        assert!(
            Instant::now() < deadline,
            "{store:?}: no catch-up in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let count = targets.count(store, &ns, TABLE).await;
    assert_eq!(count, rows.len() as u64, "{store:?} holds every row");
    assert_eq!(strata.terminate(), Some(0));
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
    (rate(rows.len(), took), took, written)
}

/// Rows/s written straight into `store` with its bulk API, 1,000 rows a request.
async fn bulk(store: Store, targets: &Targets, rows: &[Row]) -> (f64, Duration) {
    let ns = Namespace::new(&format!("bench_bulk_{store:?}"), 9).only(&[store]);
    let started;
    match store {
        Store::Redis => {
            let mut con = targets.redis(&ns).await;
            started = Instant::now();
            for chunk in rows.chunks(BATCH) {
                let mut pipe = redis::pipe();
                for r in chunk {
                    pipe.cmd("HSET")
                        .arg(format!("{}{TABLE}:{}", ns.redis_prefix, r.id))
                        .arg("_strata_version")
                        .arg(version(r))
                        .arg("id")
                        .arg(r.id)
                        .arg("account")
                        .arg(r.account)
                        .arg("name")
                        .arg(&r.name)
                        .arg("qty")
                        .arg(r.qty)
                        .arg("price")
                        .arg(&r.price)
                        .arg("created")
                        .arg(datetime(r.created_us, 'T'))
                        .arg("active")
                        .arg(r.active);
                    if let Some(note) = &r.note {
                        pipe.arg("note").arg(note);
                    }
                    pipe.ignore();
                }
                pipe.query_async::<()>(&mut con).await.unwrap();
            }
        }
        Store::Mongo => {
            let coll = targets.mongo_db(&ns).collection::<Document>(TABLE);
            started = Instant::now();
            for chunk in rows.chunks(BATCH) {
                let docs: Vec<Document> = chunk
                    .iter()
                    .map(|r| {
                        doc! {
                            "_id": r.id, "id": r.id, "account": r.account, "name": &r.name,
                            "qty": r.qty,
                            "price": Bson::Decimal128(r.price.parse().unwrap()),
                            "created": bson::DateTime::from_millis(r.created_us.div_euclid(1000)),
                            "created__us": r.created_us, "active": r.active,
                            "note": r.note.clone().map_or(Bson::Null, Bson::String),
                            "_strata_version": version(r),
                        }
                    })
                    .collect();
                coll.insert_many(docs).ordered(false).await.unwrap();
            }
        }
        Store::Search => {
            let index = targets.index(&ns, TABLE);
            let url = format!("{}/_bulk", targets.search_url);
            started = Instant::now();
            for chunk in rows.chunks(BATCH) {
                let mut body = String::new();
                for r in chunk {
                    body.push_str(&format!(
                        "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{}\"}}}}\n",
                        r.id
                    ));
                    let doc = serde_json::json!({
                        "id": r.id, "account": r.account, "name": r.name, "qty": r.qty,
                        "price": r.price, "created": datetime(r.created_us, 'T'),
                        "active": r.active, "note": r.note,
                    });
                    body.push_str(&doc.to_string());
                    body.push('\n');
                }
                let answer: serde_json::Value = targets
                    .http
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer["errors"], false, "{answer}");
            }
        }
        Store::Postgres => {
            let schema = &ns.pg_schema;
            targets
                .pg
                .batch_execute(&format!(
                    "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".{TABLE} (id integer \
                     PRIMARY KEY, account bigint, name text, qty integer, price numeric(10,2), \
                     created timestamp(6), active smallint, note text, \
                     _strata_version text COLLATE \"C\")"
                ))
                .await
                .unwrap();
            let copy = format!("COPY \"{schema}\".{TABLE} FROM STDIN (FORMAT text)");
            started = Instant::now();
            for chunk in rows.chunks(BATCH) {
                let mut text = String::new();
                for r in chunk {
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                        r.id,
                        r.account,
                        r.name,
                        r.qty,
                        r.price,
                        datetime(r.created_us, ' '),
                        r.active,
                        r.note.as_deref().unwrap_or("\\N"),
                        version(r)
                    ));
                }
                let sink = targets
                    .pg
                    .copy_in::<_, Cursor<Vec<u8>>>(&copy)
                    .await
                    .unwrap();
                let mut sink = std::pin::pin!(sink);
                sink.send(Cursor::new(text.into_bytes())).await.unwrap();
                sink.as_mut().finish().await.unwrap();
            }
        }
    }
    let took = started.elapsed();
    assert_eq!(targets.count(store, &ns, TABLE).await, rows.len() as u64);
    targets.cleanup(&ns).await;
    (rate(rows.len(), took), took)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let n: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sinks: Vec<Store> = match std::env::var("BENCH_SINKS") {
        Ok(list) => list
            .split(',')
            .map(|s| match s.trim() {
                "redis" => Store::Redis,
                "mongo" | "mongodb" => Store::Mongo,
                "search" | "opensearch" => Store::Search,
                "postgres" => Store::Postgres,
                other => panic!(
                    "BENCH_SINKS: unknown sink `{other}` (redis, mongo, opensearch, postgres)"
                ),
            })
            .collect(),
        Err(_) => vec![Store::Redis, Store::Postgres, Store::Search, Store::Mongo],
    };
    let targets = Targets::connect().await;
    let rows = rows(n);
    println!(
        "end to end: {n} rows (8 columns) from MariaDB through `strata run`, {BATCH}-row transactions"
    );
    let mut lines = Vec::new();
    for store in sinks {
        let (e2e, e2e_took, written) = end_to_end(store, &targets, &rows).await;
        let (plain, plain_took) = bulk(store, &targets, &rows).await;
        eprintln!(
            "{store:?}: end to end {e2e:.0} rows/s ({e2e_took:.2?}; the source took {written:.2?} \
             to accept the writes), bulk {plain:.0} rows/s ({plain_took:.2?})"
        );
        lines.push((store, e2e, e2e_took, plain, plain_took, written));
    }
    println!(
        "{:<10} {:>14} {:>14} {:>16} {:>8}",
        "sink", "strata rows/s", "bulk rows/s", "strata / bulk", "source"
    );
    for (store, e2e, e2e_took, plain, plain_took, written) in lines {
        println!(
            "{:<10} {:>14.0} {:>14.0} {:>16.2} {:>8.2?}   (strata {e2e_took:.2?}, bulk {plain_took:.2?})",
            format!("{store:?}").to_lowercase(),
            e2e,
            plain,
            e2e / plain,
            written
        );
    }
}
