//! Elasticsearch/OpenSearch sink: one index per table, `_bulk` writes guarded by external
//! versions.
//!
//! # Representation
//! - **Index**: `<index_prefix><table>` in lower case (e.g. `jobfirst_future_users`),
//!   created on first write with an explicit mapping (`dynamic: strict`) from the columns,
//!   and `index.gc_deletes` = [`SearchSettings::tombstone_ttl`] so delete tombstones
//!   last the retention window (the setting is re-applied to an index that already exists).
//!   Two tables whose names differ only in case would share an index: refused as a
//!   configuration error.
//! - **`_id`**: [`strata_core::SinkOp::id`]: the key's text, composite keys joined by `|`
//!   (`\` and `|` escaped); at most 512 bytes.
//! - **Document**: every column, full documents only (`index`, never partial updates).
//! - **Version**: the document's own `_version`, set with `version=<Version::as_external()>`
//!   and `version_type=external` (binlog order, unique per change: an equal version is a
//!   replay, answered 409 and counted stale) or `external_gte` when the table has a guard
//!   column (the external number is the guard value alone, which several changes can share;
//!   a replay with the same guard value is then accepted and rewrites the row with the
//!   content of that change — with in-order delivery per row the newest change is applied
//!   last, but a late replay of an older change with the same guard value can win until the
//!   next change of the row). A 409 is a stale write: counted, skipped.
//! - **Tombstone**: Elasticsearch's own versioned delete tombstone (kept `gc_deletes`);
//!   deleted documents are gone from searches and gets; nothing extra is stored.
//! - **Durability**: `Ok` after `_bulk` answered (the translog is synced per request by
//!   default); no refresh is forced, so a write is visible to searches after the next
//!   refresh (`refresh_interval`, 1 s by default).
//!
//! # Types (MySQL → mapping, `_source` value)
//! | MySQL | mapping | `_source` |
//! |---|---|---|
//! | TINYINT…BIGINT, unsigned below 64 bits | `long` | number |
//! | BIGINT UNSIGNED | `unsigned_long` | number, up to 18446744073709551615 |
//! | FLOAT / DOUBLE | `float` / `double` | shortest decimal form (FLOAT 0.1 → `0.1`) |
//! | DECIMAL | `keyword` | string, exact digits and scale (`"-12.340"`) |
//! | DATE | `date` (`strict_date_optional_time\|\|epoch_millis`, `ignore_malformed`) | `"2024-02-29"` |
//! | DATETIME | `date` (as above) | `"2024-01-02T03:04:05.123456"` (no zone: read as UTC) |
//! | TIMESTAMP | `date` (as above) | `"2024-01-02T03:04:05.123456Z"` |
//! | zero dates | (not indexed: `ignore_malformed`) | `"0000-00-00"`, `"0000-00-00T00:00:00"`, `"0000-00-00T00:00:00Z"` |
//! | TIME | `keyword` | `"-838:59:58.999999"` |
//! | YEAR | `integer` | number |
//! | CHAR/VARCHAR/TEXT | `text` + `keyword` sub-field (`ignore_above` 256) | string |
//! | BINARY/VARBINARY/BLOB | `binary` | base64 |
//! | ENUM / SET | `keyword` | member name / array of member names |
//! | BIT(64) / BIT(n < 64) | `unsigned_long` / `long` | number |
//! | JSON | `object`, `enabled: false` (kept, not indexed: any JSON value, never a mapping conflict) | the JSON itself, numbers with their exact digits (`2.50` stays `2.50`); text that is not valid JSON → string |
//! | GEOMETRY | `{srid: long, wkb: binary}` | `{"srid": 4326, "wkb": "<base64 WKB>"}` |
//! | NULL | — | `null` |
//!
//! Dates are indexed to the millisecond (`date`); `_source` keeps the microseconds.
//!
//! # Schema changes
//! New columns (added, or the new name of a renamed one) are added with `PUT _mapping`
//! before the first document that has them. Elasticsearch cannot remove a field from a
//! mapping: dropped columns stay mapped, and documents written before the change keep them
//! in `_source` until the row is written again. Fields that already exist keep their
//! mapping (also one an operator created by hand); a value that mapping cannot take is a
//! `Rejected` error naming the table, the key and the reason (a changed column type needs
//! a reindex).

mod bulk;
mod client;
mod encode;
mod mapping;
mod read;

pub use read::SearchReader;

use client::{status_error, Http, SINK};
use reqwest::{Method, StatusCode};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use strata_core::{ApplyStats, ErrorKind, Sink, SinkError, SinkOp, SinkOpKind, TargetTable};

