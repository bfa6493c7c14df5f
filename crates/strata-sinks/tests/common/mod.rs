//! Shared fixtures for the sink integration tests: server URLs, unique namespaces, and the
//! type matrix as target rows.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use strata_core::{
    Column, ColumnType, Date, DateTime, SinkOp, SinkOpKind, TableId, TargetTable, Time, Value,
    Version,
};

/// The URL of a test server from the environment, or a failure that says how to get one.
pub fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh (or eval \"$(scripts/services.sh env)\")")
    })
}

/// A namespace no other test (or test run) uses: `<prefix>_<pid>_<n>`, lower case.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}_{}",
        prefix.to_ascii_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn col(name: &str, ty: ColumnType) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable: name != "id",
    }
}

/// A table with one column of every type strata maps, keyed by `id`.
pub fn matrix_table(name: &str) -> Arc<TargetTable> {
    use ColumnType as T;
    let columns = vec![
        col(
            "id",
            T::Int {
                bytes: 4,
                unsigned: false,
            },
        ),
        col(
            "i8",
            T::Int {
                bytes: 1,
                unsigned: false,
            },
        ),
        col(
            "u8",
            T::Int {
                bytes: 1,
                unsigned: true,
            },
        ),
        col(
            "i16",
            T::Int {
                bytes: 2,
                unsigned: false,
            },
        ),
        col(
            "u24",
            T::Int {
                bytes: 3,
                unsigned: true,
            },
        ),
        col(
            "i32",
            T::Int {
                bytes: 4,
                unsigned: false,
            },
        ),
        col(
            "u32",
            T::Int {
                bytes: 4,
                unsigned: true,
            },
        ),
        col(
            "i64",
            T::Int {
                bytes: 8,
                unsigned: false,
            },
        ),
        col(
            "u64",
            T::Int {
                bytes: 8,
                unsigned: true,
            },
        ),
        col("f32", T::Float),
        col("f64", T::Double),
        col(
            "dec",
            T::Decimal {
                precision: 65,
                scale: 30,
            },
        ),
        col("d", T::Date),
        col("dt", T::DateTime { fsp: 6 }),
        col("ts", T::Timestamp { fsp: 6 }),
        col("t", T::Time { fsp: 6 }),
        col("y", T::Year),
        col(
            "s",
            T::Text {
                charset: Some("utf8mb4".into()),
            },
        ),
        col(
            "l1",
            T::Text {
                charset: Some("latin1".into()),
            },
        ),
        col("b", T::Bytes),
        col(
            "e",
            T::Enum {
                members: vec!["small".into(), "large".into()],
            },
        ),
        col(
            "st",
            T::Set {
                members: vec!["a".into(), "b".into(), "c".into()],
            },
        ),
        col("bit", T::Bit { width: 64 }),
        col("j", T::Json),
        col("g", T::Geometry),
    ];
    Arc::new(TargetTable {
        source: TableId::new("src", name),
        name: name.into(),
        columns,
        key: vec![0],
    })
}

fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> DateTime {
    DateTime {
        date: Date {
            year: y,
            month: mo,
            day: d,
        },
        hour: h,
        minute: mi,
        second: s,
        micros: us,
    }
}

