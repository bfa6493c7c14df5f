//! The type matrix: a table with a column of every MySQL type strata maps, its rows, and
//! for each store the value a source value must become there, exactly as the sink's
//! representation docs say (`crates/strata-sinks/src/<store>/mod.rs`).
//!
//! Source rows are read with the binary protocol (typed values: `f32` floats, temporal
//! fields, unsigned integers) in a UTC session, so the expectation is computed from what
//! MySQL holds, not from strata's own types.
//!
//! Where a store cannot hold a value exactly, the comparison checks what the sink docs
//! promise instead:
//! - MongoDB: DATETIME/TIMESTAMP are BSON dates (milliseconds, rounded down) plus
//!   `<col>__us` with the exact microseconds; DECIMAL over 34 digits is a string; BIGINT
//!   UNSIGNED / BIT above 2^63−1 are Decimal128; TIME is a string; FLOAT is the double
//!   nearest its shortest decimal form.
//! - OpenSearch: `_source` keeps every value exactly (read as text, numbers unparsed);
//!   dates are only *indexed* to the millisecond; DECIMAL/TIME are strings, bytes base64.
//! - PostgreSQL: jsonb normalises JSON key order and spacing (compared as JSON, numbers
//!   exactly); TIME is an interval.
//! - Redis: every value is text (or raw bytes) in a hash field; NULL is an absent field.

use super::json_text::Json;
use super::source::Source;
use super::targets::{Namespace, Targets};
use base64::Engine as _;
use bson::{Bson, Document};
use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;

/// The matrix table's name.
pub const TABLE: &str = "types";

/// What a column holds, as far as the expected representation depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int { bytes: u8, unsigned: bool },
    Float,
    Double,
    Decimal { precision: u8 },
    Date,
    DateTime { fsp: u8 },
    Timestamp { fsp: u8 },
    Time,
    Year,
    Text,
    Bytes,
    Enum,
    Set,
    Bit,
    Json,
    Geometry,
}

/// One column of the matrix table.
pub struct Col {
    pub name: &'static str,
    pub sql: &'static str,
    pub kind: Kind,
}

const fn int(name: &'static str, sql: &'static str, bytes: u8, unsigned: bool) -> Col {
    Col {
        name,
        sql,
        kind: Kind::Int { bytes, unsigned },
    }
}

const fn col(name: &'static str, sql: &'static str, kind: Kind) -> Col {
    Col { name, sql, kind }
}

/// Every column, `id` (the key) first.
pub const COLUMNS: &[Col] = &[
    int("id", "INT PRIMARY KEY", 4, false),
    int("i8", "TINYINT", 1, false),
    int("u8", "TINYINT UNSIGNED", 1, true),
    int("i16", "SMALLINT", 2, false),
    int("u16", "SMALLINT UNSIGNED", 2, true),
    int("i24", "MEDIUMINT", 3, false),
    int("u24", "MEDIUMINT UNSIGNED", 3, true),
    int("i32", "INT", 4, false),
    int("u32", "INT UNSIGNED", 4, true),
    int("i64", "BIGINT", 8, false),
    int("u64", "BIGINT UNSIGNED", 8, true),
    col("dec", "DECIMAL(65,30)", Kind::Decimal { precision: 65 }),
    col("dsm", "DECIMAL(12,3)", Kind::Decimal { precision: 12 }),
    col("f32", "FLOAT", Kind::Float),
    col("f64", "DOUBLE", Kind::Double),
    col("d", "DATE", Kind::Date),
    col("dt", "DATETIME(6)", Kind::DateTime { fsp: 6 }),
    col("dt0", "DATETIME", Kind::DateTime { fsp: 0 }),
    col(
        "ts",
        "TIMESTAMP(6) NULL DEFAULT NULL",
        Kind::Timestamp { fsp: 6 },
    ),
    col("tm", "TIME(6)", Kind::Time),
    col("y", "YEAR", Kind::Year),
    col("s", "VARCHAR(64) CHARACTER SET utf8mb4", Kind::Text),
    col("l", "VARCHAR(64) CHARACTER SET latin1", Kind::Text),
    col("vb", "VARBINARY(16)", Kind::Bytes),
    col("bl", "BLOB", Kind::Bytes),
    col("e", "ENUM('small','medium','large')", Kind::Enum),
    col("st", "SET('a','b','c','d')", Kind::Set),
    col("bt", "BIT(64)", Kind::Bit),
    col("j", "JSON", Kind::Json),
    col("g", "GEOMETRY", Kind::Geometry),
];

