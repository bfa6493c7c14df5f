//! The snapshot reader gives, for every type, exactly the table shape and the values the
//! binlog decoder gives for the same rows: rows are inserted, decoded from the binlog with
//! `BinlogSource`, read again with `SnapshotReader`, and compared value by value, on both
//! servers.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use strata_core::{TableId, Value};
use strata_mysql::{BinlogSource, ChunkKey, SnapshotReader};
use support::*;

const TYPES: &str = "CREATE TABLE types (
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
  l1c CHAR(5) CHARACTER SET latin1, u3 VARCHAR(10) CHARACTER SET utf8mb3,
  bn BINARY(4), vb VARBINARY(20), bl BLOB, lb LONGBLOB,
  e ENUM('a','b','c d'), st SET('x','y','z'),
  b1 BIT(1), b9 BIT(9), b64 BIT(64),
  j JSON,
  g GEOMETRY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

const COLUMNS: &str = "id, ti, tu, si, su, mi, mu, i, iu, bi, bu, d65, d10, d5, f, db, dt, dtm0, dtm3, dtm6, ts0, ts3, ts6, tm0, tm1, tm2, tm3, tm4, tm6, y, c, c100, vc, txt, l1, l1t, l1c, u3, bn, vb, bl, lb, e, st, b1, b9, b64, j, g";

/// Maximum and tricky values.
fn row1(mysql: bool) -> String {
    let json = if mysql {
        r#"JSON_OBJECT('dec', CAST('1.50' AS DECIMAL(5,2)), 'dt', CAST('2024-01-02 03:04:05.5' AS DATETIME(1)), 'd', CAST('2024-01-02' AS DATE), 't', CAST('12:00:00' AS TIME), 'nested', JSON_ARRAY(1, JSON_OBJECT('x', 'y'), NULL, TRUE), 'big', 18446744073709551615, 'neg', -5, 'dbl', 0.5e0, 'str', 'q"\\', 'u', '€')"#
    } else {
        r#"'{"a": [1, 2.50], "s": "x\\"y", "u": "€", "e": 1E+2}'"#
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
        'café €', 'ÿ€‰', 'Ab', 'dreißig',
        x'0001', x'00ff', x'deadbeef00', REPEAT(x'0102', 35000),
        'c d', 'x,z',
        b'1', b'100000001', 0xFFFFFFFFFFFFFFFF,
        {json},
        ST_GeomFromText('POINT(1 2)'))"
    )
}

/// Minimum, zero and empty values.
fn row2(mysql: bool) -> String {
    let json = if mysql { "CAST('[]' AS JSON)" } else { "'[]'" };
    format!(
        "INSERT INTO types ({COLUMNS}) VALUES (2,
        -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
        '-0.000000000000000000000000000001', '0.00', 0,
        -0.125, -1.7976931348623157e308,
        '0000-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00.000', '2024-06-30 12:00:00.999999',
        '0000-00-00 00:00:00', '1970-01-01 00:00:01.000', '2038-01-19 03:14:07.999999',
        '00:00:00', '838:59:59.0', '00:00:00.01', '-00:00:00.001', '100:00:00.9999', '-838:59:58.999999', 0,
        '', 'ü', '', '', '', '', '', '',
        x'', x'', x'', x'',
        'bogus', '',
        b'0', b'0', 0,
        {json},
        ST_GeomFromText('LINESTRING(0 0,1 1)'))"
    )
}

/// All NULLs but the key.
const ROW3: &str = "INSERT INTO types (id) VALUES (3)";

/// JSON documents whose numbers MySQL stores as doubles, integers and decimals.
fn json_rows(mysql: bool) -> Vec<String> {
    let docs = [
        r#"[1.5, 0.1, 1e300, 3.0, 1e20, 123456789012345678901234, -0.0, 1e-7, 100.0, 1e15, 1e16, 2.5e-5, 33.333333333333336]"#,
        r#"{"b": {"z": 1, "a": [true, false, null]}, "a": "\u0001\t\"", "longer key": 18446744073709551615, "neg": -9223372036854775808}"#,
        r#""just a string""#,
        r#"12.5"#,
    ];
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let doc = doc.replace('\\', "\\\\").replace('\'', "''");
            let value = if mysql {
                format!("CAST('{doc}' AS JSON)")
            } else {
                format!("'{doc}'")
            };
            format!("INSERT INTO docs (id, doc) VALUES ({}, {value})", i + 1)
        })
        .collect()
}

