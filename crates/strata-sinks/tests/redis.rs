//! The Redis sink against a real Redis server (STRATA_TEST_REDIS_URL).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{delete, env_url, matrix_rows, matrix_table, people, person, unique, upsert};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::{ApplyStats, Column, ColumnType, ErrorKind, Sink, SinkOp, Value, Version};
use strata_sinks::redis::{RedisSettings, RedisSink};

/// Tests share DB 0 of the test server; each owns a unique key prefix.
const DB: u8 = 0;

fn url() -> String {
    env_url("STRATA_TEST_REDIS_URL")
}

/// A sink writing under a fresh key prefix, and a plain connection to read what it wrote.
async fn setup(name: &str) -> (RedisSink, MultiplexedConnection, String) {
    let prefix = format!("{}:", unique(name));
    let mut settings = RedisSettings::new(url());
    settings.db = DB;
    settings.key_prefix = prefix.clone();
    let sink = RedisSink::connect(settings).await.unwrap();
    let client = redis::Client::open(url()).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    (sink, connection, prefix)
}

/// Every key under `pattern`.
async fn keys(con: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .unwrap();
        found.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    found.sort();
    found
}

async fn cleanup(con: &mut MultiplexedConnection, prefix: &str) {
    for key in keys(con, &format!("{prefix}*")).await {
        let _: Result<(), _> = con.del(key).await;
    }
}

async fn hash(con: &mut MultiplexedConnection, key: &str) -> HashMap<String, Vec<u8>> {
    con.hgetall(key).await.unwrap()
}

fn stats(applied: u64, stale: u64) -> ApplyStats {
    ApplyStats { applied, stale }
}

fn version_text(order: u64) -> Vec<u8> {
    Version::from_order(order).sortable().into_bytes()
}

/// The hashes the fixture rows become, per the mapping in the module doc.
fn expected_matrix(orders: [u64; 3]) -> Vec<HashMap<String, Vec<u8>>> {
    let text = |pairs: &[(&str, &str)]| -> HashMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    let mut point = vec![0u8, 0, 0, 0, 1, 1, 0, 0, 0];
    point.extend_from_slice(&1.0f64.to_le_bytes());
    point.extend_from_slice(&2.0f64.to_le_bytes());
    let mut origin = vec![0xe6u8, 0x10, 0, 0, 1, 1, 0, 0, 0];
    origin.extend_from_slice(&[0; 16]);
    let mut first = text(&[
        ("id", "1"),
        ("i8", "-128"),
        ("u8", "255"),
        ("i16", "-32768"),
        ("u24", "16777215"),
        ("i32", "-2147483648"),
        ("u32", "4294967295"),
        ("i64", "-9223372036854775808"),
        ("u64", "18446744073709551615"),
        ("f32", "1.5"),
        ("f64", "-2.25e+300"),
        (
            "dec",
            "12345678901234567890123456789012345.123456789012345678901234567890",
        ),
        ("d", "2024-02-29"),
        ("dt", "9999-12-31T23:59:59.999999"),
        ("ts", "2023-11-14T22:13:20.123456Z"),
        ("t", "-838:59:58.999999"),
        ("y", "2155"),
        ("s", "héllo wörld ✓ 𝄞"),
        ("l1", "café"),
        ("e", "large"),
        ("st", "a,c"),
        ("bit", "18446744073709551615"),
        (
            "j",
            r#"{"a":[1,2.50,{"b":null}],"c":"x","d":12345678901234567890.123}"#,
        ),
    ]);
    first.insert("b".into(), vec![0, 1, 2, 255, 254, b'\\', b'"', 0]);
    first.insert("g".into(), point);
    first.insert("_strata_version".into(), version_text(orders[0]));
    let mut second = text(&[
        ("id", "2"),
        ("i8", "127"),
        ("u8", "0"),
        ("i16", "32767"),
        ("u24", "0"),
        ("i32", "2147483647"),
        ("u32", "0"),
        ("i64", "9223372036854775807"),
        ("u64", "0"),
        ("f32", "-0"),
        ("f64", "0.1"),
        ("dec", "-0.000000000000000000000000000001"),
        ("d", "1000-01-01"),
        ("dt", "1000-01-01T00:00:00"),
        ("ts", "1970-01-01T00:00:01Z"),
        ("t", "00:00:00.000001"),
        ("y", "1901"),
        ("s", ""),
        ("l1", "ÿ"),
        ("b", ""),
        ("e", "small"),
        ("st", ""),
        ("bit", "0"),
        ("j", "[]"),
    ]);
    second.insert("g".into(), origin);
    second.insert("_strata_version".into(), version_text(orders[1]));
    let mut nulls = text(&[("id", "3")]);
    nulls.insert("_strata_version".into(), version_text(orders[2]));
    vec![first, second, nulls]
}

