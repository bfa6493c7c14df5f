//! How to reach the source and where to start reading.

use crate::error::SourceError;
use crate::filter::TableFilter;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use strata_core::StartFrom;

/// Default replica `server_id`; each replicator reading one server needs its own.
pub const DEFAULT_SERVER_ID: u32 = 5_417;
/// Default interval at which the server sends a heartbeat when it has nothing to send.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Default silence after which the connection is declared dead (3 heartbeats).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Default number of events buffered between the reader task and the consumer.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1_024;

/// Whether and how the connection is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it (certificate not verified), else plain TCP.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not verified (encryption only).
    Required,
    /// TLS with the certificate chain verified against the CA (`tls_ca` or the built-in
    /// roots); the host name is not checked.
    VerifyCa,
    /// TLS with the certificate chain and the host name verified.
    VerifyIdentity,
}

impl FromStr for TlsMode {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "disabled" | "off" => Ok(TlsMode::Disabled),
            "preferred" => Ok(TlsMode::Preferred),
            "required" => Ok(TlsMode::Required),
            "verify-ca" => Ok(TlsMode::VerifyCa),
            "verify-identity" => Ok(TlsMode::VerifyIdentity),
            _ => Err(SourceError::Config(format!(
                "`{s}` is not a TLS mode: use disabled, preferred, required, verify-ca or verify-identity"
            ))),
        }
    }
}

/// Everything the source needs to connect and stream.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// `mysql://user:password@host:port` (the password is never logged).
    pub url: String,
    /// Encryption of the connection.
    pub tls: TlsMode,
    /// A PEM file with the CA certificate(s) used by `verify-ca` / `verify-identity`.
    pub tls_ca: Option<PathBuf>,
    /// The replica id this reader registers with; unique among the server's replicas.
    pub server_id: u32,
    /// Where streaming starts.
    pub start: StartFrom,
    /// Which tables are read; rows of others are skipped undecoded.
    pub filter: TableFilter,
    /// How often the server sends a heartbeat while idle.
    pub heartbeat: Duration,
    /// Silence after which the connection is declared lost; more than twice `heartbeat`.
    pub read_timeout: Duration,
    /// Events buffered between the reader task and the consumer (memory bound).
    pub channel_capacity: usize,
    /// End the stream cleanly when the reader reaches the server's current end instead of
    /// waiting for new events (`strata inspect` without `--follow`).
    pub stop_at_end: bool,
}

impl SourceConfig {
    /// A config with the defaults: TLS preferred, start at the current end, every
    /// non-system table, follow forever.
    pub fn new(url: impl Into<String>) -> Self {
        SourceConfig {
            url: url.into(),
            tls: TlsMode::default(),
            tls_ca: None,
            server_id: DEFAULT_SERVER_ID,
            start: StartFrom::Current,
            filter: TableFilter::all(),
            heartbeat: DEFAULT_HEARTBEAT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            stop_at_end: false,
        }
    }

    /// Checks the settings that do not need the server.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.server_id == 0 {
            return Err(SourceError::Config(
                "server_id 0 is not allowed for a replica: choose a number unique among the source's replicas, e.g. --server-id 5417".into(),
            ));
        }
        if self.heartbeat.is_zero() {
            return Err(SourceError::Config(
                "the heartbeat period must be positive, e.g. 5s".into(),
            ));
        }
        if self.read_timeout <= self.heartbeat * 2 {
            return Err(SourceError::Config(format!(
                "the read timeout ({:?}) must be more than twice the heartbeat period ({:?}), or an idle but healthy connection would be declared lost",
                self.read_timeout, self.heartbeat
            )));
        }
        if self.channel_capacity == 0 {
            return Err(SourceError::Config(
                "the channel capacity must be at least 1".into(),
            ));
        }
        if matches!(self.tls, TlsMode::Disabled | TlsMode::Preferred) && self.tls_ca.is_some() {
            return Err(SourceError::Config(
                "a TLS CA file is set but the TLS mode does not verify certificates: use --tls verify-ca or verify-identity".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn read_timeout_must_exceed_two_heartbeats() {
        let mut cfg = SourceConfig::new("mysql://root@127.0.0.1:3306");
        cfg.validate().unwrap();
        cfg.read_timeout = cfg.heartbeat * 2;
        assert!(cfg.validate().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!(
            "verify_identity".parse::<TlsMode>().unwrap(),
            TlsMode::VerifyIdentity
        );
        assert!("maybe".parse::<TlsMode>().is_err());
    }
}
