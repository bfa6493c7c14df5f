//! Reading documents back from Elasticsearch/OpenSearch for `strata verify` (see
//! [`strata_core::TargetReader`]).
//!
//! Expected documents are the sink's own `_source` text ([`super::encode::document`]);
//! both sides are parsed as JSON and each field is compared as its JSON text. Stored
//! documents are read with `_mget` (real time, no refresh needed); a scan refreshes the
//! index and walks it with a scroll (no sort on `_id`, which Elasticsearch 8 refuses).
//! Versions are the external `_version` ([`strata_core::Version::as_external`]). Ids are
//! [`strata_core::SinkOp::id`] texts, split back into key parts by a scan.

use super::client::{status_error, Http, SINK};
use super::encode::document;
use super::mapping::index_name;
use super::SearchSettings;
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;
use strata_core::readback::split_key_id;
use strata_core::value::key_id;
use strata_core::{
    ErrorKind, ScanPage, SinkError, StoredKey, StoredRow, StoredVersion, TargetReader, TargetTable,
    Value,
};

/// How long a scan's scroll context lives between two pages.
const SCROLL_KEEP_ALIVE: &str = "5m";

/// Reads a version's documents back from Elasticsearch/OpenSearch.
pub struct SearchReader {
    http: Http,
    index_prefix: String,
}

impl SearchReader {
    /// Builds the client with the sink's settings (URL, credentials, index prefix).
    pub async fn connect(settings: SearchSettings) -> Result<SearchReader, SinkError> {
        let reader = SearchReader {
            http: Http::new(&settings)?,
            index_prefix: settings.index_prefix,
        };
        let doing = "checking the search cluster";
        let answer = reader.http.send(Method::GET, "/", None, doing).await?;
        if !answer.status.is_success() {
            return Err(status_error(doing, &answer));
        }
        Ok(reader)
    }

    fn index(&self, table: &TargetTable) -> Result<String, SinkError> {
        index_name(&self.index_prefix, &table.name)
            .map_err(|problem| SinkError::new(SINK, ErrorKind::Config, problem))
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        doing: &str,
    ) -> Result<super::client::Answer, SinkError> {
        self.http
            .send(
                Method::POST,
                path,
                Some(("application/json", body.to_string().into_bytes())),
                doing,
            )
            .await
    }
}

/// A `_source` object's fields as JSON text.
fn fields_of(source: &serde_json::Value) -> BTreeMap<String, Vec<u8>> {
    match source {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string().into_bytes()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn missing_index(answer: &super::client::Answer) -> bool {
    answer.status == StatusCode::NOT_FOUND
}

#[async_trait]
impl TargetReader for SearchReader {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn expected(
        &self,
        table: &TargetTable,
        rows: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        rows.iter()
            .map(|row| {
                let key: Vec<Value> = table.key.iter().map(|&i| row[i].clone()).collect();
                let source: serde_json::Value = serde_json::from_str(&document(table, row))
                    .map_err(|e| {
                        SinkError::new(
                            SINK,
                            ErrorKind::Internal,
                            format!("a document of table {} is not JSON: {e}", table.name),
                        )
                    })?;
                Ok(StoredRow {
                    id: key_id(&key),
                    fields: fields_of(&source),
                    version: None,
                })
            })
            .collect()
    }

    async fn fetch(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        let index = self.index(table)?;
        let mut out = Vec::with_capacity(keys.len());
        for group in keys.chunks(1_000) {
            let ids: Vec<String> = group.iter().map(|k| key_id(k)).collect();
            let doing = format!("reading documents of index `{index}`");
            let answer = self
                .post(
                    &format!("/{index}/_mget"),
                    serde_json::json!({ "ids": ids }),
                    &doing,
                )
                .await?;
            if missing_index(&answer) {
                return Ok(Vec::new());
            }
            if !answer.status.is_success() {
                return Err(status_error(&doing, &answer));
            }
            let body = answer.json();
            let docs = body
                .get("docs")
                .and_then(|d| d.as_array())
                .cloned()
                .unwrap_or_default();
            for doc in docs {
                if doc.get("found").and_then(|f| f.as_bool()) != Some(true) {
                    continue;
                }
                let Some(id) = doc.get("_id").and_then(|i| i.as_str()) else {
                    continue;
                };
                out.push(StoredRow {
                    id: id.to_owned(),
                    fields: fields_of(doc.get("_source").unwrap_or(&serde_json::Value::Null)),
                    version: doc
                        .get("_version")
                        .and_then(|v| v.as_i64())
                        .map(StoredVersion::External),
                });
            }
        }
        Ok(out)
    }

    async fn scan(
        &self,
        table: &TargetTable,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage, SinkError> {
        let index = self.index(table)?;
        let doing = format!("scanning index `{index}`");
        let answer = match cursor {
            None => {
                // Documents written in the last refresh interval are not searchable yet.
                let refresh = self
                    .http
                    .send(Method::POST, &format!("/{index}/_refresh"), None, &doing)
                    .await?;
                if missing_index(&refresh) {
                    return Ok(ScanPage::default());
                }
                self.post(
                    &format!("/{index}/_search?scroll={SCROLL_KEEP_ALIVE}"),
                    serde_json::json!({ "size": limit.max(1), "sort": ["_doc"], "_source": false }),
                    &doing,
                )
                .await?
            }
            Some(scroll_id) => {
                self.post(
                    "/_search/scroll",
                    serde_json::json!({ "scroll": SCROLL_KEEP_ALIVE, "scroll_id": scroll_id }),
                    &doing,
                )
                .await?
            }
        };
        if missing_index(&answer) && cursor.is_none() {
            return Ok(ScanPage::default());
        }
        if !answer.status.is_success() {
            return Err(status_error(&doing, &answer));
        }
        let body = answer.json();
        let hits = body
            .pointer("/hits/hits")
            .and_then(|h| h.as_array())
            .cloned()
            .unwrap_or_default();
        let scroll_id = body
            .get("_scroll_id")
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        let keys: Vec<StoredKey> = hits
            .iter()
            .filter_map(|h| h.get("_id").and_then(|i| i.as_str()))
            .map(|id| StoredKey {
                id: id.to_owned(),
                parts: split_key_id(id),
            })
            .collect();
        if keys.is_empty() {
            if let Some(id) = scroll_id {
                // Best effort: an abandoned scroll context expires on its own.
                let _ = self
                    .http
                    .send(
                        Method::DELETE,
                        "/_search/scroll",
                        Some((
                            "application/json",
                            serde_json::json!({ "scroll_id": id })
                                .to_string()
                                .into_bytes(),
                        )),
                        &doing,
                    )
                    .await;
            }
            return Ok(ScanPage::default());
        }
        Ok(ScanPage {
            keys,
            next: scroll_id,
        })
    }
}
