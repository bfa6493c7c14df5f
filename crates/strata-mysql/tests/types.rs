//! The type matrix: every MySQL/MariaDB type decoded value by value, on insert, update and
//! delete, on both servers.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use strata_core::{ColumnType, Date, DateTime, Op, Time, Value};
use strata_mysql::BinlogSource;
use support::*;

const TABLE: &str = "CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d10 DECIMAL(10,2), d5 DECIMAL(5,0),
  f FLOAT, db DOUBLE,
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm6 TIME(6), y YEAR,
  c CHAR(10) CHARACTER SET utf8mb4, c100 CHAR(100) CHARACTER SET utf8mb4,
  vc VARCHAR(300) CHARACTER SET utf8mb4, txt TEXT CHARACTER SET utf8mb4,
  l1 VARCHAR(20) CHARACTER SET latin1, l1t TEXT CHARACTER SET latin1,
  l1c CHAR(5) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(20), bl BLOB, lb LONGBLOB,
  e ENUM('a','b','c d'), st SET('x','y','z'),
  b1 BIT(1), b9 BIT(9), b64 BIT(64),
  j JSON,
  g GEOMETRY
) ENGINE=InnoDB";

const COLUMNS: &str = "id, ti, tu, si, su, mi, mu, i, iu, bi, bu, d65, d10, d5, f, db, dt, dtm0, dtm3, dtm6, ts0, ts3, ts6, tm0, tm1, tm2, tm3, tm4, tm6, y, c, c100, vc, txt, l1, l1t, l1c, bn, vb, bl, lb, e, st, b1, b9, b64, j, g";

/// Row 1: maximum and tricky values.
fn row1_sql(mysql: bool) -> String {
    let json = if mysql {
        r#"JSON_OBJECT('dec', CAST('1.50' AS DECIMAL(5,2)), 'dt', CAST('2024-01-02 03:04:05.5' AS DATETIME(1)), 'd', CAST('2024-01-02' AS DATE), 't', CAST('12:00:00' AS TIME), 'nested', JSON_ARRAY(1, JSON_OBJECT('x', 'y'), NULL, TRUE), 'big', 18446744073709551615, 'neg', -5, 'dbl', 0.5e0, 'str', 'q"\\', 'u', '€')"#
    } else {
        r#"'{"a": [1, 2.50], "s": "x\\"y", "u": "€"}'"#
    };
    format!(
        "INSERT INTO types ({COLUMNS}) VALUES (1,
        127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
        9223372036854775807, 18446744073709551615,
        '99999999999999999999999999999999999.999999999999999999999999999999', '-12345678.90', -99999,
        1.5, 0.1,
        '2024-02-29', '9999-12-31 23:59:59', '2024-01-02 03:04:05.678', '1000-01-01 00:00:00.000001',
        '2038-01-19 03:14:07', '2024-01-02 03:04:05.678', '1970-01-01 00:00:01.000001',
        '-838:59:59', '-00:00:01.5', '-12:34:56.78', '12:34:56.789', '-01:02:03.0405', '838:59:58.999999', 2155,
        'héllo', REPEAT('x', 100), REPEAT('€', 300), 'emoji 😀 and\\nnewline',
        'café €', 'ÿ€‰', 'Ab',
        x'0001', x'00ff', x'deadbeef00', REPEAT(x'0102', 35000),
        'c d', 'x,z',
        b'1', b'100000001', 0xFFFFFFFFFFFFFFFF,
        {json},
        ST_GeomFromText('POINT(1 2)'))"
    )
}

