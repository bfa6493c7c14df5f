//! Repairing differences from the source through the guarded write path.
//!
//! The source's current position R is read first; each differing row is read again from the
//! source and written with R's binlog order as its version (a delete when the source no
//! longer has it). Every write goes through the sink's own guard, so a row that the
//! replicator wrote after R (a newer version) is never overwritten, and a later change
//! always wins over the repair.

use super::compare::DiffKind;
use super::table::{Difference, Table};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use strata_core::value::key_id;
use strata_core::version::{binlog_order, SLOTS_PER_BYTE};
use strata_core::{Op, RowChange, Sink, SinkOp, SinkOpKind, TableId, Value, Version};
use strata_mysql::SnapshotReader;
use strata_pipeline::plan;

/// What a repair would do to one row.
#[derive(Debug, Clone)]
pub struct Action {
    /// The target written.
    pub target: &'static str,
    /// The source table.
    pub table: TableId,
    /// The row's id in the target.
    pub id: String,
    /// The guarded write.
    pub op: SinkOp,
    /// The difference's fields, for the dry-run listing.
    pub kind: DiffKind,
}

/// Plans the writes that fix `diffs` (those with a known key); differences that cannot be
/// repaired are left out and named in the returned messages.
pub async fn plan_repairs(
    source: &mut SnapshotReader,
    tables: &BTreeMap<TableId, Table>,
    diffs: &[Difference],
) -> anyhow::Result<(Vec<Action>, Vec<String>)> {
    let at = source.current_position().await?.position;
    // The last slot of R: after a snapshot taken at R (slot 0) and anything else versioned
    // at R, before any change written after R (its rows event lies past R).
    let order = binlog_order(at.file_seq(), at.pos, SLOTS_PER_BYTE - 1);
    let file: Arc<str> = Arc::from(at.file.as_str());
    let mut actions = Vec::new();
    let mut skipped = Vec::new();
    let mut by_table: BTreeMap<&TableId, Vec<&Difference>> = BTreeMap::new();
    for d in diffs {
        by_table.entry(&d.table).or_default().push(d);
    }
    for (id, diffs) in by_table {
        let Some(table) = tables.get(id) else {
            continue;
        };
        let keys: Vec<Vec<Value>> = diffs.iter().filter_map(|d| d.key.clone()).collect();
        let rows = source.read_by(&table.info, &table.route.key, &keys).await?;
        let by_key: HashMap<String, Vec<Value>> = rows
            .into_iter()
            .map(|row| {
                let key: Vec<Value> = table.route.key.iter().map(|&i| row[i].clone()).collect();
                (key_id(&key), row)
            })
            .collect();
        for d in diffs {
            let Some(key) = &d.key else {
                skipped.push(format!(
                    "{} {} row {}: its key cannot be read back from the target; delete it by hand",
                    d.target_name, d.table, d.id
                ));
                continue;
            };
            let op = match by_key.get(&key_id(key)) {
                Some(row) => {
                    let change = RowChange {
                        table: table.info.schema.clone(),
                        op: Op::Insert,
                        before: None,
                        after: Some(row.clone()),
                        file: file.clone(),
                        event_pos: at.pos,
                        gtid: None,
                        ts_ms: now_ms(),
                        order,
                    };
                    match plan(&change, &table.route)?.into_vec().pop() {
                        Some(op) => op,
                        None => continue,
                    }
                }
                None => {
                    // The row's guard is the stored one: a delete must beat the stored row,
                    // and the source no longer has a value to take it from.
                    let guard = match (&table.route.guard, d.stored_version) {
                        (None, _) => None,
                        (Some(_), Some(v)) => match v.guard(true) {
                            Some(g) => Some(g),
                            None => {
                                skipped.push(format!(
                                    "{} {} row {}: its stored guard is unknown",
                                    d.target_name, d.table, d.id
                                ));
                                continue;
                            }
                        },
                        (Some(_), None) => {
                            skipped.push(format!(
                                "{} {} row {}: its stored guard is unknown",
                                d.target_name, d.table, d.id
                            ));
                            continue;
                        }
                    };
                    SinkOp {
                        table: table.route.target.clone(),
                        key: key.clone(),
                        kind: SinkOpKind::Delete,
                        version: Version { guard, order },
                    }
                }
            };
            actions.push(Action {
                target: d.target_name,
                table: d.table.clone(),
                id: d.id.clone(),
                op,
                kind: d.kind.clone(),
            });
        }
    }
    Ok((actions, skipped))
}

/// Prints what `actions` would change, one line each.
pub fn print_dry_run(actions: &[Action]) {
    for a in actions {
        let what = match (&a.op.kind, &a.kind) {
            (SinkOpKind::Upsert(_), DiffKind::Missing) => "insert".to_owned(),
            (SinkOpKind::Upsert(_), DiffKind::Changed(fields)) => {
                format!("update (fields: {})", fields.join(", "))
            }
            (SinkOpKind::Upsert(_), DiffKind::Extra) => "rewrite".to_owned(),
            (SinkOpKind::Delete, _) => "delete".to_owned(),
        };
        println!("would {what} {} row {} in {}", a.table, a.id, a.target);
    }
}

/// Applies `actions` through the sinks; the sinks' counts of applied and stale writes.
pub async fn apply(sinks: &[Arc<dyn Sink>], actions: &[Action]) -> anyhow::Result<(u64, u64)> {
    let mut by_sink: BTreeMap<&'static str, Vec<SinkOp>> = BTreeMap::new();
    for a in actions {
        by_sink.entry(a.target).or_default().push(a.op.clone());
    }
    let (mut applied, mut stale) = (0, 0);
    for (name, ops) in by_sink {
        let Some(sink) = sinks.iter().find(|s| s.name() == name) else {
            anyhow::bail!("no sink named {name} to repair with");
        };
        for batch in ops.chunks(500) {
            let stats = sink
                .apply(batch)
                .await
                .map_err(|e| anyhow::anyhow!("repairing through {name}: {e}"))?;
            applied += stats.applied;
            stale += stats.stale;
        }
    }
    Ok((applied, stale))
}

fn now_ms() -> u64 {
    crate::snapshot::state::now_ms()
}
