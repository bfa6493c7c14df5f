//! MongoDB sink: one database per application version, one collection per table, guarded
//! upserts through `update` commands with an update pipeline.
//!
//! # Representation
//! - **Database**: [`MongoSettings::database`] (one per version, e.g. `jobfirst_future`).
//! - **Collection**: the table's target name. Delete tombstones live in the side
//!   collection `<table>__strata_tombstones` (created on the table's first delete), which
//!   has a TTL index (`strata_tombstone_ttl` on `deleted_at`) that expires them after
//!   [`MongoSettings::tombstone_ttl`].
//! - **`_id`**: the key column's typed value for a one-column key (e.g. Int32 `7`); a
//!   sub-document `{col1: v1, col2: v2}` in key order for a composite key. Key values use
//!   the field encoding below, except DATETIME/TIMESTAMP values with sub-millisecond digits,
//!   which become their exact ISO text (`"2024-01-02T03:04:05.123456"`, TIMESTAMP with `Z`)
//!   so that two keys never share one `_id`. A key column named `_id` is stored once.
//! - **Document**: `_id`, every column as a field, and `_strata_version`: the write's
//!   version as [`strata_core::Version::sortable`] text (41 fixed-width digits; MongoDB's
//!   string order is the version order, guard column first). Columns `_id` (other than a
//!   sole key) and `_strata_version` are refused with a configuration error.
//! - **Tombstone**: `{_id, key: <key text>, version: <sortable>, deleted_at: Date}` in the
//!   tombstone collection; the row itself is removed, so ordinary reads never see deleted
//!   rows or tombstones.
//!
//! # Guards
//! - Upsert: `update` statement `{q: {_id}, u: [{$replaceWith: {$cond: [{$lt:
//!   [{$ifNull: ["$_strata_version", ""]}, V]}, {$literal: <document>}, "$$ROOT"]}}],
//!   upsert: true}` — atomic in the server; equal or lower versions keep the stored
//!   document (the statement modifies nothing and is counted stale).
//! - Delete: `delete` statement `{_id, _strata_version: {$lt: V}}` plus the same guarded
//!   replace on the tombstone (the tombstone keeps the highest delete version). A document
//!   strata did not write (no `_strata_version`) is replaced by an upsert but never
//!   deleted.
//! - Tombstones and upserts: a pipeline cannot read another collection, so before the
//!   upserts the sink reads the stored tombstones of the batch's upsert keys (one `find`)
//!   and drops every upsert whose version is not above the key's tombstone — stored, or a
//!   delete of the same key in the batch. Within one replicator this read-then-write is
//!   enough: the pipeline gives each key a single writer, and the row's own version guard
//!   still runs in the server.
//! - Other writers: a snapshot or a repair may write the rows the replicator writes, at
//!   the same time ([`MongoSettings::other_writers`]). A delete writes its tombstone before
//!   it removes the row; such a sink, after its upserts, reads their tombstones again and
//!   re-applies (guarded) every delete not older than a row it wrote. Whatever the
//!   interleaving, either the delete removes the row or the re-check finds the tombstone,
//!   so an older upsert never outlives a newer delete (it may be visible for the moment
//!   between the two).
//! - Requests per batch and table: the tombstone lookup (only when the batch has upserts
//!   and the table may have tombstones: a table whose tombstone collection was empty at
//!   start-up and that this sink never deleted from skips it), then one `update` command
//!   for the upserts, concurrently with the deletes' tombstone `update` followed by their
//!   `delete`. Commands are cut at 8 MiB / 100,000 statements; the lookup's `$in` lists at
//!   128 ids, 4 in flight. Upserts and deletes of one key commute under these guards, so running the two sides concurrently
//!   gives the same result as running the ops in order. With other writers, one more
//!   tombstone `find` after the upserts, and a `delete` when it finds any.
//! - Counting: an upsert is applied when its statement modified or inserted a document; a
//!   delete is applied when its tombstone was created or raised (a delete older than a
//!   stored row that had no tombstone is therefore counted applied though it removes
//!   nothing).
//! - Durability: commands use the deployment's default write concern (`majority` since
//!   MongoDB 5.0); a write concern error is retried.
//!
//! # Types (MySQL → BSON)
//! | MySQL | BSON |
//! |---|---|
//! | TINYINT…INT, TINYINT…MEDIUMINT UNSIGNED, YEAR | Int32 |
//! | INT UNSIGNED, BIGINT | Int64 |
//! | BIGINT UNSIGNED, BIT(n) | Int64 up to 2^63−1, Decimal128 (exact integer) above |
//! | FLOAT | Double holding the float's shortest decimal form (FLOAT 0.1 → 0.1) |
//! | DOUBLE | Double |
//! | DECIMAL(p,s), p ≤ 34 | Decimal128 (digits and scale kept: `-12.340`) |
//! | DECIMAL(p,s), p > 34 | String, the exact decimal text (Decimal128 holds 34 digits) |
//! | DATE | Date at 00:00 UTC |
//! | DATETIME(fsp), TIMESTAMP(fsp) | Date (milliseconds, rounded down; DATETIME read as UTC) |
//! | … with fsp > 3 | plus `<column>__us`: Int64 exact microseconds since 1970 (UTC-read) |
//! | zero DATE/DATETIME/TIMESTAMP | String: `0000-00-00`, `0000-00-00T00:00:00`, `0000-00-00T00:00:00Z` (`__us` null) |
//! | TIME | String `-838:59:58.999999` (BSON has no duration) |
//! | CHAR/VARCHAR/TEXT, ENUM | String (ENUM: the member's name) |
//! | SET | Array of member names |
//! | BINARY/VARBINARY/BLOB | Binary, subtype 0 |
//! | JSON | native: object → document, array → array, integers → Int32/Int64 (Decimal128 beyond), other numbers → Decimal128 with their exact digits (string when over 34 digits); text that is not valid JSON → String |
//! | GEOMETRY | `{srid: Int64, wkb: Binary}` |
//! | NULL | Null |
//!
//! # Schema changes
//! Documents are replaced whole, so a row written after a change has exactly the new
//! columns. When a table's newer shape drops columns (a drop, or the old name of a
//! rename), the sink removes those fields from the collection's existing documents
//! (`$unset`), after the batch's writes. The newest shape is the one seen with the highest
//! binlog order, so a lagging op of an older shape never undoes a newer one: the fields an
//! older shape writes that the newest lacks (older ops in the same batch, or a worker
//! lagging behind the change) are removed again after its batch. Limit: the
//! first shape seen after start-up is taken as known, so columns dropped while strata was
//! stopped stay in older documents until their row is written again.
//!
//! # Limits
//! A row over MongoDB's 16 MiB document limit, a JSON key MongoDB refuses, or a user's
//! unique index or validator refusing a document is a `Rejected` error naming the table
//! and key. Works with MongoDB ≥ 4.2 (update pipelines); does not need `bulkWrite`.

