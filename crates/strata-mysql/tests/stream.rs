//! Streaming guarantees on both servers: whole transactions, bounded memory for huge ones,
//! nothing lost or repeated across rotation, exact resume, filtering before decoding.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use strata_core::{GtidSet, Op, RowChange, SourceEvent, Value};
use strata_mysql::{BinlogSource, StartFrom};
use support::*;

fn id_of(change: &RowChange) -> i64 {
    match change.current_image().map(|row| &row[0]) {
        Some(Value::Int(id)) => *id,
        other => panic!("no id in {other:?}"),
    }
}

fn assert_strictly_increasing(changes: &[RowChange]) {
    for w in changes.windows(2) {
        assert!(
            w[0].order < w[1].order,
            "orders {} then {}",
            w[0].order,
            w[1].order
        );
    }
}

async fn transactions_whole(server: &str, url: &str) {
    let mut db = TestDb::new(url, "whole").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("BEGIN").await;
    db.exec("INSERT INTO t VALUES (1, 'a')").await;
    db.exec("INSERT INTO t VALUES (2, 'b')").await;
    db.exec("UPDATE t SET v = 'a2' WHERE id = 1").await;
    db.exec("UPDATE t SET v = 'a3' WHERE id = 1").await;
    db.exec("DELETE FROM t WHERE id = 2").await;
    db.exec("COMMIT").await;
    db.exec("INSERT INTO t VALUES (10, 'x'), (11, 'y'), (12, 'z')")
        .await;

    let txs = collect(&mut source, 8).await;
    assert_eq!(
        txs.iter().map(|t| t.changes.len()).collect::<Vec<_>>(),
        [5, 3],
        "{server}: transactions split or merged"
    );
    let ops: Vec<Op> = txs[0].changes.iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        [Op::Insert, Op::Insert, Op::Update, Op::Update, Op::Delete]
    );
    // One row changed twice in one transaction: two distinct, increasing versions.
    assert_strictly_increasing(&changes(&txs));
    assert!(txs[0].commit.position < txs[1].commit.position);
    for tx in &txs {
        let gtid = tx.gtid.clone().expect("GTID of the transaction");
        for c in &tx.changes {
            assert_eq!(c.gtid.as_deref(), Some(gtid.as_str()));
            assert!(c.ts_ms > 1_600_000_000_000, "commit timestamp {}", c.ts_ms);
        }
        // The commit's executed set includes the transaction itself.
        match tx.commit.gtid_set.as_ref().expect("executed GTID set") {
            GtidSet::Mysql(set) => {
                let (sid, gno) = gtid.rsplit_once(':').unwrap();
                assert!(
                    set.contains(sid, gno.parse().unwrap()),
                    "{set} lacks {gtid}"
                );
            }
            GtidSet::MariaDb(pos) => {
                let seq: u64 = gtid.rsplit('-').next().unwrap().parse().unwrap();
                assert!(pos.iter().any(|(_, _, s)| s == seq), "{pos} lacks {gtid}");
            }
        }
    }
    let last = &txs[0].changes[3];
    assert_eq!(last.after.as_ref().unwrap()[1], Value::String("a3".into()));
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_transactions_arrive_whole() {
    for (server, url) in both() {
        transactions_whole(server, &url).await;
    }
}