/// Settings of an Elasticsearch/OpenSearch sink.
#[derive(Clone)]
pub struct SearchSettings {
    /// Base URL of the cluster, e.g. `https://es.internal:9200`.
    pub url: String,
    /// Prefix of every index this version writes, e.g. `jobfirst_future_` (indices are
    /// `<index_prefix><table>`, lower case).
    pub index_prefix: String,
    /// Basic-auth user, when the cluster has security enabled.
    pub username: Option<String>,
    /// Basic-auth password (never logged; `Debug` hides it).
    pub password: Option<String>,
    /// How long delete tombstones last (`index.gc_deletes`): within this window a replayed
    /// older write cannot bring a deleted document back. Default 24 h.
    pub tombstone_ttl: Duration,
    /// Time to establish a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Time one request may take. Default 60 s.
    pub request_timeout: Duration,
    /// Largest `_bulk` body; bigger batches are sent as several requests. Default 8 MiB
    /// (Elasticsearch's `http.max_content_length` is 100 MiB by default).
    pub max_bulk_bytes: usize,
}

impl SearchSettings {
    /// Default tombstone retention.
    pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default largest bulk body.
    pub const DEFAULT_MAX_BULK_BYTES: usize = 8 * 1024 * 1024;

    /// Settings for the cluster at `url` and indices named `<index_prefix><table>`, with
    /// defaults for everything else.
    pub fn new(url: impl Into<String>, index_prefix: impl Into<String>) -> Self {
        SearchSettings {
            url: url.into(),
            index_prefix: index_prefix.into(),
            username: None,
            password: None,
            tombstone_ttl: Self::DEFAULT_TOMBSTONE_TTL,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_bulk_bytes: Self::DEFAULT_MAX_BULK_BYTES,
        }
    }
}

impl std::fmt::Debug for SearchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchSettings")
            .field("url", &self.url)
            .field("index_prefix", &self.index_prefix)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_bulk_bytes", &self.max_bulk_bytes)
            .finish()
    }
}

/// What the sink knows of one index.
struct IndexState {
    /// The table written to it (two tables must not share an index).
    table: String,
    /// Fields known to be mapped.
    fields: HashSet<String>,
}

/// An Elasticsearch/OpenSearch target (see the module documentation for what it writes).
pub struct SearchSink {
    http: Http,
    settings: SearchSettings,
    indices: Mutex<HashMap<String, IndexState>>,
}

impl std::fmt::Debug for SearchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchSink")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain inserts only: the map stays consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SearchSink {
    /// Builds the client and checks that the cluster answers (and accepts the credentials).
    pub async fn connect(settings: SearchSettings) -> Result<SearchSink, SinkError> {
        if settings.tombstone_ttl < Duration::from_secs(1) {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                "tombstone_ttl must be at least 1 second",
            ));
        }
        let sink = SearchSink {
            http: Http::new(&settings)?,
            settings,
            indices: Mutex::default(),
        };
        sink.check().await?;
        Ok(sink)
    }

    /// Makes sure `table`'s index exists with a mapping for every column; returns its name.
    async fn ensure_index(&self, batch: &[SinkOp], op_index: usize) -> Result<String, SinkError> {
        let table: &TargetTable = &batch[op_index].table;
        let index = mapping::index_name(&self.settings.index_prefix, &table.name)
            .map_err(|problem| SinkError::new(SINK, ErrorKind::Config, problem).at_op(op_index))?;
        let known = {
            let indices = locked(&self.indices);
            match indices.get(&index) {
                Some(state) if state.table != table.name => {
                    return Err(SinkError::new(
                        SINK,
                        ErrorKind::Config,
                        format!(
                            "tables `{}` and `{}` would both write index `{index}`: route one \
                             to another name",
                            state.table, table.name
                        ),
                    )
                    .at_op(op_index));
                }
                Some(state) => Some(missing_columns(table, &state.fields)),
                None => None,
            }
        };
        let missing = match known {
            Some(missing) => missing,
            None => {
                let fields = self.create_or_open(&index, table, op_index, batch).await?;
                let missing = missing_columns(table, &fields);
                locked(&self.indices)
                    .entry(index.clone())
                    .or_insert(IndexState {
                        table: table.name.clone(),
                        fields,
                    });
                missing
            }
        };
        if !missing.is_empty() {
            let columns = table.columns.iter().filter(|c| missing.contains(&c.name));
            let body = serde_json::json!({ "properties": mapping::properties(columns) });
            let doing = format!("adding fields {missing:?} to index `{index}`");
            let answer = self
                .send(Method::PUT, &format!("/{index}/_mapping"), &body, &doing)
                .await?;
            if !answer.status.is_success() {
                let err = status_error(&doing, &answer);
                return Err(match err.kind {
                    ErrorKind::Rejected => bulk::rejected(batch, op_index, &err.message),
                    _ => err,
                });
            }
            tracing::info!(index = %index, fields = missing.len(), "mapped new columns");
            if let Some(state) = locked(&self.indices).get_mut(&index) {
                state.fields.extend(missing);
            }
        }
        Ok(index)
    }

    /// Creates the index with the table's mapping, or, when it exists, applies the
    /// tombstone retention to it; returns the fields it maps.
    async fn create_or_open(
        &self,
        index: &str,
        table: &TargetTable,
        op_index: usize,
        batch: &[SinkOp],
    ) -> Result<HashSet<String>, SinkError> {
        let doing = format!("creating index `{index}`");
        let body = mapping::create_body(table, self.settings.tombstone_ttl);
        let answer = self
            .send(Method::PUT, &format!("/{index}"), &body, &doing)
            .await?;
        if answer.status.is_success() {
            tracing::info!(index = %index, "created index");
            return Ok(table.columns.iter().map(|c| c.name.clone()).collect());
        }
        let exists = answer.status == StatusCode::BAD_REQUEST
            && answer
                .json()
                .pointer("/error/type")
                .and_then(|t| t.as_str())
                == Some("resource_already_exists_exception");
        if !exists {
            let err = status_error(&doing, &answer);
            return Err(match err.kind {
                ErrorKind::Rejected => bulk::rejected(batch, op_index, &err.message),
                _ => err,
            });
        }
        let doing = format!("setting the tombstone retention of index `{index}`");
        let settings = serde_json::json!({
            "index": { "gc_deletes": mapping::gc_deletes(self.settings.tombstone_ttl) }
        });
        let answer = self
            .send(
                Method::PUT,
                &format!("/{index}/_settings"),
                &settings,
                &doing,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(&doing, &answer));
        }
        let doing = format!("reading the mapping of index `{index}`");
        let answer = self
            .http
            .send(Method::GET, &format!("/{index}/_mapping"), None, &doing)
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(&doing, &answer));
        }
        Ok(mapping::mapped_fields(&answer.json()).into_iter().collect())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
        doing: &str,
    ) -> Result<client::Answer, SinkError> {
        let bytes = body.to_string().into_bytes();
        self.http
            .send(method, path, Some(("application/json", bytes)), doing)
            .await
    }
}

