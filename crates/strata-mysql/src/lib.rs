//! strata's MySQL/MariaDB binlog source.
//!
//! [`preflight`] checks that a server can be streamed from and says how to fix it when it
//! cannot; [`BinlogSource::start`] registers as a replica and streams decoded row changes,
//! grouped into whole transactions, as [`strata_core::SourceEvent`]s.
//!
//! Decoding uses the binlog's own TABLE_MAP metadata (`binlog_row_metadata=FULL`), never the
//! table's current definition, and keeps every value exact: DECIMAL as text, BIGINT
//! UNSIGNED as `u64`, TIMESTAMP as a UTC instant, binary strings as bytes, JSON as canonical
//! text with exact numbers. Rows of tables the [`TableFilter`] does not want are skipped at
//! their TABLE_MAP, before any value is decoded.
//!
//! Works with MySQL 8.0+/9.x (GTID sets, compressed transactions, partial JSON updates) and
//! MariaDB 10.5+ (its GTID events), over `mysql_native_password` or
//! `caching_sha2_password`, with or without TLS.

mod catalog;
mod charset;
mod config;
mod connect;
mod error;
mod filter;
mod framing;
mod gtid;
mod json;
mod mariadb;
mod preflight;
mod reader;
mod row_image;
mod source;
mod stats;
mod table_map;
mod temporal;

pub use config::{
    SourceConfig, TlsMode, DEFAULT_CHANNEL_CAPACITY, DEFAULT_HEARTBEAT, DEFAULT_READ_TIMEOUT,
    DEFAULT_SERVER_ID,
};
/// One plain connection to the source with the source's settings (URL, TLS), for the few
/// statements strata itself runs there (the opt-in heartbeat row).
pub use connect::connect as connect_source;
pub use connect::{current_position, BinlogFile, Flavor, ServerInfo};
pub use error::{PreflightFailure, SourceError};
pub use filter::{TableFilter, SYSTEM_SCHEMAS};
pub use preflight::preflight;
pub use source::BinlogSource;
pub use stats::{SourceCounters, SourceStats};
/// Where streaming starts (defined in `strata-core`, shared with the config and checkpoints).
pub use strata_core::StartFrom;

// Snapshot (backfill) and verification reading: tables described from information_schema
// in the decoder's exact form, rows read in key-ordered chunks as the decoder's values.
mod schema_info;
mod snapshot;
mod snapshot_value;
pub use schema_info::{ChunkKey, TableInfo};
pub use snapshot::{pages_by_key, SnapshotReader, SnapshotStart};