#[tokio::test]
async fn type_matrix_round_trips_value_for_value() {
    let (sink, mut con, prefix) = setup("redis_matrix").await;
    let table = matrix_table("matrix");
    let rows = matrix_rows();
    let ops: Vec<SinkOp> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| upsert(&table, r.clone(), 100 + i as u64))
        .collect();
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(3, 0));
    let expected = expected_matrix([100, 101, 102]);
    for (id, want) in [1, 2, 3].iter().zip(&expected) {
        let got = hash(&mut con, &format!("{prefix}matrix:{id}")).await;
        assert_eq!(&got, want, "row {id}");
    }

    // Update: row 1 loses a value to NULL and changes one, the NULL row gets values;
    // then delete row 2.
    let mut updated = rows.clone();
    updated[0][17] = Value::String("changed".into());
    updated[0][11] = Value::Null;
    updated[2] = rows[1].clone();
    updated[2][0] = Value::Int(3);
    let ops: Vec<SinkOp> = updated
        .iter()
        .map(|r| upsert(&table, r.clone(), 200))
        .chain([delete(&table, vec![Value::Int(2)], 300)])
        .collect();
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(4, 0));
    let mut want1 = expected_matrix([200, 200, 200])[0].clone();
    want1.insert("s".into(), b"changed".to_vec());
    want1.remove("dec");
    assert_eq!(hash(&mut con, &format!("{prefix}matrix:1")).await, want1);
    let mut want3 = expected_matrix([200, 200, 200])[1].clone();
    want3.insert("id".into(), b"3".to_vec());
    assert_eq!(hash(&mut con, &format!("{prefix}matrix:3")).await, want3);

    // The deleted row is gone, and a scan of the table's keys meets no tombstone.
    assert_eq!(
        keys(&mut con, &format!("{prefix}matrix:*")).await,
        vec![format!("{prefix}matrix:1"), format!("{prefix}matrix:3")]
    );
    let tomb = format!("{prefix}~tomb:matrix:2");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&tomb)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(ttl > 23 * 3600 * 1000 && ttl <= 24 * 3600 * 1000, "{ttl}");
    cleanup(&mut con, &prefix).await;
}

/// `name` of a row, or None when the row is absent.
async fn name_of(con: &mut MultiplexedConnection, key: &str) -> Option<String> {
    let h = hash(con, key).await;
    if h.is_empty() {
        return None;
    }
    h.get("name").map(|v| String::from_utf8(v.clone()).unwrap())
}