/// Rows for [`matrix_table`]: extremes of every type, then a row of NULLs.
pub fn matrix_rows() -> Vec<Vec<Value>> {
    // POINT(1 2) in WKB, little endian.
    let point: Vec<u8> = {
        let mut w = vec![1u8, 1, 0, 0, 0];
        w.extend_from_slice(&1.0f64.to_le_bytes());
        w.extend_from_slice(&2.0f64.to_le_bytes());
        w
    };
    vec![
        vec![
            Value::Int(1),
            Value::Int(-128),
            Value::UInt(255),
            Value::Int(-32768),
            Value::UInt(16_777_215),
            Value::Int(i64::from(i32::MIN)),
            Value::UInt(u64::from(u32::MAX)),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(1.5),
            Value::Double(-2.25e300),
            Value::Decimal(
                "12345678901234567890123456789012345.123456789012345678901234567890".into(),
            ),
            Value::Date(Date {
                year: 2024,
                month: 2,
                day: 29,
            }),
            Value::DateTime(dt(9999, 12, 31, 23, 59, 59, 999_999)),
            Value::Timestamp(Some(1_700_000_000_123_456)),
            Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 58,
                micros: 999_999,
            }),
            Value::Year(2155),
            Value::String("héllo wörld ✓ 𝄞".into()),
            Value::String("café".into()),
            Value::Bytes(vec![0, 1, 2, 255, 254, b'\\', b'"', 0]),
            Value::Enum("large".into()),
            Value::Set(vec!["a".into(), "c".into()]),
            Value::Bit {
                bits: u64::MAX,
                width: 64,
            },
            Value::Json(r#"{"a":[1,2.50,{"b":null}],"c":"x","d":12345678901234567890.123}"#.into()),
            Value::Geometry {
                srid: 0,
                wkb: point,
            },
        ],
        vec![
            Value::Int(2),
            Value::Int(127),
            Value::UInt(0),
            Value::Int(32767),
            Value::UInt(0),
            Value::Int(i64::from(i32::MAX)),
            Value::UInt(0),
            Value::Int(i64::MAX),
            Value::UInt(0),
            Value::Float(-0.0),
            Value::Double(0.1),
            Value::Decimal("-0.000000000000000000000000000001".into()),
            Value::Date(Date {
                year: 1000,
                month: 1,
                day: 1,
            }),
            Value::DateTime(dt(1000, 1, 1, 0, 0, 0, 0)),
            Value::Timestamp(Some(1_000_000)),
            Value::Time(Time {
                negative: false,
                hours: 0,
                minutes: 0,
                seconds: 0,
                micros: 1,
            }),
            Value::Year(1901),
            Value::String(String::new()),
            Value::String("ÿ".into()),
            Value::Bytes(Vec::new()),
            Value::Enum("small".into()),
            Value::Set(Vec::new()),
            Value::Bit { bits: 0, width: 64 },
            Value::Json("[]".into()),
            Value::Geometry {
                srid: 4326,
                wkb: vec![
                    1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            },
        ],
        {
            let mut nulls = vec![Value::Int(3)];
            nulls.resize(25, Value::Null);
            nulls
        },
    ]
}

/// An upsert of `row` (aligned with `table.columns`) at binlog order `order`.
pub fn upsert(table: &Arc<TargetTable>, row: Vec<Value>, order: u64) -> SinkOp {
    let key = table.key.iter().map(|&i| row[i].clone()).collect();
    SinkOp {
        table: table.clone(),
        key,
        kind: SinkOpKind::Upsert(row),
        version: Version::from_order(order),
    }
}

/// A delete of the row with key `key` at binlog order `order`.
pub fn delete(table: &Arc<TargetTable>, key: Vec<Value>, order: u64) -> SinkOp {
    SinkOp {
        table: table.clone(),
        key,
        kind: SinkOpKind::Delete,
        version: Version::from_order(order),
    }
}

/// `people(id INT, name TEXT, n BIGINT)`, keyed by `id`, named `name`.
pub fn people(name: &str) -> Arc<TargetTable> {
    Arc::new(TargetTable {
        source: TableId::new("src", name),
        name: name.into(),
        columns: vec![
            col(
                "id",
                ColumnType::Int {
                    bytes: 4,
                    unsigned: false,
                },
            ),
            col("name", ColumnType::Text { charset: None }),
            col(
                "n",
                ColumnType::Int {
                    bytes: 8,
                    unsigned: false,
                },
            ),
        ],
        key: vec![0],
    })
}

/// A row of [`people`].
pub fn person(id: i64, name: &str, n: i64) -> Vec<Value> {
    vec![Value::Int(id), Value::String(name.into()), Value::Int(n)]
}
