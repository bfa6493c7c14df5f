//! The PostgreSQL sink against a real PostgreSQL server (STRATA_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{delete, env_url, matrix_rows, matrix_table, people, person, unique, upsert};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::{
    ApplyStats, Column, ColumnType, ErrorKind, Sink, SinkOp, TargetTable, Value, Version,
};
use strata_sinks::postgres::{PostgresSettings, PostgresSink};
use tokio_postgres::{Client, NoTls};

fn url() -> String {
    env_url("STRATA_TEST_POSTGRES_URL")
}

/// A sink writing to a fresh schema, and a plain client to read what it wrote.
async fn setup(prefix: &str) -> (PostgresSink, Client, String) {
    let schema = unique(prefix);
    let sink = PostgresSink::connect(PostgresSettings::new(url(), schema.clone()))
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
        .await
        .unwrap();
    (sink, client, schema)
}

async fn cleanup(client: &Client, schema: &str) {
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await;
}

/// Every row of a table, each column in PostgreSQL's text form, ordered by `id`.
async fn text_rows(
    client: &Client,
    schema: &str,
    table: &str,
    columns: &[&str],
) -> Vec<Vec<Option<String>>> {
    let select: Vec<String> = columns.iter().map(|c| format!("t.\"{c}\"::text")).collect();
    let sql = format!(
        "SELECT {} FROM \"{schema}\".\"{table}\" AS t ORDER BY t.\"id\"",
        select.join(", ")
    );
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (0..columns.len()).map(|i| row.get(i)).collect())
        .collect()
}

