//! The MongoDB sink against a real server (STRATA_TEST_MONGO_URL): values read back with
//! the driver, guards, in-batch order, schema changes, errors and a 10,000-op batch.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use bson::{doc, spec::BinarySubtype, Binary, Bson, Decimal128, Document};
use common::{delete, env_url, matrix_rows, matrix_table, unique, upsert};
use futures_util::TryStreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::{
    ApplyStats, Column, ColumnType, ErrorKind, Sink, TableId, TargetTable, Value, Version,
};
use strata_sinks::mongo::{MongoSettings, MongoSink};

fn url() -> String {
    env_url("STRATA_TEST_MONGO_URL")
}

/// A sink on a fresh database, and the driver's handle on the same database.
async fn fresh(prefix: &str) -> (MongoSink, mongodb::Database) {
    let database = unique(prefix);
    let sink = MongoSink::connect(MongoSettings::new(url(), &database))
        .await
        .unwrap();
    let client = mongodb::Client::with_uri_str(url()).await.unwrap();
    (sink, client.database(&database))
}

async fn all(db: &mongodb::Database, collection: &str) -> Vec<Document> {
    db.collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn dec(text: &str) -> Bson {
    Bson::Decimal128(text.parse::<Decimal128>().unwrap())
}

fn date(millis: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(millis))
}

fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

fn version(order: u64) -> String {
    Version::from_order(order).sortable()
}

/// What the matrix rows must look like in MongoDB, written by hand from the type table.
fn expected_matrix(order: u64) -> Vec<Document> {
    let point: Vec<u8> = {
        let mut w = vec![1u8, 1, 0, 0, 0];
        w.extend_from_slice(&1.0f64.to_le_bytes());
        w.extend_from_slice(&2.0f64.to_le_bytes());
        w
    };
    let mut empty_point = vec![1u8, 1, 0, 0, 0];
    empty_point.extend_from_slice(&[0; 16]);
    let row1 = doc! {
        "_id": 1, "id": 1, "i8": -128, "u8": 255, "i16": -32768, "u24": 16_777_215,
        "i32": i32::MIN, "u32": 4_294_967_295_i64, "i64": i64::MIN,
        "u64": dec("18446744073709551615"), "f32": 1.5, "f64": -2.25e300,
        "dec": "12345678901234567890123456789012345.123456789012345678901234567890",
        "d": date(1_709_164_800_000),
        "dt": date(253_402_300_799_999), "dt__us": 253_402_300_799_999_999_i64,
        "ts": date(1_700_000_000_123), "ts__us": 1_700_000_000_123_456_i64,
        "t": "-838:59:58.999999", "y": 2155,
        "s": "héllo wörld ✓ 𝄞", "l1": "café",
        "b": bin(&[0, 1, 2, 255, 254, b'\\', b'"', 0]),
        "e": "large", "st": ["a", "c"], "bit": dec("18446744073709551615"),
        "j": { "a": [1, dec("2.50"), { "b": Bson::Null }], "c": "x", "d": dec("12345678901234567890.123") },
        "g": { "srid": 0_i64, "wkb": bin(&point) },
        "_strata_version": version(order),
    };
    let row2 = doc! {
        "_id": 2, "id": 2, "i8": 127, "u8": 0, "i16": 32767, "u24": 0,
        "i32": i32::MAX, "u32": 0_i64, "i64": i64::MAX, "u64": 0_i64,
        "f32": -0.0, "f64": 0.1,
        "dec": "-0.000000000000000000000000000001",
        "d": date(-30_610_224_000_000),
        "dt": date(-30_610_224_000_000), "dt__us": -30_610_224_000_000_000_i64,
        "ts": date(1000), "ts__us": 1_000_000_i64,
        "t": "00:00:00.000001", "y": 1901, "s": "", "l1": "ÿ", "b": bin(&[]),
        "e": "small", "st": [], "bit": 0_i64, "j": [],
        "g": { "srid": 4326_i64, "wkb": bin(&empty_point) },
        "_strata_version": version(order),
    };
    let mut row3 = doc! { "_id": 3, "id": 3 };
    for name in [
        "i8", "u8", "i16", "u24", "i32", "u32", "i64", "u64", "f32", "f64", "dec", "d", "dt",
        "dt__us", "ts", "ts__us", "t", "y", "s", "l1", "b", "e", "st", "bit", "j", "g",
    ] {
        row3.insert(name, Bson::Null);
    }
    row3.insert("_strata_version", version(order));
    vec![row1, row2, row3]
}