/// Row 2: minimum, zero and empty values.
fn row2_sql(mysql: bool) -> String {
    let json = if mysql { "CAST('[]' AS JSON)" } else { "'[]'" };
    format!(
        "INSERT INTO types ({COLUMNS}) VALUES (2,
        -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
        '-0.000000000000000000000000000001', '0.00', 0,
        -0.125, -1.7976931348623157e308,
        '0000-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00.000', '2024-06-30 12:00:00.999999',
        '0000-00-00 00:00:00', '1970-01-01 00:00:01.000', '2038-01-19 03:14:07.999999',
        '00:00:00', '838:59:59.0', '00:00:00.01', '-00:00:00.001', '100:00:00.9999', '-838:59:58.999999', 0,
        '', 'ü', '', '', '', '', '',
        x'', x'', x'', x'',
        'bogus', '',
        b'0', b'0', 0,
        {json},
        ST_GeomFromText('LINESTRING(0 0,1 1)'))"
    )
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn dt(d: Date, hour: u8, minute: u8, second: u8, micros: u32) -> DateTime {
    DateTime {
        date: d,
        hour,
        minute,
        second,
        micros,
    }
}

fn ts(d: DateTime) -> Value {
    Value::Timestamp(d.to_unix_micros())
}

fn time(negative: bool, hours: u16, minutes: u8, seconds: u8, micros: u32) -> Value {
    Value::Time(Time {
        negative,
        hours,
        minutes,
        seconds,
        micros,
    })
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn wkb_point(x: f64, y: f64) -> Vec<u8> {
    let mut w = vec![1, 1, 0, 0, 0];
    w.extend(x.to_le_bytes());
    w.extend(y.to_le_bytes());
    w
}

fn row1(mysql: bool) -> Vec<Value> {
    let json = if mysql {
        Value::Json(
            r#"{"d":"2024-01-02","t":"12:00:00.000000","u":"€","dt":"2024-01-02 03:04:05.500000","big":18446744073709551615,"dbl":0.5,"dec":1.50,"neg":-5,"str":"q\"\\","nested":[1,{"x":"y"},null,true]}"#.into(),
        )
    } else {
        // MariaDB's JSON is text: the same document, canonical, numbers as written.
        Value::Json(r#"{"a":[1,2.50],"s":"x\"y","u":"€"}"#.into())
    };
    vec![
        Value::Int(1),
        Value::Int(127),
        Value::UInt(255),
        Value::Int(32767),
        Value::UInt(65535),
        Value::Int(8_388_607),
        Value::UInt(16_777_215),
        Value::Int(2_147_483_647),
        Value::UInt(4_294_967_295),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::Decimal("99999999999999999999999999999999999.999999999999999999999999999999".into()),
        Value::Decimal("-12345678.90".into()),
        Value::Decimal("-99999".into()),
        Value::Float(1.5),
        Value::Double(0.1),
        Value::Date(date(2024, 2, 29)),
        Value::DateTime(dt(date(9999, 12, 31), 23, 59, 59, 0)),
        Value::DateTime(dt(date(2024, 1, 2), 3, 4, 5, 678_000)),
        Value::DateTime(dt(date(1000, 1, 1), 0, 0, 0, 1)),
        ts(dt(date(2038, 1, 19), 3, 14, 7, 0)),
        ts(dt(date(2024, 1, 2), 3, 4, 5, 678_000)),
        ts(dt(date(1970, 1, 1), 0, 0, 1, 1)),
        time(true, 838, 59, 59, 0),
        time(true, 0, 0, 1, 500_000),
        time(true, 12, 34, 56, 780_000),
        time(false, 12, 34, 56, 789_000),
        time(true, 1, 2, 3, 40_500),
        time(false, 838, 59, 58, 999_999),
        Value::Year(2155),
        s("héllo"),
        s(&"x".repeat(100)),
        s(&"€".repeat(300)),
        s("emoji 😀 and\nnewline"),
        s("café €"),
        s("ÿ€‰"),
        s("Ab"),
        Value::Bytes(vec![0, 1, 0, 0]),
        Value::Bytes(vec![0, 0xff]),
        Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef, 0]),
        Value::Bytes([1_u8, 2].repeat(35_000)),
        Value::Enum("c d".into()),
        Value::Set(vec!["x".into(), "z".into()]),
        Value::Bit { bits: 1, width: 1 },
        Value::Bit {
            bits: 257,
            width: 9,
        },
        Value::Bit {
            bits: u64::MAX,
            width: 64,
        },
        json,
        Value::Geometry {
            srid: 0,
            wkb: wkb_point(1.0, 2.0),
        },
    ]
}

