//! Applying a batch inside one transaction: tables brought to the ops' shape, then one
//! multi-row statement per table and kind, pipelined on the connection.

use super::encode::ParamArray;
use super::error::pg_error;
use super::guard::{check_shape, Param, TablePlan};
use super::schema::reconcile;
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use strata_core::{ApplyStats, ErrorKind, SinkError, SinkOp, SinkOpKind, TargetTable, Value};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

/// The tables' plans: those known to match PostgreSQL (shared by the sink's connections)
/// and those this transaction has reconciled (shared only once it commits).
pub(crate) struct Plans<'a> {
    shared: &'a Mutex<HashMap<String, Arc<TablePlan>>>,
    pub(crate) local: HashMap<String, Arc<TablePlan>>,
}

impl<'a> Plans<'a> {
    pub(crate) fn new(shared: &'a Mutex<HashMap<String, Arc<TablePlan>>>) -> Self {
        Plans {
            shared,
            local: HashMap::new(),
        }
    }

    fn current(&self, name: &str) -> Option<Arc<TablePlan>> {
        if let Some(plan) = self.local.get(name) {
            return Some(plan.clone());
        }
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.get(name).cloned()
    }

    /// Publishes this transaction's plans (call after commit).
    pub(crate) fn publish(self) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.extend(self.local);
    }
}

/// True when two shapes of a table write the same columns with the same key.
fn same_shape(a: &TargetTable, b: &TargetTable) -> bool {
    std::ptr::eq(a, b) || (a.name == b.name && a.columns == b.columns && a.key == b.key)
}

/// Names the op in an error about it: its index in the batch and its key id.
pub(crate) fn for_op(mut e: SinkError, op: &SinkOp, index: usize) -> SinkError {
    if e.op_index.is_none() {
        e.message = format!("{} (key {})", e.message, op.id());
        e.op_index = Some(index);
    }
    e
}

/// Applies `ops` (the batch's ops from index `base`) in `tx`, in order.
///
/// The ops are cut into segments in which every table keeps one shape; before a segment,
/// each table whose shape is new is reconciled, so an ALTER lands between the ops written
/// with the old columns and those written with the new ones.
pub(crate) async fn apply_ops(
    tx: &Transaction<'_>,
    schema: &str,
    ops: &[SinkOp],
    base: usize,
    plans: &mut Plans<'_>,
) -> Result<ApplyStats, SinkError> {
    let mut stats = ApplyStats::default();
    let mut start = 0;
    while start < ops.len() {
        let mut shapes: Vec<(&Arc<TargetTable>, usize)> = Vec::new();
        let mut end = start;
        while let Some(op) = ops.get(end) {
            match shapes.iter().find(|(s, _)| s.name == op.table.name) {
                Some((s, _)) if !same_shape(s, &op.table) => break,
                Some(_) => {}
                None => shapes.push((&op.table, end)),
            }
            end += 1;
        }
        let mut segment_plans: HashMap<&str, Arc<TablePlan>> = HashMap::new();
        for (table, first) in shapes {
            let plan = match plans.current(&table.name) {
                Some(plan) if same_shape(&plan.table, table) => plan,
                _ => {
                    let attribute = |e| for_op(e, &ops[first], base + first);
                    check_shape(table).map_err(attribute)?;
                    let order = ops[first].version.order;
                    let layout = reconcile(tx, schema, table, order)
                        .await
                        .map_err(attribute)?;
                    let plan = Arc::new(
                        TablePlan::new(schema, table.clone(), &layout).map_err(attribute)?,
                    );
                    plans.local.insert(table.name.clone(), plan.clone());
                    plan
                }
            };
            segment_plans.insert(&table.name, plan);
        }
        stats += write_segment(tx, &segment_plans, &ops[start..end], base + start).await?;
        start = end;
    }
    Ok(stats)
}

