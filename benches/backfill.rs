//! Backfill and verify throughput.
//!
//! - Source alone: the snapshot's own chunked, key-ordered SELECTs (`SnapshotReader`,
//!   5,000 rows per chunk, values converted exactly as for a backfill) over the whole
//!   table, nothing written: the rate at which the source can be read.
//! - Backfill: `strata snapshot` of the same table into one sink at a time (a fresh
//!   namespace each), from start to "complete": rows/s, and the ratio to the source rate.
//! - Verify: `strata verify` of the backfilled table against that sink (clean, so every
//!   chunk compares equal by checksum): rows/s.
//!
//! Table: 1,000,000 rows of 8 columns (int key, bigint, varchar, int, decimal,
//! datetime(6), tinyint, nullable varchar) on MariaDB; MongoDB gets a 100,000-row table
//! (its test server, SecantusDB, takes a few thousand documents per second).
//!
//! Run: `scripts/bench-backfill.sh` (builds the release binary, starts the servers).
//! Settings: `STRATA_BIN` (default this package's debug binary), `BENCH_ROWS` (default
//! 1000000), `BENCH_DOC_ROWS` (MongoDB, default 100000), `BENCH_SINKS` (e.g.
//! `redis,postgres`; default all four).
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;
use strata_mysql::{SnapshotReader, SourceConfig};
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Store, Targets};
use support::{env_url, path_str, run_cmd, unique, Strata};

const CREATE: &str = "CREATE TABLE bench (id INT PRIMARY KEY, account BIGINT NOT NULL, \
     name VARCHAR(64) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, \
     created DATETIME(6) NOT NULL, active TINYINT NOT NULL, note VARCHAR(255) NULL)";
const CHUNK: usize = 5_000;

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fill(source: &mut Source, schema: &str, n: u32) {
    source.create_schema(schema, &[CREATE]).await;
    let mut from = 1;
    while from <= n {
        let to = (from + 99_999).min(n);
        source
            .run(format!(
                "INSERT INTO `{schema}`.bench SELECT seq, seq * 7919, CONCAT('customer ', seq), \
                 seq % 1000, seq / 100, TIMESTAMPADD(MICROSECOND, seq * 1001, '2024-01-01'), \
                 seq % 2, IF(seq % 4 = 0, NULL, CONCAT('note about row ', seq)) \
                 FROM seq_{from}_to_{to}"
            ))
            .await;
        from = to + 1;
    }
}

/// Rows/s of the snapshot's chunked SELECTs alone.
async fn source_rate(url: &str, schema: &str) -> (u64, f64) {
    let mut cfg = SourceConfig::new(url);
    cfg.tls = strata_mysql::TlsMode::Disabled;
    let mut reader = SnapshotReader::connect(&cfg).await.unwrap();
    let info = reader
        .table_info(&strata_core::TableId::new(schema, "bench"))
        .await
        .unwrap()
        .unwrap();
    let key = info.chunk_key.columns().to_vec();
    let started = Instant::now();
    let mut rows = 0u64;
    let mut after: Option<Vec<strata_core::Value>> = None;
    loop {
        let chunk = reader
            .read_chunk(&info, after.as_deref(), CHUNK)
            .await
            .unwrap();
        rows += chunk.len() as u64;
        let done = chunk.len() < CHUNK;
        after = chunk
            .last()
            .map(|r| key.iter().map(|&i| r[i].clone()).collect());
        if done {
            break;
        }
    }
    (rows, rows as f64 / started.elapsed().as_secs_f64())
}

fn timed(strata: &Strata, args: &[&str]) -> f64 {
    let started = Instant::now();
    let (code, stdout, stderr) = run_cmd(strata.command(args));
    assert_eq!(code, 0, "strata {args:?} failed:\n{stdout}\n{stderr}");
    started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches`: nothing to list.
    }
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let rows = env_number("BENCH_ROWS", 1_000_000);
    let doc_rows = env_number("BENCH_DOC_ROWS", 100_000);
    let sinks =
        std::env::var("BENCH_SINKS").unwrap_or_else(|_| "redis,postgres,opensearch,mongodb".into());
    let targets = Targets::connect().await;
    let mut source = Source::connect(&url).await;

    let big = unique("bench_fill");
    let small = unique("bench_docs");
    eprintln!("filling {rows} rows (and {doc_rows} for MongoDB)…");
    fill(&mut source, &big, rows).await;
    fill(&mut source, &small, doc_rows).await;
    let (read, rate) = source_rate(&url, &big).await;
    assert_eq!(read, u64::from(rows));
    println!("source alone (chunked SELECTs of {CHUNK}): {rate:>10.0} rows/s");
    println!(
        "{:<11} {:>9} {:>14} {:>9} {:>14}",
        "sink", "rows", "backfill/s", "ratio", "verify/s"
    );
    for name in sinks.split(',').map(str::trim) {
        let (store, schema, n) = match name {
            "redis" => (Store::Redis, &big, rows),
            "postgres" => (Store::Postgres, &big, rows),
            "opensearch" => (Store::Search, &big, rows),
            "mongodb" => (Store::Mongo, &small, doc_rows),
            other => panic!("unknown sink {other} in BENCH_SINKS"),
        };
        let ns = Namespace::new(&format!("bench_{name}"), 14).only(&[store]);
        let spec = VersionSpec::new("b", &[schema], ns.clone());
        let mut strata = Strata::with_config(&format!("bench_{name}"), &config_toml(&url, &[spec]));
        if let Ok(bin) = std::env::var("STRATA_BIN") {
            strata.bin = std::path::PathBuf::from(bin);
        }
        strata.log_filter = "warn".into();
        let config = path_str(&strata.config).to_owned();
        let copy = timed(
            &strata,
            &[
                "snapshot",
                "--config",
                &config,
                "--version",
                "b",
                "--progress",
                "none",
            ],
        );
        let check = timed(&strata, &["verify", "--config", &config, "--version", "b"]);
        let backfill = f64::from(n) / copy;
        println!(
            "{name:<11} {n:>9} {backfill:>14.0} {:>9.2} {:>14.0}",
            backfill / rate,
            f64::from(n) / check
        );
        targets.cleanup(&ns).await;
    }
    source.drop_schema(&big).await;
    source.drop_schema(&small).await;
}