/// 100,000 rows in one transaction: delivered whole, and never more than
/// `channel_capacity + 1` decoded changes held at once.
async fn huge_transaction(server: &str, url: &str) {
    const ROWS: usize = 100_000;
    const CAPACITY: usize = 64;
    let mut db = TestDb::new(url, "huge").await;
    db.exec("CREATE TABLE digits (d INT)").await;
    db.exec("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)")
        .await;
    db.exec("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(32))")
        .await;
    let mut cfg = db.source_config();
    cfg.filter = strata_mysql::TableFilter::parse(&[format!("{}.big", db.schema)]).unwrap();
    cfg.channel_capacity = CAPACITY;
    let mut source = BinlogSource::start(cfg).await.unwrap();
    let stats = source.stats();
    db.exec("INSERT INTO big SELECT a.d + b.d*10 + c.d*100 + e.d*1000 + f.d*10000, CONCAT('row-', a.d) FROM digits a, digits b, digits c, digits e, digits f").await;

    // The reader fills the channel and then waits for the consumer: backpressure.
    let deadline = std::time::Instant::now() + DEADLINE;
    while source.buffered() < CAPACITY {
        if std::time::Instant::now() > deadline {
            let first = source.next().await;
            panic!(
                "{server}: the channel never filled: {:?}; first event {first:?}",
                stats.snapshot()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let mut seen = vec![false; ROWS];
    let (mut in_tx, mut count, mut prev_order) = (false, 0_usize, 0_u64);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{server}: timed out at {count}"
        );
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = tokio::time::timeout(left, source.next())
            .await
            .expect("deadline")
            .expect("stream open")
            .expect("no stream error");
        assert!(
            stats.snapshot().in_flight_high_water <= CAPACITY + 1,
            "{server}: {} changes held at once",
            stats.snapshot().in_flight_high_water
        );
        match event {
            SourceEvent::Begin { .. } => in_tx = true,
            SourceEvent::Change(c) => {
                assert!(in_tx, "change outside its transaction");
                assert!(c.order > prev_order);
                prev_order = c.order;
                let id = id_of(&c) as usize;
                assert!(!seen[id], "row {id} twice");
                seen[id] = true;
                count += 1;
            }
            SourceEvent::Commit(_) if count > 0 => break,
            SourceEvent::Commit(_) => in_tx = false,
            _ => {}
        }
    }
    assert_eq!(
        count, ROWS,
        "{server}: the transaction arrived split or short"
    );
    assert!(seen.iter().all(|s| *s));
    let hw = stats.snapshot().in_flight_high_water;
    assert!(hw <= CAPACITY + 1, "{server}: high-water mark {hw}");
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_transaction_arrives_whole_with_bounded_memory_mariadb() {
    huge_transaction("mariadb", &mariadb_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_transaction_arrives_whole_with_bounded_memory_mysql() {
    huge_transaction("mysql", &mysql_url()).await;
}

async fn rotation(server: &str, url: &str) {
    let mut db = TestDb::new(url, "rotate").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("INSERT INTO t VALUES (1)").await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (2)").await;
    db.exec("INSERT INTO t VALUES (3)").await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("BEGIN").await;
    db.exec("INSERT INTO t VALUES (4)").await;
    db.exec("INSERT INTO t VALUES (5)").await;
    db.exec("COMMIT").await;
    let txs = collect(&mut source, 5).await;
    let all = changes(&txs);
    assert_eq!(
        all.iter().map(id_of).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "{server}"
    );
    assert!(all[0].file < all[1].file, "{server}: no rotation seen");
    assert!(all[2].file < all[3].file, "{server}: no rotation seen");
    assert_strictly_increasing(&all);
    for w in txs.windows(2) {
        assert!(w[0].commit.position < w[1].commit.position);
    }
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_binary_logs_mid_stream_loses_and_repeats_nothing() {
    for (server, url) in both() {
        rotation(server, &url).await;
    }
}

async fn resume(server: &str, url: &str) {
    let mut db = TestDb::new(url, "resume").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    let mut first = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("INSERT INTO t VALUES (1, 1), (2, 2)").await;
    db.exec("INSERT INTO t VALUES (3, 3)").await;
    db.exec("UPDATE t SET v = 30 WHERE id = 3").await;
    let txs = collect(&mut first, 4).await;
    assert_eq!(txs.len(), 3);
    drop(first);
    let after_first = &txs[0].commit;
    let expected: Vec<RowChange> = changes(&txs[1..]);

    let mut from_pos = db.source_config();
    from_pos.start = StartFrom::FilePos(after_first.position.clone());
    let mut source = BinlogSource::start(from_pos).await.unwrap();
    let got = changes(&collect(&mut source, 2).await);
    assert_eq!(
        got, expected,
        "{server}: resume from {}",
        after_first.position
    );
    drop(source);

    let gtid = after_first
        .gtid_set
        .clone()
        .expect("GTID set at the commit");
    let mut from_gtid = db.source_config();
    from_gtid.start = StartFrom::Gtid(gtid.clone());
    let mut source = BinlogSource::start(from_gtid).await.unwrap();
    let got = changes(&collect(&mut source, 2).await);
    assert_eq!(
        got.iter()
            .map(|c| (c.op, c.after.clone(), c.order))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|c| (c.op, c.after.clone(), c.order))
            .collect::<Vec<_>>(),
        "{server}: resume from GTID {gtid}"
    );
    drop(source);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_commit_position_or_gtid_set_yields_exactly_what_followed() {
    for (server, url) in both() {
        resume(server, &url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_transactions_decode_mysql() {
    let mut db = TestDb::new(&mysql_url(), "zstd").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)").await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    db.exec("SET SESSION binlog_transaction_compression = ON")
        .await;
    db.exec("BEGIN").await;
    db.exec("INSERT INTO t VALUES (1, REPEAT('a', 1000)), (2, 'b')")
        .await;
    db.exec("UPDATE t SET v = 'c' WHERE id = 1").await;
    db.exec("DELETE FROM t WHERE id = 2").await;
    db.exec("COMMIT").await;
    db.exec("SET SESSION binlog_transaction_compression = OFF")
        .await;
    db.exec("INSERT INTO t VALUES (3, 'plain')").await;
    let txs = collect(&mut source, 5).await;
    assert_eq!(txs.len(), 2);
    let zipped = &txs[0].changes;
    assert_eq!(
        zipped.iter().map(|c| c.op).collect::<Vec<_>>(),
        [Op::Insert, Op::Insert, Op::Update, Op::Delete]
    );
    assert_eq!(
        zipped[0].after.as_ref().unwrap()[1],
        Value::String("a".repeat(1000))
    );
    assert_eq!(
        zipped[2].after.as_ref().unwrap()[1],
        Value::String("c".into())
    );
    // All inner events share the payload's offset; the index keeps them ordered.
    assert!(zipped.iter().all(|c| c.event_pos == zipped[0].event_pos));
    assert_strictly_increasing(zipped);
    assert!(txs[0].commit.position.pos > zipped[0].event_pos);
    // Resuming at the compressed transaction's commit starts with the next one.
    let mut cfg = db.source_config();
    cfg.start = StartFrom::FilePos(txs[0].commit.position.clone());
    let mut again = BinlogSource::start(cfg).await.unwrap();
    let next = changes(&collect(&mut again, 1).await);
    assert_eq!(
        next[0].after.as_ref().unwrap()[1],
        Value::String("plain".into())
    );
    drop((source, again));
    db.drop_schema().await;
}

async fn filtering(server: &str, url: &str) {
    let mut wanted = TestDb::new(url, "want").await;
    let mut other = TestDb::new(url, "other").await;
    wanted
        .exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await;
    wanted
        .exec("CREATE TABLE skipped (id INT PRIMARY KEY, v INT)")
        .await;
    other
        .exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await;
    let cfg = source_config(url, &[&format!("{}.t", wanted.schema)]);
    let mut source = BinlogSource::start(cfg).await.unwrap();
    let stats = source.stats();
    other
        .exec("INSERT INTO t VALUES (1, 1), (2, 2), (3, 3)")
        .await;
    wanted.exec("INSERT INTO skipped VALUES (1, 1)").await;
    wanted.exec("INSERT INTO t VALUES (1, 1)").await;
    // One transaction touching both schemas: only the wanted row comes through.
    wanted.exec("BEGIN").await;
    wanted
        .exec(&format!("INSERT INTO `{}`.t VALUES (9, 9)", other.schema))
        .await;
    wanted.exec("INSERT INTO t VALUES (2, 2)").await;
    wanted.exec("COMMIT").await;
    let txs = collect(&mut source, 2).await;
    let all = changes(&txs);
    assert!(all
        .iter()
        .all(|c| c.table.id.schema == wanted.schema && c.table.id.table == "t"));
    assert_eq!(
        all.iter().map(id_of).collect::<Vec<_>>(),
        [1, 2],
        "{server}"
    );
    let counters = stats.snapshot();
    // The other tables' rows events were skipped at their TABLE_MAP, never decoded.
    assert!(counters.rows_events_skipped >= 3, "{server}: {counters:?}");
    assert_eq!(counters.rows_decoded, 2, "{server}: {counters:?}");
    drop(source);
    wanted.drop_schema().await;
    other.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtering_skips_other_schemas_and_tables_without_decoding_their_rows() {
    for (server, url) in both() {
        filtering(server, &url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_json_updates_are_applied_mysql() {
    let mut db = TestDb::new(&mysql_url(), "pjson").await;
    db.exec("CREATE TABLE pj (id INT PRIMARY KEY, doc JSON, other JSON)")
        .await;
    db.exec(r#"INSERT INTO pj VALUES (1, '{"a": 1, "b": [1, 2, 3], "c": {"d": "x"}}', '[1]')"#)
        .await;
    let mut source = BinlogSource::start(db.source_config()).await.unwrap();
    let stats = source.stats();
    db.exec("SET SESSION binlog_row_value_options = 'PARTIAL_JSON'")
        .await;
    db.exec(r#"UPDATE pj SET doc = JSON_SET(doc, '$.a', 2, '$.c.d', 'y'), other = JSON_ARRAY_APPEND(other, '$', 2) WHERE id = 1"#).await;
    db.exec(r#"UPDATE pj SET doc = JSON_REMOVE(doc, '$.b[1]') WHERE id = 1"#)
        .await;
    db.exec(r#"UPDATE pj SET doc = JSON_REPLACE(doc, '$.a', CAST('1.50' AS DECIMAL(4,2))) WHERE id = 1"#).await;
    let all = changes(&collect(&mut source, 3).await);
    let docs: Vec<Value> = all
        .iter()
        .map(|c| c.after.as_ref().unwrap()[1].clone())
        .collect();
    assert_eq!(
        docs,
        [
            Value::Json(r#"{"a":2,"b":[1,2,3],"c":{"d":"y"}}"#.into()),
            Value::Json(r#"{"a":2,"b":[1,3],"c":{"d":"y"}}"#.into()),
            Value::Json(r#"{"a":1.50,"b":[1,3],"c":{"d":"y"}}"#.into()),
        ]
    );
    assert_eq!(
        all[0].after.as_ref().unwrap()[2],
        Value::Json("[1,2]".into())
    );
    assert!(
        stats.snapshot().json_diffs_applied >= 3,
        "partial updates were not exercised: {:?}",
        stats.snapshot()
    );
    drop(source);
    db.drop_schema().await;
}
