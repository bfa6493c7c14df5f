//! The config file as written: the TOML schema, its defaults, nothing resolved yet.
//!
//! Every table denies unknown keys, so a misspelt key is an error rather than a silently
//! ignored setting. Defaults are named functions so that they can be found and documented.

use crate::secret::Secret;
use crate::settings::TlsMode;
use crate::units::{DurationValue, SizeValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// The MySQL/MariaDB server whose binlog every version reads.
    pub source: SourceFile,
    /// Target servers, one per kind; versions pick their namespaces on them.
    #[serde(default)]
    pub servers: ServersFile,
    /// Defaults for every version.
    #[serde(default)]
    pub defaults: DefaultsFile,
    /// The application versions, by name; each gets its own replicator.
    #[serde(default)]
    pub versions: BTreeMap<String, VersionFile>,
}

/// `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceFile {
    /// `mysql://user@host:port`; the password goes in `password`.
    pub url: String,
    /// The user, when not in the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// The password: `{ env = "VAR" }` or a literal string.
    #[serde(default)]
    pub password: Option<Secret>,
    /// TLS to the source.
    #[serde(default)]
    pub tls: TlsFile,
    /// How often the source sends a heartbeat when the binlog is idle.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: DurationValue,
    /// How long a read may wait before the connection is taken for dead (> heartbeat).
    #[serde(default = "default_read_timeout")]
    pub read_timeout: DurationValue,
    /// How long connecting may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: DurationValue,
}

fn default_heartbeat() -> DurationValue {
    DurationValue::secs(5)
}
fn default_read_timeout() -> DurationValue {
    DurationValue::secs(30)
}
fn default_connect_timeout() -> DurationValue {
    DurationValue::secs(10)
}

/// `[source.tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    /// `disabled`, `preferred` (default), `required`, `verify-ca`, `verify-full`.
    #[serde(default)]
    pub mode: TlsMode,
    /// PEM file of the CA that signed the server's certificate (for `verify-ca`, and for
    /// `verify-full` with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[servers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServersFile {
    /// The MongoDB server.
    #[serde(default)]
    pub mongodb: Option<ServerFile>,
    /// The Redis server.
    #[serde(default)]
    pub redis: Option<ServerFile>,
    /// The Elasticsearch/OpenSearch cluster (`elasticsearch` is accepted too).
    #[serde(default, alias = "elasticsearch")]
    pub opensearch: Option<ServerFile>,
    /// The PostgreSQL server.
    #[serde(default)]
    pub postgres: Option<ServerFile>,
}

/// `[servers.<kind>]`: where a target server is and how to log in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerFile {
    /// The server's URL, without a password.
    pub url: String,
    /// The user, when not in the URL (the only way for OpenSearch basic auth).
    #[serde(default)]
    pub username: Option<String>,
    /// The password: `{ env = "VAR" }` or a literal string.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `[defaults]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsFile {
    /// Each version keeps its state in `<data_dir>/<version>/`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// How long a delete's tombstone stops an older write from bringing a row back.
    #[serde(default = "default_tombstone_ttl")]
    pub tombstone_ttl: DurationValue,
    /// Most rows in one write batch.
    #[serde(default = "default_batch_max_rows")]
    pub batch_max_rows: usize,
    /// Most bytes (estimated) in one write batch.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: SizeValue,
    /// Longest a change waits for its batch to fill.
    #[serde(default = "default_batch_max_delay")]
    pub batch_max_delay: DurationValue,
    /// Parallel apply partitions per sink.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Ops each worker's bounded queue holds.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Replication lag above which status and metrics raise an alert.
    #[serde(default = "default_lag_alert")]
    pub lag_alert: DurationValue,
    /// Listen address of `/metrics`, `/health` and `/status`.
    #[serde(default = "default_http")]
    pub http: SocketAddr,
}