async fn same_values_as_the_binlog(server: &str, url: &str) {
    let mysql = server == "mysql";
    let mut db = TestDb::new(url, &format!("snapvals_{server}")).await;
    db.exec(TYPES).await;
    db.exec("CREATE TABLE docs (id INT PRIMARY KEY, doc JSON)")
        .await;
    // No primary key: a unique NOT NULL key pages it.
    db.exec("CREATE TABLE pairs (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, UNIQUE KEY ab (a, b), UNIQUE KEY nullable (v))")
        .await;
    db.exec("CREATE TABLE loose (a INT, b INT)").await;

    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    let mut statements = vec![row1(mysql), row2(mysql), ROW3.to_owned()];
    statements.extend(json_rows(mysql));
    statements.push("INSERT INTO pairs VALUES (1, 'b', 5), (1, 'a', NULL), (0, 'z', 7)".into());
    for s in &statements {
        db.exec(s).await;
    }
    let txs = collect(&mut source, 3 + 4 + 3).await;
    let decoded = changes(&txs);

    let mut reader = SnapshotReader::connect(&db.source_config()).await.unwrap();
    let tables = reader.list_tables(&[db.schema.clone()]).await.unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["docs", "loose", "pairs", "types"], "{server}");

    for table in ["types", "docs", "pairs"] {
        let id = TableId::new(&db.schema, table);
        let info = reader.table_info(&id).await.unwrap().unwrap();
        let from_binlog: Vec<&strata_core::RowChange> =
            decoded.iter().filter(|c| c.table.id == id).collect();
        assert!(!from_binlog.is_empty(), "{server} {table}: nothing decoded");
        assert_eq!(
            *info.schema, *from_binlog[0].table,
            "{server} {table}: the snapshot's table shape differs from the binlog's"
        );
        // Small chunks, so the keyset resume path is exercised.
        let mut rows: Vec<Vec<Value>> = Vec::new();
        let mut after: Option<Vec<Value>> = None;
        loop {
            let chunk = reader.read_chunk(&info, after.as_deref(), 2).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            let key = info.chunk_key.columns();
            after = chunk
                .last()
                .map(|r| key.iter().map(|&i| r[i].clone()).collect());
            rows.extend(chunk);
        }
        let mut expected: Vec<Vec<Value>> = from_binlog
            .iter()
            .map(|c| c.after.clone().unwrap())
            .collect();
        let key = info.chunk_key.columns().to_vec();
        let sort_key = |r: &Vec<Value>| -> String {
            key.iter()
                .map(|&i| format!("{:>20}|", r[i].key_text()))
                .collect()
        };
        expected.sort_by_key(sort_key);
        rows.sort_by_key(sort_key);
        assert_eq!(rows.len(), expected.len(), "{server} {table}: row count");
        for (got, want) in rows.iter().zip(&expected) {
            for (i, column) in info.schema.columns.iter().enumerate() {
                assert_eq!(
                    got[i], want[i],
                    "{server} {table}: column {} differs between the snapshot and the binlog",
                    column.name
                );
            }
        }
        // Reading single rows by key gives the same values.
        let keys: Vec<Vec<Value>> = expected
            .iter()
            .map(|r| key.iter().map(|&i| r[i].clone()).collect())
            .collect();
        let mut again = reader.read_by(&info, &key, &keys).await.unwrap();
        again.sort_by_key(sort_key);
        assert_eq!(again, expected, "{server} {table}: read by key");
    }

    let pairs = reader
        .table_info(&TableId::new(&db.schema, "pairs"))
        .await
        .unwrap()
        .unwrap();
    // InnoDB clusters a table without a primary key by its first unique NOT NULL key, and
    // the binlog reports that key as the primary key: so does the snapshot reader.
    assert_eq!(pairs.chunk_key, ChunkKey::Primary(vec![0, 1]));
    assert_eq!(pairs.schema.primary_key, vec![0, 1]);
    let loose = reader
        .table_info(&TableId::new(&db.schema, "loose"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loose.chunk_key, ChunkKey::None);
    assert!(reader
        .table_info(&TableId::new(&db.schema, "absent"))
        .await
        .unwrap()
        .is_none());

    // The recorded start is at or after every transaction written so far.
    let start = reader.record_start(&tables).await.unwrap();
    let last_commit = &txs.last().unwrap().commit.position;
    assert!(
        start.position >= *last_commit,
        "{server}: {start:?} before {last_commit}"
    );
    if mysql {
        assert!(start.gtid.is_some(), "MySQL runs with GTIDs");
    }
    reader.disconnect().await;
    db.drop_schema().await;
}

#[tokio::test]
async fn snapshot_values_equal_binlog_values_mariadb() {
    same_values_as_the_binlog("mariadb", &mariadb_url()).await;
}

#[tokio::test]
async fn snapshot_values_equal_binlog_values_mysql() {
    same_values_as_the_binlog("mysql", &mysql_url()).await;
}
