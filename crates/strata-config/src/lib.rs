//! strata's configuration: the TOML file, `STRATA_*` environment overrides, secrets,
//! validation and the isolation lint.
//!
//! # strata-config
//!
//! [`Config::load`] reads a file, applies environment overrides, deserializes it (unknown
//! keys are errors), resolves defaults and secrets, validates every value and checks that
//! versions are isolated from each other. What comes out is plain typed settings:
//! [`SourceSettings`], and per version a [`VersionConfig`] with its [`TableRules`],
//! [`StartFrom`], [`ApplySettings`] and [`Targets`] ([`MongoTarget`], [`RedisTarget`],
//! [`SearchTarget`], [`PostgresTarget`]). `examples/jobfirst.toml` is a commented example.
//!
//! ## The file
//! ```toml
//! [source]                  # the MySQL/MariaDB server every version reads
//! url = "mysql://strata@127.0.0.1:3306"
//! password = { env = "STRATA_SOURCE_PASSWORD" }   # or a literal string (discouraged)
//! tls = { mode = "required" }   # disabled | preferred (default) | required | verify-ca | verify-full
//!
//! [servers]                 # one server per target kind; versions pick namespaces on them
//! redis = { url = "redis://127.0.0.1:6379" }
//!
//! [defaults]                # every key optional
//! data_dir = ".strata"      # each version keeps its state in <data_dir>/<version>/
//!
//! [versions.future]
//! server_id = 1001
//! schemas = ["jobfirst_future"]
//! [versions.future.redis]
//! db = 0
//! key_prefix = "future:"
//! ```
//! Durations are written like `50ms`, `5s`, `10m`, `24h`, `1h30m`; sizes like `4MiB` or
//! `10MB`. Relative paths are relative to the working directory.
//!
//! ## Environment overrides
//! `STRATA_<PATH>` sets the key at `<PATH>`: the dotted key path upper-cased, with `__`
//! between segments:
//! - `STRATA_SOURCE__URL=mysql://strata@db:3306`
//! - `STRATA_VERSIONS__FUTURE__REDIS__DB=5`
//! - `STRATA_DEFAULTS__BATCH_MAX_ROWS=500`
//!
//! Only variables with `__` after `STRATA_` are overrides, so `STRATA_LOG`,
//! `STRATA_CONFIG`, `STRATA_VERSION` and `STRATA_TEST_*` are not. A segment names the
//! existing key that it equals when upper-cased with `-` written as `_` (so
//! `STRATA_VERSIONS__DAO_V2__…` reaches `[versions.dao-v2]`), else the segment lower-cased;
//! missing tables are created. The value replaces a string value as it is; otherwise it is
//! read as a TOML value when it parses as one (`5`, `true`, `["a", "b"]`,
//! `{ env = "X" }`) and as a string when not. An override naming an unknown key is an error
//! like an unknown key in the file, and names the variable.
//!
//! ## Secrets
//! Passwords are [`Secret`]s: `"literal"` or `{ env = "VAR" }`, read when the config is
//! loaded (an unset variable is an error naming the key and the variable). They print as
//! `***`, URLs print with `***` for the password ([`ServerUrl`]), and no error message
//! contains a secret.
//!
//! ## Errors
//! Every [`ConfigError`] is one message that names the file, the key path (e.g.
//! `versions.future.redis.db`), the line and column (or the overriding variable), what is
//! wrong and how to fix it, with a "did you mean" for misspelt keys. Validation reports all
//! problems at once, one per line. The binary exits with [`ConfigError::EXIT_CODE`] (2).
//!
//! ## Isolation
//! Two versions may not share a source schema, a server_id, a MongoDB database, a Redis DB
//! (overlapping ranges), an index prefix (one a prefix of the other), a PostgreSQL schema
//! (on the same server and database), an HTTP port or a checkpoint file. Servers are the
//! same when their URLs share a normalized `host:port`. All conflicts are reported at
//! once, one line each, as [`ConfigError::NotIsolated`].

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

mod diagnose;
mod environment;
mod error;
mod file;
mod key_path;
mod lint;
mod load;
mod resolve;
mod secret;
mod server_url;
mod settings;
mod units;

pub use environment::Environment;
pub use error::{ConfigError, Origin, Problem};
pub use secret::Secret;
pub use server_url::ServerUrl;
pub use settings::{
    ApplySettings, CheckpointSettings, Config, HeartbeatSettings, MongoTarget, PostgresTarget,
    RedisTarget, SearchTarget, SourceSettings, Targets, TlsMode, TlsSettings, VersionConfig,
};
/// The table rules and start position are strata-core's, re-exported for callers of this
/// crate.
pub use strata_core::rules::{
    ColumnPattern, Guard, PatternError, TableOptions, TablePattern, TableRules,
};
pub use strata_core::StartFrom;
