//! PostgreSQL errors as [`SinkError`]s: the kind the retry policy reads, and a message that
//! names the store's reason without repeating row values.

use std::error::Error as _;
use strata_core::{ErrorKind, SinkError};
use tokio_postgres::error::{DbError, SqlState};

/// `what` failed with `e`.
pub(crate) fn pg_error(e: &tokio_postgres::Error, what: &str) -> SinkError {
    let (kind, reason) = match e.as_db_error() {
        Some(db) => (db_kind(db.code()), describe(db)),
        None => (client_kind(e), e.to_string()),
    };
    SinkError::new(
        "postgres",
        kind,
        format!("{what}: PostgreSQL refused or failed: {reason}"),
    )
}

/// The kind of an error the server reported, by SQLSTATE class.
pub(crate) fn db_kind(code: &SqlState) -> ErrorKind {
    let code = code.code();
    match code {
        "57014" => ErrorKind::Timeout,
        "57P01" | "57P02" | "57P03" => ErrorKind::Connection,
        "40001" | "40P01" | "55P03" | "55006" => ErrorKind::Throttled,
        "42501" | "3D000" | "3F000" => ErrorKind::Config,
        _ => match &code[..2] {
            "08" => ErrorKind::Connection,
            "53" => ErrorKind::Throttled,
            "28" => ErrorKind::Config,
            "22" | "23" | "42" | "0A" | "54" | "2B" | "44" => ErrorKind::Rejected,
            _ => ErrorKind::Internal,
        },
    }
}

/// A client-side failure: lost connections and I/O are transient.
fn client_kind(e: &tokio_postgres::Error) -> ErrorKind {
    if e.is_closed() {
        return ErrorKind::Connection;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some() {
            return ErrorKind::Connection;
        }
        source = s.source();
    }
    let text = e.to_string();
    if text.starts_with("timeout") {
        ErrorKind::Timeout
    } else if text.starts_with("invalid configuration") {
        ErrorKind::Config
    } else if text.starts_with("error connecting") {
        ErrorKind::Connection
    } else {
        ErrorKind::Internal
    }
}

/// The server's reason: SQLSTATE, message, and the column, type or constraint it names.
/// Data-exception messages quote the offending input (`invalid input syntax for type
/// integer: "…"`), so quoted text is blanked there: row values never reach logs.
fn describe(db: &DbError) -> String {
    let code = db.code().code();
    let message = if code.starts_with("22") {
        blank_quoted(db.message())
    } else {
        db.message().to_owned()
    };
    let mut out = format!("{message} (SQLSTATE {code}");
    if let Some(column) = db.column() {
        out.push_str(&format!(", column {column}"));
    }
    if let Some(datatype) = db.datatype() {
        out.push_str(&format!(", type {datatype}"));
    }
    if let Some(constraint) = db.constraint() {
        out.push_str(&format!(", constraint {constraint}"));
    }
    out.push(')');
    out
}

fn blank_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for ch in message.chars() {
        if ch == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_blanked() {
        assert_eq!(
            blank_quoted("invalid input syntax for type integer: \"secret\""),
            "invalid input syntax for type integer: \"…\""
        );
    }

    #[test]
    fn sqlstates_map_to_retry_kinds() {
        assert_eq!(
            db_kind(&SqlState::CONNECTION_FAILURE),
            ErrorKind::Connection
        );
        assert_eq!(
            db_kind(&SqlState::T_R_DEADLOCK_DETECTED),
            ErrorKind::Throttled
        );
        assert_eq!(
            db_kind(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
            ErrorKind::Rejected
        );
        assert_eq!(db_kind(&SqlState::UNDEFINED_COLUMN), ErrorKind::Rejected);
        assert_eq!(db_kind(&SqlState::QUERY_CANCELED), ErrorKind::Timeout);
        assert_eq!(db_kind(&SqlState::INVALID_PASSWORD), ErrorKind::Config);
    }
}
