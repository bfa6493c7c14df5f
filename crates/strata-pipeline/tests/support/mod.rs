//! Test doubles for the engine tests: an in-memory sink that keeps the guard semantics (a
//! logic double only; the real-store sinks are tested against real servers in strata-sinks),
//! an in-memory checkpoint store that records every save, and a script that builds source
//! events while keeping the expected final state.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_core::version::binlog_order;
use strata_core::{
    ApplyStats, BinlogPos, Checkpoint, CheckpointError, CheckpointStore, Column, ColumnType,
    CommitInfo, ErrorKind, Op, RowChange, Sink, SinkError, SinkOp, SinkOpKind, SourceEvent,
    TableId, TablePattern, TableRules, TableSchema, Value, Version,
};
use strata_pipeline::SourceFailure;
use tokio::sync::{mpsc, watch};

type Row = (Version, Option<Vec<Value>>);

/// An in-memory sink with the stores' guard: a write lands only if its version is greater
/// than the stored one (row or tombstone).
pub struct MemorySink {
    name: &'static str,
    /// Keep rows (false: only count, for the large memory-bound test).
    store_rows: bool,
    rows: Mutex<BTreeMap<(String, String), Row>>,
    last_order: Mutex<HashMap<(String, String), u64>>,
    /// Ops that arrived for a row with a lower binlog order than an earlier op of that row.
    pub order_violations: AtomicU64,
    /// Ops of batches made durable.
    pub ops_durable: AtomicU64,
    pub calls: AtomicU64,
    transient_left: AtomicU32,
    reject: Mutex<Option<(String, bool)>>,
    gate: watch::Sender<bool>,
    block_key: Mutex<Option<String>>,
    /// Applies currently waiting at the closed gate.
    pub waiting: AtomicUsize,
    waiting_changed: watch::Sender<usize>,
}

impl MemorySink {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self::build(name, true))
    }

    /// A sink that counts ops without keeping rows.
    pub fn counting(name: &'static str) -> Arc<Self> {
        Arc::new(Self::build(name, false))
    }

    fn build(name: &'static str, store_rows: bool) -> Self {
        MemorySink {
            name,
            store_rows,
            rows: Mutex::default(),
            last_order: Mutex::default(),
            order_violations: AtomicU64::new(0),
            ops_durable: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            transient_left: AtomicU32::new(0),
            reject: Mutex::new(None),
            gate: watch::Sender::new(false),
            block_key: Mutex::new(None),
            waiting: AtomicUsize::new(0),
            waiting_changed: watch::Sender::new(0),
        }
    }

    /// The next `n` applies fail with a connection error.
    pub fn fail_transiently(&self, n: u32) {
        self.transient_left.store(n, Ordering::SeqCst);
    }

    /// Any batch containing row `id` is refused for good; `name_op` says whether the error
    /// names the op (`op_index`) or leaves the pipeline to find it.
    pub fn reject_key(&self, id: &str, name_op: bool) {
        *self.reject.lock().unwrap() = Some((id.to_owned(), name_op));
    }

    /// Applies wait until `release` (only batches containing `key`, when given).
    pub fn block(&self, key: Option<&str>) {
        *self.block_key.lock().unwrap() = key.map(str::to_owned);
        self.gate.send_replace(true);
    }

    pub fn release(&self) {
        self.gate.send_replace(false);
    }

    /// Waits until at least `n` applies are waiting at the gate.
    pub async fn wait_blocked(&self, n: usize) {
        let mut rx = self.waiting_changed.subscribe();
        tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|w| *w >= n))
            .await
            .expect("the sink was never blocked")
            .unwrap();
    }

    /// The live rows of a target table: id → values.
    pub fn rows(&self, table: &str) -> BTreeMap<String, Vec<Value>> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|((t, _), _)| t == table)
            .filter_map(|((_, id), (_, row))| row.clone().map(|r| (id.clone(), r)))
            .collect()
    }

    /// Every stored entry, tombstones included.
    pub fn snapshot(&self) -> BTreeMap<(String, String), Row> {
        self.rows.lock().unwrap().clone()
    }

    async fn pass_gate(&self, batch: &[SinkOp]) {
        let mut gate = self.gate.subscribe();
        if !*gate.borrow_and_update() {
            return;
        }
        let key = self.block_key.lock().unwrap().clone();
        if let Some(key) = key {
            if !batch.iter().any(|op| op.id() == key) {
                return;
            }
        }
        let n = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        self.waiting_changed.send_replace(n);
        let _ = gate.wait_for(|closed| !*closed).await;
        let n = self.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        self.waiting_changed.send_replace(n);
    }
}

