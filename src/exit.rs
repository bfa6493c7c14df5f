//! Exit codes, and which errors map to which.

/// A runtime failure (or, for `verify`, differences found).
pub const FAILURE: u8 = 1;
/// A usage, configuration or server-setup error: fix the input and run again.
pub const USAGE: u8 = 2;

/// An error in what the user gave us (flags, config): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 when any error in its chain is a usage, configuration or
/// server-setup error, else 1.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<strata_mysql::SourceError>() {
            if e.kind() == strata_core::ErrorKind::Config {
                return USAGE;
            }
        }
    }
    FAILURE
}
