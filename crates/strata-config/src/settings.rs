//! The resolved configuration: defaults merged, secrets read, URLs parsed, validated. These
//! plain structs are what the binary maps onto the source, the pipeline and the sinks.

use crate::error::ConfigError;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;
use strata_core::{StartFrom, TableRules};

/// A loaded, validated and linted configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from, as given (used in messages).
    pub file: String,
    /// The source every version reads.
    pub source: SourceSettings,
    /// The versions, by name.
    pub versions: BTreeMap<String, VersionConfig>,
}

impl Config {
    /// The version called `name`, or an error listing the configured ones.
    pub fn version(&self, name: &str) -> Result<&VersionConfig, ConfigError> {
        self.versions
            .get(name)
            .ok_or_else(|| ConfigError::UnknownVersion {
                file: self.file.clone(),
                name: name.to_owned(),
                known: self.versions.keys().cloned().collect(),
            })
    }
}

/// How to reach the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    /// `mysql://user:password@host:port`, the password applied (see [`ServerUrl::expose`]).
    pub url: ServerUrl,
    /// TLS to the source.
    pub tls: TlsSettings,
    /// Heartbeat period the source is asked for when the binlog is idle.
    pub heartbeat: Duration,
    /// A read that waits longer than this means the connection is dead (> heartbeat).
    pub read_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

/// TLS to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// How strict.
    pub mode: TlsMode,
    /// PEM file of the CA that signed the server certificate.
    pub ca_file: Option<PathBuf>,
}

/// TLS modes, named as MySQL's `--ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, else plain TCP (MySQL's default).
    #[default]
    Preferred,
    /// TLS, without checking the certificate.
    Required,
    /// TLS, the certificate signed by `ca_file`.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and naming the host.
    VerifyFull,
}

/// Where a version's checkpoint lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSettings {
    /// A JSON file, written to a temporary file, synced and renamed.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// How changes are batched and applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplySettings {
    /// How long a delete's tombstone is kept.
    pub tombstone_ttl: Duration,
    /// Most rows in one batch.
    pub batch_max_rows: usize,
    /// Most bytes (estimated) in one batch.
    pub batch_max_bytes: u64,
    /// Longest a change waits for its batch to fill.
    pub batch_max_delay: Duration,
    /// Parallel apply partitions per sink.
    pub workers: usize,
    /// Ops each worker's bounded queue holds.
    pub queue_capacity: usize,
    /// Lag above which status and metrics raise an alert.
    pub lag_alert: Duration,
}

/// A version's MongoDB target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoTarget {
    /// The server, credentials applied.
    pub url: ServerUrl,
    /// The version's database.
    pub database: String,
}

/// A version's Redis target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// The server, credentials applied (no DB in the URL).
    pub url: ServerUrl,
    /// The DB rows are written to: the first of `dbs`.
    pub db: u8,
    /// The DBs reserved for the version (a single DB when configured with `db`).
    pub dbs: RangeInclusive<u8>,
    /// Prefix of every key the version writes.
    pub key_prefix: String,
}

/// A version's Elasticsearch/OpenSearch target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTarget {
    /// The cluster (`http(s)://host:port`), without credentials.
    pub url: ServerUrl,
    /// Prefix of the version's indices (`<prefix><table>`).
    pub index_prefix: String,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<Secret>,
}

/// A version's PostgreSQL target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// The server and database, credentials applied.
    pub url: ServerUrl,
    /// The version's schema.
    pub schema: String,
}

impl PostgresTarget {
    /// The database the URL names (its path; else the user name; else `postgres`), as
    /// PostgreSQL's own clients default it.
    pub fn database(&self) -> &str {
        match self.url.path() {
            "" => self.url.username().unwrap_or("postgres"),
            db => db,
        }
    }
}

/// The targets a version writes to; at least one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// MongoDB.
    pub mongodb: Option<MongoTarget>,
    /// Redis.
    pub redis: Option<RedisTarget>,
    /// Elasticsearch/OpenSearch.
    pub opensearch: Option<SearchTarget>,
    /// PostgreSQL.
    pub postgres: Option<PostgresTarget>,
}

impl Targets {
    /// The names of the configured targets (`mongodb`, `redis`, `opensearch`, `postgres`).
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("mongodb", self.mongodb.is_some()),
            ("redis", self.redis.is_some()),
            ("opensearch", self.opensearch.is_some()),
            ("postgres", self.postgres.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect()
    }
}

/// The heartbeat row a version writes into its own source schema, so that lag is measured
/// through the whole pipeline even when the application is idle. Its table is excluded from
/// the version's rules: its rows never reach a target, but its transactions' commits do
/// advance the applied position and commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatSettings {
    /// The schema of the table: one of the version's schemas.
    pub schema: String,
    /// The table (created when missing).
    pub table: String,
    /// How often the row is written.
    pub interval: Duration,
}

/// One application version, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConfig {
    /// The version's name (`[a-z0-9_-]+`).
    pub name: String,
    /// The replica server id of its replicator.
    pub server_id: u32,
    /// Which tables and columns it replicates, and per-table options.
    pub rules: TableRules,
    /// Where the first start reads from.
    pub start: StartFrom,
    /// Where its checkpoint lives.
    pub checkpoint: CheckpointSettings,
    /// Listen address of its `/metrics`, `/health` and `/status`.
    pub http: SocketAddr,
    /// Batching and apply settings.
    pub apply: ApplySettings,
    /// Where it writes.
    pub targets: Targets,
    /// The opt-in heartbeat row in the source; `None` when off (the default).
    pub heartbeat: Option<HeartbeatSettings>,
    pub(crate) data_dir: PathBuf,
}

impl VersionConfig {
    /// The version's own state directory, `<defaults.data_dir>/<name>/` (relative paths are
    /// relative to the working directory).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The checkpoint file.
    pub fn checkpoint_path(&self) -> &Path {
        match &self.checkpoint {
            CheckpointSettings::File { path } => path,
        }
    }
}
