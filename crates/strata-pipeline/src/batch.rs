//! What flows to a worker, and the batch a worker gathers before applying it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use strata_core::{SinkOp, SinkOpKind, Value};
use tokio::time::Instant;

/// A message on a worker's queue.
#[derive(Debug)]
pub(crate) enum WorkItem {
    /// One op, in binlog order among the ops of its row.
    Op(Routed),
    /// Every op sent before this marker belongs to transactions up to commit `seq`.
    Commit(u64),
}

/// An op with what an error message needs to say where it came from.
#[derive(Debug)]
pub(crate) struct Routed {
    pub op: SinkOp,
    pub meta: OpMeta,
}

/// Where an op came from.
#[derive(Debug, Clone)]
pub(crate) struct OpMeta {
    /// The row's id in targets (computed once, for partitioning and merging).
    pub id: String,
    pub file: Arc<str>,
    pub event_pos: u64,
    /// The op's approximate size in memory.
    pub bytes: usize,
}

/// Ops waiting to be applied together, and the newest commit marker they cover.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub ops: Vec<SinkOp>,
    pub meta: Vec<OpMeta>,
    pub bytes: usize,
    /// When the first pending op arrived (the batch's delay runs from here).
    pub started: Option<Instant>,
    /// The newest commit marker received after ops of this batch: acknowledged once the
    /// batch is durable.
    pub marker: Option<u64>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn push(&mut self, routed: Routed) {
        if self.ops.is_empty() {
            self.started = Some(Instant::now());
        }
        self.bytes += routed.meta.bytes;
        self.ops.push(routed.op);
        self.meta.push(routed.meta);
    }

    pub fn clear(&mut self) {
        self.ops.clear();
        self.meta.clear();
        self.bytes = 0;
        self.started = None;
        self.marker = None;
    }

    /// Drops every op that a newer op of the same row in this batch supersedes, keeping the
    /// survivors in order; returns how many were dropped.
    ///
    /// Under guarded writes a row ends up holding the op with the greatest version among the
    /// stored one and those applied, whatever their order, so applying only the greatest op
    /// of each row leaves targets in the same state with fewer writes. (It is the greatest
    /// *version* that survives, not the last op: with a guard column, a later change can
    /// carry a lower version and must lose.)
    pub fn drop_superseded(&mut self) -> usize {
        if self.ops.len() < 2 {
            return 0;
        }
        let mut keep = vec![true; self.ops.len()];
        let mut best: HashMap<(&str, &str), usize, BuildHasherDefault<RowHasher>> =
            HashMap::with_capacity_and_hasher(self.ops.len(), BuildHasherDefault::default());
        for (i, (op, meta)) in self.ops.iter().zip(&self.meta).enumerate() {
            match best.entry((op.table.name.as_str(), meta.id.as_str())) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let j = *e.get();
                    // Ties keep the later op; equal versions only come from replays.
                    if op.version >= self.ops[j].version {
                        keep[j] = false;
                        e.insert(i);
                    } else {
                        keep[i] = false;
                    }
                }
            }
        }
        drop(best);
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            let mut it = keep.iter();
            self.ops.retain(|_| *it.next().unwrap_or(&true));
            let mut it = keep.iter();
            self.meta.retain(|_| *it.next().unwrap_or(&true));
        }
        dropped
    }
}

/// FNV-1a: row ids are short and not chosen by an attacker (they come from the source
/// database, and a collision only costs a comparison), so a fast, stable hash beats SipHash
/// here. Stable across runs and platforms, which partitioning relies on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowHasher(u64);

impl Default for RowHasher {
    fn default() -> Self {
        RowHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for RowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An op's approximate size in memory, for the batch byte limit.
pub(crate) fn approx_bytes(op: &SinkOp, id: &str) -> usize {
    let values = match &op.kind {
        SinkOpKind::Upsert(row) => row.iter().map(value_bytes).sum(),
        SinkOpKind::Delete => 0,
    };
    64 + id.len() + op.key.iter().map(value_bytes).sum::<usize>() + values
}

fn value_bytes(v: &Value) -> usize {
    let heap = match v {
        Value::Decimal(s) | Value::String(s) | Value::Enum(s) | Value::Json(s) => s.len(),
        Value::Bytes(b) => b.len(),
        Value::Geometry { wkb, .. } => wkb.len(),
        Value::Set(m) => m.iter().map(|s| s.len() + 24).sum(),
        _ => 0,
    };
    std::mem::size_of::<Value>() + heap
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{TableId, TargetTable, Version};

    fn op(table: &Arc<TargetTable>, id: i64, order: u64, guard: Option<i64>) -> Routed {
        let op = SinkOp {
            table: table.clone(),
            key: vec![Value::Int(id)],
            kind: SinkOpKind::Upsert(vec![Value::Int(id)]),
            version: Version { guard, order },
        };
        let id = op.id();
        Routed {
            meta: OpMeta {
                bytes: approx_bytes(&op, &id),
                id,
                file: Arc::from("binlog.000001"),
                event_pos: order,
            },
            op,
        }
    }

    fn table(name: &str) -> Arc<TargetTable> {
        Arc::new(TargetTable {
            source: TableId::new("s", name),
            name: name.into(),
            columns: vec![],
            key: vec![0],
        })
    }

    #[test]
    fn superseded_ops_are_dropped_keeping_the_greatest_version() {
        let (a, b) = (table("a"), table("b"));
        let mut batch = Batch::default();
        batch.push(op(&a, 1, 10, None));
        batch.push(op(&a, 2, 11, None));
        batch.push(op(&b, 1, 12, None)); // same id, other table: independent
        batch.push(op(&a, 1, 13, None));
        assert_eq!(batch.drop_superseded(), 1);
        let orders: Vec<u64> = batch.ops.iter().map(|o| o.version.order).collect();
        assert_eq!(orders, [11, 12, 13]);
        assert_eq!(batch.meta.len(), 3);
        assert_eq!(batch.meta[2].event_pos, 13);
    }

    #[test]
    fn a_later_op_with_a_lower_guard_loses() {
        let a = table("a");
        let mut batch = Batch::default();
        batch.push(op(&a, 1, 10, Some(500)));
        batch.push(op(&a, 1, 20, Some(100)));
        assert_eq!(batch.drop_superseded(), 1);
        assert_eq!(batch.ops[0].version.guard, Some(500));
    }

    #[test]
    fn sizes_grow_with_values() {
        let a = table("a");
        let small = op(&a, 1, 1, None);
        let mut big = op(&a, 1, 1, None);
        big.op.kind = SinkOpKind::Upsert(vec![Value::Bytes(vec![0; 10_000])]);
        assert!(approx_bytes(&big.op, "1") > approx_bytes(&small.op, "1") + 9_000);
        let mut batch = Batch::default();
        batch.push(small);
        assert!(batch.started.is_some() && batch.bytes > 0);
        batch.clear();
        assert!(batch.is_empty() && batch.started.is_none() && batch.bytes == 0);
    }
}