mod encode;
mod failure;
mod guard;
mod json;
mod read;
mod schema;
mod write;

pub use read::MongoReader;

use bson::{doc, Bson};
use failure::SINK;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use strata_core::{ApplyStats, ErrorKind, Sink, SinkError, SinkOp, SinkOpKind, TargetTable};
use write::{Command, Statement};

/// Settings of a MongoDB sink.
#[derive(Clone)]
pub struct MongoSettings {
    /// Connection string, e.g. `mongodb://user:secret@host:27017/?replicaSet=rs0`. Never
    /// logged (the `Debug` form hides credentials).
    pub url: String,
    /// The database this version writes, e.g. `jobfirst_future`.
    pub database: String,
    /// How long delete tombstones are kept (the tombstone collections' TTL index): within
    /// this window a replayed older upsert cannot bring a deleted row back. Default 24 h.
    pub tombstone_ttl: Duration,
    /// How long to wait for a reachable server when connecting and before each request
    /// (unless the url sets `serverSelectionTimeoutMS`/`connectTimeoutMS`). Default 10 s.
    pub connect_timeout: Duration,
    /// How long one request may take before it fails as a timeout. Default 60 s.
    pub request_timeout: Duration,
    /// Another writer may write the same rows at the same time: set by a snapshot or a
    /// repair, which may run beside the version's replicator. After its upserts, the sink
    /// reads their tombstones again and re-applies every delete that is newer than an
    /// upsert it wrote (see the module documentation). Default false: the replicator is
    /// its rows' only writer among its own workers.
    pub other_writers: bool,
}

