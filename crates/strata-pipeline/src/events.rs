//! What the pipeline reads: a stream of source events, and how the source says it failed.

use strata_core::{ErrorKind, SourceEvent};
use tokio::sync::mpsc;

/// A source failure as the pipeline sees it: a kind (whose retry directive tells the caller
/// whether reconnecting can help) and a message that already says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceFailure {
    /// Connection/Timeout for a lost server, Data for undecodable events, Config for setup.
    pub kind: ErrorKind,
    /// The source's message (no row values, no credentials).
    pub message: String,
}

impl SourceFailure {
    /// A failure of this kind with this message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceFailure {
            kind,
            message: message.into(),
        }
    }
}

/// A source of events for one run of the pipeline.
///
/// `None` means the source ended cleanly (e.g. it was asked to stop at the server's current
/// end); the pipeline then drains, checkpoints and returns `Ok`. An `Err` ends the run with
/// [`crate::PipelineError::Source`] after the durable part was checkpointed.
#[async_trait::async_trait]
pub trait EventSource: Send {
    /// The next event; cancel-safe (the pipeline may drop the future on shutdown).
    async fn next_event(&mut self) -> Option<Result<SourceEvent, SourceFailure>>;
}

#[async_trait::async_trait]
impl EventSource for mpsc::Receiver<Result<SourceEvent, SourceFailure>> {
    async fn next_event(&mut self) -> Option<Result<SourceEvent, SourceFailure>> {
        self.recv().await
    }
}
