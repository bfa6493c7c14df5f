//! The PostgreSQL sink: one schema per version, one table per source table, guarded
//! multi-row upserts and deletes in one transaction per batch.
//!
//! # Representation
//! - **Tables**: `"<schema>"."<table>"`, created on first use with one column per source
//!   column (MySQL names, quoted) typed by the table below, plus `"_strata_version"`, and
//!   the key as the PRIMARY KEY. Non-key columns are nullable.
//! - **Schema changes**: when an op carries a new shape of a table (columns added,
//!   dropped, renamed or retyped; the key moved), the table is ALTERed in the same
//!   transaction, before that op: new columns are added, vanished ones dropped (a rename is
//!   a drop plus an add, so the renamed column starts NULL until rows are rewritten),
//!   retyped ones converted through their text form. Shapes only move forward:
//!   `"<schema>"."_strata_shapes"` records the binlog order of the op that last shaped each
//!   table, and an op with an older shape (a replay, or a pipeline worker that is behind
//!   another) alters nothing and writes only the columns the table still has. After a
//!   rejected batch, its tables are checked against the catalog again and the batch is
//!   tried once more, so a table or schema altered or dropped by hand is repaired rather
//!   than blocking replication.
//! - **Version**: `"_strata_version" text COLLATE "C"`, holding
//!   [`strata_core::Version::sortable`] (41 fixed-width digits; bytewise order is version
//!   order).
//! - **Tombstones**: the table `"<schema>"."_strata_tombstones"` (`tbl`, `id` = the row's
//!   key id [`strata_core::SinkOp::id`], `version`, `deleted_at`), so deleted rows are
//!   simply absent from the row tables. Tombstones older than `tombstone_ttl` are purged
//!   inside a batch's transaction, once a minute (or once per `tombstone_ttl` when that is
//!   shorter).
//! - **Guard**: upsert = `INSERT … SELECT … FROM unnest($1, …) WHERE NOT EXISTS (a tombstone
//!   with an equal or newer version) ON CONFLICT (key) DO UPDATE SET … WHERE
//!   stored.version < excluded.version`; delete = one statement that deletes rows with an
//!   older version and upserts the tombstone when the op is newer than both the row and any
//!   earlier tombstone. Each op is decided inside PostgreSQL by one statement.
//! - **Other writers**: a snapshot, a repair or a second replicator may write the same
//!   rows at the same time. A batch's transaction first takes a transaction-scoped
//!   advisory lock per row bucket (64 per schema, by the row's hash; the pipeline picks a
//!   row's worker by the same hash, so one replicator's workers never contend): the
//!   statements after it see every committed write of any other writer of those rows, so a
//!   tombstone written by another writer is never missed by an older upsert, whatever the
//!   interleaving.
//! - **Batches**: one transaction per batch (`Ok` after COMMIT); one multi-row statement
//!   per table and kind, every column sent as one array parameter (no 65,535-parameter
//!   limit, whatever the batch size), the statements pipelined on the connection. Several
//!   ops of one row in a batch go in successive statements, in order. Up to
//!   `max_connections` batches apply at once.
//! - **Errors**: connection loss, timeouts, deadlocks and serialization failures are
//!   transient; a value or constraint PostgreSQL refuses is `Rejected`, and the op is found
//!   by bisecting the batch under savepoints in a rolled-back transaction (a rejected batch
//!   writes nothing). Quoted input in data-exception messages is blanked so that row values
//!   never reach logs.
//! - **Reserved names**: tables `_strata_tombstones` and `_strata_shapes`, column
//!   `_strata_version`, schemas starting with `pg_`; identifiers over 63 bytes (PostgreSQL
//!   would truncate them) are refused with a configuration error.
//!
//! # Type mapping
//! | MySQL | PostgreSQL | notes |
//! |---|---|---|
//! | TINYINT, TINYINT UNSIGNED, SMALLINT | `smallint` | |
//! | SMALLINT UNSIGNED, MEDIUMINT (both), INT | `integer` | |
//! | INT UNSIGNED, BIGINT | `bigint` | |
//! | BIGINT UNSIGNED | `numeric(20,0)` | up to 18446744073709551615 |
//! | FLOAT | `real` | sent as binary float4: bit-exact |
//! | DOUBLE | `double precision` | sent as binary float8: bit-exact |
//! | DECIMAL(p,s) | `numeric(p,s)` | exact digits and scale |
//! | DATE | `date` | zero dates (`0000-00-00`, `2024-00-00`) → `-infinity` |
//! | DATETIME(fsp) | `timestamp(fsp) without time zone` | the fields as stored; zero → `-infinity` |
//! | TIMESTAMP(fsp) | `timestamp(fsp) with time zone` | the UTC instant; zero → `-infinity` |
//! | TIME(fsp) | `interval` | signed, e.g. `-838:59:58.999999` |
//! | YEAR | `smallint` | |
//! | CHAR, VARCHAR, TEXT | `text` | a NUL character or non-UTF-8 bytes are rejected |
//! | BINARY, VARBINARY, BLOB | `bytea` | |
//! | ENUM | `text` | the member's name |
//! | SET | `text[]` | members in definition order; empty set = `{}` |
//! | BIT(n) | `bit varying(64)` | exactly n bits, most significant first |
//! | JSON | `jsonb` | numbers keep their digits (numeric); key order and spacing normalised by jsonb; `\u0000` is rejected |
//! | GEOMETRY | `bytea` | MySQL's storage form: 4-byte little-endian SRID, then the WKB (`substring(g from 5)` is the WKB) |
//! | NULL | NULL | |