fn stats(applied: u64, stale: u64) -> ApplyStats {
    ApplyStats { applied, stale }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What PostgreSQL shows (as text) for the fixture rows, per the mapping in the module doc.
fn expected_matrix_text() -> Vec<Vec<Option<String>>> {
    let some = |s: &str| Some(s.to_string());
    let mut point = vec![0u8, 0, 0, 0, 1, 1, 0, 0, 0];
    point.extend_from_slice(&1.0f64.to_le_bytes());
    point.extend_from_slice(&2.0f64.to_le_bytes());
    let mut origin = vec![0xe6u8, 0x10, 0, 0, 1, 1, 0, 0, 0];
    origin.extend_from_slice(&[0; 16]);
    let mut nulls = vec![some("3")];
    nulls.resize(25, None);
    vec![
        vec![
            some("1"),
            some("-128"),
            some("255"),
            some("-32768"),
            some("16777215"),
            some("-2147483648"),
            some("4294967295"),
            some("-9223372036854775808"),
            some("18446744073709551615"),
            some("1.5"),
            some("-2.25e+300"),
            some("12345678901234567890123456789012345.123456789012345678901234567890"),
            some("2024-02-29"),
            some("9999-12-31 23:59:59.999999"),
            some("2023-11-14 22:13:20.123456+00"),
            some("-838:59:58.999999"),
            some("2155"),
            some("héllo wörld ✓ 𝄞"),
            some("café"),
            some(&hex(&[0, 1, 2, 255, 254, b'\\', b'"', 0])),
            some("large"),
            some("{a,c}"),
            some(&"1".repeat(64)),
            some(r#"{"a": [1, 2.50, {"b": null}], "c": "x", "d": 12345678901234567890.123}"#),
            some(&hex(&point)),
        ],
        vec![
            some("2"),
            some("127"),
            some("0"),
            some("32767"),
            some("0"),
            some("2147483647"),
            some("0"),
            some("9223372036854775807"),
            some("0"),
            some("-0"),
            some("0.1"),
            some("-0.000000000000000000000000000001"),
            some("1000-01-01"),
            some("1000-01-01 00:00:00"),
            some("1970-01-01 00:00:01+00"),
            some("00:00:00.000001"),
            some("1901"),
            some(""),
            some("ÿ"),
            some("\\x"),
            some("small"),
            some("{}"),
            some(&"0".repeat(64)),
            some("[]"),
            some(&hex(&origin)),
        ],
        nulls,
    ]
}

fn matrix_columns(table: &TargetTable) -> Vec<&str> {
    table.columns.iter().map(|c| c.name.as_str()).collect()
}

#[tokio::test]
async fn type_matrix_round_trips_value_for_value() {
    let (sink, client, schema) = setup("pgsink_matrix").await;
    let table = matrix_table("matrix");
    let cols = matrix_columns(&table);
    let rows = matrix_rows();
    let ops: Vec<SinkOp> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| upsert(&table, r.clone(), 100 + i as u64))
        .collect();
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(3, 0));
    assert_eq!(
        text_rows(&client, &schema, "matrix", &cols).await,
        expected_matrix_text()
    );

    // Typed reads: floats bit-exact, bytes as bytes, JSON equal as JSON, SET as an array.
    let row = client
        .query_one(
            &format!(
                "SELECT f32, f64, b, st, j = $1::text::jsonb, j->>'d', \
                 extract(epoch from ts)::text, u64 = 18446744073709551615 \
                 FROM \"{schema}\".matrix WHERE id = 1"
            ),
            &[&r#"{"a":[1,2.50,{"b":null}],"c":"x","d":12345678901234567890.123}"#],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, f32>(0), 1.5);
    assert_eq!(row.get::<_, f64>(1), -2.25e300);
    assert_eq!(
        row.get::<_, Vec<u8>>(2),
        vec![0, 1, 2, 255, 254, b'\\', b'"', 0]
    );
    assert_eq!(row.get::<_, Vec<String>>(3), vec!["a", "c"]);
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "12345678901234567890.123");
    assert_eq!(row.get::<_, String>(6), "1700000000.123456");
    assert!(row.get::<_, bool>(7));
    let negative_zero: f32 = client
        .query_one(
            &format!("SELECT f32 FROM \"{schema}\".matrix WHERE id = 2"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(negative_zero == 0.0 && negative_zero.is_sign_negative());

    // Update every row (the NULL row gets values, row 1 gets NULLs), then delete row 2.
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
    let mut expected = expected_matrix_text();
    expected[0][17] = Some("changed".into());
    expected[0][11] = None;
    let mut third = expected[1].clone();
    third[0] = Some("3".into());
    expected[2] = third;
    expected.remove(1);
    assert_eq!(text_rows(&client, &schema, "matrix", &cols).await, expected);
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".matrix"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2, "the deleted row is gone from ordinary reads");
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn zero_dates_become_minus_infinity() {
    let (sink, client, schema) = setup("pgsink_zero").await;
    let table = matrix_table("zero");
    let mut row = matrix_rows()[2].clone();
    row[12] = Value::Date(strata_core::Date {
        year: 0,
        month: 0,
        day: 0,
    });
    row[13] = Value::DateTime(strata_core::DateTime {
        date: strata_core::Date {
            year: 2024,
            month: 0,
            day: 0,
        },
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    });
    row[14] = Value::Timestamp(None);
    sink.apply(&[upsert(&table, row, 1)]).await.unwrap();
    let got = text_rows(&client, &schema, "zero", &["d", "dt", "ts"]).await;
    assert_eq!(
        got,
        vec![vec![
            Some("-infinity".to_string()),
            Some("-infinity".to_string()),
            Some("-infinity".to_string())
        ]]
    );
    cleanup(&client, &schema).await;
}

async fn people_rows(client: &Client, schema: &str, table: &str) -> Vec<(i32, String, i64)> {
    client
        .query(
            &format!("SELECT id, name, n FROM \"{schema}\".\"{table}\" ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn guards_keep_newer_writes_and_deletes() {
    let (sink, client, schema) = setup("pgsink_guard").await;
    let t = people("people");
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

    // Older and equal versions change nothing.
    let older = upsert(&t, person(1, "older", 0), 5);
    let equal = upsert(&t, person(1, "equal", 0), 10);
    assert_eq!(sink.apply(&[older, equal]).await.unwrap(), stats(0, 2));
    let want = vec![(1, "one".to_string(), 1), (2, "two".to_string(), 2)];
    assert_eq!(people_rows(&client, &schema, "people").await, want);

    // Delete, then replays of older upserts and an older delete cannot bring it back.
    let del = delete(&t, vec![Value::Int(2)], 20);
    assert_eq!(sink.apply(&[del]).await.unwrap(), stats(1, 0));
    let replays = vec![
        upsert(&t, person(2, "replay", 0), 15),
        upsert(&t, person(2, "replay", 0), 20),
        delete(&t, vec![Value::Int(2)], 18),
    ];
    assert_eq!(sink.apply(&replays).await.unwrap(), stats(0, 3));
    assert_eq!(
        people_rows(&client, &schema, "people").await,
        want[..1].to_vec()
    );

    // A delete of a row never seen still leaves a tombstone that wins over older upserts.
    let ghost = delete(&t, vec![Value::Int(9)], 50);
    assert_eq!(sink.apply(&[ghost]).await.unwrap(), stats(1, 0));
    let late = upsert(&t, person(9, "late", 0), 40);
    assert_eq!(sink.apply(&[late]).await.unwrap(), stats(0, 1));

    // A newer upsert brings the row back.
    let back = upsert(&t, person(2, "back", 3), 25);
    assert_eq!(sink.apply(&[back]).await.unwrap(), stats(1, 0));
    assert_eq!(
        people_rows(&client, &schema, "people").await,
        vec![(1, "one".to_string(), 1), (2, "back".to_string(), 3)]
    );

    // Guard-column versions compare the guard first.
    let guarded = |name: &str, guard: i64, order: u64| SinkOp {
        version: Version {
            guard: Some(guard),
            order,
        },
        ..upsert(&t, person(1, name, 0), 0)
    };
    assert_eq!(
        sink.apply(&[guarded("g100", 100, 1)]).await.unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        sink.apply(&[guarded("g99", 99, 1_000)]).await.unwrap(),
        stats(0, 1)
    );
    let tombstones: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\"._strata_tombstones"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tombstones, 2, "tombstones live in their own table");
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn ops_of_one_key_in_one_batch_apply_in_order() {
    let (sink, client, schema) = setup("pgsink_order").await;
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
        people_rows(&client, &schema, "people").await,
        vec![(1, "d".to_string(), 4), (3, "new".to_string(), 5)]
    );
    cleanup(&client, &schema).await;
}

async fn column_types(client: &Client, schema: &str, table: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn schema_changes_are_followed() {
    let (sink, client, schema) = setup("pgsink_schema").await;
    let v1 = people("evolving");
    sink.apply(&[
        upsert(&v1, person(1, "one", 10), 1),
        upsert(&v1, person(2, "two", 20), 2),
    ])
    .await
    .unwrap();

    // v2: `name` renamed to `full_name`, `n` dropped, `tags` (JSON) added, and `id` widened
    // to BIGINT UNSIGNED. The batch mixes a v1 op and v2 ops.
    let mut v2 = (*v1).clone();
    v2.columns[0].ty = ColumnType::Int {
        bytes: 8,
        unsigned: true,
    };
    v2.columns[1].name = "full_name".into();
    v2.columns.remove(2);
    v2.columns.push(Column {
        name: "tags".into(),
        ty: ColumnType::Json,
        nullable: true,
    });
    let v2 = Arc::new(v2);
    let row2 = |id: u64, name: &str, tags: &str| {
        vec![
            Value::UInt(id),
            Value::String(name.into()),
            Value::Json(tags.into()),
        ]
    };
    let batch = vec![
        upsert(&v1, person(3, "three", 30), 3),
        upsert(&v2, row2(1, "One Renamed", r#"["a"]"#), 4),
        upsert(&v2, row2(u64::MAX, "max", "{}"), 5),
    ];
    assert_eq!(sink.apply(&batch).await.unwrap(), stats(3, 0));
    assert_eq!(
        column_types(&client, &schema, "evolving").await,
        vec![
            ("id".to_string(), "numeric".to_string()),
            ("_strata_version".to_string(), "text".to_string()),
            ("full_name".to_string(), "text".to_string()),
            ("tags".to_string(), "jsonb".to_string()),
        ]
    );
    let rows: Vec<(String, Option<String>, Option<String>)> = client
        .query(
            &format!(
                "SELECT e.id::text, full_name, tags::text FROM \"{schema}\".evolving e ORDER BY e.id"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "1".to_string(),
                Some("One Renamed".to_string()),
                Some(r#"["a"]"#.to_string())
            ),
            // Not rewritten since the rename: the renamed column starts empty.
            ("2".to_string(), None, None),
            ("3".to_string(), None, None),
            (
                "18446744073709551615".to_string(),
                Some("max".to_string()),
                Some("{}".to_string())
            ),
        ]
    );

    // A fresh sink (a restart) finds the table as it is and keeps writing v2 rows.
    let again = PostgresSink::connect(PostgresSettings::new(url(), schema.clone()))
        .await
        .unwrap();
    assert_eq!(
        again
            .apply(&[upsert(&v2, row2(2, "Two", "[]"), 6)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    let name: String = client
        .query_one(
            &format!("SELECT full_name FROM \"{schema}\".evolving WHERE id = 2"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Two");
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn older_shapes_never_undo_newer_ones() {
    let (sink, client, schema) = setup("pgsink_shapes").await;
    let v1 = people("people");
    sink.apply(&[upsert(&v1, person(1, "one", 1), 10)])
        .await
        .unwrap();
    // v2 (binlog order 100): `name` renamed to `full_name`.
    let mut v2 = (*v1).clone();
    v2.columns[1].name = "full_name".into();
    let v2 = Arc::new(v2);
    sink.apply(&[upsert(&v2, person(1, "One", 2), 100)])
        .await
        .unwrap();
    // A worker that is behind (or a replay) still writes v1 ops, older than v2.
    let behind = vec![
        upsert(&v1, person(2, "two", 20), 50),
        upsert(&v1, person(1, "stale", 0), 60),
    ];
    assert_eq!(sink.apply(&behind).await.unwrap(), stats(1, 1));
    let columns: Vec<String> = column_types(&client, &schema, "people")
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(columns, vec!["id", "n", "_strata_version", "full_name"]);
    let rows: Vec<(i32, Option<String>, i64)> = client
        .query(
            &format!("SELECT id, full_name, n FROM \"{schema}\".people ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, vec![(1, Some("One".into()), 2), (2, None, 20)]);
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn rejected_writes_name_the_op_and_write_nothing() {
    let (sink, client, schema) = setup("pgsink_reject").await;
    let t = people("people");
    sink.apply(&[upsert(&t, person(1, "one", 1), 1)])
        .await
        .unwrap();
    // A DBA adds a constraint that the source does not have.
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".people ADD CONSTRAINT n_positive CHECK (n >= 0)"
        ))
        .await
        .unwrap();
    let batch: Vec<SinkOp> = (0..6)
        .map(|i| upsert(&t, person(10 + i, "x", if i == 3 { -1 } else { i }), 10))
        .collect();
    let err = sink.apply(&batch).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected, "{err}");
    assert_eq!(err.op_index, Some(3), "{err}");
    assert!(
        err.message.contains("people") && err.message.contains("13"),
        "{err}"
    );
    assert!(err.message.contains("n_positive"), "{err}");
    assert_eq!(
        people_rows(&client, &schema, "people").await.len(),
        1,
        "a rejected batch writes nothing"
    );

    // A value PostgreSQL text cannot hold is refused before anything is sent.
    let nul = upsert(&t, person(20, "nul\0byte", 1), 20);
    let err = sink
        .apply(&[upsert(&t, person(21, "ok", 1), 20), nul])
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.op_index),
        (ErrorKind::Rejected, Some(1)),
        "{err}"
    );
    assert!(
        !err.message.contains("nul"),
        "no row values in messages: {err}"
    );

    // After the constraint is gone, the same batch applies.
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".people DROP CONSTRAINT n_positive"
        ))
        .await
        .unwrap();
    assert_eq!(sink.apply(&batch).await.unwrap(), stats(6, 0));
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn tables_altered_by_hand_are_repaired() {
    let (sink, client, schema) = setup("pgsink_drift").await;
    let t = people("people");
    sink.apply(&[upsert(&t, person(1, "one", 1), 1)])
        .await
        .unwrap();
    client
        .batch_execute(&format!("ALTER TABLE \"{schema}\".people DROP COLUMN name"))
        .await
        .unwrap();
    assert_eq!(
        sink.apply(&[upsert(&t, person(2, "two", 2), 2)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    client
        .batch_execute(&format!("DROP TABLE \"{schema}\".people"))
        .await
        .unwrap();
    assert_eq!(
        sink.apply(&[upsert(&t, person(3, "three", 3), 3)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        people_rows(&client, &schema, "people").await,
        vec![(3, "three".to_string(), 3)]
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    assert_eq!(
        sink.apply(&[upsert(&t, person(4, "four", 4), 4)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn tombstones_expire_after_their_ttl() {
    let schema = unique("pgsink_ttl");
    let mut settings = PostgresSettings::new(url(), schema.clone());
    settings.tombstone_ttl = Duration::from_millis(200);
    let sink = PostgresSink::connect(settings).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    let t = people("people");
    sink.apply(&[delete(&t, vec![Value::Int(1)], 10)])
        .await
        .unwrap();
    let tombstones = format!("SELECT count(*) FROM \"{schema}\"._strata_tombstones");
    assert_eq!(
        client
            .query_one(&tombstones, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    // Purges run inside batches: keep writing another row until the tombstone is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut order = 100;
    loop {
        order += 1;
        sink.apply(&[upsert(&t, person(2, "other", 0), order)])
            .await
            .unwrap();
        let left: i64 = client.query_one(&tombstones, &[]).await.unwrap().get(0);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the tombstone was never purged");
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    // Past the retention window an old upsert is no longer blocked (documented).
    assert_eq!(
        sink.apply(&[upsert(&t, person(1, "late", 0), 5)])
            .await
            .unwrap(),
        stats(1, 0)
    );
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error() {
    let mut settings = PostgresSettings::new("postgres://postgres@127.0.0.1:1/postgres", "x");
    settings.timeout = Duration::from_secs(5);
    let err = match PostgresSink::connect(settings).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn ten_thousand_ops_apply_in_one_batch() {
    let (sink, client, schema) = setup("pgsink_bulk").await;
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
    let deletes: Vec<SinkOp> = (0..10_000)
        .map(|i| delete(&table, vec![Value::Int(i)], 50_000))
        .collect();
    assert_eq!(sink.apply(&deletes).await.unwrap(), stats(10_000, 0));
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".bulk"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    // Replaying the upserts after the deletes: all stale.
    assert_eq!(sink.apply(&ops).await.unwrap(), stats(0, 10_000));
    eprintln!(
        "10,000 matrix upserts in {upsert_time:?}, whole test {:?}",
        started.elapsed()
    );
    assert!(upsert_time < Duration::from_secs(30), "{upsert_time:?}");
    cleanup(&client, &schema).await;
}

#[tokio::test]
async fn concurrent_batches_on_one_new_table_all_land() {
    let (sink, client, schema) = setup("pgsink_concurrent").await;
    let sink = Arc::new(sink);
    let t = people("shared");
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let sink = sink.clone();
            let t = t.clone();
            tokio::spawn(async move {
                let ops: Vec<SinkOp> = (0..50)
                    .map(|i| upsert(&t, person(w * 100 + i, "w", w), 1))
                    .collect();
                sink.apply(&ops).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), stats(50, 0));
    }
    assert_eq!(people_rows(&client, &schema, "shared").await.len(), 200);
    assert!(sink.check().await.is_ok());
    cleanup(&client, &schema).await;
}
