//! The guarded statements: a multi-row upsert and a multi-row delete per table, each one
//! statement that decides, row by row inside PostgreSQL, whether the op is newer than what
//! the table and the tombstones hold.

use super::encode::{pg_column, PgColumn};
use std::sync::Arc;
use strata_core::{ErrorKind, SinkError, TargetTable};

/// The column that holds a row's version ([`strata_core::Version::sortable`], compared
/// bytewise under the "C" collation).
pub(crate) const VERSION_COLUMN: &str = "_strata_version";
/// The schema's tombstone table: one row per deleted key, with the delete's version.
pub(crate) const TOMBSTONE_TABLE: &str = "_strata_tombstones";
/// The schema's record of each table's shape: the binlog order of the op that last
/// changed it, so that an older shape (a replay, a slower worker) never undoes a newer one.
pub(crate) const SHAPES_TABLE: &str = "_strata_shapes";
/// PostgreSQL truncates longer identifiers, which could make two names one.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// `name` as a quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks that a schema, table or column name can be used as it is.
pub(crate) fn check_identifier(what: &str, name: &str) -> Result<(), SinkError> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        "is longer than PostgreSQL's 63-byte identifier limit"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else {
        return Ok(());
    };
    Err(SinkError::new(
        "postgres",
        ErrorKind::Config,
        format!("{what} name {name:?} {problem}; rename it in the routing rules"),
    ))
}

/// The DDL that creates a schema's tombstone and shape tables (idempotent).
pub(crate) fn bookkeeping_ddl(schema: &str) -> String {
    let table = format!("{}.{}", ident(schema), ident(TOMBSTONE_TABLE));
    let shapes = format!("{}.{}", ident(schema), ident(SHAPES_TABLE));
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\
           tbl text NOT NULL, \
           id text NOT NULL, \
           version text COLLATE \"C\" NOT NULL, \
           deleted_at timestamptz NOT NULL DEFAULT now(), \
           PRIMARY KEY (tbl, id)); \
         CREATE INDEX IF NOT EXISTS {} ON {table} (deleted_at); \
         CREATE TABLE IF NOT EXISTS {shapes} (tbl text PRIMARY KEY, shape_order bigint NOT NULL)",
        ident("_strata_tombstones_deleted_at")
    )
}

/// How many row locks a schema has. A row's lock is `row_hash % ROW_LOCKS`, the same hash
/// the pipeline picks a row's worker by, so with a worker count that divides it (the
/// default 4 does) one replicator's workers never share a lock.
pub(crate) const ROW_LOCKS: u64 = 64;

/// Takes, for the rest of the transaction, the row locks of a batch (`$1`: the schema's
/// lock class name, `$2`: the sorted lock numbers). Every writer of the schema (the
/// replicator, a snapshot, a repair, in any process) takes them before its first statement,
/// so a row's tombstone check and its write are never interleaved with another writer's
/// write of the same row. Sorted, so two writers never wait for each other.
pub(crate) const ROW_LOCK_SQL: &str =
    "SELECT count(pg_advisory_xact_lock(hashtext($1), b)) FROM unnest($2::int4[]) AS b";

/// The lock class of a schema's rows (for [`ROW_LOCK_SQL`]).
pub(crate) fn row_lock_class(schema: &str) -> String {
    format!("strata-rows:{schema}")
}

/// The sorted, distinct row locks of a batch.
pub(crate) fn row_locks(batch: &[strata_core::SinkOp]) -> Vec<i32> {
    let mut locks: Vec<i32> = batch
        .iter()
        .map(|op| (op.row_hash() % ROW_LOCKS) as i32)
        .collect();
    locks.sort_unstable();
    locks.dedup();
    locks
}

/// Removes tombstones older than the retention (`$1`, milliseconds as float8).
pub(crate) fn purge_sql(schema: &str) -> String {
    format!(
        "DELETE FROM {}.{} WHERE deleted_at < now() - $1::float8 * interval '1 millisecond'",
        ident(schema),
        ident(TOMBSTONE_TABLE)
    )
}

/// A table as PostgreSQL holds it: its columns (name, `format_type` spelling) without the
/// version column, and its primary key's column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) columns: Vec<(String, String)>,
    pub(crate) key: Vec<String>,
}

impl Layout {
    /// The layout a source shape maps to.
    pub(crate) fn of(table: &TargetTable) -> Layout {
        Layout {
            columns: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), pg_column(&c.ty).pg_type))
                .collect(),
            key: table.key_columns().map(|c| c.name.clone()).collect(),
        }
    }
}

