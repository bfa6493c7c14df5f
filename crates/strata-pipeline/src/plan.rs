//! Planning: a pure function from one row change to the versioned sink operations that
//! make targets equal to the source. No I/O.

use crate::error::PlanError;
use crate::route::Route;
use strata_core::{BinlogPos, Op, RowChange, SinkOp, SinkOpKind, Value, Version};

/// The ops of one change: one, or two when an update changed the row's key (a delete of the
/// old key, then an upsert of the new one).
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// An upsert or a delete.
    One(SinkOp),
    /// Delete of the old key, then upsert of the new key.
    Two(SinkOp, SinkOp),
}

impl Planned {
    /// The ops in the order they must be applied.
    pub fn into_vec(self) -> Vec<SinkOp> {
        self.into_iter().collect()
    }
}

impl IntoIterator for Planned {
    type Item = SinkOp;
    type IntoIter = std::iter::Chain<std::iter::Once<SinkOp>, std::option::IntoIter<SinkOp>>;

    fn into_iter(self) -> Self::IntoIter {
        let (first, second) = match self {
            Planned::One(a) => (a, None),
            Planned::Two(a, b) => (a, Some(b)),
        };
        std::iter::once(first).chain(second)
    }
}

/// Plans one change routed by `route`.
///
/// - Insert → upsert of the after image.
/// - Update → upsert of the after image; when the key changed, first a delete of the old
///   key. Both carry the change's binlog order; the delete takes its guard from the before
///   image (it removes the row the before image describes), the upsert from the after image.
/// - Delete → delete of the before image's key, with the before image's guard.
///
/// The version is `Version { guard, order: change.order }`; see [`guard_value`] for how a
/// guard column's value becomes the guard.
pub fn plan(change: &RowChange, route: &Route) -> Result<Planned, PlanError> {
    match change.op {
        Op::Insert => {
            let after = image(change, change.after.as_ref(), "after")?;
            Ok(Planned::One(upsert(change, route, after)?))
        }
        Op::Update => {
            let after = image(change, change.after.as_ref(), "after")?;
            let new = upsert(change, route, after)?;
            // Without a before image (not produced with binlog_row_image=FULL) the key
            // cannot have been seen to change: the upsert alone is the best plan.
            let Some(before) = change.before.as_ref() else {
                return Ok(Planned::One(new));
            };
            let before = image(change, Some(before), "before")?;
            let key_changed = route.key.iter().any(|&i| before[i] != after[i]);
            if key_changed {
                Ok(Planned::Two(delete(change, route, before)?, new))
            } else {
                Ok(Planned::One(new))
            }
        }
        Op::Delete => {
            let before = image(change, change.before.as_ref(), "before")?;
            Ok(Planned::One(delete(change, route, before)?))
        }
    }
}

/// A row image checked against the table's width.
fn image<'a>(
    change: &RowChange,
    img: Option<&'a Vec<Value>>,
    which: &str,
) -> Result<&'a [Value], PlanError> {
    let width = change.table.columns.len();
    match img {
        Some(row) if row.len() == width => Ok(row.as_slice()),
        Some(row) => Err(malformed(
            change,
            format!(
                "the {which} image has {} values for {width} columns",
                row.len()
            ),
        )),
        None => Err(malformed(
            change,
            format!("{} without a {which} image", op_name(change.op)),
        )),
    }
}

fn upsert(change: &RowChange, route: &Route, row: &[Value]) -> Result<SinkOp, PlanError> {
    Ok(SinkOp {
        table: route.target.clone(),
        key: key_values(change, route, row)?,
        kind: SinkOpKind::Upsert(route.col_map.iter().map(|&i| row[i].clone()).collect()),
        version: version(change, route, row)?,
    })
}

fn delete(change: &RowChange, route: &Route, row: &[Value]) -> Result<SinkOp, PlanError> {
    Ok(SinkOp {
        table: route.target.clone(),
        key: key_values(change, route, row)?,
        kind: SinkOpKind::Delete,
        version: version(change, route, row)?,
    })
}

fn key_values(change: &RowChange, route: &Route, row: &[Value]) -> Result<Vec<Value>, PlanError> {
    route
        .key
        .iter()
        .map(|&i| match &row[i] {
            Value::Null => Err(PlanError::NullKey {
                table: change.table.id.clone(),
                column: change.table.columns[i].name.clone(),
                position: position(change),
            }),
            v => Ok(v.clone()),
        })
        .collect()
}

fn version(change: &RowChange, route: &Route, row: &[Value]) -> Result<Version, PlanError> {
    let guard = match route.guard {
        Some(i) => Some(guard_value(&row[i]).ok_or_else(|| match &row[i] {
            Value::UInt(_) => PlanError::GuardOutOfRange {
                table: change.table.id.clone(),
                column: change.table.columns[i].name.clone(),
                position: position(change),
            },
            other => malformed(
                change,
                format!(
                    "guard column `{}` holds a {} value, not an integer or temporal one",
                    change.table.columns[i].name,
                    Value::kind_name(other)
                ),
            ),
        })?),
        None => None,
    };
    Ok(Version {
        guard,
        order: change.order,
    })
}

/// A guard column's value as the `i64` a version compares first.
///
/// Integers are taken as they are (an unsigned value above `i64::MAX` gives `None`: it cannot
/// be ordered). DATETIME is microseconds since 1970-01-01 reading its fields as UTC, DATE the
/// same at midnight, TIMESTAMP its UTC microseconds, YEAR the year.
///
/// NULL and MySQL's zero dates (`0000-00-00`, which name no instant) give `i64::MIN`: every
/// row of a guarded table must carry a guard, because a version without one orders before
/// every version with one, and mixing them would let a NULL-guard write lose to any dated
/// write of the same row whatever their binlog order. With `i64::MIN`, a row whose guard is
/// NULL still orders by binlog position against other NULL-guard writes, and any real guard
/// value wins over it.
pub fn guard_value(value: &Value) -> Option<i64> {
    match value {
        Value::Null => Some(i64::MIN),
        Value::Int(v) => Some(*v),
        Value::UInt(v) => i64::try_from(*v).ok(),
        Value::Year(y) => Some(i64::from(*y)),
        Value::Date(d) => Some(
            strata_core::DateTime {
                date: *d,
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
            }
            .to_unix_micros()
            .unwrap_or(i64::MIN),
        ),
        Value::DateTime(dt) => Some(dt.to_unix_micros().unwrap_or(i64::MIN)),
        Value::Timestamp(us) => Some(us.unwrap_or(i64::MIN)),
        _ => None,
    }
}

fn position(change: &RowChange) -> BinlogPos {
    BinlogPos::new(change.file.as_ref(), change.event_pos)
}

fn malformed(change: &RowChange, reason: String) -> PlanError {
    PlanError::Malformed {
        table: change.table.id.clone(),
        position: position(change),
        reason,
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
