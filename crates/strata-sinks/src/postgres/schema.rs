//! Tables that follow the source: created on first use, then altered (columns added,
//! dropped or retyped, the key moved) when an op carries a new shape of the table.

use super::encode::{pg_column, PgColumn, Wire};
use super::error::pg_error;
use super::guard::{ident, Layout, SHAPES_TABLE, VERSION_COLUMN};
use strata_core::{SinkError, TargetTable};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

/// Brings the table in PostgreSQL to `table`'s shape, inside the batch's transaction, and
/// returns the layout the ops of that shape are written into.
///
/// `op_order` is the binlog order of the first op with this shape. The table follows a
/// shape only when it is at least as new as the last shape applied (recorded in the
/// schema's shapes table): an older shape, from a replay or from a worker that is behind
/// another, writes the columns the table has and alters nothing. A transaction-scoped
/// advisory lock on the table's name serialises this between connections.
pub(crate) async fn reconcile(
    tx: &Transaction<'_>,
    schema: &str,
    table: &TargetTable,
    op_order: u64,
) -> Result<Layout, SinkError> {
    let what = format!("table {}", table.name);
    let fail = |e: tokio_postgres::Error| pg_error(&e, &what);
    let lock_name = format!("strata:{schema}.{}", table.name);
    tx.execute_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[(&lock_name, Type::TEXT)],
    )
    .await
    .map_err(fail)?;
    let qualified = format!("{}.{}", ident(schema), ident(&table.name));
    tx.batch_execute(&create_sql(&qualified, table))
        .await
        .map_err(fail)?;

    let shapes = format!("{}.{}", ident(schema), ident(SHAPES_TABLE));
    let order = i64::try_from(op_order).unwrap_or(i64::MAX);
    let newest: Option<i64> = tx
        .query_typed_opt(
            &format!("SELECT shape_order FROM {shapes} WHERE tbl = $1"),
            &[(&table.name, Type::TEXT)],
        )
        .await
        .map_err(fail)?
        .map(|row| row.get(0));
    let (existing, primary_key) = catalog(tx, schema, &table.name).await.map_err(fail)?;

    if newest.is_some_and(|newest| order < newest) {
        tracing::debug!(
            schema,
            table = %table.name,
            "an op older than the table's shape: writing the columns the table has"
        );
        return Ok(Layout {
            columns: existing
                .into_iter()
                .filter(|(name, _)| name != VERSION_COLUMN)
                .collect(),
            key: primary_key.map(|(_, cols)| cols).unwrap_or_default(),
        });
    }
    let actions = alter_actions(table, &existing, primary_key.as_ref());
    if !actions.is_empty() {
        tracing::info!(
            schema,
            table = %table.name,
            changes = actions.len(),
            "altering table to follow the source's columns"
        );
        let sql = format!("ALTER TABLE {qualified} {}", actions.join(", "));
        tx.batch_execute(&sql).await.map_err(fail)?;
    }
    tx.execute_typed(
        &format!(
            "INSERT INTO {shapes} (tbl, shape_order) VALUES ($1, $2) \
             ON CONFLICT (tbl) DO UPDATE \
               SET shape_order = greatest({shapes}.shape_order, EXCLUDED.shape_order)"
        ),
        &[(&table.name, Type::TEXT), (&order, Type::INT8)],
    )
    .await
    .map_err(fail)?;
    Ok(Layout::of(table))
}

/// The table's live columns (name, type) and its primary key (name, columns).
type Catalog = (Vec<(String, String)>, Option<(String, Vec<String>)>);

async fn catalog(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<Catalog, tokio_postgres::Error> {
    let existing = tx
        .query_typed(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[(&schema, Type::TEXT), (&table, Type::TEXT)],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let primary_key = tx
        .query_typed(
            "SELECT con.conname::text, array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND con.contype = 'p' \
             GROUP BY con.conname",
            &[(&schema, Type::TEXT), (&table, Type::TEXT)],
        )
        .await?
        .first()
        .map(|row| (row.get::<_, String>(0), row.get::<_, Vec<String>>(1)));
    Ok((existing, primary_key))
}

/// `CREATE TABLE IF NOT EXISTS` with every column, the version column and the key.
fn create_sql(qualified: &str, table: &TargetTable) -> String {
    let mut defs: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), pg_column(&c.ty).pg_type))
        .collect();
    defs.push(format!(
        "{} text COLLATE \"C\" NOT NULL",
        ident(VERSION_COLUMN)
    ));
    defs.push(format!("PRIMARY KEY ({})", key_list(table)));
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} ({})",
        defs.join(", ")
    )
}

