//! The four target stores as the tests read them: a version's namespace in each, the tables
//! (collections, key spaces, indices) it holds, and their rows in the comparable text form
//! of [`super::Rows`], following each sink's documented representation:
//! - Redis: hash `<key_prefix><table>:<id>`, one field per non-NULL column, plus
//!   `_strata_version`; tombstones at `<key_prefix>~tomb:<table>:<id>`.
//! - MongoDB: collection `<table>` in the version's database, `_id` the key, every column a
//!   field (NULL as null), plus `_strata_version`; tombstones in `<table>__strata_tombstones`.
//! - OpenSearch: index `<index_prefix><table>`, `_id` the key id, `_source` every column.
//! - PostgreSQL: table `"<schema>"."<table>"` with the MySQL columns plus
//!   `_strata_version`; side tables `_strata_tombstones` and `_strata_shapes`.

use super::source::TableRows;
use super::{env_url, install_tls_provider, unique, Row, Rows};
use bson::{doc, Bson, Document};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// A target store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    Mongo,
    Redis,
    Search,
    Postgres,
}

pub const STORES: [Store; 4] = [Store::Mongo, Store::Redis, Store::Search, Store::Postgres];

/// The version field every store keeps beside the columns.
const VERSION_FIELD: &str = "_strata_version";

/// One version's namespace in every store.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub mongo_db: String,
    /// `None`: the shared Redis server of the environment.
    pub redis_url: Option<String>,
    pub redis_db: u8,
    pub redis_prefix: String,
    pub index_prefix: String,
    pub pg_schema: String,
    /// The stores this version writes to.
    pub stores: Vec<Store>,
}

impl Namespace {
    /// Fresh names in every store, derived from `tag` (lower case: index names must be).
    pub fn new(tag: &str, redis_db: u8) -> Namespace {
        let u = unique(&tag.to_ascii_lowercase());
        Namespace {
            mongo_db: u.clone(),
            redis_url: None,
            redis_db,
            redis_prefix: format!("{u}:"),
            index_prefix: format!("{u}_"),
            pg_schema: u,
            stores: STORES.to_vec(),
        }
    }

    /// The same namespace writing only to `stores`.
    pub fn only(mut self, stores: &[Store]) -> Namespace {
        self.stores = stores.to_vec();
        self
    }

