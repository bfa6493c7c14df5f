//! Error kinds shared by every stage, and the one function that maps a kind to what to do.

/// Why an operation failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Connection refused, reset or lost.
    Connection,
    /// A request or read timed out.
    Timeout,
    /// The store asked us to slow down (HTTP 429/503, a busy server).
    Throttled,
    /// The store refused the write for good (a mapping conflict, a value it cannot store).
    Rejected,
    /// The configuration or the server's settings are wrong; retrying cannot help.
    Config,
    /// A value or event could not be decoded or converted.
    Data,
    /// Anything else: a bug or an unexpected answer.
    Internal,
}

impl ErrorKind {
    /// A short, stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Config => "config",
            ErrorKind::Data => "data",
            ErrorKind::Internal => "internal",
        }
    }

    /// What to do about an error of this kind.
    pub fn retry_directive(self) -> RetryDirective {
        match self {
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Throttled => {
                RetryDirective::Backoff
            }
            ErrorKind::Rejected | ErrorKind::Config | ErrorKind::Data | ErrorKind::Internal => {
                RetryDirective::Stop
            }
        }
    }
}

/// The answer of [`ErrorKind::retry_directive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDirective {
    /// Transient: retry with exponential backoff and jitter.
    Backoff,
    /// Permanent: stop the version without advancing its checkpoint, and say why.
    Stop,
}
