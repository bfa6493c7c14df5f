//! The compare-and-set script that makes every Redis write guarded and atomic, and the
//! pipeline that carries one script call per op.

use super::encode::{field_value, row_key, tombstone_key, VERSION_FIELD};
use ::redis::Pipeline;
use strata_core::{ErrorKind, SinkError, SinkOp, SinkOpKind};

/// The guard, run atomically by Redis for each op.
///
/// `KEYS[1]` is the row hash, `KEYS[2]` its tombstone. `ARGV[1]` is the op's version in
/// [`strata_core::Version::sortable`] form (fixed-width digits, so string comparison is
/// version comparison; Lua numbers are doubles and cannot hold 63 bits), `ARGV[2]` is `u`
/// (upsert) or `d` (delete). A delete's `ARGV[3]` is the tombstone's time to live in
/// milliseconds; an upsert's `ARGV[3..]` are field/value pairs.
///
/// Returns 1 when the write landed, 0 when the row or its tombstone already held an equal or
/// newer version. An upsert replaces the hash whole (a NULL column is an absent field) and
/// drops the tombstone it supersedes; a delete removes the hash and leaves the tombstone.
pub(crate) const SCRIPT: &str = r#"
local v = ARGV[1]
local cur = redis.call('HGET', KEYS[1], '_strata_version')
if cur and cur >= v then return 0 end
local tomb = redis.call('GET', KEYS[2])
if tomb and tomb >= v then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'd' then
  redis.call('SET', KEYS[2], v, 'PX', ARGV[3])
  return 1
end
if tomb then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], '_strata_version', v)
local n = #ARGV
local i = 3
while i <= n do
  -- unpack is bounded by Lua's C stack: set fields 100 pairs at a time.
  local j = math.min(i + 199, n)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
return 1
"#;

/// Appends one `EVALSHA` of the guard script for `op` to `pipe`.
///
/// Fails (kind Data, with the op's index) when the row does not fit its table or a column
/// uses the reserved version field name; nothing has been sent then.
pub(crate) fn push_op(
    pipe: &mut Pipeline,
    sha: &str,
    key_prefix: &str,
    tombstone_ttl_ms: u64,
    op: &SinkOp,
    index: usize,
) -> Result<(), SinkError> {
    pipe.cmd("EVALSHA")
        .arg(sha)
        .arg(2)
        .arg(row_key(key_prefix, op))
        .arg(tombstone_key(key_prefix, op))
        .arg(op.version.sortable());
    match &op.kind {
        SinkOpKind::Delete => {
            pipe.arg("d").arg(tombstone_ttl_ms);
        }
        SinkOpKind::Upsert(row) => {
            let columns = &op.table.columns;
            if row.len() != columns.len() {
                return Err(SinkError::new(
                    "redis",
                    ErrorKind::Data,
                    format!(
                        "table {}, key {}: the row has {} values but the table has {} columns",
                        op.table.name,
                        op.id(),
                        row.len(),
                        columns.len()
                    ),
                )
                .at_op(index));
            }
            pipe.arg("u");
            for (column, value) in columns.iter().zip(row) {
                if column.name == VERSION_FIELD {
                    return Err(SinkError::new(
                        "redis",
                        ErrorKind::Config,
                        format!(
                            "table {}: column {VERSION_FIELD} clashes with the field strata keeps \
                             the row version in; exclude or rename the column in the routing \
                             rules",
                            op.table.name
                        ),
                    )
                    .at_op(index));
                }
                if let Some(bytes) = field_value(value) {
                    pipe.arg(&column.name).arg(bytes);
                }
            }
        }
    }
    Ok(())
}