impl Default for DefaultsFile {
    fn default() -> Self {
        DefaultsFile {
            data_dir: default_data_dir(),
            tombstone_ttl: default_tombstone_ttl(),
            batch_max_rows: default_batch_max_rows(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_max_delay: default_batch_max_delay(),
            workers: default_workers(),
            queue_capacity: default_queue_capacity(),
            lag_alert: default_lag_alert(),
            http: default_http(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".strata")
}
fn default_tombstone_ttl() -> DurationValue {
    DurationValue::secs(24 * 3600)
}
fn default_batch_max_rows() -> usize {
    1000
}
fn default_batch_max_bytes() -> SizeValue {
    SizeValue(4 << 20)
}
fn default_batch_max_delay() -> DurationValue {
    DurationValue::millis(50)
}
fn default_workers() -> usize {
    4
}
fn default_queue_capacity() -> usize {
    10_000
}
fn default_lag_alert() -> DurationValue {
    DurationValue::secs(300)
}
fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `[versions.<name>]`: one application version.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionFile {
    /// The replica server id this version's replicator uses (unique, 1..=2^32-1).
    pub server_id: u32,
    /// The source schemas this version reads.
    pub schemas: Vec<String>,
    /// Table patterns to replicate (`*`, `?`, optional `schema.` prefix).
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Table patterns to leave out (win over `include`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `table.column` patterns of columns never written to targets.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    /// Where the first start reads from: `current`, `oldest`, `FILE:POS` or a GTID set.
    #[serde(default = "default_start")]
    pub start: String,
    /// Where the checkpoint is kept.
    #[serde(default)]
    pub checkpoint: CheckpointFile,
    /// Overrides `defaults.http`.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Overrides `defaults.tombstone_ttl`.
    #[serde(default)]
    pub tombstone_ttl: Option<DurationValue>,
    /// Overrides `defaults.batch_max_rows`.
    #[serde(default)]
    pub batch_max_rows: Option<usize>,
    /// Overrides `defaults.batch_max_bytes`.
    #[serde(default)]
    pub batch_max_bytes: Option<SizeValue>,
    /// Overrides `defaults.batch_max_delay`.
    #[serde(default)]
    pub batch_max_delay: Option<DurationValue>,
    /// Overrides `defaults.workers`.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Overrides `defaults.queue_capacity`.
    #[serde(default)]
    pub queue_capacity: Option<usize>,
    /// Overrides `defaults.lag_alert`.
    #[serde(default)]
    pub lag_alert: Option<DurationValue>,
    /// Opt-in heartbeat row strata writes into the source, so lag is measured through the
    /// whole pipeline while the application is idle (needs a write grant); absent = off.
    #[serde(default)]
    pub heartbeat: Option<HeartbeatFile>,
    /// Per-table options, keyed by `table` or `schema.table`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableFile>,
    /// Write to MongoDB.
    #[serde(default)]
    pub mongodb: Option<MongoFile>,
    /// Write to Redis.
    #[serde(default)]
    pub redis: Option<RedisFile>,
    /// Write to Elasticsearch/OpenSearch (`elasticsearch` is accepted too).
    #[serde(default, alias = "elasticsearch")]
    pub opensearch: Option<SearchFile>,
    /// Write to PostgreSQL.
    #[serde(default)]
    pub postgres: Option<PostgresFile>,
}

fn default_include() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_start() -> String {
    "current".to_owned()
}

/// `heartbeat = { … }`: a row strata upserts in the source at every interval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatFile {
    /// The schema of the heartbeat table: one of the version's `schemas` (default: the
    /// first).
    #[serde(default)]
    pub schema: Option<String>,
    /// The heartbeat table, created when missing and never replicated to targets.
    #[serde(default = "default_heartbeat_table")]
    pub table: String,
    /// How often the row is written.
    #[serde(default = "default_heartbeat_interval")]
    pub interval: DurationValue,
}

fn default_heartbeat_table() -> String {
    "strata_heartbeat".to_owned()
}
fn default_heartbeat_interval() -> DurationValue {
    DurationValue::secs(10)
}

/// `checkpoint = { … }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointFile {
    /// The store; only `file` for now.
    #[serde(default)]
    pub kind: CheckpointKind,
    /// The checkpoint file; default `<data_dir>/<version>/checkpoint.json`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// Checkpoint store kinds.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckpointKind {
    /// A JSON file written atomically.
    #[default]
    File,
}

/// `[versions.<name>.tables.<table>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableFile {
    /// The table's name in targets.
    #[serde(default)]
    pub target: Option<String>,
    /// Key columns, for tables without a primary key.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// A column whose value orders writes before the binlog order (e.g. `updated_at`).
    #[serde(default)]
    pub guard: Option<String>,
}

/// `[versions.<name>.mongodb]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MongoFile {
    /// The version's own database.
    pub database: String,
    /// Another server than `[servers.mongodb]`.
    #[serde(default)]
    pub url: Option<String>,
    /// User for `url`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `url`.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `[versions.<name>.redis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisFile {
    /// The version's DB index (0..=15), or use `dbs`.
    #[serde(default)]
    pub db: Option<u8>,
    /// A reserved DB range such as `"0-2"`; rows go to its first DB.
    #[serde(default)]
    pub dbs: Option<DbRangeValue>,
    /// Prefix of every key the version writes.
    pub key_prefix: String,
    /// Another server than `[servers.redis]`.
    #[serde(default)]
    pub url: Option<String>,
    /// User for `url`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `url`.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `[versions.<name>.opensearch]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchFile {
    /// Prefix of the version's indices (one index per table).
    pub index_prefix: String,
    /// Another cluster than `[servers.opensearch]`.
    #[serde(default)]
    pub url: Option<String>,
    /// User for `url`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `url`.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `[versions.<name>.postgres]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresFile {
    /// The version's own schema.
    pub schema: String,
    /// Another server than `[servers.postgres]`.
    #[serde(default)]
    pub url: Option<String>,
    /// User for `url`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for `url`.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// A Redis DB range, `"0-2"` or a single index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbRangeValue(pub u8, pub u8);

impl<'de> Deserialize<'de> for DbRangeValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const HOW: &str = "write a range such as \"0-2\" (Redis DBs are 0 to 15)";
        let parse = |s: &str| -> Option<u8> { s.trim().parse().ok() };
        match toml::Value::deserialize(deserializer)? {
            toml::Value::Integer(i) => u8::try_from(i)
                .map(|i| DbRangeValue(i, i))
                .map_err(|_| D::Error::custom(format!("`{i}` is not a DB index; {HOW}"))),
            toml::Value::String(s) => {
                let (a, b) = s.split_once('-').unwrap_or((&s, &s));
                match (parse(a), parse(b)) {
                    (Some(a), Some(b)) if a <= b => Ok(DbRangeValue(a, b)),
                    (Some(_), Some(_)) => Err(D::Error::custom(format!(
                        "\"{s}\" runs backwards; write the lower DB first, e.g. \"0-2\""
                    ))),
                    _ => Err(D::Error::custom(format!(
                        "\"{s}\" is not a DB range; {HOW}"
                    ))),
                }
            }
            other => Err(D::Error::custom(format!(
                "a {} is not a DB range; {HOW}",
                other.type_str()
            ))),
        }
    }
}
