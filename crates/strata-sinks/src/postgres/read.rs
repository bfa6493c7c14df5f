//! Reading rows back from PostgreSQL for `strata verify` (see [`strata_core::TargetReader`]).
//!
//! Both sides are compared in PostgreSQL's own text output: stored rows as `column::text`,
//! expected rows by sending the source values exactly as the sink sends them (the same
//! array parameters and casts, [`super::encode`]) and reading them back as `::text`, so
//! PostgreSQL's input functions do the same conversions as for a write (numeric scale,
//! jsonb normalisation, time zones). Ids and scanned key parts are the key columns' text
//! (e.g. `42`, `2024-01-02 03:04:05.5`, `\x0102`).

use super::encode::{pg_column, ParamArray};
use super::error::pg_error;
use super::guard::{ident, VERSION_COLUMN};
use super::pool::Pool;
use super::{PostgresSettings, SINK};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use strata_core::readback::parse_sortable;
use strata_core::value::key_id;
use strata_core::{
    Column, ErrorKind, ScanPage, SinkError, StoredKey, StoredRow, StoredVersion, TargetReader,
    TargetTable, Value,
};
use tokio_postgres::types::{ToSql, Type};

/// Reads a version's rows back from its PostgreSQL schema.
pub struct PostgresReader {
    schema: String,
    pool: Pool,
}

impl PostgresReader {
    /// Connects with the sink's settings (URL, schema).
    pub async fn connect(settings: PostgresSettings) -> Result<PostgresReader, SinkError> {
        let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
            SinkError::new(
                SINK,
                ErrorKind::Config,
                format!(
                    "the PostgreSQL URL is not valid ({e}); use postgres://user@host:port/database"
                ),
            )
        })?;
        config
            .connect_timeout(settings.timeout)
            .application_name("strata-verify")
            // Key texts of TIMESTAMP keys are read back as UTC (`…+00`).
            .options("-c TimeZone=UTC");
        let reader = PostgresReader {
            schema: settings.schema,
            pool: Pool::new(config, 2, settings.timeout),
        };
        let mut conn = reader.pool.get().await?;
        conn.client()?
            .simple_query("SELECT 1")
            .await
            .map_err(|e| pg_error(&e, "checking PostgreSQL"))?;
        drop(conn);
        Ok(reader)
    }

    fn qualified(&self, table: &TargetTable) -> String {
        format!("{}.{}", ident(&self.schema), ident(&table.name))
    }

    /// The table's columns in PostgreSQL, or `None` when it does not exist.
    async fn live_columns(
        &self,
        client: &tokio_postgres::Client,
        table: &TargetTable,
    ) -> Result<Option<HashSet<String>>, SinkError> {
        let rows = client
            .query_typed(
                "SELECT a.attname::text FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[(&self.schema, Type::TEXT), (&table.name, Type::TEXT)],
            )
            .await
            .map_err(|e| pg_error(&e, &format!("reading the columns of table {}", table.name)))?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows.iter().map(|r| r.get::<_, String>(0)).collect()))
    }
}

/// `unnest($1::w[], …) WITH ORDINALITY AS u(c0, …, ord)` over `columns`, and the casts that
/// turn each `u.cN` into its column's type, as the sink's statements do.
fn unnest_sql(columns: &[&Column]) -> (String, Vec<String>) {
    let mut arrays = Vec::with_capacity(columns.len());
    let mut names = Vec::with_capacity(columns.len() + 1);
    let mut casts = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let pg = pg_column(&column.ty);
        arrays.push(format!("${}::{}", i + 1, pg.wire.array_sql()));
        names.push(format!("c{i}"));
        casts.push(pg.cast(&format!("u.c{i}")));
    }
    names.push("ord".into());
    (
        format!(
            "unnest({}) WITH ORDINALITY AS u({})",
            arrays.join(", "),
            names.join(", ")
        ),
        casts,
    )
}

/// The array parameters carrying `rows`' values of `columns` (indices into each row).
fn params<'a>(
    columns: &[(usize, &Column)],
    rows: impl Iterator<Item = &'a [Value]> + Clone,
) -> Result<Vec<ParamArray<'a>>, SinkError> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, column) in columns {
        let mut array = ParamArray::new(pg_column(&column.ty).wire, 0);
        for row in rows.clone() {
            array
                .push(column, &row[*i])
                .map_err(|reason| SinkError::new(SINK, ErrorKind::Data, reason))?;
        }
        out.push(array);
    }
    Ok(out)
}

fn typed<'a>(
    columns: &[(usize, &Column)],
    arrays: &'a [ParamArray<'a>],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    arrays
        .iter()
        .zip(columns)
        .map(|(a, (_, c))| (a.as_sql(), pg_column(&c.ty).wire.array_type()))
        .collect()
}

fn id_of(parts: &[String]) -> String {
    let values: Vec<Value> = parts.iter().map(|p| Value::String(p.clone())).collect();
    key_id(&values)
}