impl MongoSettings {
    /// Default tombstone retention.
    pub const DEFAULT_TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// Settings for `database` at `url`, with the defaults for everything else.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        MongoSettings {
            url: url.into(),
            database: database.into(),
            tombstone_ttl: Self::DEFAULT_TOMBSTONE_TTL,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            other_writers: false,
        }
    }
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("url", &redacted_url(&self.url))
            .field("database", &self.database)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("other_writers", &self.other_writers)
            .finish()
    }
}

/// The url without its user information.
fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A MongoDB target (see the module documentation for what it writes).
pub struct MongoSink {
    db: Database,
    settings: MongoSettings,
    /// What the sink knows of each table's tombstone collection.
    tombstones: Mutex<HashMap<String, Tombstones>>,
    shapes: Mutex<schema::Shapes>,
}

impl std::fmt::Debug for MongoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSink")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A table's tombstone collection, as far as this sink knows.
#[derive(Debug, Default, Clone, Copy)]
struct Tombstones {
    /// The TTL index exists.
    ttl_index: bool,
    /// Whether it may hold tombstones (`None`: not counted yet).
    may_exist: Option<bool>,
}

/// The document fields the upserts among `ops` wrote, over every table shape they have.
fn written_fields(batch: &[SinkOp], ops: &[usize]) -> Vec<String> {
    let mut shapes: Vec<*const TargetTable> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for &i in ops {
        let op = &batch[i];
        if !matches!(op.kind, SinkOpKind::Upsert(_)) || shapes.contains(&Arc::as_ptr(&op.table)) {
            continue;
        }
        shapes.push(Arc::as_ptr(&op.table));
        for field in encode::field_names(&op.table) {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
    }
    fields
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked (plain inserts).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MongoSink {
    /// Connects to the server and checks that it answers.
    pub async fn connect(settings: MongoSettings) -> Result<MongoSink, SinkError> {
        if let Some(problem) = schema::database_problem(&settings.database) {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                format!("database: {problem}"),
            ));
        }
        if settings.tombstone_ttl < Duration::from_secs(1) {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                "tombstone_ttl must be at least 1 second (MongoDB TTL indexes count seconds)",
            ));
        }
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
        options.app_name.get_or_insert_with(|| "strata".to_owned());
        options
            .server_selection_timeout
            .get_or_insert(settings.connect_timeout);
        options
            .connect_timeout
            .get_or_insert(settings.connect_timeout);
        let client = Client::with_options(options)
            .map_err(|e| failure::driver_error("configuring the MongoDB client", e))?;
        let sink = MongoSink {
            db: client.database(&settings.database),
            settings,
            tombstones: Mutex::default(),
            shapes: Mutex::default(),
        };
        sink.check().await?;
        Ok(sink)
    }

    fn limit(&self) -> Duration {
        self.settings.request_timeout
    }

    /// Applies the ops of one table (`ops`: their indices in `batch`, in batch order).
    async fn apply_table(
        &self,
        batch: &[SinkOp],
        name: &str,
        ops: &[usize],
    ) -> Result<ApplyStats, SinkError> {
        let newest = self.check_shapes(batch, ops)?;
        let collection = name.to_owned();
        let tombstones = schema::tombstone_collection(name);

        struct Write<'a> {
            op: usize,
            id: Bson,
            key: String,
            version: String,
            row: Option<(&'a TargetTable, &'a [strata_core::Value])>,
        }
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        let mut deleted_up_to: HashMap<String, String> = HashMap::new();
        for &i in ops {
            let op = &batch[i];
            let write = Write {
                op: i,
                id: encode::document_id(&op.table, &op.key),
                key: op.id(),
                version: op.version.sortable(),
                row: match &op.kind {
                    SinkOpKind::Upsert(row) => Some((op.table.as_ref(), row.as_slice())),
                    SinkOpKind::Delete => None,
                },
            };
            if write.row.is_some() {
                upserts.push(write);
            } else {
                let highest = deleted_up_to.entry(write.key.clone()).or_default();
                if *highest < write.version {
                    highest.clone_from(&write.version);
                }
                deletes.push(write);
            }
        }

        let upsert_side = async {
            if upserts.is_empty() {
                return Ok(ApplyStats::default());
            }
            let mut seen = HashSet::new();
            let ids: Vec<Bson> = upserts
                .iter()
                .filter(|w| seen.insert(w.key.as_str()))
                .map(|w| w.id.clone())
                .collect();
            if self.may_have_tombstones(name, &tombstones).await? {
                for (key, version) in
                    write::tombstones(&self.db, self.limit(), &tombstones, ids).await?
                {
                    let highest = deleted_up_to.entry(key).or_default();
                    if *highest < version {
                        *highest = version;
                    }
                }
            }
            let mut stale = 0;
            let mut statements = Vec::new();
            for w in &upserts {
                if deleted_up_to.get(&w.key).is_some_and(|t| *t >= w.version) {
                    stale += 1;
                    continue;
                }
                let Some((table, row)) = w.row else { continue };
                let document = encode::row_document(table, w.id.clone(), row, w.version.clone());
                let statement = guard::upsert(&w.id, document, &w.version);
                statements.push(Statement::new(batch, w.op, &statement)?);
            }
            let sent = statements.len() as u64;
            let changed = write::run(
                &self.db,
                self.limit(),
                batch,
                Command::Update,
                &collection,
                statements,
            )
            .await?;
            // Another writer's delete may have raced these upserts: its tombstone was
            // written before its delete ran, so any tombstone a written row should have
            // yielded to is visible now. Re-apply those deletes (guarded as ever).
            let mut undone = 0;
            if self.settings.other_writers {
                let written: Vec<&Write> = upserts
                    .iter()
                    .filter(|w| deleted_up_to.get(&w.key).is_none_or(|t| *t < w.version))
                    .collect();
                let mut seen = HashSet::new();
                let ids: Vec<Bson> = written
                    .iter()
                    .filter(|w| seen.insert(w.key.as_str()))
                    .map(|w| w.id.clone())
                    .collect();
                let stored: HashMap<String, String> =
                    write::tombstones(&self.db, self.limit(), &tombstones, ids)
                        .await?
                        .into_iter()
                        .collect();
                let mut redo = Vec::new();
                let mut redone = HashSet::new();
                for w in &written {
                    match stored.get(&w.key) {
                        Some(t) if *t >= w.version && redone.insert(w.key.as_str()) => {
                            redo.push(Statement::new(batch, w.op, &guard::delete(&w.id, t))?);
                        }
                        _ => {}
                    }
                }
                if !redo.is_empty() {
                    undone = write::run(
                        &self.db,
                        self.limit(),
                        batch,
                        Command::Delete,
                        &collection,
                        redo,
                    )
                    .await?;
                }
            }
            let applied = changed.saturating_sub(undone);
            Ok::<_, SinkError>(ApplyStats {
                applied,
                stale: stale + sent.saturating_sub(applied),
            })
        };

        let delete_side = async {
            if deletes.is_empty() {
                return Ok(ApplyStats::default());
            }
            self.ensure_tombstones(name, &tombstones).await?;
            let now = bson::DateTime::now();
            let mut removals = Vec::with_capacity(deletes.len());
            let mut marks = Vec::with_capacity(deletes.len());
            for w in &deletes {
                removals.push(Statement::new(
                    batch,
                    w.op,
                    &guard::delete(&w.id, &w.version),
                )?);
                marks.push(Statement::new(
                    batch,
                    w.op,
                    &guard::tombstone(&w.id, &w.key, &w.version, now),
                )?);
            }
            // The tombstones first, then the rows: an upsert that another writer makes
            // after the row is gone then finds the tombstone when it checks again.
            let marked = write::run(
                &self.db,
                self.limit(),
                batch,
                Command::Update,
                &tombstones,
                marks,
            )
            .await?;
            write::run(
                &self.db,
                self.limit(),
                batch,
                Command::Delete,
                &collection,
                removals,
            )
            .await?;
            let total = deletes.len() as u64;
            Ok(ApplyStats {
                applied: marked.min(total),
                stale: total.saturating_sub(marked),
            })
        };

        let (mut stats, deleted) = futures_util::try_join!(upsert_side, delete_side)?;
        stats += deleted;

        let (table, order) = newest;
        let written = written_fields(batch, ops);
        let dropped = locked(&self.shapes).settle(table, order, &written);
        if !dropped.is_empty() {
            tracing::info!(table = %name, fields = dropped.len(), "removing the fields of dropped columns");
            schema::unset_fields(&self.db, self.limit(), &collection, &dropped).await?;
            locked(&self.shapes).removed(&table.name, &dropped);
        }
        Ok(stats)
    }

    /// Checks every table shape among `ops` and the rows' lengths, and returns the newest
    /// shape with its binlog order.
    fn check_shapes<'a>(
        &self,
        batch: &'a [SinkOp],
        ops: &[usize],
    ) -> Result<(&'a TargetTable, u64), SinkError> {
        let mut checked: Vec<*const TargetTable> = Vec::new();
        let mut newest: Option<(&TargetTable, u64)> = None;
        for &i in ops {
            let op = &batch[i];
            let table = op.table.as_ref();
            if !checked.contains(&Arc::as_ptr(&op.table)) {
                let problem = schema::collection_problem(&self.settings.database, &table.name)
                    .or_else(|| encode::table_problem(table));
                if let Some(problem) = problem {
                    return Err(SinkError::new(SINK, ErrorKind::Config, problem).at_op(i));
                }
                checked.push(Arc::as_ptr(&op.table));
            }
            if let SinkOpKind::Upsert(row) = &op.kind {
                if row.len() != table.columns.len() {
                    return Err(SinkError::new(
                        SINK,
                        ErrorKind::Data,
                        format!(
                            "an upsert of table `{}` key `{}` has {} values for {} columns",
                            table.name,
                            op.id(),
                            row.len(),
                            table.columns.len()
                        ),
                    )
                    .at_op(i));
                }
            }
            if newest.is_none_or(|(_, order)| op.version.order >= order) {
                newest = Some((table, op.version.order));
            }
        }
        newest.ok_or_else(|| SinkError::new(SINK, ErrorKind::Internal, "a table group without ops"))
    }

    /// Prepares a table's tombstone collection for writes: creates its TTL index (once per
    /// process) and notes that it may now hold tombstones.
    async fn ensure_tombstones(&self, table: &str, collection: &str) -> Result<(), SinkError> {
        let indexed = {
            let mut tables = locked(&self.tombstones);
            let state = tables.entry(table.to_owned()).or_default();
            // Set before the tombstones are written, so no later lookup is skipped.
            state.may_exist = Some(true);
            state.ttl_index
        };
        if !indexed {
            schema::ensure_ttl_index(
                &self.db,
                self.limit(),
                collection,
                self.settings.tombstone_ttl,
            )
            .await?;
            locked(&self.tombstones)
                .entry(table.to_owned())
                .or_default()
                .ttl_index = true;
        }
        Ok(())
    }

    /// Whether upserts of `table` must look up tombstones. An empty tombstone collection
    /// stays empty until this sink writes a delete (one writer per namespace), so a table
    /// without deletes is not looked up again after one `count`.
    async fn may_have_tombstones(&self, table: &str, collection: &str) -> Result<bool, SinkError> {
        if self.settings.other_writers {
            // Another writer may create them at any time.
            return Ok(true);
        }
        if let Some(known) = locked(&self.tombstones)
            .get(table)
            .and_then(|s| s.may_exist)
        {
            return Ok(known);
        }
        let stored = write::count(&self.db, self.limit(), collection).await? > 0;
        let mut tables = locked(&self.tombstones);
        let state = tables.entry(table.to_owned()).or_default();
        Ok(*state.may_exist.get_or_insert(stored))
    }
}

#[async_trait::async_trait]
impl Sink for MongoSink {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        // Group by table, keeping batch order inside each group; tables go concurrently.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (i, op) in batch.iter().enumerate() {
            let name = op.table.name.as_str();
            let group = *by_name.entry(name).or_insert_with(|| {
                groups.push((name, Vec::new()));
                groups.len() - 1
            });
            groups[group].1.push(i);
        }
        let results = futures_util::future::try_join_all(
            groups
                .iter()
                .map(|(name, ops)| self.apply_table(batch, name, ops)),
        )
        .await?;
        let mut stats = ApplyStats::default();
        for s in results {
            stats += s;
        }
        Ok(stats)
    }

    async fn check(&self) -> Result<(), SinkError> {
        write::timeboxed(
            "pinging the MongoDB server",
            self.limit(),
            self.db.run_command(doc! { "ping": 1 }),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn debug_hides_credentials() {
        let s = MongoSettings::new("mongodb://me:secret@db:27017/?tls=true", "v1");
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("db:27017"), "{shown}");
    }
}
