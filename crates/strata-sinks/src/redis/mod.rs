//! The Redis sink: one hash per row, written by a compare-and-set Lua script.
//!
//! # Representation
//! - **Rows**: a hash at `<key_prefix><table>:<id>` in the configured logical DB, where
//!   `<table>` is the target table name and `<id>` is the row's key id
//!   ([`strata_core::SinkOp::id`]: key values' text joined by `|`). Each non-NULL column is
//!   one field named after the column; a NULL column is an absent field. An upsert replaces
//!   the hash whole, so a field dropped from the table disappears from each row as it is
//!   next written.
//! - **Version**: the field `_strata_version`, holding [`strata_core::Version::sortable`]
//!   (41 fixed-width digits whose string order is the version order; Lua numbers are
//!   doubles and cannot hold 63 bits).
//! - **Tombstones**: a string key `<key_prefix>~tomb:<table>:<id>` holding the delete's
//!   version, expiring after `tombstone_ttl` (`PX`). It lives outside the
//!   `<key_prefix><table>:` key space, so `SCAN MATCH <key_prefix><table>:*` sees live rows
//!   only. A newer upsert removes the tombstone it supersedes.
//! - **Guard**: one `EVALSHA` of the script in `guard.rs` per op, all of a batch's calls in
//!   one pipeline (one round trip; `SCRIPT LOAD` leads the pipeline, so a restarted or
//!   flushed server never answers `NOSCRIPT`). The script compares the op's version with
//!   the stored version and the tombstone and writes only when the op is newer, atomically.
//! - **Errors**: a batch is not one transaction: when Redis refuses one op (e.g.
//!   `WRONGTYPE`, another kind of key in the row's place), the error names that op
//!   (`op_index`, kind Rejected) and the other ops of the pipeline may have landed; every
//!   op is guarded, so applying the batch again is harmless. Out of memory, loading, busy
//!   and read-only replies are transient (Throttled).
//! - **Durability**: `Ok` means Redis acknowledged every write; whether that survives a
//!   Redis crash is Redis's persistence setting (`appendonly yes`, `appendfsync`).
//! - Not supported: Redis Cluster (a batch's keys span slots). Table names should not
//!   contain `:` or start with `~tomb:` (they would share a key space with another table).
//!
//! # Type mapping (field value bytes)
//! | MySQL | Redis field |
//! |---|---|
//! | TINYINT … BIGINT, UNSIGNED too | decimal text (`-128`, `18446744073709551615`) |
//! | FLOAT, DOUBLE | the shortest text that reads back as the same float, spelled like JavaScript numbers: plain in [1e-7, 1e21) (`1.5`, `0.1`, `-0`), exponent outside (`-2.25e+300`) |
//! | DECIMAL(p,s) | exact decimal text, scale kept (`-0.000000000000000000000000000001`) |
//! | DATE | `YYYY-MM-DD`; zero dates kept as MySQL prints them (`0000-00-00`) |
//! | DATETIME(fsp) | `YYYY-MM-DDTHH:MM:SS[.ffffff]` (fields as stored, no zone; fraction only when non-zero) |
//! | TIMESTAMP(fsp) | the UTC instant, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; zero timestamp `0000-00-00T00:00:00Z` |
//! | TIME(fsp) | `[-]HH:MM:SS[.ffffff]` (a signed duration, hours up to 838) |
//! | YEAR | `2155` |
//! | CHAR, VARCHAR, TEXT | UTF-8 text |
//! | BINARY, VARBINARY, BLOB | the raw bytes |
//! | ENUM | the member's name |
//! | SET | the members present, comma-separated, in definition order (`a,c`; empty set = empty string) |
//! | BIT(n) | the bits as an unsigned decimal integer (`18446744073709551615`) |
//! | JSON | the JSON text as the source gave it (decimals keep their digits) |
//! | GEOMETRY | MySQL's storage form: 4-byte little-endian SRID, then the WKB |
//! | NULL | field absent |

mod encode;
mod guard;
mod read;

pub use read::RedisReader;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{IntoConnectionInfo, RedisError, Script};
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;
use strata_core::{ApplyStats, ErrorKind, Sink, SinkError, SinkOp};

