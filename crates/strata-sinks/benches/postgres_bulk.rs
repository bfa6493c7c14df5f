//! The PostgreSQL sink's throughput against PostgreSQL's own: 100,000 matrix rows written
//! (a) with `COPY … FROM STDIN`, no guard, and (b) through `PostgresSink` in batches of
//! 1,000.
//!
//! Run: `cargo bench -p strata-sinks --bench postgres_bulk` with STRATA_TEST_POSTGRES_URL
//! set (`eval "$(scripts/services.sh env)"`). `BENCH_ROWS` overrides the row count.
#![allow(clippy::unwrap_used)] // a benchmark: failing loudly is the point

#[path = "../tests/common/mod.rs"]
mod common;

use futures_util::SinkExt;
use std::io::Cursor;
use std::time::{Duration, Instant};
use strata_core::{DateTime, Sink, SinkOp, Value};
use strata_sinks::postgres::{PostgresSettings, PostgresSink};
use tokio_postgres::{Client, NoTls};

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

/// A value in COPY's text format (PostgreSQL's input syntax, backslash-escaped).
fn copy_field(value: &Value, out: &mut String) {
    let text = match value {
        Value::Null => {
            out.push_str("\\N");
            return;
        }
        Value::Bytes(b) => format!("\\x{}", hex::encode(b)),
        Value::Geometry { srid, wkb } => {
            format!("\\x{}{}", hex::encode(srid.to_le_bytes()), hex::encode(wkb))
        }
        Value::Float(f) => f.to_string(),
        Value::Double(d) => format!("{d:e}"),
        Value::Set(m) => format!("{{{}}}", m.join(",")),
        Value::Bit { bits, width } => format!("{bits:0w$b}", w = usize::from(*width)),
        Value::DateTime(dt) => dt.to_string(),
        Value::Timestamp(Some(us)) => format!("{}+00", DateTime::from_unix_micros(*us)),
        other => other.key_text(),
    };
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The version the sink gives row `i` (below), so both tables end up equal.
fn version_of(row: &[Value]) -> String {
    match row[0] {
        Value::Int(i) => strata_core::Version::from_order(i as u64 + 1).sortable(),
        _ => unreachable!("the bench rows have integer ids"),
    }
}

async fn copy_rows(client: &Client, sql: &str, rows: &[Vec<Value>]) {
    let mut text = String::new();
    for row in rows {
        for value in row {
            copy_field(value, &mut text);
            text.push('\t');
        }
        text.push_str(&version_of(row));
        text.push('\n');
    }
    let sink = client.copy_in::<_, Cursor<Vec<u8>>>(sql).await.unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(Cursor::new(text.into_bytes())).await.unwrap();
    sink.as_mut().finish().await.unwrap();
}

fn per_second(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let url = common::env_url("STRATA_TEST_POSTGRES_URL");
    let n: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let schema = common::unique("bench_postgres");
    let table = common::matrix_table("matrix");
    let rows = rows(n);
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);

    // The sink creates the table; the plain copies get the same columns and key.
    let sink = PostgresSink::connect(PostgresSettings::new(url.clone(), schema.clone()))
        .await
        .unwrap();
    sink.apply(&[common::upsert(&table, rows[0].clone(), 0)])
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{schema}\".plain (LIKE \"{schema}\".matrix INCLUDING ALL); \
             CREATE TABLE \"{schema}\".plain_one (LIKE \"{schema}\".matrix INCLUDING ALL); \
             TRUNCATE \"{schema}\".matrix"
        ))
        .await
        .unwrap();

    // (a) PostgreSQL's own bulk path: COPY, 1,000 rows a statement, and all rows at once.
    let copy = |t: &str| format!("COPY \"{schema}\".{t} FROM STDIN (FORMAT text)");
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        copy_rows(&client, &copy("plain"), chunk).await;
    }
    let plain = started.elapsed();
    let started = Instant::now();
    copy_rows(&client, &copy("plain_one"), &rows).await;
    let plain_one = started.elapsed();

    // (b) The sink: guarded multi-row upserts, 1,000 ops a batch, one transaction each.
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

    let same: bool = client
        .query_one(
            &format!(
                "SELECT NOT EXISTS (SELECT * FROM \"{schema}\".matrix \
                 EXCEPT SELECT * FROM \"{schema}\".plain)"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let _ = client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await;
    let (a, a1, b) = (
        per_second(n, plain),
        per_second(n, plain_one),
        per_second(n, guarded),
    );
    println!("postgres bulk, {n} matrix rows (25 columns), batches of {BATCH}:");
    println!("  plain COPY, {BATCH}-row statements : {a:>10.0} rows/s ({plain:.2?})");
    println!("  plain COPY, one statement         : {a1:>10.0} rows/s ({plain_one:.2?})");
    println!("  PostgresSink (guarded)            : {b:>10.0} rows/s ({guarded:.2?})");
    println!("  sink / plain COPY ({BATCH}-row)     : {:>10.2}", b / a);
    println!("  sink rows equal the COPY rows      : {same}");
}