#[async_trait::async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(&self, batch: &[SinkOp]) -> Result<ApplyStats, SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.pass_gate(batch).await;
        if self
            .transient_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SinkError::new(
                self.name,
                ErrorKind::Connection,
                "connection refused (test double)",
            ));
        }
        let reject = self.reject.lock().unwrap().clone();
        if let Some((key, name_op)) = reject {
            if let Some(i) = batch.iter().position(|op| op.id() == key) {
                let e = SinkError::new(
                    self.name,
                    ErrorKind::Rejected,
                    "mapping conflict: field `v` cannot hold this value (test double)",
                );
                return Err(if name_op { e.at_op(i) } else { e });
            }
        }
        let mut stats = ApplyStats::default();
        {
            let mut last = self.last_order.lock().unwrap();
            for op in batch {
                let k = (op.table.name.clone(), op.id());
                let prev = last.insert(k, op.version.order);
                if prev.is_some_and(|p| p > op.version.order) {
                    self.order_violations.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if self.store_rows {
            let mut rows = self.rows.lock().unwrap();
            for op in batch {
                let k = (op.table.name.clone(), op.id());
                if rows.get(&k).is_some_and(|(v, _)| op.version <= *v) {
                    stats.stale += 1;
                    continue;
                }
                let value = match &op.kind {
                    SinkOpKind::Upsert(row) => Some(row.clone()),
                    SinkOpKind::Delete => None,
                };
                rows.insert(k, (op.version, value));
                stats.applied += 1;
            }
        } else {
            stats.applied = batch.len() as u64;
        }
        self.ops_durable
            .fetch_add(batch.len() as u64, Ordering::SeqCst);
        Ok(stats)
    }

    async fn check(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A checkpoint store in memory that records every save.
#[derive(Default)]
pub struct MemoryCheckpoints {
    saves: Mutex<Vec<Checkpoint>>,
}

impl MemoryCheckpoints {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn saves(&self) -> Vec<Checkpoint> {
        self.saves.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<BinlogPos> {
        self.saves
            .lock()
            .unwrap()
            .last()
            .map(|c| c.position.clone())
    }
}

#[async_trait::async_trait]
impl CheckpointStore for MemoryCheckpoints {
    async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.saves.lock().unwrap().last().cloned())
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        self.saves.lock().unwrap().push(checkpoint.clone());
        Ok(())
    }
}

/// Builds source events for one table `items (id INT PRIMARY KEY, v TEXT)`, keeping the
/// state the target must end up in.
pub struct Script {
    pub table: Arc<TableSchema>,
    file: Arc<str>,
    pos: u64,
    model: BTreeMap<i64, String>,
    pub events: Vec<SourceEvent>,
    pub commits: Vec<CommitInfo>,
}

impl Script {
    pub fn new(schema: &str) -> Self {
        let table = Arc::new(TableSchema {
            id: TableId::new(schema, "items"),
            columns: vec![
                Column {
                    name: "id".into(),
                    ty: ColumnType::Int {
                        bytes: 4,
                        unsigned: false,
                    },
                    nullable: false,
                },
                Column {
                    name: "v".into(),
                    ty: ColumnType::Text { charset: None },
                    nullable: true,
                },
            ],
            primary_key: vec![0],
        });
        Script {
            table,
            file: Arc::from("binlog.000001"),
            pos: 4,
            model: BTreeMap::new(),
            events: Vec::new(),
            commits: Vec::new(),
        }
    }

    fn row(id: i64, v: &str) -> Vec<Value> {
        vec![Value::Int(id), Value::String(v.to_owned())]
    }

    fn change(&mut self, op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) {
        self.pos += 100;
        self.events.push(SourceEvent::Change(RowChange {
            table: self.table.clone(),
            op,
            before,
            after,
            file: self.file.clone(),
            event_pos: self.pos,
            gtid: None,
            ts_ms: 1_700_000_000_000 + self.pos,
            order: binlog_order(1, self.pos, 0),
        }));
    }

    pub fn begin(&mut self) {
        self.events.push(SourceEvent::Begin {
            gtid: None,
            ts_ms: 1_700_000_000_000 + self.pos,
        });
    }

    /// Inserts the row, or updates it when it exists.
    pub fn write(&mut self, id: i64, v: &str) {
        match self.model.insert(id, v.to_owned()) {
            Some(old) => self.change(
                Op::Update,
                Some(Self::row(id, &old)),
                Some(Self::row(id, v)),
            ),
            None => self.change(Op::Insert, None, Some(Self::row(id, v))),
        }
    }

    /// Moves a row to a new key (an update of its primary key). `to` must be free.
    pub fn rekey(&mut self, from: i64, to: i64) {
        if let Some(v) = self.model.remove(&from) {
            self.model.insert(to, v.clone());
            self.change(
                Op::Update,
                Some(Self::row(from, &v)),
                Some(Self::row(to, &v)),
            );
        }
    }

    pub fn delete(&mut self, id: i64) {
        if let Some(old) = self.model.remove(&id) {
            self.change(Op::Delete, Some(Self::row(id, &old)), None);
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        self.model.contains_key(&id)
    }

    pub fn commit(&mut self) -> CommitInfo {
        self.pos += 31;
        let info = CommitInfo {
            position: BinlogPos::new(self.file.as_ref(), self.pos),
            gtid_set: Some(format!("0-1-{}", self.commits.len() + 1).parse().unwrap()),
            ts_ms: 1_700_000_000_000 + self.pos,
        };
        self.events.push(SourceEvent::Commit(info.clone()));
        self.commits.push(info.clone());
        info
    }

    /// The rows the target must hold: id text → values.
    pub fn expected(&self) -> BTreeMap<String, Vec<Value>> {
        self.model
            .iter()
            .map(|(id, v)| (id.to_string(), Self::row(*id, v)))
            .collect()
    }

    /// Takes the events built so far.
    pub fn take(&mut self) -> Vec<SourceEvent> {
        std::mem::take(&mut self.events)
    }
}

pub type EventTx = mpsc::Sender<Result<SourceEvent, SourceFailure>>;
pub type EventRx = mpsc::Receiver<Result<SourceEvent, SourceFailure>>;

/// A closed stream holding these events: a run over it ends when they are read.
pub fn stream(events: Vec<SourceEvent>) -> EventRx {
    let (tx, rx) = mpsc::channel(events.len().max(1));
    for e in events {
        tx.try_send(Ok(e)).unwrap();
    }
    rx
}

/// Polls `cond` every few milliseconds until it holds, failing after 20 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A unique schema name per test, so tests never share state.
pub fn unique_schema(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{test}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Rules replicating every table of `schema`.
pub fn every_table(schema: &str) -> TableRules {
    TableRules::new(
        vec![schema.to_owned()],
        vec![TablePattern::parse("*").unwrap()],
        vec![],
        vec![],
        BTreeMap::new(),
    )
}
