//! How snapshot rows go through the version's ordinary pipeline: each chunk is one
//! transaction (`Begin`, an insert per row, `Commit`) whose commit "position" is the chunk's
//! sequence number, and the pipeline's checkpoint store is this module's [`ChunkStore`],
//! which turns "every chunk up to N is durable in every target" into persisted progress.
//! The version's own streaming checkpoint is never touched by it.

use super::state::{self, key_to_json, SnapshotState};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use strata_core::{
    BinlogPos, Checkpoint, CheckpointError, CheckpointStore, CommitInfo, Op, RowChange,
    SourceEvent, TableSchema, Value,
};
use strata_pipeline::{EventSource, SourceFailure};
use tokio::sync::mpsc;

/// The pseudo binlog file name of snapshot chunk commits (their `pos` is the chunk number).
pub const CHUNK_FILE: &str = "snapshot-chunk";

/// What one chunk moves a table forward by, once durable.
#[derive(Debug, Clone)]
pub struct ChunkDone {
    /// The chunk's number (its commit's `pos`).
    pub seq: u64,
    /// Index into the state's tables.
    pub table: usize,
    /// The key of the chunk's last row (`None` for a full-copy batch or an empty table).
    pub last_key: Option<Vec<Value>>,
    /// Rows in the chunk.
    pub rows: u64,
    /// This chunk ends the table.
    pub table_done: bool,
}

/// Shared between the reader (which records chunks as it sends them), the store (which
/// applies them once durable) and progress reporting.
#[derive(Debug)]
pub struct Progress {
    /// The state as last made durable.
    pub state: Mutex<SnapshotState>,
    pending: Mutex<VecDeque<ChunkDone>>,
    path: PathBuf,
}

impl Progress {
    /// Progress starting from `state`, persisted to `path`.
    pub fn new(state: SnapshotState, path: PathBuf) -> Arc<Progress> {
        Arc::new(Progress {
            state: Mutex::new(state),
            pending: Mutex::new(VecDeque::new()),
            path,
        })
    }

    /// Records a chunk sent to the pipeline (before its commit is sent).
    pub fn sent(&self, chunk: ChunkDone) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(chunk);
    }

    /// A copy of the state as last made durable.
    pub fn snapshot(&self) -> SnapshotState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies every chunk up to `seq` and persists the state.
    fn durable_up_to(&self, seq: u64) -> std::io::Result<()> {
        let done: Vec<ChunkDone> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let mut out = Vec::new();
            while pending.front().is_some_and(|c| c.seq <= seq) {
                if let Some(c) = pending.pop_front() {
                    out.push(c);
                }
            }
            out
        };
        if done.is_empty() {
            return Ok(());
        }
        let copy = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for chunk in done {
                if let Some(table) = state.tables.get_mut(chunk.table) {
                    table.rows += chunk.rows;
                    if let Some(key) = &chunk.last_key {
                        table.last_key = Some(key.iter().map(key_to_json).collect());
                    }
                    table.done |= chunk.table_done;
                }
            }
            if state.done() && state.finished_at_ms.is_none() {
                state.finished_at_ms = Some(state::now_ms());
            }
            state.clone()
        };
        state::save(&self.path, &copy)
    }
}

/// The snapshot pipeline's checkpoint store: a durable commit is a durable chunk.
pub struct ChunkStore {
    /// Where durable chunks are recorded.
    pub progress: Arc<Progress>,
}

#[async_trait::async_trait]
impl CheckpointStore for ChunkStore {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(None)
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        if checkpoint.position.file != CHUNK_FILE {
            return Ok(());
        }
        let seq = checkpoint.position.pos;
        let progress = self.progress.clone();
        let location = progress.path.display().to_string();
        tokio::task::spawn_blocking(move || progress.durable_up_to(seq))
            .await
            .map_err(|e| CheckpointError::Io {
                location: location.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| CheckpointError::Io { location, source })
    }
}

/// The pipeline's event source: events the copy task sends over a bounded channel; the
/// channel closing ends the run.
pub struct Feed(pub mpsc::Receiver<SourceEvent>);

#[async_trait::async_trait]
impl EventSource for Feed {
    async fn next_event(&mut self) -> Option<Result<SourceEvent, SourceFailure>> {
        self.0.recv().await.map(Ok)
    }
}

/// Builds the events of one chunk.
#[derive(Debug, Clone)]
pub struct ChunkEvents {
    /// The recorded position's binlog file (named in planning errors).
    pub file: Arc<str>,
    /// The recorded position.
    pub position: BinlogPos,
    /// Its binlog order: the version of every snapshot row.
    pub order: u64,
    /// When the snapshot started, as the rows' timestamp.
    pub ts_ms: u64,
}

impl ChunkEvents {
    /// A chunk's `Begin`.
    pub fn begin(&self) -> SourceEvent {
        SourceEvent::Begin {
            gtid: None,
            ts_ms: self.ts_ms,
        }
    }

    /// An insert of `row`, versioned at the recorded position: every later binlog change
    /// of the row beats it, and it beats every earlier one.
    pub fn insert(&self, table: &Arc<TableSchema>, row: Vec<Value>) -> SourceEvent {
        SourceEvent::Change(RowChange {
            table: table.clone(),
            op: Op::Insert,
            before: None,
            after: Some(row),
            file: self.file.clone(),
            event_pos: self.position.pos,
            gtid: None,
            ts_ms: self.ts_ms,
            order: self.order,
        })
    }

    /// Chunk `seq`'s `Commit`.
    pub fn commit(&self, seq: u64) -> SourceEvent {
        SourceEvent::Commit(CommitInfo {
            position: BinlogPos::new(CHUNK_FILE, seq),
            gtid_set: None,
            ts_ms: self.ts_ms,
        })
    }
}