#[tokio::test]
async fn guards_keep_newer_writes_and_deletes() {
    let (sink, mut con, prefix) = setup("redis_guard").await;
    let t = people("people");
    let k = |id: i64| format!("{prefix}people:{id}");
    let batch = vec![
        upsert(&t, person(1, "one", 1), 10),
        upsert(&t, person(2, "two", 2), 10),
    ];
    assert_eq!(sink.apply(&batch).await.unwrap(), stats(2, 0));
    assert_eq!(
        sink.apply(&batch).await.unwrap(),
        stats(0, 2),
        "replay is stale"
    );

    let older = upsert(&t, person(1, "older", 0), 5);
    let equal = upsert(&t, person(1, "equal", 0), 10);
    assert_eq!(sink.apply(&[older, equal]).await.unwrap(), stats(0, 2));
    assert_eq!(name_of(&mut con, &k(1)).await.as_deref(), Some("one"));

    let del = delete(&t, vec![Value::Int(2)], 20);
    assert_eq!(sink.apply(&[del]).await.unwrap(), stats(1, 0));
    let replays = vec![
        upsert(&t, person(2, "replay", 0), 15),
        upsert(&t, person(2, "replay", 0), 20),
        delete(&t, vec![Value::Int(2)], 18),
    ];
    assert_eq!(sink.apply(&replays).await.unwrap(), stats(0, 3));
    assert_eq!(name_of(&mut con, &k(2)).await, None);

    let ghost = delete(&t, vec![Value::Int(9)], 50);
    assert_eq!(sink.apply(&[ghost]).await.unwrap(), stats(1, 0));
    let late = upsert(&t, person(9, "late", 0), 40);
    assert_eq!(sink.apply(&[late]).await.unwrap(), stats(0, 1));
    assert_eq!(name_of(&mut con, &k(9)).await, None);

    let back = upsert(&t, person(2, "back", 3), 25);
    assert_eq!(sink.apply(&[back]).await.unwrap(), stats(1, 0));
    assert_eq!(name_of(&mut con, &k(2)).await.as_deref(), Some("back"));
    let tomb_left: bool = con.exists(format!("{prefix}~tomb:people:2")).await.unwrap();
    assert!(!tomb_left, "a newer upsert drops the tombstone it beats");

    // Guard-column versions compare the guard first, across the 63-bit range.
    let guarded = |name: &str, guard: i64, order: u64| SinkOp {
        version: Version {
            guard: Some(guard),
            order,
        },
        ..upsert(&t, person(1, name, 0), 0)
    };
    let high = guarded("high", 1 << 62, 1);
    let low = guarded("low", (1 << 62) - 1, (1 << 63) - 1);
    assert_eq!(sink.apply(&[high]).await.unwrap(), stats(1, 0));
    assert_eq!(sink.apply(&[low]).await.unwrap(), stats(0, 1));
    assert_eq!(name_of(&mut con, &k(1)).await.as_deref(), Some("high"));
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn ops_of_one_key_in_one_batch_apply_in_order() {
    let (sink, mut con, prefix) = setup("redis_order").await;
    let t = people("people");
    let batch = vec![
        upsert(&t, person(1, "a", 1), 1),
        upsert(&t, person(2, "x", 1), 1),
        upsert(&t, person(1, "b", 2), 2),
        delete(&t, vec![Value::Int(1)], 3),
        delete(&t, vec![Value::Int(2)], 3),
        upsert(&t, person(1, "d", 4), 4),
        upsert(&t, person(3, "new", 5), 9),
        upsert(&t, person(3, "older", 6), 8),
    ];
    assert_eq!(sink.apply(&batch).await.unwrap(), stats(7, 1));
    assert_eq!(
        keys(&mut con, &format!("{prefix}people:*")).await,
        vec![format!("{prefix}people:1"), format!("{prefix}people:3")]
    );
    assert_eq!(
        name_of(&mut con, &format!("{prefix}people:1"))
            .await
            .as_deref(),
        Some("d")
    );
    assert_eq!(
        name_of(&mut con, &format!("{prefix}people:3"))
            .await
            .as_deref(),
        Some("new")
    );
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn schema_changes_are_followed() {
    let (sink, mut con, prefix) = setup("redis_schema").await;
    let v1 = people("evolving");
    sink.apply(&[upsert(&v1, person(1, "one", 10), 1)])
        .await
        .unwrap();
    // v2: `name` renamed to `full_name`, `n` dropped, `tags` (JSON) added.
    let mut v2 = (*v1).clone();
    v2.columns[1].name = "full_name".into();
    v2.columns.remove(2);
    v2.columns.push(Column {
        name: "tags".into(),
        ty: ColumnType::Json,
        nullable: true,
    });
    let v2 = Arc::new(v2);
    let row = vec![
        Value::Int(1),
        Value::String("One".into()),
        Value::Json(r#"["a"]"#.into()),
    ];
    let batch = vec![upsert(&v1, person(2, "two", 20), 2), upsert(&v2, row, 3)];
    assert_eq!(sink.apply(&batch).await.unwrap(), stats(2, 0));
    let got = hash(&mut con, &format!("{prefix}evolving:1")).await;
    let mut fields: Vec<&str> = got.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, vec!["_strata_version", "full_name", "id", "tags"]);
    assert_eq!(got["full_name"], b"One");
    assert_eq!(got["tags"], br#"["a"]"#);
    let old = hash(&mut con, &format!("{prefix}evolving:2")).await;
    assert_eq!(
        old["name"], b"two",
        "rows not rewritten keep the old fields"
    );
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn wide_rows_are_written_whole() {
    let (sink, mut con, prefix) = setup("redis_wide").await;
    let mut table = (*people("wide")).clone();
    table.columns.truncate(1);
    for i in 0..300 {
        table.columns.push(Column {
            name: format!("c{i}"),
            ty: ColumnType::Text { charset: None },
            nullable: true,
        });
    }
    let table = Arc::new(table);
    let mut row = vec![Value::Int(1)];
    row.extend((0..300).map(|i| Value::String(format!("v{i}"))));
    assert_eq!(
        sink.apply(&[upsert(&table, row, 1)]).await.unwrap(),
        stats(1, 0)
    );
    let got = hash(&mut con, &format!("{prefix}wide:1")).await;
    assert_eq!(got.len(), 302, "id, 300 columns and the version");
    assert_eq!(got["c299"], b"v299");
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn rejected_writes_name_the_op() {
    let (sink, mut con, prefix) = setup("redis_reject").await;
    let t = people("people");
    // Something else wrote a plain string where row 13's hash belongs.
    let _: () = con
        .set(format!("{prefix}people:13"), "in the way")
        .await
        .unwrap();
    let batch: Vec<SinkOp> = (0..6)
        .map(|i| upsert(&t, person(10 + i, "x", i), 10))
        .collect();
    let err = sink.apply(&batch).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected, "{err}");
    assert_eq!(err.op_index, Some(3), "{err}");
    assert!(
        err.message.contains("people") && err.message.contains("13"),
        "{err}"
    );
    assert!(err.message.contains("WRONGTYPE"), "{err}");
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn tombstones_expire_after_their_ttl() {
    let prefix = format!("{}:", unique("redis_ttl"));
    let mut settings = RedisSettings::new(url());
    settings.key_prefix = prefix.clone();
    settings.tombstone_ttl = Duration::from_millis(200);
    let sink = RedisSink::connect(settings).await.unwrap();
    let mut con = redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let t = people("people");
    sink.apply(&[delete(&t, vec![Value::Int(1)], 10)])
        .await
        .unwrap();
    let tomb = format!("{prefix}~tomb:people:1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while con.exists::<_, bool>(&tomb).await.unwrap() {
        assert!(Instant::now() < deadline, "the tombstone never expired");
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    // Past the retention window an old upsert is no longer blocked (documented).
    assert_eq!(
        sink.apply(&[upsert(&t, person(1, "late", 0), 5)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    cleanup(&mut con, &prefix).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error() {
    let mut settings = RedisSettings::new("redis://127.0.0.1:1");
    settings.timeout = Duration::from_secs(5);
    let err = match RedisSink::connect(settings).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn ten_thousand_ops_apply_in_one_batch() {
    let (sink, mut con, prefix) = setup("redis_bulk").await;
    let table = matrix_table("bulk");
    let template = matrix_rows()[0].clone();
    let ops: Vec<SinkOp> = (0..10_000)
        .map(|i| {
            let mut row = template.clone();
            row[0] = Value::Int(i);
            upsert(&table, row, 1_000 + i as u64)
        })
        .collect();
    let started = Instant::now();
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(10_000, 0));
    let upsert_time = started.elapsed();
    assert_eq!(
        keys(&mut con, &format!("{prefix}bulk:*")).await.len(),
        10_000
    );
    let deletes: Vec<SinkOp> = (0..10_000)
        .map(|i| delete(&table, vec![Value::Int(i)], 50_000))
        .collect();
    assert_eq!(sink.apply(&deletes).await.unwrap(), stats(10_000, 0));
    assert!(keys(&mut con, &format!("{prefix}bulk:*")).await.is_empty());
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(0, 10_000));
    eprintln!("10,000 matrix upserts in {upsert_time:?}");
    assert!(upsert_time < Duration::from_secs(30), "{upsert_time:?}");
    assert!(sink.check().await.is_ok());
    cleanup(&mut con, &prefix).await;
}