fn missing_columns(table: &TargetTable, fields: &HashSet<String>) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| !fields.contains(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

#[async_trait::async_trait]
impl Sink for SearchSink {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        // Indices first: each distinct table shape once.
        // Keyed by the shape's address: the batch keeps every `Arc` alive meanwhile.
        let mut index_of: HashMap<usize, String> = HashMap::new();
        let mut entries = Vec::with_capacity(batch.len());
        for (i, op) in batch.iter().enumerate() {
            let key = Arc::as_ptr(&op.table) as usize;
            if let std::collections::hash_map::Entry::Vacant(slot) = index_of.entry(key) {
                slot.insert(self.ensure_index(batch, i).await?);
            }
            if let SinkOpKind::Upsert(row) = &op.kind {
                if row.len() != op.table.columns.len() {
                    return Err(SinkError::new(
                        SINK,
                        ErrorKind::Data,
                        format!(
                            "an upsert of table `{}` key `{}` has {} values for {} columns",
                            op.table.name,
                            op.id(),
                            row.len(),
                            op.table.columns.len()
                        ),
                    )
                    .at_op(i));
                }
            }
            entries.push(bulk::entry(batch, i, &index_of[&key])?);
        }

        let mut stats = ApplyStats::default();
        for chunk in bulk::chunks(&entries, self.settings.max_bulk_bytes) {
            let mut body = Vec::with_capacity(chunk.iter().map(|e| e.lines.len()).sum());
            for entry in chunk {
                body.extend_from_slice(entry.lines.as_bytes());
            }
            let doing = format!("_bulk of {} actions", chunk.len());
            let answer = self
                .http
                .send(
                    Method::POST,
                    "/_bulk",
                    Some(("application/x-ndjson", body)),
                    &doing,
                )
                .await?;
            if !answer.status.is_success() {
                let err = status_error(&doing, &answer);
                return Err(match (err.kind, chunk) {
                    // A body too large that holds one op: that op cannot be written.
                    (ErrorKind::Rejected, [only]) => bulk::rejected(batch, only.op, &err.message),
                    _ => err,
                });
            }
            stats += bulk::tally(batch, chunk, &answer.body)?;
        }
        Ok(stats)
    }

    async fn check(&self) -> Result<(), SinkError> {
        let doing = "checking the search cluster";
        let answer = self.http.send(Method::GET, "/", None, doing).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(doing, &answer))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let mut s = SearchSettings::new("http://es:9200", "v1_");
        s.password = Some("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