const SINK: &str = "redis";

/// Ops sent in one pipeline; a larger batch goes as several pipelines, in order.
const MAX_PIPELINE_OPS: usize = 10_000;

/// Where and how the Redis sink writes.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port` (or `rediss://` for TLS). A DB number in the URL
    /// is replaced by `db`.
    pub url: String,
    /// The logical database this version writes to (`SELECT db`).
    pub db: u8,
    /// Prepended to every key this sink writes (e.g. `jobfirst_future:`), so that versions
    /// sharing a DB never touch each other's keys.
    pub key_prefix: String,
    /// How long a delete's tombstone is kept: within it, a replayed older upsert of a
    /// deleted row is ignored.
    pub tombstone_ttl: Duration,
    /// How long one pipeline (or the connect) may take before it counts as a timeout.
    pub timeout: Duration,
}

impl RedisSettings {
    /// Settings with the defaults: DB 0, no key prefix, 24 h tombstones, 30 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            db: 0,
            key_prefix: String::new(),
            tombstone_ttl: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for RedisSettings {
    /// Never prints the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &crate::redis::redact_url(&self.url))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Writes row changes to Redis hashes, each guarded by the version script.
pub struct RedisSink {
    settings: RedisSettings,
    connection: ConnectionManager,
    script_sha: String,
    tombstone_ttl_ms: u64,
}

/// Opens a managed connection to the configured DB (shared by the sink and the reader),
/// within `settings.timeout`.
pub(super) async fn open_connection(
    settings: &RedisSettings,
) -> Result<ConnectionManager, SinkError> {
    let mut info = settings.url.as_str().into_connection_info().map_err(|e| {
        SinkError::new(
            SINK,
            ErrorKind::Config,
            format!(
                "the Redis URL {} is not valid ({e}); use redis://host:port",
                redact_url(&settings.url)
            ),
        )
    })?;
    info.redis.db = i64::from(settings.db);
    let client = ::redis::Client::open(info).map_err(|e| classify("opening", &e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(settings.timeout)
        .set_response_timeout(settings.timeout)
        .set_number_of_retries(1)
        .set_factor(100)
        .set_max_delay(1000);
    let connect = ConnectionManager::new_with_config(client, config);
    match tokio::time::timeout(settings.timeout, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify("connecting to", &e)),
        Err(_) => Err(SinkError::new(
            SINK,
            ErrorKind::Timeout,
            format!(
                "connecting to Redis at {} took longer than {:?}",
                redact_url(&settings.url),
                settings.timeout
            ),
        )),
    }
}

impl RedisSink {
    /// Connects (checking that the server answers and the DB can be selected).
    pub async fn connect(settings: RedisSettings) -> Result<RedisSink, SinkError> {
        let tombstone_ttl_ms = u64::try_from(settings.tombstone_ttl.as_millis()).unwrap_or(0);
        if tombstone_ttl_ms == 0 {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Config,
                "tombstone_ttl must be at least 1 ms (it is how long deletes are remembered)",
            ));
        }
        let connection = open_connection(&settings).await?;
        let sink = RedisSink {
            script_sha: Script::new(guard::SCRIPT).get_hash().to_owned(),
            settings,
            connection,
            tombstone_ttl_ms,
        };
        sink.check().await?;
        Ok(sink)
    }

    /// Sends ops `offset..offset + chunk.len()` of the batch as one pipeline.
    async fn apply_chunk(&self, chunk: &[SinkOp], offset: usize) -> Result<ApplyStats, SinkError> {
        let mut pipe = ::redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(guard::SCRIPT);
        for (i, op) in chunk.iter().enumerate() {
            guard::push_op(
                &mut pipe,
                &self.script_sha,
                &self.settings.key_prefix,
                self.tombstone_ttl_ms,
                op,
                offset + i,
            )?;
        }
        let mut connection = self.connection.clone();
        let send = connection.send_packed_commands(&pipe, 0, chunk.len() + 1);
        let replies = match tokio::time::timeout(self.settings.timeout, send).await {
            Ok(Ok(replies)) => replies,
            Ok(Err(e)) => return Err(classify("writing to", &e)),
            Err(_) => {
                return Err(SinkError::new(
                    SINK,
                    ErrorKind::Timeout,
                    format!(
                        "a pipeline of {} ops took longer than {:?}",
                        chunk.len(),
                        self.settings.timeout
                    ),
                ))
            }
        };
        if replies.len() != chunk.len() + 1 {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Internal,
                format!(
                    "Redis answered {} replies to a pipeline of {} commands",
                    replies.len(),
                    chunk.len() + 1
                ),
            ));
        }
        let mut replies = replies.into_iter();
        if let Some(::redis::Value::ServerError(e)) = replies.next() {
            return Err(server_error(&e.into(), "loading the guard script", None));
        }
        let mut stats = ApplyStats::default();
        for (i, (op, reply)) in chunk.iter().zip(replies).enumerate() {
            match reply {
                ::redis::Value::Int(1) => stats.applied += 1,
                ::redis::Value::Int(0) => stats.stale += 1,
                ::redis::Value::ServerError(e) => {
                    let what = format!("table {}, key {}", op.table.name, op.id());
                    return Err(server_error(&e.into(), &what, Some(offset + i)));
                }
                other => {
                    return Err(SinkError::new(
                        SINK,
                        ErrorKind::Internal,
                        format!(
                            "table {}, key {}: unexpected guard script reply {other:?}",
                            op.table.name,
                            op.id()
                        ),
                    )
                    .at_op(offset + i))
                }
            }
        }
        Ok(stats)
    }
}