mod encode;
mod error;
mod guard;
mod pool;
mod read;
mod schema;
mod write;

pub use read::PostgresReader;

use async_trait::async_trait;
use guard::TablePlan;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_core::{ApplyStats, ErrorKind, Sink, SinkError, SinkOp};
use tokio_postgres::types::Type;

const SINK: &str = "postgres";
/// How often expired tombstones are purged at most (more often when they expire sooner).
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Where and how the PostgreSQL sink writes.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user[:password]@host:port/database` (or the `key=value` form). TLS is
    /// not supported yet: use a local or tunnelled connection.
    pub url: String,
    /// The schema this version's tables live in (created if absent).
    pub schema: String,
    /// How long a delete's tombstone is kept: within it, a replayed older upsert of a
    /// deleted row is ignored.
    pub tombstone_ttl: Duration,
    /// At most this many connections, so that this many batches can apply at once.
    pub max_connections: usize,
    /// How long connecting, or applying one batch, may take before it counts as a timeout.
    pub timeout: Duration,
}

impl PostgresSettings {
    /// Settings with the defaults: 24 h tombstones, 4 connections, 60 s timeout.
    pub fn new(url: impl Into<String>, schema: impl Into<String>) -> Self {
        PostgresSettings {
            url: url.into(),
            schema: schema.into(),
            tombstone_ttl: Duration::from_secs(24 * 3600),
            max_connections: 4,
            timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for PostgresSettings {
    /// Never prints the URL (it may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Writes row changes to PostgreSQL tables with guarded multi-row statements.
pub struct PostgresSink {
    settings: PostgresSettings,
    pool: pool::Pool,
    /// Tables known to match their plan, by target table name.
    plans: Mutex<HashMap<String, Arc<TablePlan>>>,
    last_purge: Mutex<Option<Instant>>,
    /// See [`guard::ROW_LOCK_SQL`].
    row_lock_class: String,
}

impl PostgresSink {
    /// Connects, and creates the schema and its tombstone table if they are absent.
    pub async fn connect(settings: PostgresSettings) -> Result<PostgresSink, SinkError> {
        guard::check_identifier("schema", &settings.schema)?;
        if settings.schema.starts_with("pg_") {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                format!(
                    "schema name {} starts with pg_, which PostgreSQL reserves for system \
                     schemas; choose another schema name",
                    settings.schema
                ),
            ));
        }
        if settings.tombstone_ttl.is_zero() {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                "tombstone_ttl must be more than zero (it is how long deletes are remembered)",
            ));
        }
        let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
            SinkError::new(
                SINK,
                ErrorKind::Config,
                format!(
                    "the PostgreSQL URL is not valid ({e}); use postgres://user@host:port/database"
                ),
            )
        })?;
        config
            .connect_timeout(settings.timeout)
            .application_name("strata");
        let sink = PostgresSink {
            pool: pool::Pool::new(config, settings.max_connections, settings.timeout),
            row_lock_class: guard::row_lock_class(&settings.schema),
            settings,
            plans: Mutex::new(HashMap::new()),
            last_purge: Mutex::new(None),
        };
        {
            let mut conn = sink.pool.get().await?;
            sink.prepare_schema(conn.client()?).await?;
        }
        Ok(sink)
    }

    /// Creates the schema and its tombstone table when they are absent.
    async fn prepare_schema(&self, client: &mut tokio_postgres::Client) -> Result<(), SinkError> {
        let schema = &self.settings.schema;
        let what = format!("preparing schema {schema}");
        let fail = |e: tokio_postgres::Error| error::pg_error(&e, &what);
        let tx = client.transaction().await.map_err(fail)?;
        let lock_name = format!("strata:{schema}");
        tx.execute_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[(&lock_name, Type::TEXT)],
        )
        .await
        .map_err(fail)?;
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {}; {}",
            guard::ident(schema),
            guard::bookkeeping_ddl(schema)
        );
        tx.batch_execute(&ddl).await.map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// True (and the clock restarted) when expired tombstones are due to be purged.
    fn purge_due(&self) -> bool {
        let mut last = self.last_purge.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if at.elapsed() < PURGE_EVERY.min(self.settings.tombstone_ttl) => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Forgets the plans of the batch's tables, so that the next batch checks them against
    /// the catalog again (after a rejection, the table may have been altered by hand).
    fn forget_plans(&self, batch: &[SinkOp]) {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        for op in batch {
            plans.remove(&op.table.name);
        }
    }

    async fn apply_in_transaction(
        &self,
        client: &mut tokio_postgres::Client,
        batch: &[SinkOp],
    ) -> Result<ApplyStats, SinkError> {
        let fail = |e: tokio_postgres::Error| error::pg_error(&e, "applying a batch");
        // Read committed whatever the server's default: each statement after the row
        // locks must see what the writers that held them committed.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(fail)?;
        let locks = guard::row_locks(batch);
        tx.execute_typed(
            guard::ROW_LOCK_SQL,
            &[
                (&self.row_lock_class, Type::TEXT),
                (&locks, Type::INT4_ARRAY),
            ],
        )
        .await
        .map_err(|e| error::pg_error(&e, "taking the batch's row locks"))?;
        if self.purge_due() {
            let ttl_ms = self.settings.tombstone_ttl.as_secs_f64() * 1000.0;
            let purged = tx
                .execute_typed(
                    &guard::purge_sql(&self.settings.schema),
                    &[(&ttl_ms, Type::FLOAT8)],
                )
                .await
                .map_err(fail)?;
            tracing::debug!(schema = %self.settings.schema, purged, "purged expired tombstones");
        }
        let mut plans = write::Plans::new(&self.plans);
        let stats = write::apply_ops(&tx, &self.settings.schema, batch, 0, &mut plans).await?;
        tx.commit().await.map_err(fail)?;
        plans.publish();
        Ok(stats)
    }

    /// One try at the batch, within the timeout (a connection that timed out is dropped).
    async fn attempt(
        &self,
        conn: &mut pool::Conn<'_>,
        batch: &[SinkOp],
    ) -> Result<ApplyStats, SinkError> {
        let run = self.apply_in_transaction(conn.client()?, batch);
        match tokio::time::timeout(self.settings.timeout, run).await {
            Ok(result) => result,
            Err(_) => {
                // The connection may still be mid-statement: never reuse it.
                conn.discard();
                Err(SinkError::new(
                    SINK,
                    ErrorKind::Timeout,
                    format!(
                        "applying a batch of {} ops took longer than {:?}",
                        batch.len(),
                        self.settings.timeout
                    ),
                ))
            }
        }
    }
}

#[async_trait]
impl Sink for PostgresSink {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        if batch.is_empty() {
            return Ok(ApplyStats::default());
        }
        let mut conn = self.pool.get().await?;
        let error = match self.attempt(&mut conn, batch).await {
            Ok(stats) => return Ok(stats),
            Err(e) if e.kind == ErrorKind::Rejected => e,
            Err(e) => return Err(e),
        };
        // The schema or a table may have been altered or dropped behind strata's back:
        // check them against the catalog again and try once more.
        self.forget_plans(batch);
        self.prepare_schema(conn.client()?).await?;
        let error = match self.attempt(&mut conn, batch).await {
            Ok(stats) => {
                tracing::info!(
                    reason = %error,
                    "a rejected batch applied after its tables were checked again"
                );
                return Ok(stats);
            }
            Err(e) if e.kind == ErrorKind::Rejected && e.op_index.is_none() => e,
            Err(e) => return Err(e),
        };
        let search =
            write::find_rejected_op(conn.client()?, &self.settings.schema, batch, &self.plans);
        match tokio::time::timeout(self.settings.timeout, search).await {
            Ok(Some(culprit)) => Err(culprit),
            Ok(None) => Err(error),
            Err(_) => {
                conn.discard();
                Err(error)
            }
        }
    }

    async fn check(&self) -> Result<(), SinkError> {
        let mut conn = self.pool.get().await?;
        let ping = conn.client()?.simple_query("SELECT 1");
        match tokio::time::timeout(self.settings.timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(error::pg_error(
                &e,
                &format!("checking PostgreSQL at {}", self.pool.target()),
            )),
            Err(_) => {
                conn.discard();
                Err(SinkError::new(
                    SINK,
                    ErrorKind::Timeout,
                    format!(
                        "PostgreSQL at {} did not answer within {:?}",
                        self.pool.target(),
                        self.settings.timeout
                    ),
                ))
            }
        }
    }
}