fn row2() -> Vec<Value> {
    let zero_date = date(0, 0, 0);
    let mut line = vec![1_u8, 2, 0, 0, 0, 2, 0, 0, 0];
    for v in [0.0_f64, 0.0, 1.0, 1.0] {
        line.extend(v.to_le_bytes());
    }
    vec![
        Value::Int(2),
        Value::Int(-128),
        Value::UInt(0),
        Value::Int(-32768),
        Value::UInt(0),
        Value::Int(-8_388_608),
        Value::UInt(0),
        Value::Int(-2_147_483_648),
        Value::UInt(0),
        Value::Int(i64::MIN),
        Value::UInt(0),
        Value::Decimal("-0.000000000000000000000000000001".into()),
        Value::Decimal("0.00".into()),
        Value::Decimal("0".into()),
        Value::Float(-0.125),
        Value::Double(f64::MIN),
        Value::Date(zero_date),
        Value::DateTime(dt(zero_date, 0, 0, 0, 0)),
        Value::DateTime(dt(date(1000, 1, 1), 0, 0, 0, 0)),
        Value::DateTime(dt(date(2024, 6, 30), 12, 0, 0, 999_999)),
        Value::Timestamp(None),
        ts(dt(date(1970, 1, 1), 0, 0, 1, 0)),
        ts(dt(date(2038, 1, 19), 3, 14, 7, 999_999)),
        time(false, 0, 0, 0, 0),
        time(false, 838, 59, 59, 0),
        time(false, 0, 0, 0, 10_000),
        time(true, 0, 0, 0, 1_000),
        time(false, 100, 0, 0, 999_900),
        time(true, 838, 59, 58, 999_999),
        Value::Year(0),
        s(""),
        s("ü"),
        s(""),
        s(""),
        s(""),
        s(""),
        s(""),
        Value::Bytes(vec![0, 0, 0, 0]),
        Value::Bytes(vec![]),
        Value::Bytes(vec![]),
        Value::Bytes(vec![]),
        // An invalid ENUM value is stored as index 0, the empty string.
        Value::Enum(String::new()),
        Value::Set(vec![]),
        Value::Bit { bits: 0, width: 1 },
        Value::Bit { bits: 0, width: 9 },
        Value::Bit { bits: 0, width: 64 },
        Value::Json("[]".into()),
        Value::Geometry { srid: 0, wkb: line },
    ]
}

fn row3() -> Vec<Value> {
    let mut row = vec![Value::Null; 48];
    row[0] = Value::Int(3);
    row
}

/// An operation with its expected before and after images.
type Expected<'a> = (Op, Option<&'a Vec<Value>>, Option<&'a Vec<Value>>);

fn assert_row(what: &str, got: &[Value], want: &[Value], names: &[String]) {
    assert_eq!(got.len(), want.len(), "{what}: column count");
    for ((g, w), name) in got.iter().zip(want).zip(names) {
        assert_eq!(g, w, "{what}: column {name}");
    }
}