#[async_trait]
impl TargetReader for PostgresReader {
    fn name(&self) -> &'static str {
        SINK
    }

    async fn expected(
        &self,
        table: &TargetTable,
        rows: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let columns: Vec<(usize, &Column)> = table.columns.iter().enumerate().collect();
        let refs: Vec<&Column> = columns.iter().map(|(_, c)| *c).collect();
        let (from, casts) = unnest_sql(&refs);
        let select: Vec<String> = casts.iter().map(|c| format!("({c})::text")).collect();
        let sql = format!("SELECT {} FROM {from} ORDER BY u.ord", select.join(", "));
        let arrays = params(&columns, rows.iter().map(Vec::as_slice))?;
        let mut conn = self.pool.get().await?;
        let client = conn.client()?;
        let result = client
            .query_typed(&sql, &typed(&columns, &arrays))
            .await
            .map_err(|e| pg_error(&e, &format!("normalising rows of table {}", table.name)))?;
        Ok(result
            .iter()
            .map(|row| {
                let texts: Vec<Option<String>> = (0..columns.len()).map(|i| row.get(i)).collect();
                let parts: Vec<String> = table
                    .key
                    .iter()
                    .map(|&k| texts[k].clone().unwrap_or_default())
                    .collect();
                let fields = table
                    .columns
                    .iter()
                    .zip(texts)
                    .filter_map(|(c, t)| t.map(|t| (c.name.clone(), t.into_bytes())))
                    .collect();
                StoredRow {
                    id: id_of(&parts),
                    fields,
                    version: None,
                }
            })
            .collect())
    }

    async fn fetch(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await?;
        let client = conn.client()?;
        let Some(live) = self.live_columns(client, table).await? else {
            return Ok(Vec::new());
        };
        let key_columns: Vec<(usize, &Column)> = table.key_columns().enumerate().collect();
        let key_refs: Vec<&Column> = key_columns.iter().map(|(_, c)| *c).collect();
        let (from, casts) = unnest_sql(&key_refs);
        let key_list: Vec<String> = key_refs
            .iter()
            .map(|c| format!("t.{}", ident(&c.name)))
            .collect();
        // Columns the table lacks are left out: they show as missing fields.
        let present: Vec<&Column> = table
            .columns
            .iter()
            .filter(|c| live.contains(&c.name))
            .collect();
        let mut select: Vec<String> = key_refs
            .iter()
            .map(|c| format!("t.{}::text", ident(&c.name)))
            .collect();
        select.extend(
            present
                .iter()
                .map(|c| format!("t.{}::text", ident(&c.name))),
        );
        select.push(format!("t.{}", ident(VERSION_COLUMN)));
        let sql = format!(
            "SELECT {} FROM {} t WHERE ({}) IN (SELECT {} FROM {from})",
            select.join(", "),
            self.qualified(table),
            key_list.join(", "),
            casts.join(", ")
        );
        let arrays = params(&key_columns, keys.iter().map(Vec::as_slice))?;
        let result = client
            .query_typed(&sql, &typed(&key_columns, &arrays))
            .await
            .map_err(|e| pg_error(&e, &format!("reading rows of table {}", table.name)))?;
        let k = key_refs.len();
        Ok(result
            .iter()
            .map(|row| {
                let parts: Vec<String> = (0..k)
                    .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
                    .collect();
                let mut fields = BTreeMap::new();
                for (j, column) in present.iter().enumerate() {
                    if let Some(text) = row.get::<_, Option<String>>(k + j) {
                        fields.insert(column.name.clone(), text.into_bytes());
                    }
                }
                let version = row
                    .get::<_, Option<String>>(k + present.len())
                    .and_then(|v| parse_sortable(&v))
                    .map(StoredVersion::Full);
                StoredRow {
                    id: id_of(&parts),
                    fields,
                    version,
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        table: &TargetTable,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage, SinkError> {
        let mut conn = self.pool.get().await?;
        let client = conn.client()?;
        if self.live_columns(client, table).await?.is_none() {
            return Ok(ScanPage::default());
        }
        let key: Vec<&Column> = table.key_columns().collect();
        // Qualified: a bare name in ORDER BY would mean the `::text` output column of the
        // same name, and page in text order.
        let names: Vec<String> = key
            .iter()
            .map(|c| format!("t.{}", ident(&c.name)))
            .collect();
        let after: Option<Vec<String>> = match cursor {
            Some(c) => Some(serde_json::from_str(c).map_err(|_| {
                SinkError::new(
                    SINK,
                    ErrorKind::Internal,
                    "a scan cursor that is not strata's",
                )
            })?),
            None => None,
        };
        let select: Vec<String> = names.iter().map(|n| format!("{n}::text")).collect();
        let mut sql = format!(
            "SELECT {} FROM {} t",
            select.join(", "),
            self.qualified(table)
        );
        let mut texts: Vec<String> = Vec::new();
        if let Some(after) = &after {
            let bounds: Vec<String> = key
                .iter()
                .enumerate()
                .map(|(i, c)| format!("${}::text::{}", i + 1, pg_column(&c.ty).pg_type))
                .collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                names.join(", "),
                bounds.join(", ")
            ));
            texts.clone_from(after);
        }
        sql.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            names.join(", "),
            limit.max(1)
        ));
        let bind: Vec<(&(dyn ToSql + Sync), Type)> = texts
            .iter()
            .map(|t| (t as &(dyn ToSql + Sync), Type::TEXT))
            .collect();
        let rows = client
            .query_typed(&sql, &bind)
            .await
            .map_err(|e| pg_error(&e, &format!("scanning table {}", table.name)))?;
        let keys: Vec<StoredKey> = rows
            .iter()
            .map(|row| {
                let parts: Vec<String> = (0..key.len())
                    .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
                    .collect();
                StoredKey {
                    id: id_of(&parts),
                    parts,
                }
            })
            .collect();
        let next = if keys.len() >= limit.max(1) {
            keys.last()
                .map(|k| serde_json::to_string(&k.parts).unwrap_or_default())
        } else {
            None
        };
        Ok(ScanPage { keys, next })
    }
}
