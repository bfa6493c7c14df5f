//! MongoDB failures → [`SinkError`] with the kind the retry policy reads.

use strata_core::{ErrorKind, SinkError};

/// The sink's name in errors and metrics.
pub(super) const SINK: &str = "mongodb";

/// A driver error, with what strata was doing when it happened.
pub(super) fn driver_error(doing: &str, err: mongodb::error::Error) -> SinkError {
    use mongodb::error::{ErrorKind as Driver, WriteFailure};
    let kind = match err.kind.as_ref() {
        Driver::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        Driver::Io(_)
        | Driver::ConnectionPoolCleared { .. }
        | Driver::ServerSelection { .. }
        | Driver::DnsResolve { .. } => ErrorKind::Connection,
        Driver::Authentication { .. } | Driver::InvalidTlsConfig { .. } => ErrorKind::Config,
        Driver::InvalidArgument { .. } => ErrorKind::Config,
        Driver::Command(command) => code_kind(command.code),
        Driver::Write(WriteFailure::WriteError(write)) => code_kind(write.code),
        Driver::Write(WriteFailure::WriteConcernError(_)) => ErrorKind::Connection,
        Driver::BsonSerialization(_) | Driver::BsonDeserialization(_) => ErrorKind::Data,
        _ if err.contains_label("RetryableWriteError") => ErrorKind::Connection,
        _ => ErrorKind::Internal,
    };
    let hint = match kind {
        ErrorKind::Connection => " (is the MongoDB server up and reachable at the configured url?)",
        ErrorKind::Config => " (check the url's credentials, TLS options and the user's roles)",
        _ => "",
    };
    SinkError::new(SINK, kind, format!("{doing}: {err}{hint}")).with_source(err)
}

/// A request that did not answer within the configured time.
pub(super) fn timed_out(doing: &str, limit: std::time::Duration) -> SinkError {
    SinkError::new(
        SINK,
        ErrorKind::Timeout,
        format!(
            "{doing}: no answer within {limit:?} (raise request_timeout if the server is slow)"
        ),
    )
}

/// What a server error code means for retrying: the codes MongoDB documents as transient
/// (failover, shutdown, write conflicts, time limits) retry; everything else — duplicate
/// keys on a user's unique index, document validation, bad field names — is refused for
/// good.
pub(super) fn code_kind(code: i32) -> ErrorKind {
    match code {
        // NetworkTimeout, MaxTimeMSExpired, ExceededTimeLimit, WriteConcernFailed.
        89 | 50 | 262 | 64 => ErrorKind::Timeout,
        // HostUnreachable, HostNotFound, ShutdownInProgress, PrimarySteppedDown,
        // SocketException, NotWritablePrimary, InterruptedAtShutdown,
        // InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary,
        // WriteConflict, LockTimeout, ReadConcernMajorityNotAvailableYet.
        6 | 7 | 91 | 189 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436 | 112 | 24 | 134 => {
            ErrorKind::Connection
        }
        // Unauthorized, AuthenticationFailed.
        13 | 18 => ErrorKind::Config,
        _ => ErrorKind::Rejected,
    }
}

/// A server message without the row values some messages quote (a duplicate key error
/// ends with `dup key: { field: "value" }`): values must not reach logs.
pub(super) fn without_values(message: &str) -> &str {
    match message.find(" dup key:") {
        Some(at) => &message[..at],
        None => message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn failover_retries_and_duplicates_do_not() {
        assert_eq!(code_kind(189), ErrorKind::Connection);
        assert_eq!(code_kind(50), ErrorKind::Timeout);
        assert_eq!(code_kind(11000), ErrorKind::Rejected);
        assert_eq!(code_kind(121), ErrorKind::Rejected);
    }

    #[test]
    fn duplicate_key_messages_lose_the_value() {
        let msg =
            r#"E11000 duplicate key error collection: db.kv index: v_1 dup key: { v: "secret" }"#;
        assert_eq!(
            without_values(msg),
            "E11000 duplicate key error collection: db.kv index: v_1"
        );
    }
}
