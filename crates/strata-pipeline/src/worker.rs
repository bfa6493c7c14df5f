//! One apply worker: takes its partition's ops and commit markers off a bounded queue,
//! batches them, applies each batch to its sink (retrying transient errors), and
//! acknowledges the markers a durable batch covers.

use crate::batch::{Batch, WorkItem};
use crate::checkpointer::Ledger;
use crate::error::Rejection;
use crate::progress::{BatchObserver, Progress};
use crate::retry::{apply_with_retry, isolate_refused, Applied};
use crate::settings::ApplySettings;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use strata_core::{BinlogPos, ErrorKind, Sink, SinkError};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Why a run must stop now: the first permanent failure, kept for the caller.
#[derive(Debug, Default)]
pub(crate) struct Halt {
    token: CancellationToken,
    reason: Mutex<Option<HaltReason>>,
}

/// What stopped the run.
#[derive(Debug)]
pub(crate) enum HaltReason {
    Rejected(Box<Rejection>),
    Panicked(String),
    /// The drain timeout passed; not an error of its own.
    Abandoned,
}

impl Halt {
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Records the reason (the first one wins) and stops every worker and the reader.
    pub fn stop(&self, reason: HaltReason) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.token.cancel();
    }

    pub fn take_reason(&self) -> Option<HaltReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Everything a worker needs besides its queue.
pub(crate) struct Worker {
    /// The worker's index in the ledger.
    pub slot: usize,
    /// The sink's index in `Progress::sinks`.
    pub sink_index: usize,
    pub sink: Arc<dyn Sink>,
    pub settings: Arc<ApplySettings>,
    pub ledger: Arc<Ledger>,
    pub progress: watch::Sender<Progress>,
    pub halt: Arc<Halt>,
    /// Told about each durable batch (latency and size), when the caller asked for it.
    pub observer: Option<Arc<dyn BatchObserver>>,
}

/// Stops the run if the worker's task unwinds (a panicking sink), so the reader does not
/// wait forever on a queue nobody empties.
struct PanicGuard<'a> {
    sink: &'static str,
    halt: &'a Halt,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.halt.stop(HaltReason::Panicked(format!(
                "the apply worker of sink {} panicked (see the log above); restart resumes from the checkpoint",
                self.sink
            )));
        }
    }
}

impl Worker {
    /// Runs until the queue is closed and drained, or the run halts.
    pub async fn run(self, mut rx: mpsc::Receiver<WorkItem>) {
        let _guard = PanicGuard {
            sink: self.sink.name(),
            halt: &self.halt,
        };
        let halt = self.halt.token().clone();
        let max_rows = self.settings.batch_max_rows;
        let mut batch = Batch::default();
        let mut items = Vec::with_capacity(max_rows.min(4096));
        loop {
            let room = max_rows.saturating_sub(batch.ops.len()).clamp(1, 4096);
            let received = match batch.started {
                None => tokio::select! {
                    biased;
                    _ = halt.cancelled() => return,
                    n = rx.recv_many(&mut items, room) => n,
                },
                Some(started) => {
                    let deadline = started + self.settings.batch_max_delay;
                    tokio::select! {
                        biased;
                        _ = halt.cancelled() => return,
                        _ = tokio::time::sleep_until(deadline) => {
                            if !self.flush(&mut batch).await {
                                return;
                            }
                            continue;
                        }
                        n = rx.recv_many(&mut items, room) => n,
                    }
                }
            };
            if received == 0 {
                // Queue closed and empty: the run is ending; make what we hold durable.
                self.flush(&mut batch).await;
                return;
            }
            for item in items.drain(..) {
                match item {
                    WorkItem::Op(routed) => {
                        batch.push(routed);
                        let full = batch.ops.len() >= max_rows
                            || batch.bytes >= self.settings.batch_max_bytes;
                        if full && !self.flush(&mut batch).await {
                            return;
                        }
                    }
                    WorkItem::Commit(seq) if batch.is_empty() => self.ledger.ack(self.slot, seq),
                    WorkItem::Commit(seq) => batch.marker = Some(seq),
                }
            }
        }
    }

    /// Applies the batch; acknowledges its marker once durable. False when the run halts.
    async fn flush(&self, batch: &mut Batch) -> bool {
        if batch.is_empty() {
            return true;
        }
        let superseded = batch.drop_superseded() as u64;
        let halt = self.halt.token();
        let count_retry = |e: &SinkError| {
            self.progress.send_modify(|p| {
                if let Some(s) = p.sinks.get_mut(self.sink_index) {
                    s.retries += 1;
                    s.count_error(e.kind);
                }
            })
        };
        let started = Instant::now();
        let applied = apply_with_retry(
            &*self.sink,
            &batch.ops,
            &self.settings.retry,
            halt,
            count_retry,
        )
        .await;
        match applied {
            Applied::Durable(stats) => {
                if let Some(seq) = batch.marker {
                    self.ledger.ack(self.slot, seq);
                }
                if let Some(observer) = &self.observer {
                    observer.batch_applied(self.sink.name(), batch.ops.len(), started.elapsed());
                }
                self.progress.send_modify(|p| {
                    if let Some(s) = p.sinks.get_mut(self.sink_index) {
                        s.applied += stats.applied;
                        s.stale += stats.stale;
                        s.superseded += superseded;
                        s.batches += 1;
                    }
                });
                batch.clear();
                true
            }
            Applied::Refused(error) => {
                self.progress.send_modify(|p| {
                    if let Some(s) = p.sinks.get_mut(self.sink_index) {
                        s.count_error(error.kind);
                    }
                });
                let rejection = self.describe(batch, error).await;
                tracing::error!(
                    sink = rejection.sink,
                    table = %rejection.table,
                    position = %rejection.position,
                    kind = rejection.kind.as_str(),
                    "sink refused a write; stopping the version"
                );
                self.halt.stop(HaltReason::Rejected(Box::new(rejection)));
                false
            }
            Applied::Cancelled => false,
        }
    }

    /// Names the refused op: the one the sink pointed at, else (for a refusal about data)
    /// the one a bisection of the batch isolates, else the batch's first op, marked inexact.
    async fn describe(&self, batch: &Batch, error: SinkError) -> Rejection {
        if let Some(i) = error.op_index.filter(|&i| i < batch.ops.len()) {
            return self.rejection(batch, i, error, true);
        }
        if batch.ops.len() == 1 {
            return self.rejection(batch, 0, error, true);
        }
        // Config or Internal refusals are about the store, not one row: bisecting would
        // only blame the first op.
        if !matches!(error.kind, ErrorKind::Rejected | ErrorKind::Data) {
            return self.rejection(batch, 0, error, false);
        }
        let found = isolate_refused(
            &*self.sink,
            &batch.ops,
            &self.settings.retry,
            self.halt.token(),
            |_| {},
        )
        .await;
        match found {
            Some((i, e)) => self.rejection(batch, i, e, true),
            None => self.rejection(batch, 0, error, false),
        }
    }

    fn rejection(&self, batch: &Batch, i: usize, error: SinkError, exact: bool) -> Rejection {
        let op = &batch.ops[i];
        let meta = &batch.meta[i];
        let mut reason = error.message.clone();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Rejection {
            sink: self.sink.name(),
            table: op.table.source.clone(),
            target: op.table.name.clone(),
            key: meta.id.clone(),
            version: op.version,
            position: BinlogPos::new(meta.file.as_ref(), meta.event_pos),
            kind: error.kind,
            exact,
            reason,
        }
    }
}
