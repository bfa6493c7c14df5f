//! Reading documents back from MongoDB for `strata verify` (see
//! [`strata_core::TargetReader`]).
//!
//! Expected documents are built by the sink's own encoder ([`super::encode`]); both sides'
//! fields (every field but `_id` and the version field) are compared as canonical Extended
//! JSON. Ids are the canonical Extended JSON of `_id`. A scan walks the collection's `_id`s
//! with one server-side cursor kept between pages; its key parts are the `_id` values as text (numbers as digits, binaries as hex, dates as
//! `YYYY-MM-DDTHH:MM:SS.mmmZ`), one per key column.

use super::encode::{document_id, row_document, VERSION_FIELD};
use super::failure::{driver_error, timed_out, SINK};
use super::{redacted_url, MongoSettings};
use async_trait::async_trait;
use bson::{doc, Bson, Document};
use futures_util::TryStreamExt;
use mongodb::options::ClientOptions;
use mongodb::{Client, Cursor, Database};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use strata_core::readback::parse_sortable;
use strata_core::{
    DateTime, ErrorKind, ScanPage, SinkError, StoredKey, StoredRow, StoredVersion, TargetReader,
    TargetTable, Value,
};

/// Reads a version's documents back from MongoDB.
pub struct MongoReader {
    db: Database,
    timeout: Duration,
    /// Open scans, by the token their pages carry.
    scans: Mutex<HashMap<u64, Cursor<Document>>>,
    next_scan: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MongoReader {
    /// Connects with the sink's settings (URL, database).
    pub async fn connect(settings: MongoSettings) -> Result<MongoReader, SinkError> {
        let mut options = ClientOptions::parse(&settings.url).await.map_err(|e| {
            SinkError::new(
                SINK,
                ErrorKind::Config,
                format!(
                    "the MongoDB url `{}` is not valid: {e}",
                    redacted_url(&settings.url)
                ),
            )
        })?;
        options
            .app_name
            .get_or_insert_with(|| "strata-verify".to_owned());
        options
            .server_selection_timeout
            .get_or_insert(settings.connect_timeout);
        options
            .connect_timeout
            .get_or_insert(settings.connect_timeout);
        let client = Client::with_options(options)
            .map_err(|e| driver_error("configuring the MongoDB client", e))?;
        Ok(MongoReader {
            db: client.database(&settings.database),
            timeout: settings.request_timeout,
            scans: Mutex::default(),
            next_scan: AtomicU64::new(0),
        })
    }

    async fn find(
        &self,
        table: &TargetTable,
        filter: Document,
    ) -> Result<Vec<Document>, SinkError> {
        let doing = format!("reading documents of collection {}", table.name);
        let collection = self.db.collection::<Document>(&table.name);
        let find = collection.find(filter);
        let read = async {
            let cursor = find.await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(docs)) => Ok(docs),
            Ok(Err(e)) => Err(driver_error(&doing, e)),
            Err(_) => Err(timed_out(&doing, self.timeout)),
        }
    }
}

/// A BSON value as canonical Extended JSON text (type-exact: `{"$numberInt":"7"}`).
fn canonical(value: &Bson) -> String {
    value.clone().into_canonical_extjson().to_string()
}

/// A document's fields other than `_id` and the version, as canonical bytes.
fn fields_of(document: &Document) -> BTreeMap<String, Vec<u8>> {
    document
        .iter()
        .filter(|(k, _)| k.as_str() != "_id" && k.as_str() != VERSION_FIELD)
        .map(|(k, v)| (k.clone(), canonical(v).into_bytes()))
        .collect()
}

/// An `_id` value as key text (see the module documentation).
fn key_text(value: &Bson) -> String {
    match value {
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        Bson::Double(d) => d.to_string(),
        Bson::Decimal128(d) => d.to_string(),
        Bson::String(s) => s.clone(),
        Bson::Binary(b) => hex::encode(&b.bytes),
        Bson::DateTime(d) => format!(
            "{}Z",
            DateTime::from_unix_micros(d.timestamp_millis().saturating_mul(1000))
        ),
        Bson::Boolean(b) => b.to_string(),
        other => canonical(other),
    }
}

fn key_parts(id: &Bson) -> Vec<String> {
    match id {
        Bson::Document(d) => d.values().map(key_text).collect(),
        other => vec![key_text(other)],
    }
}

#[async_trait]
impl TargetReader for MongoReader {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn expected(
        &self,
        table: &TargetTable,
        rows: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        Ok(rows
            .iter()
            .map(|row| {
                let key: Vec<Value> = table.key.iter().map(|&i| row[i].clone()).collect();
                let id = document_id(table, &key);
                let document = row_document(table, id.clone(), row, String::new());
                StoredRow {
                    id: canonical(&id),
                    fields: fields_of(&document),
                    version: None,
                }
            })
            .collect())
    }

    async fn fetch(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        let mut out = Vec::with_capacity(keys.len());
        for group in keys.chunks(500) {
            let ids: Vec<Bson> = group.iter().map(|k| document_id(table, k)).collect();
            let docs = self.find(table, doc! { "_id": { "$in": ids } }).await?;
            for document in docs {
                let Some(id) = document.get("_id") else {
                    continue;
                };
                let version = document
                    .get_str(VERSION_FIELD)
                    .ok()
                    .and_then(parse_sortable)
                    .map(StoredVersion::Full);
                out.push(StoredRow {
                    id: canonical(id),
                    fields: fields_of(&document),
                    version,
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
        let doing = format!("scanning collection {}", table.name);
        let limit = limit.max(1);
        // One server-side cursor per scan, kept between pages: a sort with a skip or a
        // range per page would make the server walk the collection once per page.
        let (token, mut docs) = match cursor {
            None => {
                let collection = self.db.collection::<Document>(&table.name);
                let find = collection
                    .find(doc! {})
                    .projection(doc! { "_id": 1 })
                    .batch_size(u32::try_from(limit).unwrap_or(u32::MAX));
                let docs = match tokio::time::timeout(self.timeout, find).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(driver_error(&doing, e)),
                    Err(_) => return Err(timed_out(&doing, self.timeout)),
                };
                (self.next_scan.fetch_add(1, Ordering::Relaxed), docs)
            }
            Some(text) => {
                let token: u64 = text.parse().map_err(|_| {
                    SinkError::new(
                        SINK,
                        ErrorKind::Internal,
                        "a scan cursor that is not strata's",
                    )
                })?;
                let docs = lock(&self.scans).remove(&token).ok_or_else(|| {
                    SinkError::new(SINK, ErrorKind::Internal, "a scan cursor that expired")
                })?;
                (token, docs)
            }
        };
        let mut keys = Vec::with_capacity(limit);
        let mut exhausted = false;
        while keys.len() < limit {
            match tokio::time::timeout(self.timeout, docs.try_next()).await {
                Ok(Ok(Some(d))) => {
                    if let Some(id) = d.get("_id") {
                        keys.push(StoredKey {
                            id: canonical(id),
                            parts: key_parts(id),
                        });
                    }
                }
                Ok(Ok(None)) => {
                    exhausted = true;
                    break;
                }
                Ok(Err(e)) => return Err(driver_error(&doing, e)),
                Err(_) => return Err(timed_out(&doing, self.timeout)),
            }
        }
        let next = if exhausted {
            None
        } else {
            lock(&self.scans).insert(token, docs);
            Some(token.to_string())
        };
        Ok(ScanPage { keys, next })
    }
}
