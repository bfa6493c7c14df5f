//! The Elasticsearch/OpenSearch sink's throughput against the cluster's own: 100,000
//! matrix rows written (a) with plain `_bulk` `index` actions (no version, no guard) and
//! (b) through `SearchSink` (versioned actions), both in requests of 1,000 rows.
//!
//! Run: `cargo bench -p strata-sinks --bench search_bulk` with STRATA_TEST_OPENSEARCH_URL
//! set (`eval "$(scripts/services.sh env)"`). `BENCH_ROWS` overrides the row count.
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};
use strata_core::{Sink, SinkOp, Value};
use strata_sinks::search::{SearchSettings, SearchSink};

const BATCH: usize = 1_000;

fn rows(n: usize) -> Vec<Vec<Value>> {
    let fixture = common::matrix_rows();
    (0..n)
        .map(|i| {
            let mut row = fixture[i % 2].clone();
            row[0] = Value::Int(i as i64);
            row[17] = Value::String(format!("row {i}"));
            row
        })
        .collect()
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    common::install_tls_provider();
    let url = common::env_url("STRATA_TEST_OPENSEARCH_URL");
    let n: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let prefix = format!("{}_", common::unique("bench_search"));
    let sink = SearchSink::connect(SearchSettings::new(&url, &prefix))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let rows = rows(n);

    // (a) Plain `_bulk` into an index with the sink's mapping (made by one sink write).
    let plain_table = common::matrix_table("plain");
    sink.apply(&[common::upsert(&plain_table, rows[0].clone(), 1)])
        .await
        .unwrap();
    let names: Vec<&str> = plain_table
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let index = format!("{prefix}plain");
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut body = String::new();
        for row in chunk {
            let doc: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .zip(row)
                .map(|(name, value)| ((*name).to_owned(), value.to_json()))
                .collect();
            body.push_str(&format!(
                "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{}\"}}}}\n",
                row[0].key_text()
            ));
            body.push_str(&serde_json::Value::Object(doc).to_string());
            body.push('\n');
        }
        let answer: serde_json::Value = http
            .post(format!("{url}/_bulk"))
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
    let plain = started.elapsed();

    // (b) The same rows through the sink.
    let table = common::matrix_table("sink");
    let ops: Vec<SinkOp> = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| common::upsert(&table, row, 10 + i as u64))
        .collect();
    let started = Instant::now();
    let mut applied = 0;
    for batch in ops.chunks(BATCH) {
        applied += sink.apply(batch).await.unwrap().applied;
    }
    let guarded = started.elapsed();
    assert_eq!(applied, n as u64);

    let (plain_rate, sink_rate) = (rate(n, plain), rate(n, guarded));
    println!("search_bulk: {n} rows, batches of {BATCH}");
    println!("  plain _bulk (no version):  {plain_rate:>10.0} rows/s ({plain:.2?})");
    println!("  SearchSink (external ver): {sink_rate:>10.0} rows/s ({guarded:.2?})");
    println!(
        "  sink / plain:              {:>10.2}",
        sink_rate / plain_rate
    );
    let _ = http.delete(format!("{url}/{prefix}*")).send().await;
}
