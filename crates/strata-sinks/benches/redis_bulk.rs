//! The Redis sink's throughput against Redis's own: 100,000 matrix rows written (a) with
//! plain pipelined `HSET`s, no guard, and (b) through `RedisSink` in batches of 1,000.
//!
//! Run: `cargo bench -p strata-sinks --bench redis_bulk` with STRATA_TEST_REDIS_URL set
//! (`eval "$(scripts/services.sh env)"`). `BENCH_ROWS` overrides the row count.
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/common/mod.rs"]
mod common;

use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};
use strata_core::{Sink, SinkOp, Value};
use strata_sinks::redis::{RedisSettings, RedisSink};

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

/// The same text forms the sink writes, without the guard (see the sink's type mapping).
fn field(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Null => None,
        Value::Bytes(b) => Some(b.clone()),
        Value::Geometry { srid, wkb } => {
            let mut out = srid.to_le_bytes().to_vec();
            out.extend_from_slice(wkb);
            Some(out)
        }
        Value::Set(m) => Some(m.join(",").into_bytes()),
        Value::Bit { bits, .. } => Some(bits.to_string().into_bytes()),
        Value::Json(s) | Value::Decimal(s) => Some(s.clone().into_bytes()),
        other => Some(other.key_text().into_bytes()),
    }
}

async fn clear(con: &mut MultiplexedConnection, pattern: &str) {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(con)
            .await
            .unwrap();
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(con)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

fn per_second(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let url = common::env_url("STRATA_TEST_REDIS_URL");
    let n: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let prefix = common::unique("bench_redis");
    let table = common::matrix_table("matrix");
    let rows = rows(n);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();

    // (a) Redis's own bulk path: pipelined HSETs, 1,000 rows a round trip.
    let plain_prefix = format!("{prefix}:plain:");
    let version = strata_core::Version::from_order(1).sortable();
    let started = Instant::now();
    for (b, chunk) in rows.chunks(BATCH).enumerate() {
        let mut pipe = redis::pipe();
        for (i, row) in chunk.iter().enumerate() {
            let key = format!("{plain_prefix}matrix:{}", b * BATCH + i);
            pipe.cmd("HSET")
                .arg(key)
                .arg("_strata_version")
                .arg(&version);
            for (column, value) in table.columns.iter().zip(row) {
                if let Some(bytes) = field(value) {
                    pipe.arg(&column.name).arg(bytes);
                }
            }
            pipe.ignore();
        }
        pipe.query_async::<()>(&mut con).await.unwrap();
    }
    let plain = started.elapsed();

    // (b) The sink: guarded script calls, 1,000 ops a batch.
    let mut settings = RedisSettings::new(url.clone());
    settings.key_prefix = format!("{prefix}:sink:");
    let sink = RedisSink::connect(settings).await.unwrap();
    let ops: Vec<SinkOp> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| common::upsert(&table, row.clone(), i as u64 + 1))
        .collect();
    let started = Instant::now();
    let mut applied = 0;
    for batch in ops.chunks(BATCH) {
        applied += sink.apply(batch).await.unwrap().applied;
    }
    let guarded = started.elapsed();
    assert_eq!(applied as usize, n);

    clear(&mut con, &format!("{prefix}:*")).await;
    let (a, b) = (per_second(n, plain), per_second(n, guarded));
    println!("redis bulk, {n} matrix rows (25 columns), batches of {BATCH}:");
    println!("  plain pipelined HSET : {a:>10.0} rows/s ({plain:.2?})");
    println!("  RedisSink (guarded)  : {b:>10.0} rows/s ({guarded:.2?})");
    println!("  sink / plain         : {:>10.2}", b / a);
}