/// Writes ops whose tables have one shape each. An op that touches a row already touched
/// earlier in the segment goes in a later round, so every statement names each row once
/// and a row's ops apply in order.
async fn write_segment(
    tx: &Transaction<'_>,
    plans: &HashMap<&str, Arc<TablePlan>>,
    ops: &[SinkOp],
    base: usize,
) -> Result<ApplyStats, SinkError> {
    let mut seen: HashMap<(&str, String), usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let round = seen.entry((op.table.name.as_str(), op.id())).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(i);
        *round += 1;
    }
    let mut stats = ApplyStats::default();
    for round in rounds {
        let mut groups: Vec<(&str, bool, Vec<usize>)> = Vec::new();
        for i in round {
            let op = &ops[i];
            let delete = matches!(op.kind, SinkOpKind::Delete);
            match groups
                .iter_mut()
                .find(|(name, d, _)| *name == op.table.name && *d == delete)
            {
                Some((_, _, members)) => members.push(i),
                None => groups.push((&op.table.name, delete, vec![i])),
            }
        }
        let mut statements = Vec::with_capacity(groups.len());
        for (name, delete, members) in &groups {
            let plan = plans.get(name).ok_or_else(|| {
                SinkError::new(
                    "postgres",
                    ErrorKind::Internal,
                    format!("table {name} has no plan"),
                )
            })?;
            statements.push(Statement::build(plan, *delete, members, ops, base)?);
        }
        let results = join_all(statements.iter().map(|s| s.run(tx))).await;
        // Statements after a failed one only report the aborted transaction: blame the
        // first one that failed for its own reason.
        let mut cause: Option<SinkError> = None;
        let mut aborted_error: Option<SinkError> = None;
        for (statement, result) in statements.iter().zip(results) {
            match result {
                Ok(applied) => {
                    stats.applied += applied;
                    stats.stale += statement.rows().saturating_sub(applied);
                }
                Err((e, false)) if cause.is_none() => cause = Some(e),
                Err((e, _)) => {
                    aborted_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = cause.or(aborted_error) {
            return Err(e);
        }
    }
    Ok(stats)
}

/// One multi-row statement: its plan, the ops it carries and their parameters.
struct Statement<'a> {
    plan: &'a TablePlan,
    params: &'a [Param],
    delete: bool,
    /// The ops' indices in the batch.
    indices: Vec<usize>,
    first_op: &'a SinkOp,
    columns: Vec<ParamArray<'a>>,
    versions: Vec<String>,
    ids: Vec<String>,
}

impl<'a> Statement<'a> {
    fn build(
        plan: &'a TablePlan,
        delete: bool,
        members: &[usize],
        ops: &'a [SinkOp],
        base: usize,
    ) -> Result<Statement<'a>, SinkError> {
        let table = &plan.table;
        let params = if delete {
            &plan.delete_params
        } else {
            &plan.upsert_params
        };
        let mut columns: Vec<ParamArray<'a>> = params
            .iter()
            .map(|p| ParamArray::new(p.pg.wire, members.len()))
            .collect();
        let mut versions = Vec::with_capacity(members.len());
        let mut ids = Vec::with_capacity(members.len());
        for &i in members {
            let op = &ops[i];
            let bad = |message: String| {
                for_op(
                    SinkError::new(
                        "postgres",
                        ErrorKind::Rejected,
                        format!("table {}: {message}", table.name),
                    ),
                    op,
                    base + i,
                )
            };
            match &op.kind {
                SinkOpKind::Upsert(row) if row.len() != table.columns.len() => {
                    return Err(bad(format!(
                        "the row has {} values but the table has {} columns",
                        row.len(),
                        table.columns.len()
                    )))
                }
                SinkOpKind::Delete if op.key.len() != table.key.len() => {
                    return Err(bad(format!(
                        "the delete has {} key values but the table has {} key columns",
                        op.key.len(),
                        table.key.len()
                    )))
                }
                _ => {}
            }
            for (array, param) in columns.iter_mut().zip(params) {
                array
                    .push(&table.columns[param.column], value_of(op, param))
                    .map_err(bad)?;
            }
            versions.push(op.version.sortable());
            ids.push(op.id());
        }
        Ok(Statement {
            plan,
            params,
            delete,
            indices: members.iter().map(|i| base + i).collect(),
            first_op: &ops[members[0]],
            columns,
            versions,
            ids,
        })
    }

    fn rows(&self) -> u64 {
        self.indices.len() as u64
    }

    /// Runs the statement; returns the number of ops that landed, or the error and whether
    /// it only says the transaction was already aborted.
    async fn run(&self, tx: &Transaction<'_>) -> Result<u64, (SinkError, bool)> {
        let table_name: &str = &self.plan.table.name;
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> = self
            .columns
            .iter()
            .zip(self.params)
            .map(|(array, param)| (array.as_sql(), param.pg.wire.array_type()))
            .collect();
        params.push((&self.versions, Type::TEXT_ARRAY));
        params.push((&self.ids, Type::TEXT_ARRAY));
        params.push((&table_name, Type::TEXT));
        let result = if self.delete {
            tx.query_typed_one(&self.plan.delete_sql, &params)
                .await
                .map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        } else {
            tx.execute_typed(&self.plan.upsert_sql, &params).await
        };
        result.map_err(|e| {
            let aborted = e
                .code()
                .is_some_and(|c| *c == tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION);
            let verb = if self.delete { "deleting" } else { "writing" };
            let what = match self.rows() {
                1 => format!("{verb} a row of table {table_name}"),
                n => format!("{verb} {n} rows of table {table_name}"),
            };
            let err = pg_error(&e, &what);
            match self.indices.as_slice() {
                [only] => (for_op(err, self.first_op, *only), aborted),
                _ => (err, aborted),
            }
        })
    }
}

/// The op's value for a statement parameter (checked to exist by `Statement::build`).
fn value_of<'a>(op: &'a SinkOp, param: &Param) -> &'a Value {
    const NULL: &Value = &Value::Null;
    match (&op.kind, param.key_position) {
        (SinkOpKind::Delete, Some(k)) => op.key.get(k).unwrap_or(NULL),
        (SinkOpKind::Upsert(row), _) => row.get(param.column).unwrap_or(NULL),
        (SinkOpKind::Delete, None) => NULL,
    }
}

/// After a batch failed with a rejection that no single op was blamed for, finds the first
/// op that PostgreSQL rejects, by bisection under savepoints in a transaction that is then
/// rolled back (nothing is written). Returns `None` when the failure does not repeat.
pub(crate) async fn find_rejected_op(
    client: &mut Client,
    schema: &str,
    batch: &[SinkOp],
    shared: &Mutex<HashMap<String, Arc<TablePlan>>>,
) -> Option<SinkError> {
    let mut tx = client.transaction().await.ok()?;
    let mut plans = Plans::new(shared);
    // Invariant: ops[..lo] apply cleanly (and are applied in `tx`); the culprit is in lo..hi.
    let (mut lo, mut hi) = (0, batch.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let saved = plans.local.clone();
        let probe = tx.savepoint("strata_probe").await.ok()?;
        if apply_ops(&probe, schema, &batch[lo..mid], lo, &mut plans)
            .await
            .is_ok()
        {
            probe.commit().await.ok()?;
            lo = mid;
        } else {
            probe.rollback().await.ok()?;
            plans.local = saved;
            hi = mid;
        }
    }
    let result = apply_ops(&tx, schema, &batch[lo..hi], lo, &mut plans).await;
    let _ = tx.rollback().await;
    result.err().filter(|e| e.kind == ErrorKind::Rejected)
}
