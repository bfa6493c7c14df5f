//! What can go wrong in the source, each error saying how to fix it.

use strata_core::{BinlogPos, ErrorKind, PositionError};

/// One failed preflight check: what is wrong and the statement or option that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightFailure {
    /// A short stable name of the check (`binlog_format`, `grants`, `start_position`, …).
    pub check: &'static str,
    /// One line: what is wrong, then how to fix it.
    pub message: String,
}

impl std::fmt::Display for PreflightFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An error of the binlog source.
///
/// [`SourceError::kind`] tells the caller what to do: `Config` errors need a human (exit code
/// 2), `Connection` errors may be retried from the last checkpoint, `Data` errors stop the
/// stream at the named position.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source settings given to strata are wrong (URL, start position, filter).
    #[error("{0}")]
    Config(String),

    /// The server's settings fail one or more preflight checks; one line per failed check.
    #[error("{}", join_lines(.0))]
    Preflight(Vec<PreflightFailure>),

    /// The server could not be reached or refused the login.
    #[error("cannot connect to the source {target}: {source}; check the URL, that the server runs and accepts TCP connections, and the user's password")]
    Connect {
        /// `host:port` (never the credentials).
        target: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },

    /// The server rejected a query strata needs (privileges, unsupported server).
    #[error("the source server rejected `{query}`: {source}")]
    Query {
        /// The statement (strata's own; never row values).
        query: String,
        /// The driver's or server's error.
        #[source]
        source: mysql_async::Error,
    },

    /// The server refused to stream the binlog from the requested position.
    #[error("the source server refused to stream the binlog from {from}: {message}; {fix}")]
    StartRejected {
        /// The requested start.
        from: String,
        /// The server's message.
        message: String,
        /// What to do about it.
        fix: String,
    },

    /// The connection dropped or went silent while streaming.
    #[error("connection to the source lost at {position}: {reason}; strata resumes from the last committed position when restarted")]
    ConnectionLost {
        /// Where the reader stood: just after the last event read.
        position: BinlogPos,
        /// What was observed (an I/O error, silence past the read timeout).
        reason: String,
    },

    /// An event or value could not be decoded; the stream stops here instead of dropping it.
    #[error("cannot decode the binlog at {position}: {reason}")]
    Decode {
        /// The event that could not be decoded.
        position: BinlogPos,
        /// What is wrong, and the fix when there is one.
        reason: String,
    },

    /// A MySQL partial JSON update could not be applied to the row's before image.
    #[error("cannot apply a partial JSON update to {table} column {column} at {position}: {reason}; run `SET GLOBAL binlog_row_value_options=''` on the source so full JSON documents are logged, then restart from a position before this one")]
    PartialJson {
        /// `schema.table`.
        table: String,
        /// The JSON column.
        column: String,
        /// The rows event.
        position: BinlogPos,
        /// Why the update could not be applied.
        reason: String,
    },
}

impl SourceError {
    /// How the caller should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Config(_)
            | SourceError::Preflight(_)
            | SourceError::StartRejected { .. } => ErrorKind::Config,
            SourceError::Connect { source, .. } | SourceError::Query { source, .. } => {
                match source {
                    // The server answered and refused (bad password, missing privilege):
                    // retrying cannot help.
                    mysql_async::Error::Server(_) => ErrorKind::Config,
                    mysql_async::Error::Url(_) => ErrorKind::Config,
                    _ => ErrorKind::Connection,
                }
            }
            SourceError::ConnectionLost { .. } => ErrorKind::Connection,
            SourceError::Decode { .. } | SourceError::PartialJson { .. } => ErrorKind::Data,
        }
    }

    /// The preflight failures, when this error is one.
    pub fn preflight_failures(&self) -> Option<&[PreflightFailure]> {
        match self {
            SourceError::Preflight(failures) => Some(failures),
            _ => None,
        }
    }
}

impl From<PositionError> for SourceError {
    /// A start position or GTID set that does not parse is a configuration error.
    fn from(e: PositionError) -> Self {
        SourceError::Config(e.to_string())
    }
}

fn join_lines(failures: &[PreflightFailure]) -> String {
    failures
        .iter()
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