/// One array parameter of a statement: which of the op's values it carries and how.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    /// The column, as an index into the op's `table.columns`.
    pub(crate) column: usize,
    /// For a delete, the value's index in the op's `key`.
    pub(crate) key_position: Option<usize>,
    /// The op column's own mapping (its wire form and natural type).
    pub(crate) pg: PgColumn,
    /// The type of the column in PostgreSQL (differs from `pg.pg_type` only when the
    /// table is newer than the op's shape).
    pub(crate) target_type: String,
}

impl Param {
    /// SQL turning the wire value `expr` into a value of the target column's type.
    fn cast(&self, expr: &str) -> String {
        let natural = self.pg.cast(expr);
        if self.pg.pg_type == self.target_type {
            natural
        } else {
            format!("({natural})::{}", self.target_type)
        }
    }
}

/// The statements that write one shape of a table into its PostgreSQL layout.
#[derive(Debug)]
pub(crate) struct TablePlan {
    /// The shape these statements were built for.
    pub(crate) table: Arc<TargetTable>,
    /// The columns an upsert writes: every column of the shape that the table has.
    pub(crate) upsert_params: Vec<Param>,
    /// The table's key columns, which a delete matches.
    pub(crate) delete_params: Vec<Param>,
    /// Parameters: one array per upsert param, then versions, ids, the table name.
    pub(crate) upsert_sql: String,
    /// Parameters: one array per delete param, then versions, ids, the table name.
    pub(crate) delete_sql: String,
}

/// Checks a shape's names before any DDL is built from them.
pub(crate) fn check_shape(table: &TargetTable) -> Result<(), SinkError> {
    check_identifier("table", &table.name)?;
    if table.name == TOMBSTONE_TABLE || table.name == SHAPES_TABLE {
        return Err(reserved("table", &table.name));
    }
    for column in &table.columns {
        check_identifier("column", &column.name)?;
        if column.name == VERSION_COLUMN {
            return Err(reserved("column", &column.name));
        }
    }
    if table.key.is_empty() || table.key.iter().any(|&i| i >= table.columns.len()) {
        return Err(SinkError::new(
            "postgres",
            ErrorKind::Config,
            format!(
                "table {} has no usable key; give it a primary key or configure key columns",
                table.name
            ),
        ));
    }
    Ok(())
}

impl TablePlan {
    /// Plans writes of `table`'s ops into a table laid out as `layout`: the columns both
    /// have are written; the op's columns the table lacks are left out (the table is
    /// newer), and so are the table's columns the op lacks.
    pub(crate) fn new(
        schema: &str,
        table: Arc<TargetTable>,
        layout: &Layout,
    ) -> Result<TablePlan, SinkError> {
        check_shape(&table)?;
        let param = |column: usize, target_type: &str| Param {
            column,
            key_position: table.key.iter().position(|&k| k == column),
            pg: pg_column(&table.columns[column].ty),
            target_type: target_type.to_owned(),
        };
        let upsert_params: Vec<Param> = table
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let (_, ty) = layout.columns.iter().find(|(name, _)| name == &c.name)?;
                Some(param(i, ty))
            })
            .collect();
        if layout.key.is_empty() {
            return Err(SinkError::new(
                "postgres",
                ErrorKind::Rejected,
                format!(
                    "table {} has no primary key in PostgreSQL (dropped by hand?); add it back \
                     or drop the table so that strata recreates it",
                    table.name
                ),
            ));
        }
        let mut delete_params = Vec::with_capacity(layout.key.len());
        for name in &layout.key {
            match upsert_params
                .iter()
                .find(|p| &table.columns[p.column].name == name && p.key_position.is_some())
            {
                Some(p) => delete_params.push(p.clone()),
                None => {
                    return Err(SinkError::new(
                        "postgres",
                        ErrorKind::Rejected,
                        format!(
                            "table {}: the table's key column {name} is not a key column of \
                             this op's (older) shape of the table",
                            table.name
                        ),
                    ))
                }
            }
        }
        let qualified = format!("{}.{}", ident(schema), ident(&table.name));
        let tombstones = format!("{}.{}", ident(schema), ident(TOMBSTONE_TABLE));
        let upsert_sql = upsert_sql(
            &table,
            &upsert_params,
            &delete_params,
            &qualified,
            &tombstones,
        );
        let delete_sql = delete_sql(&table, &delete_params, &qualified, &tombstones);
        Ok(TablePlan {
            table,
            upsert_params,
            delete_params,
            upsert_sql,
            delete_sql,
        })
    }
}

