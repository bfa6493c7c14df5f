//! The Elasticsearch/OpenSearch sink against a real server (STRATA_TEST_OPENSEARCH_URL):
//! documents read back over the REST API, guards, in-batch order, schema changes, errors
//! and a 10,000-op batch.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{delete, env_url, install_tls_provider, matrix_rows, matrix_table, unique, upsert};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::{
    ApplyStats, Column, ColumnType, ErrorKind, Sink, SinkOp, TableId, TargetTable, Value, Version,
};
use strata_sinks::search::{SearchSettings, SearchSink};

/// The test's own REST client on the same cluster.
struct Es {
    http: reqwest::Client,
    url: String,
    prefix: String,
}

impl Es {
    fn index(&self, table: &str) -> String {
        format!("{}{table}", self.prefix)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> (u16, String) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The document's raw `_source` text and parsed `_source`, or `None` when absent.
    async fn source(&self, table: &str, id: &str) -> Option<(String, Json)> {
        let (status, text) = self
            .call(
                reqwest::Method::GET,
                &format!("/{}/_doc/{id}", self.index(table)),
                None,
            )
            .await;
        let doc: Json = serde_json::from_str(&text).unwrap();
        if status == 404 || doc["found"] == json!(false) {
            return None;
        }
        Some((text, doc["_source"].clone()))
    }

    /// Ids of every document a search finds (after a refresh), sorted.
    async fn ids(&self, table: &str) -> Vec<String> {
        let index = self.index(table);
        self.call(reqwest::Method::POST, &format!("/{index}/_refresh"), None)
            .await;
        let (_, text) = self
            .call(
                reqwest::Method::POST,
                &format!("/{index}/_search"),
                Some(json!({ "size": 10000, "query": { "match_all": {} } })),
            )
            .await;
        let answer: Json = serde_json::from_str(&text).unwrap();
        let mut ids: Vec<String> = answer["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// How many documents a search finds (after a refresh).
    async fn count(&self, table: &str) -> u64 {
        let index = self.index(table);
        self.call(reqwest::Method::POST, &format!("/{index}/_refresh"), None)
            .await;
        let (_, text) = self
            .call(reqwest::Method::GET, &format!("/{index}/_count"), None)
            .await;
        let answer: Json = serde_json::from_str(&text).unwrap();
        answer["count"].as_u64().unwrap()
    }

    async fn drop_indices(&self) {
        self.call(reqwest::Method::DELETE, &format!("/{}*", self.prefix), None)
            .await;
    }
}

async fn fresh(prefix: &str) -> (SearchSink, Es) {
    install_tls_provider();
    let url = env_url("STRATA_TEST_OPENSEARCH_URL");
    let prefix = format!("{}_", unique(prefix));
    let sink = SearchSink::connect(SearchSettings::new(&url, &prefix))
        .await
        .unwrap();
    let es = Es {
        http: reqwest::Client::new(),
        url: url.trim_end_matches('/').to_owned(),
        prefix,
    };
    (sink, es)
}

/// The matrix rows' `_source`, written by hand from the type table (the JSON column is
/// checked on the raw text, where its digits are exact).
fn expected_matrix() -> Vec<Json> {
    vec![
        json!({
            "id": 1, "i8": -128, "u8": 255, "i16": -32768, "u24": 16_777_215,
            "i32": i32::MIN, "u32": 4_294_967_295_u32, "i64": i64::MIN, "u64": u64::MAX,
            "f32": 1.5, "f64": -2.25e300,
            "dec": "12345678901234567890123456789012345.123456789012345678901234567890",
            "d": "2024-02-29", "dt": "9999-12-31T23:59:59.999999",
            "ts": "2023-11-14T22:13:20.123456Z", "t": "-838:59:58.999999", "y": 2155,
            "s": "héllo wörld ✓ 𝄞", "l1": "café", "b": "AAEC//5cIgA=", "e": "large",
            "st": ["a", "c"], "bit": u64::MAX,
            "g": { "srid": 0, "wkb": "AQEAAAAAAAAAAADwPwAAAAAAAABA" },
        }),
        json!({
            "id": 2, "i8": 127, "u8": 0, "i16": 32767, "u24": 0, "i32": i32::MAX, "u32": 0,
            "i64": i64::MAX, "u64": 0, "f32": -0.0, "f64": 0.1,
            "dec": "-0.000000000000000000000000000001", "d": "1000-01-01",
            "dt": "1000-01-01T00:00:00", "ts": "1970-01-01T00:00:01Z",
            "t": "00:00:00.000001", "y": 1901, "s": "", "l1": "ÿ", "b": "", "e": "small",
            "st": [], "bit": 0, "j": [],
            "g": { "srid": 4326, "wkb": "AQEAAAAAAAAAAAAAAAAAAAAAAAAA" },
        }),
        {
            let mut nulls = serde_json::Map::new();
            nulls.insert("id".into(), json!(3));
            for name in [
                "i8", "u8", "i16", "u24", "i32", "u32", "i64", "u64", "f32", "f64", "dec", "d",
                "dt", "ts", "t", "y", "s", "l1", "b", "e", "st", "bit", "j", "g",
            ] {
                nulls.insert(name.into(), Json::Null);
            }
            Json::Object(nulls)
        },
    ]
}

#[tokio::test]
async fn type_matrix_reads_back_value_for_value() {
    let (sink, es) = fresh("search_matrix").await;
    let table = matrix_table("matrix");
    let ops: Vec<_> = matrix_rows()
        .into_iter()
        .map(|row| upsert(&table, row, 10))
        .collect();
    assert_eq!(
        sink.apply(&ops).await.unwrap(),
        ApplyStats {
            applied: 3,
            stale: 0
        }
    );
    let expected = expected_matrix();
    for (i, want) in expected.iter().enumerate() {
        let (raw, mut got) = es.source("matrix", &(i + 1).to_string()).await.unwrap();
        if i == 0 {
            // The JSON column keeps its digits: 2.50 and a 23-digit decimal, as written.
            assert!(
                raw.contains(
                    r#""j":{"a":[1,2.50,{"b":null}],"c":"x","d":12345678901234567890.123}"#
                ),
                "{raw}"
            );
            got.as_object_mut().unwrap().remove("j");
        }
        assert_eq!(&got, want);
    }
    let (raw, _) = es.source("matrix", "2").await.unwrap();
    assert!(raw.contains(r#""f32":-0.0"#), "{raw}");

    // The mapping holds exact types, and deletes are kept for the retention window.
    let (_, text) = es
        .call(
            reqwest::Method::GET,
            &format!("/{}", es.index("matrix")),
            None,
        )
        .await;
    let index: Json = serde_json::from_str(&text).unwrap();
    let index = &index[es.index("matrix")];
    let props = &index["mappings"]["properties"];
    assert_eq!(props["u64"]["type"], "unsigned_long");
    assert_eq!(props["dec"]["type"], "keyword");
    assert_eq!(props["dt"]["type"], "date");
    assert_eq!(props["b"]["type"], "binary");
    assert_eq!(props["j"]["enabled"], json!(false));
    assert_eq!(index["settings"]["index"]["gc_deletes"], "86400s");

    // Searches see exact values: BIGINT UNSIGNED max, a TIMESTAMP range.
    es.ids("matrix").await;
    let (_, text) = es
        .call(
            reqwest::Method::POST,
            &format!("/{}/_search", es.index("matrix")),
            Some(json!({ "query": { "bool": { "filter": [
                { "range": { "u64": { "gte": 18_446_744_073_709_551_614_u64 } } },
                { "range": { "ts": { "gte": "2023-11-14T22:13:20.123Z", "lt": "2023-11-14T22:13:20.124Z" } } },
            ] } } })),
        )
        .await;
    let hits: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(hits["hits"]["total"]["value"], 1, "{text}");
    assert_eq!(hits["hits"]["hits"][0]["_id"], "1");

    // Update every row.
    let mut rows = matrix_rows();
    rows[0][17] = Value::String("changed".into());
    rows[2][17] = Value::String("no longer null".into());
    let ops: Vec<_> = rows
        .into_iter()
        .map(|row| upsert(&table, row, 20))
        .collect();
    assert_eq!(sink.apply(&ops).await.unwrap().applied, 3);
    assert_eq!(es.source("matrix", "1").await.unwrap().1["s"], "changed");
    let (_, row3) = es.source("matrix", "3").await.unwrap();
    assert_eq!(row3["s"], "no longer null");
    assert_eq!(row3["u64"], Json::Null);

    // Delete row 2: gone from gets and searches.
    assert_eq!(
        sink.apply(&[delete(&table, vec![Value::Int(2)], 30)])
            .await
            .unwrap(),
        ApplyStats {
            applied: 1,
            stale: 0
        }
    );
    assert!(es.source("matrix", "2").await.is_none());
    assert_eq!(es.ids("matrix").await, vec!["1", "3"]);
    es.drop_indices().await;
}

fn kv_table(name: &str) -> Arc<TargetTable> {
    Arc::new(TargetTable {
        source: TableId::new("src", name),
        name: name.into(),
        columns: vec![
            Column {
                name: "id".into(),
                ty: ColumnType::Int {
                    bytes: 4,
                    unsigned: false,
                },
                nullable: false,
            },
            Column {
                name: "v".into(),
                ty: ColumnType::Text { charset: None },
                nullable: true,
            },
        ],
        key: vec![0],
    })
}

fn kv(table: &Arc<TargetTable>, id: i64, v: &str, order: u64) -> SinkOp {
    upsert(table, vec![Value::Int(id), Value::String(v.into())], order)
}

fn del(table: &Arc<TargetTable>, id: i64, order: u64) -> SinkOp {
    delete(table, vec![Value::Int(id)], order)
}

/// The `v` of a row, or `None` when it is absent.
async fn v_of(es: &Es, table: &str, id: i64) -> Option<String> {
    let (_, source) = es.source(table, &id.to_string()).await?;
    Some(source["v"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn guards_keep_newer_writes_and_deletes() {
    let (sink, es) = fresh("search_guards").await;
    let t = kv_table("kv");
    let first = vec![kv(&t, 1, "a", 10), kv(&t, 2, "b", 10), del(&t, 3, 10)];
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

    // Older and equal versions are no-ops, for upserts and deletes.
    let stats = sink
        .apply(&[kv(&t, 1, "older", 5), kv(&t, 2, "equal", 10), del(&t, 2, 9)])
        .await
        .unwrap();
    assert_eq!(
        stats,
        ApplyStats {
            applied: 0,
            stale: 3
        }
    );
    assert_eq!(v_of(&es, "kv", 1).await.as_deref(), Some("a"));
    assert_eq!(v_of(&es, "kv", 2).await.as_deref(), Some("b"));

    // Delete, then replayed older and equal upserts: the row stays deleted.
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
    assert_eq!(v_of(&es, "kv", 1).await, None);
    // A delete of a row never seen leaves a tombstone too.
    assert_eq!(
        sink.apply(&[kv(&t, 3, "resurrected", 9)])
            .await
            .unwrap()
            .stale,
        1
    );
    assert_eq!(v_of(&es, "kv", 3).await, None);

    // A newer upsert brings the row back.
    assert_eq!(
        sink.apply(&[kv(&t, 1, "back", 25)]).await.unwrap(),
        ApplyStats {
            applied: 1,
            stale: 0
        }
    );
    assert_eq!(v_of(&es, "kv", 1).await.as_deref(), Some("back"));

    // With a guard column, the guard value decides; a later change with the same guard
    // value still lands (external_gte), a lower one does not.
    let guarded = |v: &str, guard: i64, order: u64| {
        let mut op = kv(&t, 4, v, order);
        op.version = Version {
            guard: Some(guard),
            order,
        };
        op
    };
    sink.apply(&[guarded("first", 1_000, 30)]).await.unwrap();
    assert_eq!(
        sink.apply(&[guarded("second", 1_000, 31)]).await.unwrap(),
        ApplyStats {
            applied: 1,
            stale: 0
        }
    );
    assert_eq!(
        sink.apply(&[guarded("older", 999, 40)]).await.unwrap(),
        ApplyStats {
            applied: 0,
            stale: 1
        }
    );
    assert_eq!(v_of(&es, "kv", 4).await.as_deref(), Some("second"));
    es.drop_indices().await;
}

#[tokio::test]
async fn ops_of_one_key_in_one_batch_apply_in_order() {
    let (sink, es) = fresh("search_order").await;
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
    assert_eq!(
        sink.apply(&batch).await.unwrap(),
        ApplyStats {
            applied: 8,
            stale: 0
        }
    );
    assert_eq!(v_of(&es, "kv", 1).await.as_deref(), Some("d"));
    assert_eq!(v_of(&es, "kv", 2).await.as_deref(), Some("y"));
    assert_eq!(v_of(&es, "kv", 3).await, None);
    assert_eq!(es.ids("kv").await, vec!["1", "2"]);
    es.drop_indices().await;
}

#[tokio::test]
async fn schema_changes_are_followed() {
    let (sink, es) = fresh("search_schema").await;
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
    let (_, doc2) = es.source("evolving", "20").await.unwrap();
    assert_eq!(doc2, json!({ "id": 20, "b": 21, "c2": 22, "d": 23 }));
    let (_, doc3) = es.source("evolving", "30").await.unwrap();
    assert_eq!(doc3, json!({ "id": 30, "b": 31, "c2": 32, "d": 33 }));
    // Searchable by the new columns.
    es.ids("evolving").await;
    let (_, text) = es
        .call(
            reqwest::Method::POST,
            &format!("/{}/_search", es.index("evolving")),
            Some(json!({ "query": { "term": { "d": 33 } } })),
        )
        .await;
    assert!(text.contains("\"_id\":\"30\""), "{text}");
    // Row 1 was not written again: it keeps what it had (Elasticsearch cannot drop fields).
    let (_, doc1) = es.source("evolving", "10").await.unwrap();
    assert_eq!(doc1, json!({ "id": 10, "a": 11, "b": 12, "c": 13 }));
    es.drop_indices().await;
}

#[tokio::test]
async fn refused_writes_name_the_op_and_unreachable_servers_are_transient() {
    let (sink, es) = fresh("search_reject").await;
    // An operator created the index by hand with `v` as a number: a mapping conflict.
    let (status, text) = es
        .call(
            reqwest::Method::PUT,
            &format!("/{}", es.index("kv")),
            Some(json!({ "mappings": { "properties": { "v": { "type": "long" } } } })),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let t = kv_table("kv");
    let err = sink
        .apply(&[kv(&t, 1, "42", 1), kv(&t, 2, "not a number", 1)])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected, "{err}");
    assert_eq!(err.op_index, Some(1), "{err}");
    assert!(
        err.message.contains("`kv`") && err.message.contains("key `2`"),
        "{err}"
    );
    assert!(!err.message.contains("not a number"), "{err}");
    // The first op was written (a retry rewrites it harmlessly).
    assert_eq!(es.source("kv", "1").await.unwrap().1["v"], "42");

    // A key too long for a document id.
    let long = Arc::new(TargetTable {
        name: "long_keys".into(),
        ..(*t).clone()
    });
    let key = "k".repeat(600);
    let err = sink
        .apply(&[
            upsert(&long, vec![Value::Int(1), Value::Null], 1),
            SinkOp {
                key: vec![Value::String(key.clone())],
                ..upsert(&long, vec![Value::Int(1), Value::Null], 1)
            },
        ])
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.op_index),
        (ErrorKind::Rejected, Some(1)),
        "{err}"
    );
    es.drop_indices().await;

    let mut settings = SearchSettings::new("http://127.0.0.1:1", "x_");
    settings.connect_timeout = Duration::from_millis(500);
    let err = SearchSink::connect(settings).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn ten_thousand_ops_apply_in_bounded_requests() {
    let (sink, es) = fresh("search_10k").await;
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
    assert_eq!(es.count("big").await, 10_000);
    // Replayed, with every other row deleted in the same batch.
    let mut replay = ops.clone();
    replay.extend(
        (0..10_000)
            .step_by(2)
            .map(|i| delete(&table, vec![Value::Int(i)], 200)),
    );
    assert_eq!(
        sink.apply(&replay).await.unwrap(),
        ApplyStats {
            applied: 5_000,
            stale: 10_000
        }
    );
    assert_eq!(es.count("big").await, 5_000);
    eprintln!("10,000 matrix upserts in {took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    es.drop_indices().await;
}

#[tokio::test]
async fn composite_keys_are_one_escaped_id() {
    let (sink, es) = fresh("search_keys").await;
    let text = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Text { charset: None },
        nullable: false,
    };
    let pair = Arc::new(TargetTable {
        source: TableId::new("src", "pair"),
        name: "pair".into(),
        columns: vec![text("a"), text("b")],
        key: vec![0, 1],
    });
    let row = |a: &str, b: &str| vec![Value::String(a.into()), Value::String(b.into())];
    sink.apply(&[
        upsert(&pair, row("a|b", "c"), 1),
        upsert(&pair, row("a", "b|c"), 1),
        upsert(&pair, row("1", "x"), 1),
        delete(&pair, row("1", "x"), 2),
    ])
    .await
    .unwrap();
    assert_eq!(es.ids("pair").await, vec![r"a\|b|c", r"a|b\|c"]);
    es.drop_indices().await;
}
