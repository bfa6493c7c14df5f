//! The copy task: reads each table in key order, chunk by chunk from where the persisted
//! progress left off, and sends every chunk to the pipeline as one transaction.

use super::feed::{ChunkDone, ChunkEvents, Progress};
use super::state::key_from_json;
use super::throttle::Throttle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strata_core::{SourceEvent, Value};
use strata_mysql::{SnapshotReader, TableInfo};
use strata_pipeline::CancellationToken;
use tokio::sync::mpsc;

/// How a table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In key order, `chunk_rows` at a time, resumable after the last durable key.
    Paged,
    /// One scan of the whole table (no usable key; the config opted it in by naming a
    /// key); after an interruption the table is copied again from its start.
    Full,
}

/// A table to copy.
pub struct Planned {
    /// The table as the snapshot reads it.
    pub info: TableInfo,
    /// Index in the state's tables.
    pub index: usize,
    /// How it is read.
    pub mode: Mode,
}

/// Why copying stopped early.
#[derive(Debug)]
pub enum Stopped {
    /// Shutdown, or the pipeline stopped taking events.
    Interrupted,
    /// The source failed.
    Source(strata_mysql::SourceError),
}

/// Everything the copy task needs.
pub struct Copier {
    /// The source connection the chunks are read on.
    pub reader: SnapshotReader,
    /// The tables, in copy order.
    pub tables: Vec<Planned>,
    /// Chunks sent are recorded here; it says what is durable.
    pub progress: Arc<Progress>,
    /// Builds each chunk's events.
    pub events: ChunkEvents,
    /// The pipeline's feed.
    pub tx: mpsc::Sender<SourceEvent>,
    /// Rate cap and busy-source pause.
    pub throttle: Throttle,
    /// Rows per chunk.
    pub chunk_rows: usize,
}

impl Copier {
    /// Copies every table not yet done. Returns `Ok` once every chunk was sent.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), Stopped> {
        let seq = Arc::new(AtomicU64::new(0));
        let tables = std::mem::take(&mut self.tables);
        for table in &tables {
            let state = self.progress.snapshot();
            let Some(progress) = state.tables.get(table.index) else {
                continue;
            };
            if progress.done {
                continue;
            }
            tracing::info!(table = %table.info.schema.id, rows_done = progress.rows, "copying table");
            match table.mode {
                Mode::Paged => {
                    let resume: Option<Vec<Value>> = match &progress.last_key {
                        Some(json) => Some(
                            json.iter()
                                .map(key_from_json)
                                .collect::<Option<_>>()
                                .ok_or(Stopped::Source(strata_mysql::SourceError::Config(format!(
                                    "the snapshot state's resume key of table {} is unreadable; run with --restart",
                                    table.info.schema.id
                                ))))?,
                        ),
                        None => None,
                    };
                    self.copy_paged(table, resume, &seq, &shutdown).await?;
                }
                Mode::Full => self.copy_full(table, &seq, &shutdown).await?,
            }
        }
        self.reader.disconnect().await;
        // The feed stays open until every chunk is durable: closing it makes the pipeline
        // drain its queues within its drain timeout, which a slow target may not meet.
        while !self.progress.snapshot().done() {
            tokio::select! {
                _ = shutdown.cancelled() => return Err(Stopped::Interrupted),
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
        }
        Ok(())
    }

    async fn copy_paged(
        &mut self,
        table: &Planned,
        mut after: Option<Vec<Value>>,
        seq: &AtomicU64,
        shutdown: &CancellationToken,
    ) -> Result<(), Stopped> {
        let key = table.info.chunk_key.columns().to_vec();
        loop {
            if !self
                .throttle
                .before_chunk(&mut self.reader, shutdown)
                .await
                .map_err(Stopped::Source)?
            {
                return Err(Stopped::Interrupted);
            }
            let rows = self
                .reader
                .read_chunk(&table.info, after.as_deref(), self.chunk_rows)
                .await
                .map_err(Stopped::Source)?;
            let n = rows.len();
            self.throttle.read(n as u64);
            let last_key: Option<Vec<Value>> = rows
                .last()
                .map(|r| key.iter().map(|&i| r[i].clone()).collect());
            let done = n < self.chunk_rows;
            let chunk = ChunkDone {
                seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
                table: table.index,
                last_key: last_key.clone(),
                rows: n as u64,
                table_done: done,
            };
            send_chunk(
                &self.tx,
                &self.events,
                &self.progress,
                table,
                rows,
                chunk,
                shutdown,
            )
            .await?;
            if done {
                return Ok(());
            }
            after = last_key;
        }
    }