fn reserved(what: &str, name: &str) -> SinkError {
    SinkError::new(
        "postgres",
        ErrorKind::Config,
        format!(
            "{what} name {name} is reserved by strata's PostgreSQL sink; rename or exclude it in \
             the routing rules"
        ),
    )
}

/// `unnest($1::int8[], …) AS alias(c0, …, v, k)` over the given params, plus the version
/// and id arrays; returns the text and the next free parameter number.
fn unnest(params: &[Param], alias: &str) -> (String, usize) {
    let mut args: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, p)| format!("${}::{}", i + 1, p.pg.wire.array_sql()))
        .collect();
    let n = params.len();
    args.push(format!("${}::text[]", n + 1));
    args.push(format!("${}::text[]", n + 2));
    let mut names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    names.push("v".into());
    names.push("k".into());
    (
        format!(
            "unnest({}) AS {alias}({})",
            args.join(", "),
            names.join(", ")
        ),
        n + 3,
    )
}

fn column_name(table: &TargetTable, param: &Param) -> String {
    ident(&table.columns[param.column].name)
}

/// Inserts rows that are absent and not shadowed by an equal or newer tombstone, and
/// replaces rows whose stored version is older; counts the rows written.
fn upsert_sql(
    table: &TargetTable,
    params: &[Param],
    key: &[Param],
    qualified: &str,
    tombstones: &str,
) -> String {
    let (source, table_param) = unnest(params, "i");
    let names: Vec<String> = params.iter().map(|p| column_name(table, p)).collect();
    let casts: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, p)| p.cast(&format!("i.c{i}")))
        .collect();
    let keys: Vec<String> = key.iter().map(|p| column_name(table, p)).collect();
    let mut assign: Vec<String> = names
        .iter()
        .filter(|n| !keys.contains(n))
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    let version = ident(VERSION_COLUMN);
    assign.push(format!("{version} = EXCLUDED.{version}"));
    format!(
        "INSERT INTO {qualified} AS t ({}, {version}) \
         SELECT {}, i.v FROM {source} \
         WHERE NOT EXISTS (SELECT 1 FROM {tombstones} z \
           WHERE z.tbl = ${table_param} AND z.id = i.k AND z.version >= i.v COLLATE \"C\") \
         ON CONFLICT ({}) DO UPDATE SET {} \
         WHERE t.{version} < EXCLUDED.{version}",
        names.join(", "),
        casts.join(", "),
        keys.join(", "),
        assign.join(", "),
    )
}

/// Deletes rows whose stored version is older and records a tombstone for every op newer
/// than both the row and any earlier tombstone; returns the number of such ops.
fn delete_sql(table: &TargetTable, key: &[Param], qualified: &str, tombstones: &str) -> String {
    let (source, table_param) = unnest(key, "u");
    let casts: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} AS c{i}", p.cast(&format!("u.c{i}"))))
        .collect();
    let matches = |alias: &str| -> String {
        key.iter()
            .enumerate()
            .map(|(i, p)| format!("t.{} = {alias}.c{i}", column_name(table, p)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let version = ident(VERSION_COLUMN);
    format!(
        "WITH i AS (SELECT {}, u.v, u.k FROM {source}), \
         cand AS (SELECT i.* FROM i \
           WHERE NOT EXISTS (SELECT 1 FROM {qualified} t \
             WHERE {} AND t.{version} >= i.v COLLATE \"C\") \
           AND NOT EXISTS (SELECT 1 FROM {tombstones} z \
             WHERE z.tbl = ${table_param} AND z.id = i.k AND z.version >= i.v COLLATE \"C\")), \
         gone AS (DELETE FROM {qualified} t USING cand WHERE {}), \
         marked AS (INSERT INTO {tombstones} AS z (tbl, id, version, deleted_at) \
           SELECT ${table_param}, cand.k, cand.v, now() FROM cand \
           ON CONFLICT (tbl, id) DO UPDATE \
             SET version = EXCLUDED.version, deleted_at = EXCLUDED.deleted_at \
           RETURNING 1) \
         SELECT count(*) FROM marked",
        casts.join(", "),
        matches("i"),
        matches("cand"),
    )
}