#[tokio::test]
async fn type_matrix_reads_back_value_for_value() {
    let (sink, db) = fresh("mongo_matrix").await;
    let table = matrix_table("matrix");
    let ops: Vec<_> = matrix_rows()
        .into_iter()
        .map(|row| upsert(&table, row, 10))
        .collect();
    let stats = sink.apply(&ops).await.unwrap();
    assert_eq!(
        stats,
        ApplyStats {
            applied: 3,
            stale: 0
        }
    );
    let docs = all(&db, "matrix").await;
    let expected = expected_matrix(10);
    assert_eq!(docs.len(), 3);
    for (got, want) in docs.iter().zip(&expected) {
        assert_eq!(got, want);
        // Same field types too (Bson equality already distinguishes Int32/Int64/Double).
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
    }
    // -0.0 keeps its sign.
    assert!(docs[1].get_f64("f32").unwrap().is_sign_negative());

    // Update every row; the NULL row gets values, row 1 gets a new string.
    let mut rows = matrix_rows();
    rows[0][17] = Value::String("changed".into());
    rows[2][17] = Value::String("no longer null".into());
    rows[2][8] = Value::UInt(9_223_372_036_854_775_807);
    let ops: Vec<_> = rows
        .into_iter()
        .map(|row| upsert(&table, row, 20))
        .collect();
    assert_eq!(sink.apply(&ops).await.unwrap().applied, 3);
    let docs = all(&db, "matrix").await;
    let mut expected = expected_matrix(20);
    expected[0].insert("s", "changed");
    expected[2].insert("s", "no longer null");
    expected[2].insert("u64", i64::MAX);
    assert_eq!(docs, expected);

    // Delete row 2: ordinary reads no longer see it, and no tombstone is mixed in.
    let stats = sink
        .apply(&[delete(&table, vec![Value::Int(2)], 30)])
        .await
        .unwrap();
    assert_eq!(
        stats,
        ApplyStats {
            applied: 1,
            stale: 0
        }
    );
    let ids: Vec<_> = all(&db, "matrix")
        .await
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    assert_eq!(ids, vec![1, 3]);
    let count = db
        .collection::<Document>("matrix")
        .count_documents(doc! { "id": 2 })
        .await
        .unwrap();
    assert_eq!(count, 0);
    db.drop().await.unwrap();
}

fn kv_table(name: &str) -> Arc<TargetTable> {
    let int = ColumnType::Int {
        bytes: 4,
        unsigned: false,
    };
    let text = ColumnType::Text { charset: None };
    Arc::new(TargetTable {
        source: TableId::new("src", name),
        name: name.into(),
        columns: vec![
            Column {
                name: "id".into(),
                ty: int,
                nullable: false,
            },
            Column {
                name: "v".into(),
                ty: text,
                nullable: true,
            },
        ],
        key: vec![0],
    })
}

fn kv(table: &Arc<TargetTable>, id: i64, v: &str, order: u64) -> strata_core::SinkOp {
    upsert(table, vec![Value::Int(id), Value::String(v.into())], order)
}

fn del(table: &Arc<TargetTable>, id: i64, order: u64) -> strata_core::SinkOp {
    delete(table, vec![Value::Int(id)], order)
}