#[async_trait]
impl Sink for RedisSink {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        let mut stats = ApplyStats::default();
        for (n, chunk) in batch.chunks(MAX_PIPELINE_OPS).enumerate() {
            stats += self.apply_chunk(chunk, n * MAX_PIPELINE_OPS).await?;
        }
        Ok(stats)
    }

    async fn check(&self) -> Result<(), SinkError> {
        let mut connection = self.connection.clone();
        let ping_cmd = ::redis::cmd("PING");
        let ping = ping_cmd.query_async::<String>(&mut connection);
        match tokio::time::timeout(self.settings.timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify("pinging", &e)),
            Err(_) => Err(SinkError::new(
                SINK,
                ErrorKind::Timeout,
                format!(
                    "Redis did not answer PING within {:?}",
                    self.settings.timeout
                ),
            )),
        }
    }
}

/// The kind of a client-side or connection error.
fn classify(doing: &str, e: &RedisError) -> SinkError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        ErrorKind::Connection
    } else {
        match e.kind() {
            ::redis::ErrorKind::AuthenticationFailed | ::redis::ErrorKind::InvalidClientConfig => {
                ErrorKind::Config
            }
            ::redis::ErrorKind::BusyLoadingError
            | ::redis::ErrorKind::TryAgain
            | ::redis::ErrorKind::MasterDown
            | ::redis::ErrorKind::ReadOnly => ErrorKind::Throttled,
            ::redis::ErrorKind::ResponseError
                if e.detail().is_some_and(|d| d.contains("DB index")) =>
            {
                ErrorKind::Config
            }
            _ => ErrorKind::Internal,
        }
    };
    SinkError::new(SINK, kind, format!("{doing} Redis failed: {e}"))
}

/// The kind of an error reply to one command: refusals that another try can fix (memory,
/// a busy or loading server, a read-only replica during failover) are transient; the rest
/// (a key of another type in the row's place, a script error) are permanent.
fn server_error(e: &RedisError, what: &str, op_index: Option<usize>) -> SinkError {
    let code = e.code().unwrap_or("ERR");
    let kind = match code {
        "OOM" | "BUSY" | "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" => ErrorKind::Throttled,
        "NOSCRIPT" => ErrorKind::Internal,
        "NOPERM" | "NOAUTH" => ErrorKind::Config,
        _ => ErrorKind::Rejected,
    };
    let detail = e.detail().unwrap_or("");
    let err = SinkError::new(
        SINK,
        kind,
        format!("{what}: Redis refused the write: {code} {detail}"),
    );
    match op_index {
        Some(i) => err.at_op(i),
        None => err,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact_url("redis://u:secret@h:1/2"), "redis://u:***@h:1/2");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
