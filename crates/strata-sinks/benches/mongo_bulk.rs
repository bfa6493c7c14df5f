//! The MongoDB sink's throughput against the server's own: 100,000 matrix rows written
//! (a) with plain `insert_many` (no version, no guard) and (b) through `MongoSink`
//! (guarded update pipelines), both in requests of 1,000 rows.
//!
//! Run: `cargo bench -p strata-sinks --bench mongo_bulk` with STRATA_TEST_MONGO_URL set
//! (`eval "$(scripts/services.sh env)"`). `BENCH_ROWS` overrides the row count.
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/common/mod.rs"]
mod common;

use bson::{spec::BinarySubtype, Binary, Bson, Document};
use std::time::{Duration, Instant};
use strata_core::{Sink, SinkOp, Value};
use strata_sinks::mongo::{MongoSettings, MongoSink};

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

/// A plain BSON form of a value, about the size of the sink's (the baseline's encoding
/// need not be exact).
fn plain(value: &Value) -> Bson {
    let binary = |bytes: &[u8]| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: bytes.to_vec(),
        })
    };
    match value {
        Value::Null => Bson::Null,
        Value::Int(v) => Bson::Int64(*v),
        Value::UInt(v) => {
            i64::try_from(*v).map_or_else(|_| Bson::String(v.to_string()), Bson::Int64)
        }
        Value::Float(v) => Bson::Double(f64::from(*v)),
        Value::Double(v) => Bson::Double(*v),
        Value::Bytes(b) => binary(b),
        Value::Geometry { wkb, .. } => binary(wkb),
        Value::Set(m) => Bson::Array(m.iter().cloned().map(Bson::String).collect()),
        Value::Bit { bits, .. } => Bson::Int64(*bits as i64),
        other => Bson::String(other.key_text()),
    }
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let url = common::env_url("STRATA_TEST_MONGO_URL");
    let n: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let database = common::unique("bench_mongo");
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    let db = client.database(&database);
    let rows = rows(n);
    let table = common::matrix_table("sink");
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();

    // (a) Plain insert_many.
    let plain_coll = db.collection::<Document>("plain");
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let docs: Vec<Document> = chunk
            .iter()
            .map(|row| {
                let mut doc = Document::new();
                doc.insert("_id", plain(&row[0]));
                for (name, value) in names.iter().zip(row) {
                    doc.insert(*name, plain(value));
                }
                doc
            })
            .collect();
        plain_coll.insert_many(docs).ordered(false).await.unwrap();
    }
    let plain_took = started.elapsed();

    // (b) The same rows through the sink.
    let sink = MongoSink::connect(MongoSettings::new(&url, &database))
        .await
        .unwrap();
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
    let sink_took = started.elapsed();
    assert_eq!(applied, n as u64);

    let (plain_rate, sink_rate) = (rate(n, plain_took), rate(n, sink_took));
    println!("mongo_bulk: {n} rows, batches of {BATCH}");
    println!("  plain insert_many:        {plain_rate:>10.0} rows/s ({plain_took:.2?})");
    println!("  MongoSink (guarded):      {sink_rate:>10.0} rows/s ({sink_took:.2?})");
    println!(
        "  sink / plain:             {:>10.2}",
        sink_rate / plain_rate
    );
    let _ = db.drop().await;
}