    /// The target sections of version `version` in a config file.
    pub fn toml(&self, version: &str) -> String {
        let mut out = String::new();
        for store in &self.stores {
            let _ = match store {
                Store::Mongo => writeln!(
                    out,
                    "[versions.{version}.mongodb]\ndatabase = \"{}\"",
                    self.mongo_db
                ),
                Store::Redis => {
                    let url = self
                        .redis_url
                        .as_ref()
                        .map(|u| format!("url = \"{u}\"\n"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "[versions.{version}.redis]\ndb = {}\nkey_prefix = \"{}\"\n{url}",
                        self.redis_db, self.redis_prefix
                    )
                }
                Store::Search => writeln!(
                    out,
                    "[versions.{version}.opensearch]\nindex_prefix = \"{}\"",
                    self.index_prefix
                ),
                Store::Postgres => writeln!(
                    out,
                    "[versions.{version}.postgres]\nschema = \"{}\"",
                    self.pg_schema
                ),
            };
        }
        out
    }
}

/// Clients of the shared target servers.
pub struct Targets {
    pub mongo: mongodb::Client,
    pub http: reqwest::Client,
    pub search_url: String,
    pub pg: tokio_postgres::Client,
    pub redis_url: String,
}

impl Targets {
    pub async fn connect() -> Targets {
        install_tls_provider();
        let mongo_url = env_url("STRATA_TEST_MONGO_URL");
        let mongo = mongodb::Client::with_uri_str(&mongo_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {mongo_url}: {e}"));
        let pg_url = env_url("STRATA_TEST_POSTGRES_URL");
        let (pg, connection) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {pg_url}: {e}"));
        tokio::spawn(connection);
        pg.batch_execute("SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
            .await
            .expect("set PostgreSQL session settings");
        Targets {
            mongo,
            http: reqwest::Client::new(),
            search_url: env_url("STRATA_TEST_OPENSEARCH_URL"),
            pg,
            redis_url: env_url("STRATA_TEST_REDIS_URL"),
        }
    }

    // ---- Redis ------------------------------------------------------------------------

    pub async fn redis(&self, ns: &Namespace) -> redis::aio::MultiplexedConnection {
        let url = ns.redis_url.as_deref().unwrap_or(&self.redis_url);
        let client = redis::Client::open(format!("{url}/{}", ns.redis_db))
            .unwrap_or_else(|e| panic!("bad Redis URL {url}: {e}"));
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis {url}: {e}"))
    }

    /// Every key matching `pattern` (SCAN, never KEYS).
    pub async fn redis_keys(&self, ns: &Namespace, pattern: &str) -> Vec<String> {
        let mut con = self.redis(ns).await;
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// The row hashes of `table` by id, with every field (the version field too).
    pub async fn redis_hashes(
        &self,
        ns: &Namespace,
        table: &str,
    ) -> BTreeMap<String, HashMap<String, Vec<u8>>> {
        let prefix = format!("{}{table}:", ns.redis_prefix);
        let keys = self.redis_keys(ns, &format!("{prefix}*")).await;
        let mut con = self.redis(ns).await;
        let mut out = BTreeMap::new();
        for key in keys {
            let hash: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut con)
                .await
                .expect("HGETALL");
            out.insert(key[prefix.len()..].to_owned(), hash);
        }
        out
    }

    // ---- MongoDB ----------------------------------------------------------------------

    pub fn mongo_db(&self, ns: &Namespace) -> mongodb::Database {
        self.mongo.database(&ns.mongo_db)
    }

    /// The documents of `table`'s collection by `_id` text, whole.
    pub async fn mongo_docs(&self, ns: &Namespace, table: &str) -> BTreeMap<String, Document> {
        let coll = self.mongo_db(ns).collection::<Document>(table);
        let mut cursor = coll.find(doc! {}).await.expect("find");
        let mut out = BTreeMap::new();
        while cursor.advance().await.expect("cursor") {
            let doc = cursor.deserialize_current().expect("document");
            let id = doc.get("_id").map(bson_text).unwrap_or_default();
            out.insert(id, doc);
        }
        out
    }

    // ---- OpenSearch -------------------------------------------------------------------

    pub fn index(&self, ns: &Namespace, table: &str) -> String {
        format!("{}{table}", ns.index_prefix).to_ascii_lowercase()
    }

    /// The search response for every document of `table`'s index (after a refresh), as
    /// text (to check exact digits) — `None` when the index does not exist.
    pub async fn search_text(&self, ns: &Namespace, table: &str) -> Option<String> {
        let index = self.index(ns, table);
        let base = &self.search_url;
        let refresh = self
            .http
            .post(format!("{base}/{index}/_refresh"))
            .send()
            .await
            .expect("refresh");
        if refresh.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        let response = self
            .http
            .post(format!("{base}/{index}/_search?size=10000&version=true"))
            .json(&serde_json::json!({"query": {"match_all": {}}}))
            .send()
            .await
            .expect("search");
        let status = response.status();
        let text = response.text().await.expect("search body");
        assert!(status.is_success(), "search {index}: {status} {text}");
        Some(text)
    }

    /// `_source` of every document of `table`'s index, by `_id`, plus `_version`.
    pub async fn search_docs(
        &self,
        ns: &Namespace,
        table: &str,
    ) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let Some(text) = self.search_text(ns, table).await else {
            return BTreeMap::new();
        };
        let json: serde_json::Value = serde_json::from_str(&text).expect("search JSON");
        let hits = json["hits"]["hits"].as_array().cloned().unwrap_or_default();
        let total = json["hits"]["total"]["value"].as_u64().unwrap_or(0);
        assert_eq!(total as usize, hits.len(), "more hits than one page");
        hits.into_iter()
            .map(|hit| {
                let id = hit["_id"].as_str().expect("_id").to_owned();
                let mut source = hit["_source"].as_object().cloned().unwrap_or_default();
                // Not a column name any table here has: the document's own version.
                source.insert("_version".into(), hit["_version"].clone());
                (id, source)
            })
            .collect()
    }

    /// The mapped fields of `table`'s index.
    pub async fn search_fields(&self, ns: &Namespace, table: &str) -> BTreeSet<String> {
        let index = self.index(ns, table);
        let json: serde_json::Value = self
            .http
            .get(format!("{}/{index}/_mapping", self.search_url))
            .send()
            .await
            .expect("mapping")
            .json()
            .await
            .expect("mapping JSON");
        json[&index]["mappings"]["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    // ---- PostgreSQL -------------------------------------------------------------------

    /// The columns of `"<schema>"."<table>"`, in order (the version column too).
    pub async fn pg_columns(&self, ns: &Namespace, table: &str) -> Vec<String> {
        self.pg
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&ns.pg_schema, &table],
            )
            .await
            .expect("columns")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Every row of the table, each column read as PostgreSQL's text form (`col::text`),
    /// by the text of `key`; NULL columns absent.
    pub async fn pg_text_rows(&self, ns: &Namespace, table: &str, key: &str) -> Rows {
        let columns = self.pg_columns(ns, table).await;
        if columns.is_empty() {
            return Rows::new();
        }
        let select: Vec<String> = columns.iter().map(|c| format!("\"{c}\"::text")).collect();
        let statement = format!(
            "SELECT {} FROM \"{}\".\"{table}\"",
            select.join(", "),
            ns.pg_schema
        );
        let rows = self
            .pg
            .query(&statement, &[])
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        let mut out = Rows::new();
        for row in rows {
            let mut fields = Row::new();
            for (i, column) in columns.iter().enumerate() {
                if let Some(text) = row.get::<_, Option<String>>(i) {
                    fields.insert(column.clone(), text);
                }
            }
            let id = fields.get(key).cloned().unwrap_or_default();
            out.insert(id, fields);
        }
        out
    }

    // ---- Every store ------------------------------------------------------------------

    /// The tables `ns` holds in `store` (strata's own side tables and tombstones left out).
    pub async fn tables(&self, store: Store, ns: &Namespace) -> BTreeSet<String> {
        match store {
            Store::Redis => self
                .redis_keys(ns, &format!("{}*", ns.redis_prefix))
                .await
                .iter()
                .filter_map(|k| {
                    let rest = &k[ns.redis_prefix.len()..];
                    (!rest.starts_with("~tomb:"))
                        .then(|| rest.split_once(':').map(|(t, _)| t.to_owned()))
                        .flatten()
                })
                .collect(),
            Store::Mongo => self
                .mongo_db(ns)
                .list_collection_names()
                .await
                .expect("list collections")
                .into_iter()
                .filter(|c| !c.ends_with("__strata_tombstones"))
                .collect(),
            Store::Search => {
                let json: serde_json::Value = self
                    .http
                    .get(format!("{}/{}*/_mapping", self.search_url, ns.index_prefix))
                    .send()
                    .await
                    .expect("list indices")
                    .json()
                    .await
                    .expect("indices JSON");
                json.as_object()
                    .map(|m| {
                        m.keys()
                            .map(|k| k[ns.index_prefix.len()..].to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Store::Postgres => self
                .pg
                .query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                    &[&ns.pg_schema],
                )
                .await
                .expect("list tables")
                .iter()
                .map(|r| r.get::<_, String>(0))
                .filter(|t| t != "_strata_tombstones" && t != "_strata_shapes")
                .collect(),
        }
    }

    /// `table`'s rows in `store`, in the comparable text form, by key id. Integers,
    /// decimals and text compare with MySQL's text form (the simple tables of the
    /// replication tests; the type matrix has its own exact comparison in `matrix`).
    pub async fn rows(&self, store: Store, ns: &Namespace, table: &str) -> Rows {
        self.rows_with(store, ns, table, false).await
    }

    /// Like [`Targets::rows`], with each row's stored version too (`_strata_version`; in
    /// OpenSearch the document's `_version`), to tell a rewrite from no write at all.
    pub async fn versioned_rows(&self, store: Store, ns: &Namespace, table: &str) -> Rows {
        self.rows_with(store, ns, table, true).await
    }

    async fn rows_with(&self, store: Store, ns: &Namespace, table: &str, versions: bool) -> Rows {
        let keep = |k: &str| versions || k != VERSION_FIELD;
        match store {
            Store::Redis => self
                .redis_hashes(ns, table)
                .await
                .into_iter()
                .map(|(id, hash)| {
                    let row = hash
                        .into_iter()
                        .filter(|(k, _)| keep(k))
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                        .collect();
                    (id, row)
                })
                .collect(),
            Store::Mongo => self
                .mongo_docs(ns, table)
                .await
                .into_iter()
                .map(|(id, doc)| {
                    let row = doc
                        .iter()
                        .filter(|(k, v)| *k != "_id" && keep(k) && !matches!(v, Bson::Null))
                        .map(|(k, v)| (k.clone(), bson_text(v)))
                        .collect();
                    (id, row)
                })
                .collect(),
            Store::Search => self
                .search_docs(ns, table)
                .await
                .into_iter()
                .map(|(id, source)| {
                    let row = source
                        .into_iter()
                        .filter(|(k, v)| !v.is_null() && (versions || k != "_version"))
                        .map(|(k, v)| {
                            let text = match v {
                                serde_json::Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, text)
                        })
                        .collect();
                    (id, row)
                })
                .collect(),
            Store::Postgres => {
                let mut rows = self.pg_text_rows(ns, table, "id").await;
                if !versions {
                    for row in rows.values_mut() {
                        row.remove(VERSION_FIELD);
                    }
                }
                rows
            }
        }
    }

    /// How many rows `table` has in `store` (without reading them).
    pub async fn count(&self, store: Store, ns: &Namespace, table: &str) -> u64 {
        match store {
            Store::Redis => self
                .redis_keys(ns, &format!("{}{table}:*", ns.redis_prefix))
                .await
                .len() as u64,
            Store::Mongo => self
                .mongo_db(ns)
                .collection::<Document>(table)
                .count_documents(doc! {})
                .await
                .expect("count documents"),
            Store::Search => {
                let index = self.index(ns, table);
                let base = &self.search_url;
                let _ = self
                    .http
                    .post(format!("{base}/{index}/_refresh"))
                    .send()
                    .await;
                let json: serde_json::Value = self
                    .http
                    .get(format!("{base}/{index}/_count"))
                    .send()
                    .await
                    .expect("count")
                    .json()
                    .await
                    .expect("count JSON");
                json["count"].as_u64().unwrap_or(0)
            }
            Store::Postgres => {
                let statement = format!("SELECT count(*) FROM \"{}\".\"{table}\"", ns.pg_schema);
                let row = self
                    .pg
                    .query_one(&statement, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
                row.get::<_, i64>(0) as u64
            }
        }
    }

    /// Compares every store of `ns` with `expected` (rows by table): each store holds
    /// exactly the expected tables' rows (a table may be absent when it has no rows) and
    /// no other table. Returns one line per difference.
    pub async fn differences(&self, ns: &Namespace, expected: &TableRows) -> Vec<String> {
        let mut problems = Vec::new();
        for &store in &ns.stores {
            let tables = self.tables(store, ns).await;
            for extra in tables.iter().filter(|t| !expected.contains_key(*t)) {
                problems.push(format!("{store:?}: unexpected table {extra}"));
            }
            for (table, want) in expected {
                let got = self.rows(store, ns, table).await;
                problems.extend(
                    row_differences(want, &got)
                        .into_iter()
                        .map(|d| format!("{store:?} {table}: {d}")),
                );
            }
        }
        problems
    }

    /// Fails the test with every difference between the stores of `ns` and `expected`.
    pub async fn assert_equal(&self, ns: &Namespace, expected: &TableRows) {
        let problems = self.differences(ns, expected).await;
        assert!(
            problems.is_empty(),
            "targets differ from the source ({} problems):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    /// Every store's rows of `tables` with their versions, keyed `<store>/<table>`: equal
    /// snapshots mean nothing was rewritten in between.
    pub async fn snapshot(&self, ns: &Namespace, tables: &[&str]) -> TableRows {
        let mut out = TableRows::new();
        for &store in &ns.stores {
            for table in tables {
                out.insert(
                    format!("{store:?}/{table}"),
                    self.versioned_rows(store, ns, table).await,
                );
            }
        }
        out
    }

    /// Removes `ns` from every store (best effort; names are unique, this only saves room).
    pub async fn cleanup(&self, ns: &Namespace) {
        let _ = self.mongo_db(ns).drop().await;
        let keys = self.redis_keys(ns, &format!("{}*", ns.redis_prefix)).await;
        if !keys.is_empty() {
            let mut con = self.redis(ns).await;
            for chunk in keys.chunks(500) {
                let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query_async(&mut con).await;
            }
        }
        for table in self.tables(Store::Search, ns).await {
            let index = self.index(ns, &table);
            let _ = self
                .http
                .delete(format!("{}/{index}", self.search_url))
                .send()
                .await;
        }
        let _ = self
            .pg
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                ns.pg_schema
            ))
            .await;
    }
}

/// A BSON value's text: numbers and decimals as written, strings as they are.
pub fn bson_text(v: &Bson) -> String {
    match v {
        Bson::String(s) => s.clone(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(d) => d.to_string(),
        Bson::Decimal128(d) => d.to_string(),
        other => other.to_string(),
    }
}

/// One line per row that is missing, extra or different in `got`.
pub fn row_differences(want: &Rows, got: &Rows) -> Vec<String> {
    let mut out = Vec::new();
    for (id, row) in want {
        match got.get(id) {
            None => out.push(format!("row {id} missing (want {row:?})")),
            Some(g) if g != row => out.push(format!("row {id}: want {row:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for (id, row) in got {
        if !want.contains_key(id) {
            out.push(format!("row {id} should not be there (got {row:?})"));
        }
    }
    out
}