/// `CREATE TABLE types (…)`.
pub fn create_table() -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("`{}` {}", c.name, c.sql))
        .collect();
    format!("CREATE TABLE {TABLE} ({})", columns.join(", "))
}

/// The JSON of row 1: a decimal with a trailing zero, a big unsigned integer, a double,
/// nested values, an escaped quote and non-ASCII text. On MySQL the decimal is made a
/// DECIMAL inside the binary JSON (MySQL parses JSON text numbers as doubles).
fn json_row1(mysql: bool) -> String {
    let text = r#"{"b": [1, "x", null, true, false], "c": {"d": "é\"q"}, "big": 12345678901234567890, "dbl": 2.5, "neg": -42}"#;
    let text = text.replace('\\', "\\\\");
    if mysql {
        format!("JSON_SET(CAST('{text}' AS JSON), '$.a', CAST(1.50 AS DECIMAL(4,2)))")
    } else {
        let text = text.replacen('{', r#"{"a": 1.50, "#, 1);
        format!("'{text}'")
    }
}

fn json_literal(mysql: bool, text: &str) -> String {
    if mysql {
        format!("CAST('{text}' AS JSON)")
    } else {
        format!("'{text}'")
    }
}

/// The workload: inserts (extremes, ordinary values, an all-NULL row), updates of several
/// columns, deletes, and a row deleted then inserted again. Run inside `USE <schema>`.
pub fn workload(mysql: bool) -> Vec<String> {
    let point = |x: &str, y: &str| format!("ST_GeomFromText('POINT({x} {y})', 4326)");
    let nines = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let row1 = format!(
        "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, \
         '-{nines}', -12.340, -1.5e-10, -2.25e300, '1000-01-01', '1000-01-01 00:00:00', \
         '1000-01-01 00:00:00', '1970-01-01 00:00:01', '-838:59:58.999999', 1901, \
         'héllo wörld 🎉', 'café déjà vu', x'00ff00', x'ff00', 'small', 'a,c', b'0', {}, {})",
        json_row1(mysql),
        point("1.5", "-2.25"),
    );
    let row2 = format!(
        "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, \
         9223372036854775807, 18446744073709551615, '{nines}', 999999999.999, 3.4e38, \
         1.7976931348623157e308, '9999-12-31', '9999-12-31 23:59:59.999999', \
         '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '838:59:59', 2155, '', 'ÿ', \
         x'', x'00', 'large', 'a,b,c,d', x'ffffffffffffffff', {}, {})",
        json_literal(mysql, "[]"),
        point("0", "0"),
    );
    let row3 = format!(
        "(3, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, '0.000000000000000000000000000001', 0.000, 0.1, \
         0.1, '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05', \
         '2024-01-02 03:04:05.123450', '12:34:56.5', 2024, 'plain', 'latin', x'01', x'', \
         'medium', '', b'101', {}, {})",
        json_literal(mysql, r#"{"k": "v", "n": 7}"#),
        point("-1", "2"),
    );
    let null_row = format!("(4{})", ", NULL".repeat(COLUMNS.len() - 1));
    let small = |id: u32, s: &str| {
        format!(
            "({id}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, '1.5', 2.25, 0.5, 0.25, '2000-01-01', \
             '2000-01-01 00:00:00.000001', '2000-01-01 12:00:00', '2000-01-01 00:00:00.000999', \
             '-00:00:01', 2000, '{s}', '{s}', x'aa', x'bb', 'small', 'd', b'1', {}, NULL)",
            json_literal(mysql, r#"{"s": 1}"#)
        )
    };
    vec![
        "BEGIN".into(),
        format!("INSERT INTO {TABLE} VALUES {row1}, {row2}"),
        format!("INSERT INTO {TABLE} VALUES {row3}"),
        format!("INSERT INTO {TABLE} VALUES {null_row}"),
        format!("INSERT INTO {TABLE} VALUES {}, {}", small(5, "five"), small(6, "six")),
        "COMMIT".into(),
        format!(
            "UPDATE {TABLE} SET i32 = -7, `dec` = '-0.5', f32 = -0.375, dt = '2025-06-30 23:59:59.5', \
             ts = '2025-06-30 23:59:59.000001', tm = '-00:00:00.000001', s = 'updated ✓', vb = x'0000', \
             e = 'large', st = 'b', bt = b'1111', j = {}, g = {} WHERE id = 3",
            json_literal(mysql, r#"{"k": "w", "n": -8, "arr": [[]], "o": {}}"#),
            point("3", "4"),
        ),
        format!("DELETE FROM {TABLE} WHERE id = 5"),
        format!("UPDATE {TABLE} SET s = 'six again', u64 = 18446744073709551614 WHERE id = 6"),
        format!("UPDATE {TABLE} SET s = 'six thrice', i8 = NULL WHERE id = 6"),
        format!("INSERT INTO {TABLE} VALUES {}", small(7, "seven")),
        format!("DELETE FROM {TABLE} WHERE id = 7"),
        format!("INSERT INTO {TABLE} VALUES {}", small(7, "seven reborn")),
    ]
}

/// A source value, exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Src {
    Null,
    Int(i128),
    F32(f32),
    F64(f64),
    Dec(String),
    Date(u16, u8, u8),
    /// year, month, day, hour, minute, second, microsecond (TIMESTAMP: in UTC).
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    /// negative, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u32),
    Year(u16),
    Text(String),
    Bytes(Vec<u8>),
    Set(Vec<String>),
    Bit(u64),
    Json(String),
    /// MySQL's storage form: 4-byte little-endian SRID, then WKB.
    Geometry(Vec<u8>),
}

/// The matrix rows of `schema`, by id, in column order.
pub async fn source_rows(source: &mut Source, schema: &str) -> BTreeMap<i64, Vec<Src>> {
    let names: Vec<String> = COLUMNS.iter().map(|c| format!("`{}`", c.name)).collect();
    let statement = format!("SELECT {} FROM `{schema}`.{TABLE}", names.join(", "));
    // `exec`: the binary protocol, which sends typed values.
    let rows: Vec<mysql_async::Row> = source
        .conn
        .exec(&statement, ())
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    rows.into_iter()
        .map(|row| {
            let values: Vec<Src> = COLUMNS
                .iter()
                .enumerate()
                .map(|(i, c)| src_value(c, row.as_ref(i).expect("column")))
                .collect();
            let Src::Int(id) = values[0] else {
                panic!("id is not an integer")
            };
            (id as i64, values)
        })
        .collect()
}

fn src_value(c: &Col, v: &mysql_async::Value) -> Src {
    use mysql_async::Value as V;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("UTF-8 from the server");
    match (c.kind, v) {
        (_, V::NULL) => Src::Null,
        (Kind::Int { .. }, V::Int(i)) => Src::Int(i128::from(*i)),
        (Kind::Int { .. }, V::UInt(u)) => Src::Int(i128::from(*u)),
        (Kind::Year, V::Int(i)) => Src::Year(*i as u16),
        (Kind::Year, V::UInt(u)) => Src::Year(*u as u16),
        (Kind::Float, V::Float(f)) => Src::F32(*f),
        (Kind::Double, V::Double(f)) => Src::F64(*f),
        (Kind::Decimal { .. }, V::Bytes(b)) => Src::Dec(text(b)),
        (Kind::Date, V::Date(y, m, d, ..)) => Src::Date(*y, *m, *d),
        (Kind::DateTime { .. } | Kind::Timestamp { .. }, V::Date(y, mo, d, h, mi, s, us)) => {
            Src::DateTime(*y, *mo, *d, *h, *mi, *s, *us)
        }
        (Kind::Time, V::Time(neg, days, h, m, s, us)) => {
            Src::Time(*neg, days * 24 + u32::from(*h), *m, *s, *us)
        }
        (Kind::Text | Kind::Enum, V::Bytes(b)) => Src::Text(text(b)),
        (Kind::Bytes, V::Bytes(b)) => Src::Bytes(b.clone()),
        (Kind::Set, V::Bytes(b)) => {
            let t = text(b);
            Src::Set(if t.is_empty() {
                Vec::new()
            } else {
                t.split(',').map(str::to_owned).collect()
            })
        }
        (Kind::Bit, V::Bytes(b)) => {
            Src::Bit(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
        }
        (Kind::Json, V::Bytes(b)) => Src::Json(text(b)),
        (Kind::Geometry, V::Bytes(b)) => Src::Geometry(b.clone()),
        (kind, other) => panic!("column {}: unexpected {other:?} for {kind:?}", c.name),
    }
}

// ---- Shared formatting ------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since 1970 reading the fields as UTC.
fn unix_micros(v: &Src) -> i64 {
    match v {
        Src::Date(y, m, d) => {
            days_from_civil(i64::from(*y), i64::from(*m), i64::from(*d)) * 86_400_000_000
        }
        Src::DateTime(y, mo, d, h, mi, s, us) => {
            let days = days_from_civil(i64::from(*y), i64::from(*mo), i64::from(*d));
            ((days * 86_400 + i64::from(*h) * 3600 + i64::from(*mi) * 60 + i64::from(*s))
                * 1_000_000)
                + i64::from(*us)
        }
        other => panic!("not a date: {other:?}"),
    }
}

fn date_text(y: u16, m: u8, d: u8) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]`, the fraction only when non-zero.
fn iso(v: &Src) -> String {
    let Src::DateTime(y, mo, d, h, mi, s, us) = *v else {
        panic!("not a datetime: {v:?}")
    };
    let mut out = format!("{}T{h:02}:{mi:02}:{s:02}", date_text(y, mo, d));
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    out
}

/// `[-]HH:MM:SS[.ffffff]`.
fn time_text(v: &Src) -> String {
    let Src::Time(neg, h, m, s, us) = *v else {
        panic!("not a time: {v:?}")
    };
    let mut out = format!("{}{h:02}:{m:02}:{s:02}", if neg { "-" } else { "" });
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    out
}

/// A float spelled like JavaScript prints numbers: plain in [1e-7, 1e21), else with an
/// exponent (`3.4e+38`), from the shortest digits that read back as the same float.
fn js_number(plain: String, exponent: String, magnitude: f64) -> String {
    if magnitude == 0.0 || (1e-7..1e21).contains(&magnitude) {
        plain
    } else if exponent.contains("e-") {
        exponent
    } else {
        exponent.replace('e', "e+")
    }
}

fn js_f32(f: f32) -> String {
    js_number(format!("{f}"), format!("{f:e}"), f64::from(f.abs()))
}

fn js_f64(f: f64) -> String {
    js_number(format!("{f}"), format!("{f:e}"), f.abs())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn srid(storage: &[u8]) -> u32 {
    u32::from_le_bytes(storage[..4].try_into().expect("4-byte SRID"))
}

/// Differences of one row, as lines.
type Problems = Vec<String>;

fn check_rows<T>(
    store: &str,
    want: &BTreeMap<i64, Vec<Src>>,
    got: &BTreeMap<String, T>,
    mut row: impl FnMut(&[Src], &T, &mut Problems),
) -> Problems {
    let mut problems = Vec::new();
    for (id, values) in want {
        match got.get(&id.to_string()) {
            None => problems.push(format!("{store}: row {id} missing")),
            Some(stored) => {
                let mut p = Vec::new();
                row(values, stored, &mut p);
                problems.extend(p.into_iter().map(|d| format!("{store}: row {id}: {d}")));
            }
        }
    }
    for id in got.keys() {
        if !want.keys().any(|w| w.to_string() == *id) {
            problems.push(format!("{store}: row {id} should not be there"));
        }
    }
    problems
}

// ---- Redis --------------------------------------------------------------------------------

/// The bytes of a Redis hash field, or `None` for an absent field (NULL).
pub fn redis_expected(kind: Kind, v: &Src) -> Option<Vec<u8>> {
    let text = match v {
        Src::Null => return None,
        Src::Int(i) => i.to_string(),
        Src::F32(f) => js_f32(*f),
        Src::F64(f) => js_f64(*f),
        Src::Dec(s) | Src::Text(s) | Src::Json(s) => s.clone(),
        Src::Date(y, m, d) => date_text(*y, *m, *d),
        Src::DateTime(..) if matches!(kind, Kind::Timestamp { .. }) => format!("{}Z", iso(v)),
        Src::DateTime(..) => iso(v),
        Src::Time(..) => time_text(v),
        Src::Year(y) => y.to_string(),
        Src::Bytes(b) | Src::Geometry(b) => return Some(b.clone()),
        Src::Set(m) => m.join(","),
        Src::Bit(b) => b.to_string(),
    };
    Some(text.into_bytes())
}

/// Every difference between the source rows and the Redis hashes of `ns`.
pub async fn redis_differences(
    targets: &Targets,
    ns: &Namespace,
    want: &BTreeMap<i64, Vec<Src>>,
) -> Problems {
    let got = targets.redis_hashes(ns, TABLE).await;
    check_rows("redis", want, &got, |values, hash, p| {
        for (c, v) in COLUMNS.iter().zip(values) {
            let expected = redis_expected(c.kind, v);
            let stored = hash.get(c.name).cloned();
            let same = match (c.kind, &expected, &stored) {
                (Kind::Json, Some(e), Some(s)) => {
                    Json::parse(&String::from_utf8_lossy(e))
                        == Json::parse(&String::from_utf8_lossy(s))
                }
                _ => expected == stored,
            };
            if !same {
                p.push(format!(
                    "{}: want {:?}, got {:?}",
                    c.name,
                    expected.map(|b| String::from_utf8_lossy(&b).into_owned()),
                    stored.map(|b| String::from_utf8_lossy(&b).into_owned())
                ));
            }
        }
        for field in hash.keys() {
            if field != "_strata_version" && !COLUMNS.iter().any(|c| c.name == field) {
                p.push(format!("unexpected field {field}"));
            }
        }
        if !hash.contains_key("_strata_version") {
            p.push("no _strata_version field".into());
        }
    })
}

// ---- MongoDB ------------------------------------------------------------------------------

fn int_bson(i: i128, bytes: u8, unsigned: bool) -> Bson {
    let int32 = bytes < 4 || (bytes == 4 && !unsigned);
    if int32 {
        Bson::Int32(i32::try_from(i).expect("fits Int32"))
    } else if let Ok(v) = i64::try_from(i) {
        Bson::Int64(v)
    } else {
        Bson::Decimal128(i.to_string().parse().expect("Decimal128"))
    }
}

/// JSON as MongoDB holds it: objects as documents, integers as Int32/Int64 (Decimal128
/// beyond), other numbers as Decimal128 with their exact digits.
pub fn json_bson(j: &Json) -> Bson {
    match j {
        Json::Null => Bson::Null,
        Json::Bool(b) => Bson::Boolean(*b),
        Json::Str(s) => Bson::String(s.clone()),
        Json::Num(n) if !n.contains(['.', 'e', 'E']) => {
            let i: i128 = n.parse().expect("integer");
            if let Ok(v) = i32::try_from(i) {
                Bson::Int32(v)
            } else if let Ok(v) = i64::try_from(i) {
                Bson::Int64(v)
            } else {
                Bson::Decimal128(n.parse().expect("Decimal128"))
            }
        }
        Json::Num(n) => Bson::Decimal128(n.parse().expect("Decimal128")),
        Json::Arr(items) => Bson::Array(items.iter().map(json_bson).collect()),
        Json::Obj(members) => {
            let mut doc = Document::new();
            for (k, v) in members {
                doc.insert(k.clone(), json_bson(v));
            }
            Bson::Document(doc)
        }
    }
}

/// The fields a source value becomes in a MongoDB document (the column, and for
/// DATETIME/TIMESTAMP with more than 3 fractional digits `<col>__us`).
pub fn mongo_expected(c: &Col, v: &Src) -> Vec<(String, Bson)> {
    let value = match (c.kind, v) {
        (_, Src::Null) => Bson::Null,
        (Kind::Int { bytes, unsigned }, Src::Int(i)) => int_bson(*i, bytes, unsigned),
        (Kind::Bit, Src::Bit(b)) => int_bson(i128::from(*b), 8, true),
        (Kind::Year, Src::Year(y)) => Bson::Int32(i32::from(*y)),
        (Kind::Float, Src::F32(f)) => Bson::Double(format!("{f}").parse().expect("float")),
        (Kind::Double, Src::F64(f)) => Bson::Double(*f),
        (Kind::Decimal { precision }, Src::Dec(s)) if precision <= 34 => {
            Bson::Decimal128(s.parse().expect("Decimal128"))
        }
        (Kind::Decimal { .. }, Src::Dec(s)) => Bson::String(s.clone()),
        (Kind::Date | Kind::DateTime { .. } | Kind::Timestamp { .. }, v) => {
            Bson::DateTime(bson::DateTime::from_millis(unix_micros(v).div_euclid(1000)))
        }
        (Kind::Time, v) => Bson::String(time_text(v)),
        (Kind::Text | Kind::Enum, Src::Text(s)) => Bson::String(s.clone()),
        (Kind::Set, Src::Set(m)) => {
            Bson::Array(m.iter().map(|s| Bson::String(s.clone())).collect())
        }
        (Kind::Bytes, Src::Bytes(b)) => Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: b.clone(),
        }),
        (Kind::Json, Src::Json(t)) => json_bson(&Json::parse(t)),
        (Kind::Geometry, Src::Geometry(g)) => {
            let mut doc = Document::new();
            doc.insert("srid", Bson::Int64(i64::from(srid(g))));
            doc.insert(
                "wkb",
                Bson::Binary(bson::Binary {
                    subtype: bson::spec::BinarySubtype::Generic,
                    bytes: g[4..].to_vec(),
                }),
            );
            Bson::Document(doc)
        }
        (kind, v) => panic!("{}: no MongoDB form for {v:?} as {kind:?}", c.name),
    };
    let mut fields = vec![(c.name.to_owned(), value)];
    if let Kind::DateTime { fsp } | Kind::Timestamp { fsp } = c.kind {
        if fsp > 3 {
            let micros = match v {
                Src::Null => Bson::Null,
                v => Bson::Int64(unix_micros(v)),
            };
            fields.push((format!("{}__us", c.name), micros));
        }
    }
    fields
}

/// Every difference between the source rows and the MongoDB documents of `ns`.
pub async fn mongo_differences(
    targets: &Targets,
    ns: &Namespace,
    want: &BTreeMap<i64, Vec<Src>>,
) -> Problems {
    let got = targets.mongo_docs(ns, TABLE).await;
    check_rows("mongo", want, &got, |values, doc, p| {
        let mut known = vec!["_id".to_owned(), "_strata_version".to_owned()];
        if doc.get("_id") != Some(&mongo_expected(&COLUMNS[0], &values[0])[0].1) {
            p.push(format!("_id is {:?}", doc.get("_id")));
        }
        // `_id` is the key's value, and the key column is a field too.
        for (c, v) in COLUMNS.iter().zip(values) {
            for (field, expected) in mongo_expected(c, v) {
                let stored = doc.get(&field);
                if stored != Some(&expected) {
                    p.push(format!("{field}: want {expected:?}, got {stored:?}"));
                }
                known.push(field);
            }
        }
        for field in doc.keys() {
            if !known.contains(field) {
                p.push(format!("unexpected field {field}"));
            }
        }
    })
}

// ---- OpenSearch ---------------------------------------------------------------------------

/// A source value as OpenSearch's `_source` holds it.
pub fn search_expected(kind: Kind, v: &Src) -> Json {
    match v {
        Src::Null => Json::Null,
        Src::Int(i) => Json::Num(i.to_string()),
        Src::Bit(b) => Json::Num(b.to_string()),
        Src::Year(y) => Json::Num(y.to_string()),
        // The shortest decimal of the float (compared as a double: spelling may differ).
        Src::F32(f) => Json::Num(format!("{f}")),
        Src::F64(f) => Json::Num(format!("{f}")),
        Src::Dec(s) | Src::Text(s) => Json::Str(s.clone()),
        Src::Date(y, m, d) => Json::Str(date_text(*y, *m, *d)),
        Src::DateTime(..) if matches!(kind, Kind::Timestamp { .. }) => {
            Json::Str(format!("{}Z", iso(v)))
        }
        Src::DateTime(..) => Json::Str(iso(v)),
        Src::Time(..) => Json::Str(time_text(v)),
        Src::Bytes(b) => Json::Str(b64(b)),
        Src::Set(m) => Json::Arr(m.iter().map(|s| Json::Str(s.clone())).collect()),
        Src::Json(t) => Json::parse(t),
        Src::Geometry(g) => Json::Obj(vec![
            ("srid".into(), Json::Num(srid(g).to_string())),
            ("wkb".into(), Json::Str(b64(&g[4..]))),
        ]),
    }
}

/// Every difference between the source rows and the OpenSearch documents of `ns`
/// (`_source` read as text, so numbers keep their digits).
pub async fn search_differences(
    targets: &Targets,
    ns: &Namespace,
    want: &BTreeMap<i64, Vec<Src>>,
) -> Problems {
    let text = targets.search_text(ns, TABLE).await.unwrap_or_default();
    let mut got: BTreeMap<String, Json> = BTreeMap::new();
    if !text.is_empty() {
        if let Some(Json::Arr(hits)) = Json::parse(&text).get("hits").and_then(|h| h.get("hits")) {
            for hit in hits {
                let Some(Json::Str(id)) = hit.get("_id") else {
                    panic!("hit without _id")
                };
                got.insert(
                    id.clone(),
                    hit.get("_source").cloned().unwrap_or(Json::Null),
                );
            }
        }
    }
    check_rows("opensearch", want, &got, |values, source, p| {
        for (c, v) in COLUMNS.iter().zip(values) {
            let expected = search_expected(c.kind, v);
            let stored = source.get(c.name).cloned();
            let same = match (c.kind, &stored) {
                (Kind::Float | Kind::Double, Some(s)) => expected.loosely_equals(s),
                (_, Some(s)) => *s == expected,
                (_, None) => false,
            };
            if !same {
                p.push(format!("{}: want {expected:?}, got {stored:?}", c.name));
            }
        }
        if let Json::Obj(members) = source {
            for (field, _) in members {
                if !COLUMNS.iter().any(|c| c.name == field) {
                    p.push(format!("unexpected field {field}"));
                }
            }
        }
    })
}

// ---- PostgreSQL ---------------------------------------------------------------------------

/// PostgreSQL prints fractional seconds without trailing zeros.
fn pg_fraction(us: u32) -> String {
    if us == 0 {
        String::new()
    } else {
        format!(".{us:06}").trim_end_matches('0').to_owned()
    }
}

/// A source value as PostgreSQL prints it (`col::text`, TimeZone UTC, IntervalStyle
/// postgres).
pub fn pg_expected(kind: Kind, v: &Src) -> Option<String> {
    Some(match v {
        Src::Null => return None,
        Src::Int(i) => i.to_string(),
        Src::Year(y) => y.to_string(),
        Src::F32(f) => format!("{f}"),
        Src::F64(f) => format!("{f}"),
        Src::Dec(s) | Src::Text(s) | Src::Json(s) => s.clone(),
        Src::Date(y, m, d) => date_text(*y, *m, *d),
        Src::DateTime(y, mo, d, h, mi, s, us) => {
            let zone = if matches!(kind, Kind::Timestamp { .. }) {
                "+00"
            } else {
                ""
            };
            format!(
                "{} {h:02}:{mi:02}:{s:02}{}{zone}",
                date_text(*y, *mo, *d),
                pg_fraction(*us)
            )
        }
        Src::Time(neg, h, m, s, us) => format!(
            "{}{h:02}:{m:02}:{s:02}{}",
            if *neg { "-" } else { "" },
            pg_fraction(*us)
        ),
        Src::Bytes(b) | Src::Geometry(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("\\x{hex}")
        }
        Src::Set(m) => format!("{{{}}}", m.join(",")),
        Src::Bit(b) => format!("{b:064b}"),
    })
}

/// Every difference between the source rows and the PostgreSQL table of `ns`.
pub async fn pg_differences(
    targets: &Targets,
    ns: &Namespace,
    want: &BTreeMap<i64, Vec<Src>>,
) -> Problems {
    let got = targets.pg_text_rows(ns, TABLE, "id").await;
    check_rows("postgres", want, &got, |values, row, p| {
        for (c, v) in COLUMNS.iter().zip(values) {
            let expected = pg_expected(c.kind, v);
            let stored = row.get(c.name).cloned();
            let same = match (v, &stored) {
                // Compared bit for bit: PostgreSQL spells floats its own way (`3.4e+38`).
                (Src::F32(f), Some(s)) => s.parse::<f32>().map(f32::to_bits) == Ok(f.to_bits()),
                (Src::F64(f), Some(s)) => s.parse::<f64>().map(f64::to_bits) == Ok(f.to_bits()),
                (Src::Json(t), Some(s)) => Json::parse(t) == Json::parse(s),
                _ => expected == stored,
            };
            if !same {
                p.push(format!("{}: want {expected:?}, got {stored:?}", c.name));
            }
        }
        let columns = row.keys().filter(|k| *k != "_strata_version");
        for column in columns {
            if !COLUMNS.iter().any(|c| c.name == column) {
                p.push(format!("unexpected column {column}"));
            }
        }
    })
}