/// `id → v` of every row in the collection.
async fn kv_rows(db: &mongodb::Database, collection: &str) -> Vec<(i32, String)> {
    all(db, collection)
        .await
        .iter()
        .map(|d| (d.get_i32("id").unwrap(), d.get_str("v").unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn guards_keep_newer_writes_and_deletes() {
    let (sink, db) = fresh("mongo_guards").await;
    let t = kv_table("kv");
    let first = vec![kv(&t, 1, "$x", 10), kv(&t, 2, "b", 10), del(&t, 3, 10)];
    assert_eq!(
        sink.apply(&first).await.unwrap(),
        ApplyStats {
            applied: 3,
            stale: 0
        }
    );
    // A replay of the same batch changes nothing.
    assert_eq!(
        sink.apply(&first).await.unwrap(),
        ApplyStats {
            applied: 0,
            stale: 3
        }
    );
    assert_eq!(
        kv_rows(&db, "kv").await,
        vec![(1, "$x".to_owned()), (2, "b".to_owned())]
    );

    // Older and equal versions are no-ops.
    let stats = sink
        .apply(&[kv(&t, 1, "older", 5), kv(&t, 2, "equal", 10), del(&t, 2, 9)])
        .await
        .unwrap();
    // (The delete older than the row counts as applied: it records a tombstone.)
    assert_eq!(stats.applied + stats.stale, 3);
    assert!(stats.stale >= 2, "{stats:?}");
    assert_eq!(
        kv_rows(&db, "kv").await,
        vec![(1, "$x".to_owned()), (2, "b".to_owned())]
    );

    // Delete, then replayed older (and equal) upserts: the row stays deleted.
    assert_eq!(sink.apply(&[del(&t, 1, 20)]).await.unwrap().applied, 1);
    let stats = sink
        .apply(&[kv(&t, 1, "replayed", 15), kv(&t, 1, "same", 20)])
        .await
        .unwrap();
    assert_eq!(
        stats,
        ApplyStats {
            applied: 0,
            stale: 2
        }
    );
    assert_eq!(kv_rows(&db, "kv").await, vec![(2, "b".to_owned())]);

    // A newer upsert brings it back.
    assert_eq!(
        sink.apply(&[kv(&t, 1, "back", 25)]).await.unwrap(),
        ApplyStats {
            applied: 1,
            stale: 0
        }
    );
    assert_eq!(
        kv_rows(&db, "kv").await,
        vec![(1, "back".to_owned()), (2, "b".to_owned())]
    );

    // Tombstones expire after the configured retention, by a TTL index.
    let indexes: Vec<_> = db
        .collection::<Document>("kv__strata_tombstones")
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ttl = indexes
        .iter()
        .find_map(|i| i.options.as_ref()?.expire_after)
        .expect("a TTL index on the tombstones");
    assert_eq!(ttl, MongoSettings::DEFAULT_TOMBSTONE_TTL);
    db.drop().await.unwrap();
}

#[tokio::test]
async fn ops_of_one_key_in_one_batch_apply_in_order() {
    let (sink, db) = fresh("mongo_order").await;
    let t = kv_table("kv");
    let batch = vec![
        kv(&t, 1, "a", 1),
        kv(&t, 2, "x", 1),
        kv(&t, 1, "b", 2),
        del(&t, 1, 3),
        kv(&t, 2, "y", 2),
        kv(&t, 1, "d", 4),
        kv(&t, 3, "gone", 1),
        del(&t, 3, 2),
    ];
    let stats = sink.apply(&batch).await.unwrap();
    assert_eq!(stats.applied + stats.stale, batch.len() as u64);
    assert_eq!(
        kv_rows(&db, "kv").await,
        vec![(1, "d".to_owned()), (2, "y".to_owned())]
    );
    db.drop().await.unwrap();
}

#[tokio::test]
async fn schema_changes_are_followed() {
    let (sink, db) = fresh("mongo_schema").await;
    let col = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Int {
            bytes: 8,
            unsigned: false,
        },
        nullable: true,
    };
    let before = Arc::new(TargetTable {
        source: TableId::new("src", "evolving"),
        name: "evolving".into(),
        columns: vec![col("id"), col("a"), col("b"), col("c")],
        key: vec![0],
    });
    let row = |id: i64| (0..4).map(|i| Value::Int(id * 10 + i)).collect::<Vec<_>>();
    sink.apply(&[upsert(&before, row(1), 1), upsert(&before, row(2), 2)])
        .await
        .unwrap();

    // ALTER: drop a, rename c → c2, add d.
    let after = Arc::new(TargetTable {
        columns: vec![col("id"), col("b"), col("c2"), col("d")],
        ..(*before).clone()
    });
    let stats = sink
        .apply(&[upsert(&after, row(2), 10), upsert(&after, row(3), 11)])
        .await
        .unwrap();
    assert_eq!(stats.applied, 2);
    let docs = all(&db, "evolving").await;
    let fields = |d: &Document| -> Vec<String> {
        d.keys().filter(|k| !k.starts_with('_')).cloned().collect()
    };
    // Row 1 was not written again: its dropped columns are gone, the rest kept.
    assert_eq!(
        docs[0],
        doc! { "_id": 10_i64, "id": 10_i64, "b": 12_i64, "_strata_version": version(1) }
    );
    assert_eq!(fields(&docs[1]), vec!["id", "b", "c2", "d"]);
    assert_eq!(docs[1].get_i64("c2").unwrap(), 22);
    assert_eq!(docs[2].get_i64("d").unwrap(), 33);

    // A late op of the old shape neither restores nor drops anything for newer rows.
    sink.apply(&[upsert(&before, row(4), 5)]).await.unwrap();
    let docs = all(&db, "evolving").await;
    assert_eq!(fields(&docs[1]), vec!["id", "b", "c2", "d"]);
    assert_eq!(docs.len(), 4);
    db.drop().await.unwrap();
}

#[tokio::test]
async fn refused_writes_name_the_op_and_unreachable_servers_are_transient() {
    let (sink, db) = fresh("mongo_reject").await;
    let t = kv_table("kv");
    // The operator added a unique index on `v`, which the source does not have.
    let model = mongodb::IndexModel::builder()
        .keys(doc! { "v": 1 })
        .options(
            mongodb::options::IndexOptions::builder()
                .unique(true)
                .build(),
        )
        .build();
    db.collection::<Document>("kv")
        .create_index(model)
        .await
        .unwrap();
    let err = sink
        .apply(&[kv(&t, 1, "same", 1), kv(&t, 2, "same", 1)])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected, "{err}");
    assert_eq!(err.op_index, Some(1), "{err}");
    assert!(
        err.message.contains("`kv`") && err.message.contains("key `2`"),
        "{err}"
    );
    // The message names the row, never its values.
    assert!(!err.message.contains("same"), "{err}");

    // A column strata needs for itself is a configuration error.
    let clash = Arc::new(TargetTable {
        columns: vec![
            t.columns[0].clone(),
            Column {
                name: "_strata_version".into(),
                ..t.columns[1].clone()
            },
        ],
        ..(*t).clone()
    });
    let err = sink.apply(&[kv(&clash, 9, "x", 1)]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    db.drop().await.unwrap();

    let mut settings = MongoSettings::new("mongodb://127.0.0.1:1", "strata_unreachable");
    settings.connect_timeout = Duration::from_millis(500);
    let err = MongoSink::connect(settings).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn ten_thousand_ops_apply_in_one_batch() {
    let (sink, db) = fresh("mongo_10k").await;
    let table = matrix_table("big");
    let template = matrix_rows().remove(0);
    let ops: Vec<_> = (0..10_000)
        .map(|i| {
            let mut row = template.clone();
            row[0] = Value::Int(i);
            upsert(&table, row, 100)
        })
        .collect();
    let started = Instant::now();
    assert_eq!(
        sink.apply(&ops).await.unwrap(),
        ApplyStats {
            applied: 10_000,
            stale: 0
        }
    );
    let took = started.elapsed();
    assert_eq!(
        db.collection::<Document>("big")
            .count_documents(doc! {})
            .await
            .unwrap(),
        10_000
    );
    // Replayed, with every other row deleted in the same batch.
    let mut replay = ops.clone();
    replay.extend(
        (0..10_000)
            .step_by(2)
            .map(|i| delete(&table, vec![Value::Int(i)], 200)),
    );
    let stats = sink.apply(&replay).await.unwrap();
    assert_eq!(stats.stale, 10_000);
    assert_eq!(stats.applied, 5_000);
    assert_eq!(
        db.collection::<Document>("big")
            .count_documents(doc! {})
            .await
            .unwrap(),
        5_000
    );
    eprintln!("10,000 matrix upserts in {took:?}");
    assert!(took < Duration::from_secs(120), "{took:?}");
    db.drop().await.unwrap();
}

#[tokio::test]
async fn composite_and_sub_millisecond_keys_stay_distinct() {
    let (sink, db) = fresh("mongo_keys").await;
    let column = |name: &str, ty: ColumnType| Column {
        name: name.into(),
        ty,
        nullable: false,
    };
    let pair = Arc::new(TargetTable {
        source: TableId::new("src", "pair"),
        name: "pair".into(),
        columns: vec![
            column(
                "a",
                ColumnType::Int {
                    bytes: 4,
                    unsigned: false,
                },
            ),
            column("b", ColumnType::Text { charset: None }),
        ],
        key: vec![0, 1],
    });
    let row = |a: i64, b: &str| vec![Value::Int(a), Value::String(b.into())];
    sink.apply(&[
        upsert(&pair, row(1, "x"), 1),
        upsert(&pair, row(1, "y"), 1),
        upsert(&pair, row(2, "x"), 1),
        delete(&pair, row(1, "y"), 2),
    ])
    .await
    .unwrap();
    let ids: Vec<_> = all(&db, "pair")
        .await
        .into_iter()
        .map(|d| d.get_document("_id").unwrap().clone())
        .collect();
    assert_eq!(
        ids,
        vec![doc! { "a": 1, "b": "x" }, doc! { "a": 2, "b": "x" }]
    );

    // DATETIME(6) keys one microsecond apart are two rows, keyed by their exact text.
    let timed = Arc::new(TargetTable {
        source: TableId::new("src", "timed"),
        name: "timed".into(),
        columns: vec![column("at", ColumnType::DateTime { fsp: 6 })],
        key: vec![0],
    });
    let at = |micros: u32| {
        Value::DateTime(strata_core::DateTime {
            date: strata_core::Date {
                year: 2024,
                month: 1,
                day: 2,
            },
            hour: 3,
            minute: 4,
            second: 5,
            micros,
        })
    };
    sink.apply(&[
        upsert(&timed, vec![at(123_456)], 1),
        upsert(&timed, vec![at(123_457)], 1),
    ])
    .await
    .unwrap();
    let docs = all(&db, "timed").await;
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0].get_str("_id").unwrap(),
        "2024-01-02T03:04:05.123456"
    );
    assert_eq!(docs[1].get_i64("at__us").unwrap(), 1_704_164_645_123_457);
    db.drop().await.unwrap();
}