fn key_list(table: &TargetTable) -> String {
    table
        .key_columns()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `ALTER TABLE` actions that turn the existing columns into the shape's.
fn alter_actions(
    table: &TargetTable,
    existing: &[(String, String)],
    primary_key: Option<&(String, Vec<String>)>,
) -> Vec<String> {
    let mut actions = Vec::new();
    let wanted_key: Vec<&str> = table.key_columns().map(|c| c.name.as_str()).collect();
    let key_moves = primary_key.is_none_or(|(_, cols)| {
        cols.iter()
            .map(String::as_str)
            .ne(wanted_key.iter().copied())
    });
    if key_moves {
        if let Some((name, _)) = primary_key {
            actions.push(format!("DROP CONSTRAINT IF EXISTS {}", ident(name)));
        }
    }
    for (name, _) in existing {
        let kept = name == VERSION_COLUMN || table.columns.iter().any(|c| &c.name == name);
        if !kept {
            actions.push(format!("DROP COLUMN IF EXISTS {}", ident(name)));
        }
    }
    if !existing.iter().any(|(name, _)| name == VERSION_COLUMN) {
        // A table strata did not create: rows already there count as older than any op.
        actions.push(format!(
            "ADD COLUMN {} text COLLATE \"C\" NOT NULL DEFAULT ''",
            ident(VERSION_COLUMN)
        ));
    }
    for column in &table.columns {
        let pg = pg_column(&column.ty);
        let col = ident(&column.name);
        match existing.iter().find(|(name, _)| name == &column.name) {
            None => actions.push(format!("ADD COLUMN {col} {}", pg.pg_type)),
            Some((_, old_type)) if old_type != &pg.pg_type => actions.push(format!(
                "ALTER COLUMN {col} TYPE {} USING {}",
                pg.pg_type,
                convert_expr(&col, old_type, &pg)
            )),
            Some(_) => {}
        }
    }
    if key_moves {
        actions.push(format!("ADD PRIMARY KEY ({})", key_list(table)));
    }
    actions
}

/// Converts a column's stored values from `old_type` to the new column type, through
/// their text form (bytes through UTF-8), so that a widened or changed MySQL column keeps
/// its values wherever PostgreSQL can read them as the new type.
fn convert_expr(col: &str, old_type: &str, new: &PgColumn) -> String {
    let as_text = if old_type == "bytea" {
        format!("convert_from({col}, 'UTF8')")
    } else if old_type == "text[]" {
        format!("array_to_string({col}, ',')")
    } else {
        format!("{col}::text")
    };
    match new.wire {
        Wire::Bytes => format!("convert_to({as_text}, 'UTF8')"),
        Wire::Float4 => format!("({as_text})::real"),
        Wire::Float8 => format!("({as_text})::double precision"),
        Wire::Int8 | Wire::Text => new.cast(&format!("({as_text})")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use strata_core::{Column, ColumnType, TableId, TargetTable};

    fn plan(cols: &[(&str, ColumnType)]) -> TargetTable {
        TargetTable {
            source: TableId::new("s", "t"),
            name: "t".into(),
            columns: cols
                .iter()
                .map(|(n, ty)| Column {
                    name: (*n).into(),
                    ty: ty.clone(),
                    nullable: true,
                })
                .collect(),
            key: vec![0],
        }
    }

    #[test]
    fn renamed_column_is_dropped_and_added() {
        let int = ColumnType::Int {
            bytes: 4,
            unsigned: false,
        };
        let p = plan(&[("id", int.clone()), ("new", ColumnType::Json)]);
        let existing = vec![
            ("id".to_string(), "integer".to_string()),
            ("old".to_string(), "jsonb".to_string()),
            (VERSION_COLUMN.to_string(), "text".to_string()),
        ];
        let pk = ("t_pkey".to_string(), vec!["id".to_string()]);
        let actions = alter_actions(&p, &existing, Some(&pk));
        assert_eq!(
            actions,
            vec![
                "DROP COLUMN IF EXISTS \"old\"".to_string(),
                "ADD COLUMN \"new\" jsonb".to_string()
            ]
        );
    }

    #[test]
    fn retyped_column_converts_through_text() {
        let p = plan(&[(
            "id",
            ColumnType::Int {
                bytes: 8,
                unsigned: true,
            },
        )]);
        let existing = vec![
            ("id".to_string(), "bigint".to_string()),
            (VERSION_COLUMN.to_string(), "text".to_string()),
        ];
        let pk = ("t_pkey".to_string(), vec!["id".to_string()]);
        let actions = alter_actions(&p, &existing, Some(&pk));
        assert_eq!(
            actions,
            vec!["ALTER COLUMN \"id\" TYPE numeric(20,0) USING (\"id\"::text)::numeric(20,0)"]
        );
    }
}