async fn type_matrix(server: &str, url: &str) {
    let mysql = server == "mysql";
    let mut db = TestDb::new(url, "types").await;
    db.exec(TABLE).await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();

    db.exec(&row1_sql(mysql)).await;
    db.exec(&row2_sql(mysql)).await;
    db.exec("INSERT INTO types (id) VALUES (3)").await;
    // Every column of row 1 takes row 2's value; row 3 goes from NULL to row 1's values.
    db.exec("UPDATE types a JOIN types b ON b.id = 2 SET a.ti=b.ti, a.tu=b.tu, a.si=b.si, a.su=b.su, a.mi=b.mi, a.mu=b.mu, a.i=b.i, a.iu=b.iu, a.bi=b.bi, a.bu=b.bu, a.d65=b.d65, a.d10=b.d10, a.d5=b.d5, a.f=b.f, a.db=b.db, a.dt=b.dt, a.dtm0=b.dtm0, a.dtm3=b.dtm3, a.dtm6=b.dtm6, a.ts0=b.ts0, a.ts3=b.ts3, a.ts6=b.ts6, a.tm0=b.tm0, a.tm1=b.tm1, a.tm2=b.tm2, a.tm3=b.tm3, a.tm4=b.tm4, a.tm6=b.tm6, a.y=b.y, a.c=b.c, a.c100=b.c100, a.vc=b.vc, a.txt=b.txt, a.l1=b.l1, a.l1t=b.l1t, a.l1c=b.l1c, a.bn=b.bn, a.vb=b.vb, a.bl=b.bl, a.lb=b.lb, a.e=b.e, a.st=b.st, a.b1=b.b1, a.b9=b.b9, a.b64=b.b64, a.j=b.j, a.g=b.g WHERE a.id = 1").await;
    db.exec("DELETE FROM types ORDER BY id").await;

    let txs = collect(&mut source, 7).await;
    let all = changes(&txs);
    let table = all[0].table.clone();
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names.join(", "), COLUMNS);
    assert_eq!(table.primary_key, vec![0]);
    assert_eq!(
        table.columns[10].ty,
        ColumnType::Int {
            bytes: 8,
            unsigned: true
        }
    );
    assert_eq!(
        table.columns[11].ty,
        ColumnType::Decimal {
            precision: 65,
            scale: 30
        }
    );
    assert_eq!(table.columns[37].ty, ColumnType::Bytes);
    assert_eq!(table.columns[46].ty, ColumnType::Json);
    assert_eq!(
        table.columns[35].ty,
        ColumnType::Text {
            charset: Some("latin1".into())
        }
    );

    let (r1, r2, r3) = (row1(mysql), row2(), row3());
    let mut r2_as_1 = r2.clone();
    r2_as_1[0] = Value::Int(1);

    let expect: [Expected; 7] = [
        (Op::Insert, None, Some(&r1)),
        (Op::Insert, None, Some(&r2)),
        (Op::Insert, None, Some(&r3)),
        (Op::Update, Some(&r1), Some(&r2_as_1)),
        (Op::Delete, Some(&r2_as_1), None),
        (Op::Delete, Some(&r2), None),
        (Op::Delete, Some(&r3), None),
    ];
    for (n, (change, (op, before, after))) in all.iter().zip(expect).enumerate() {
        let what = format!("{server} change {n} ({op:?})");
        assert_eq!(change.op, op, "{what}");
        match (before, &change.before) {
            (Some(want), Some(got)) => assert_row(&format!("{what} before"), got, want, &names),
            (None, None) => {}
            other => panic!("{what}: before image {other:?}"),
        }
        match (after, &change.after) {
            (Some(want), Some(got)) => assert_row(&format!("{what} after"), got, want, &names),
            (None, None) => {}
            other => panic!("{what}: after image {other:?}"),
        }
        assert_eq!(change.table.id.schema, db.schema);
    }
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_mariadb() {
    type_matrix("mariadb", &mariadb_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_mysql() {
    type_matrix("mysql", &mysql_url()).await;
}

/// TIMESTAMP is an instant: the writing session's time zone changes the text it reads and
/// writes, never the UTC instant strata delivers.
async fn timestamps_are_utc(url: &str) {
    let mut db = TestDb::new(url, "tz").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, d DATETIME(6))")
        .await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("SET time_zone = '+05:30'").await;
    db.exec("INSERT INTO t VALUES (1, '2024-01-01 05:30:00.25', '2024-01-01 05:30:00.25')")
        .await;
    let txs = collect(&mut source, 1).await;
    let after = txs[0].changes[0].after.clone().unwrap();
    assert_eq!(after[1], ts(dt(date(2024, 1, 1), 0, 0, 0, 250_000)));
    // DATETIME is wall-clock fields: no zone arithmetic.
    assert_eq!(
        after[2],
        Value::DateTime(dt(date(2024, 1, 1), 5, 30, 0, 250_000))
    );
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_utc_whatever_the_session_zone() {
    for (_, url) in both() {
        timestamps_are_utc(&url).await;
    }
}