    async fn copy_full(
        &mut self,
        table: &Planned,
        seq: &Arc<AtomicU64>,
        shutdown: &CancellationToken,
    ) -> Result<(), Stopped> {
        tracing::warn!(table = %table.info.schema.id, "no usable key: copying the whole table in one scan (an interrupted copy starts this table over)");
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, progress) = (self.tx.clone(), self.progress.clone());
        let events = Arc::new(self.events.clone());
        let index = table.index;
        let schema = table.info.schema.clone();
        let flag = interrupted.clone();
        let shutdown_rows = shutdown.clone();
        let seq_rows = seq.clone();
        self.reader
            .read_all(&table.info, self.chunk_rows, move |rows| {
                let (tx, events, progress, schema, flag, shutdown, seq) = (
                    tx.clone(),
                    events.clone(),
                    progress.clone(),
                    schema.clone(),
                    flag.clone(),
                    shutdown_rows.clone(),
                    seq_rows.clone(),
                );
                async move {
                    let chunk = ChunkDone {
                        seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
                        table: index,
                        last_key: None,
                        rows: rows.len() as u64,
                        table_done: false,
                    };
                    let ok =
                        send_rows(&tx, &events, &progress, &schema, rows, chunk, &shutdown).await;
                    if !ok {
                        flag.store(true, Ordering::Relaxed);
                    }
                    ok
                }
            })
            .await
            .map_err(Stopped::Source)?;
        if interrupted.load(Ordering::Relaxed) {
            return Err(Stopped::Interrupted);
        }
        let chunk = ChunkDone {
            seq: seq.fetch_add(1, Ordering::Relaxed) + 1,
            table: table.index,
            last_key: None,
            rows: 0,
            table_done: true,
        };
        send_chunk(
            &self.tx,
            &self.events,
            &self.progress,
            table,
            Vec::new(),
            chunk,
            shutdown,
        )
        .await
    }
}

async fn send_chunk(
    tx: &mpsc::Sender<SourceEvent>,
    events: &ChunkEvents,
    progress: &Progress,
    table: &Planned,
    rows: Vec<Vec<Value>>,
    chunk: ChunkDone,
    shutdown: &CancellationToken,
) -> Result<(), Stopped> {
    if send_rows(
        tx,
        events,
        progress,
        &table.info.schema,
        rows,
        chunk,
        shutdown,
    )
    .await
    {
        Ok(())
    } else {
        Err(Stopped::Interrupted)
    }
}

/// Sends one chunk as a transaction; `false` when the pipeline stopped or shutdown came.
async fn send_rows(
    tx: &mpsc::Sender<SourceEvent>,
    events: &ChunkEvents,
    progress: &Progress,
    schema: &Arc<strata_core::TableSchema>,
    rows: Vec<Vec<Value>>,
    chunk: ChunkDone,
    shutdown: &CancellationToken,
) -> bool {
    let seq = chunk.seq;
    if !send(tx, events.begin(), shutdown).await {
        return false;
    }
    for row in rows {
        if !send(tx, events.insert(schema, row), shutdown).await {
            return false;
        }
    }
    // Recorded before its commit is sent: it cannot be durable before that.
    progress.sent(chunk);
    send(tx, events.commit(seq), shutdown).await
}

async fn send(
    tx: &mpsc::Sender<SourceEvent>,
    event: SourceEvent,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => false,
        sent = tx.send(event) => sent.is_ok(),
    }
}
