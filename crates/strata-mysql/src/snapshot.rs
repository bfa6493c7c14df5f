//! Reading a table's current rows for a snapshot (backfill) or a verification: the start
//! position recorded so that every transaction before it is visible to later reads, and
//! primary-key-ordered chunks read with keyset pagination, without long-held locks.
//!
//! Rows come back as exactly the [`Value`]s the binlog decoder produces for the same data
//! (`snapshot_value`), so snapshot writes and binlog writes of a row are indistinguishable
//! in every target.

use crate::config::SourceConfig;
use crate::connect::{self, Flavor};
use crate::error::SourceError;
use crate::schema_info::{self, query_error, ChunkKey, TableInfo};
use crate::snapshot_value::{can_page_by, from_cell, text_param_ok, to_param};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row};
use strata_core::{BinlogPos, ColumnType, GtidSet, TableId, Value};

/// Where a snapshot starts: every change before it is reflected in rows read afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStart {
    /// The binlog position: streaming from here misses nothing the snapshot does not hold.
    pub position: BinlogPos,
    /// The GTID set (MySQL) or GTID position (MariaDB) at `position`, when known.
    pub gtid: Option<GtidSet>,
}

/// A connection that reads tables for snapshots and verifications.
pub struct SnapshotReader {
    conn: Conn,
    flavor: Flavor,
}

impl SnapshotReader {
    /// Connects and prepares the session: UTC time zone (TIMESTAMPs come back as UTC
    /// fields), raw result bytes (text is decoded by strata, as in the binlog), and a
    /// statement-sized lock wait.
    pub async fn connect(cfg: &SourceConfig) -> Result<SnapshotReader, SourceError> {
        let mut conn = connect::connect(cfg).await?;
        let version = connect::query_text(&mut conn, "SELECT VERSION()")
            .await?
            .unwrap_or_default();
        let flavor = connect::flavor_of(&version);
        connect::exec(
            &mut conn,
            "SET SESSION time_zone = '+00:00', character_set_results = NULL",
        )
        .await?;
        Ok(SnapshotReader { conn, flavor })
    }

    /// MySQL or MariaDB.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The base tables of `schemas`, in name order.
    pub async fn list_tables(&mut self, schemas: &[String]) -> Result<Vec<TableId>, SourceError> {
        schema_info::list_tables(&mut self.conn, schemas).await
    }

    /// The table's columns and keys as the binlog decoder would describe them; `None` when
    /// the table does not exist.
    pub async fn table_info(&mut self, id: &TableId) -> Result<Option<TableInfo>, SourceError> {
        schema_info::table_info(&mut self.conn, self.flavor, id).await
    }

    /// Records where a snapshot of `tables` starts, such that every transaction before the
    /// returned position is visible to reads made afterwards.
    ///
    /// - MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` and its
    ///   `binlog_snapshot_file/position` status, which MariaDB keeps consistent with the read
    ///   view: no lock at all.
    /// - MySQL: a binlog position read while holding `LOCK TABLES … READ` on the tables for
    ///   the duration of one status query. The lock waits for transactions writing those
    ///   tables to finish their commit, so none is left between the binlog and the storage
    ///   engine; `lock_wait_timeout` is 10 s so that a long transaction cannot hold writers
    ///   up for longer. No global read lock is taken.
    pub async fn record_start(&mut self, tables: &[TableId]) -> Result<SnapshotStart, SourceError> {
        match self.flavor {
            Flavor::MariaDb => self.record_start_mariadb().await,
            Flavor::MySql => self.record_start_mysql(tables).await,
        }
    }

    async fn record_start_mariadb(&mut self) -> Result<SnapshotStart, SourceError> {
        connect::exec(&mut self.conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
        let rows =
            connect::query_rows(&mut self.conn, "SHOW STATUS LIKE 'binlog_snapshot_%'").await;
        connect::exec(&mut self.conn, "COMMIT").await?;
        let mut file = None;
        let mut pos = None;
        for row in rows? {
            let name = connect::cell_text(&row, 0)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let value = connect::cell_text(&row, 1);
            match name.as_str() {
                "binlog_snapshot_file" => file = value,
                "binlog_snapshot_position" => pos = value.and_then(|v| v.parse::<u64>().ok()),
                _ => {}
            }
        }
        let (Some(file), Some(pos)) = (file.filter(|f| !f.is_empty()), pos) else {
            return Err(SourceError::Preflight(vec![
                crate::error::PreflightFailure {
                    check: "log_bin",
                    message: connect::binlog_disabled_message(),
                },
            ]));
        };
        let position = BinlogPos::new(file, pos);
        const GTID: &str = "SELECT BINLOG_GTID_POS(?, ?)";
        let gtid: Option<Option<String>> = self
            .conn
            .exec_first(GTID, (position.file.as_str(), position.pos))
            .await
            .map_err(|source| query_error(GTID, source))?;
        let gtid = gtid
            .flatten()
            .filter(|t| !t.trim().is_empty())
            .and_then(|t| t.parse::<GtidSet>().ok());
        Ok(SnapshotStart { position, gtid })
    }

    async fn record_start_mysql(
        &mut self,
        tables: &[TableId],
    ) -> Result<SnapshotStart, SourceError> {
        connect::exec(&mut self.conn, "SET SESSION lock_wait_timeout = 10").await?;
        if !tables.is_empty() {
            let list: Vec<String> = tables
                .iter()
                .map(|t| format!("{} READ", qualified(t)))
                .collect();
            let lock = format!("LOCK TABLES {}", list.join(", "));
            if let Err(e) = connect::exec(&mut self.conn, &lock).await {
                return Err(SourceError::Config(format!(
                    "cannot hold a brief read lock on the snapshot's tables to record a consistent start position ({e}); grant the user LOCK TABLES on the version's schemas (GRANT LOCK TABLES ON `schema`.* TO …), or retry when no long transaction writes to them"
                )));
            }
        }
        let info = connect::server_info(&mut self.conn).await;
        connect::exec(&mut self.conn, "UNLOCK TABLES").await?;
        let info = info?;
        Ok(SnapshotStart {
            position: info.end,
            gtid: info.gtid,
        })
    }

    /// The end of the binlog now (and GTID state), e.g. the position a verification read
    /// is known to reflect.
    pub async fn current_position(&mut self) -> Result<SnapshotStart, SourceError> {
        let info = connect::server_info(&mut self.conn).await?;
        Ok(SnapshotStart {
            position: info.end,
            gtid: info.gtid,
        })
    }

    /// `Threads_running` (including this session's own query), a measure of how busy the
    /// source is.
    pub async fn threads_running(&mut self) -> Result<u64, SourceError> {
        let rows = connect::query_rows(&mut self.conn, "SHOW GLOBAL STATUS LIKE 'Threads_running'")
            .await?;
        Ok(rows
            .first()
            .and_then(|r| connect::cell_text(r, 1))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }

    /// Up to `limit` rows with a key greater than `after` (all rows from the start when
    /// `None`), in key order. The key is `table.chunk_key`.
    pub async fn read_chunk(
        &mut self,
        table: &TableInfo,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        let key = pageable_key(table)?;
        let columns = &table.schema.columns;
        let order: Vec<String> = key.iter().map(|&i| ident(&columns[i].name)).collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            select_list(table),
            qualified(&table.schema.id)
        );
        let mut params = Vec::new();
        if let Some(after) = after {
            if after.len() != key.len() {
                return Err(SourceError::Config(format!(
                    "table {}: a resume key of {} values for a key of {} columns; the table's key changed since the snapshot started: restart it with --restart",
                    table.schema.id,
                    after.len(),
                    key.len()
                )));
            }
            // (k1 > ?) OR (k1 = ? AND k2 > ?) OR …: every server turns this into index
            // ranges, where a row constructor comparison is not always optimised.
            let mut disjuncts = Vec::with_capacity(key.len());
            for n in 0..key.len() {
                let mut terms = Vec::with_capacity(n + 1);
                for (j, column) in order.iter().enumerate().take(n) {
                    terms.push(format!("{column} = ?"));
                    params.push(param(table, key[j], &after[j])?);
                }
                terms.push(format!("{} > ?", order[n]));
                params.push(param(table, key[n], &after[n])?);
                disjuncts.push(format!("({})", terms.join(" AND ")));
            }
            sql.push_str(&format!(" WHERE {}", disjuncts.join(" OR ")));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
        self.select(table, &sql, params).await
    }

    /// The rows whose values in `key` (column indices, e.g. the table's chunk key or the
    /// key a version routes by) are `keys`; absent rows are simply not returned. Rows come
    /// in key order, as last committed (a locking read). For re-checking and repairing
    /// single rows.
    pub async fn read_by(
        &mut self,
        table: &TableInfo,
        key: &[usize],
        keys: &[Vec<Value>],
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        check_key_columns(table, key)?;
        let columns = &table.schema.columns;
        let mut out = Vec::new();
        for group in keys.chunks(200) {
            let mut params = Vec::new();
            let mut rows = Vec::with_capacity(group.len());
            for values in group {
                if values.len() != key.len() {
                    continue;
                }
                let terms: Vec<String> = key
                    .iter()
                    .map(|&i| format!("{} = ?", ident(&columns[i].name)))
                    .collect();
                for (&i, v) in key.iter().zip(values) {
                    params.push(param(table, i, v)?);
                }
                rows.push(format!("({})", terms.join(" AND ")));
            }
            if rows.is_empty() {
                continue;
            }
            let order: Vec<String> = key.iter().map(|&i| ident(&columns[i].name)).collect();
            // A locking read: it waits for any transaction still holding these rows, so a
            // change already in the binlog (a replicator may have applied it) but not yet
            // committed in the engine is seen, not the row as it was before. The shared
            // locks last only for this autocommit statement.
            let lock = match self.flavor {
                Flavor::MySql => "FOR SHARE",
                Flavor::MariaDb => "LOCK IN SHARE MODE",
            };
            let sql = format!(
                "SELECT {} FROM {} WHERE {} ORDER BY {} {lock}",
                select_list(table),
                qualified(&table.schema.id),
                rows.join(" OR "),
                order.join(", ")
            );
            out.extend(self.select(table, &sql, params).await?);
        }
        Ok(out)
    }

    /// Every row of a table without a usable key, in the server's order, handed to
    /// `on_rows` `batch` rows at a time. One statement for the whole table (it holds a read
    /// view, not a lock); used only for tables the config opts into a full copy.
    pub async fn read_all<F, Fut>(
        &mut self,
        table: &TableInfo,
        batch: usize,
        mut on_rows: F,
    ) -> Result<(), SourceError>
    where
        F: FnMut(Vec<Vec<Value>>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let sql = format!(
            "SELECT {} FROM {}",
            select_list(table),
            qualified(&table.schema.id)
        );
        let binary_json = self.flavor == Flavor::MySql;
        let mut result = self
            .conn
            .exec_iter(sql.as_str(), Params::Empty)
            .await
            .map_err(|source| query_error(&sql, source))?;
        let mut rows = Vec::with_capacity(batch);
        while let Some(row) = result
            .next()
            .await
            .map_err(|source| query_error(&sql, source))?
        {
            rows.push(convert_row(table, binary_json, row)?);
            if rows.len() >= batch && !on_rows(std::mem::take(&mut rows)).await {
                result
                    .drop_result()
                    .await
                    .map_err(|source| query_error(&sql, source))?;
                return Ok(());
            }
        }
        if !rows.is_empty() {
            on_rows(rows).await;
        }
        Ok(())
    }

    async fn select(
        &mut self,
        table: &TableInfo,
        sql: &str,
        params: Vec<mysql_async::Value>,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        let binary_json = self.flavor == Flavor::MySql;
        let params = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params)
        };
        let rows: Vec<Row> = self
            .conn
            .exec(sql, params)
            .await
            .map_err(|source| query_error(&statement_shape(table), source))?;
        rows.into_iter()
            .map(|row| convert_row(table, binary_json, row))
            .collect()
    }

    /// Closes the connection politely.
    pub async fn disconnect(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// The key columns of the table's chunk key, checked to be usable for paging.
fn pageable_key(table: &TableInfo) -> Result<&[usize], SourceError> {
    let key = table.chunk_key.columns();
    if key.is_empty() {
        return Err(SourceError::Config(format!(
            "table {} has no primary key and no unique NOT NULL key to read it in chunks",
            table.schema.id
        )));
    }
    check_key_columns(table, key)?;
    Ok(key)
}

/// Checks that values of these columns can be statement parameters that compare as the
/// stored values do.
fn check_key_columns(table: &TableInfo, key: &[usize]) -> Result<(), SourceError> {
    for &i in key {
        let Some(column) = table.schema.columns.get(i) else {
            return Err(SourceError::Config(format!(
                "table {}: no column {i}",
                table.schema.id
            )));
        };
        let text_ok =
            !matches!(column.ty, ColumnType::Text { .. }) || text_param_ok(table.encodings[i]);
        if !can_page_by(&column.ty) || !text_ok {
            return Err(SourceError::Config(format!(
                "table {}: key column {} has type {:?}, which strata cannot look rows up by; give the table another key",
                table.schema.id, column.name, column.ty
            )));
        }
    }
    Ok(())
}

fn param(
    table: &TableInfo,
    column: usize,
    value: &Value,
) -> Result<mysql_async::Value, SourceError> {
    to_param(value).ok_or_else(|| {
        SourceError::Config(format!(
            "table {}: key column {} holds a value strata cannot use as a parameter",
            table.schema.id, table.schema.columns[column].name
        ))
    })
}

fn convert_row(table: &TableInfo, binary_json: bool, row: Row) -> Result<Vec<Value>, SourceError> {
    let columns = &table.schema.columns;
    let cells = row.unwrap();
    if cells.len() != columns.len() {
        return Err(SourceError::Config(format!(
            "table {}: a row of {} values for {} columns; the table changed while it was read, run again",
            table.schema.id,
            cells.len(),
            columns.len()
        )));
    }
    cells
        .into_iter()
        .zip(columns.iter().zip(&table.encodings))
        .map(|(cell, (column, encoding))| {
            from_cell(&column.ty, *encoding, binary_json, cell).map_err(|reason| {
                SourceError::Config(format!(
                    "table {}, column {}: {reason}",
                    table.schema.id, column.name
                ))
            })
        })
        .collect()
}

fn select_list(table: &TableInfo) -> String {
    table
        .schema
        .columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement's shape for error messages: the table, never the parameter values.
fn statement_shape(table: &TableInfo) -> String {
    format!("SELECT … FROM {}", qualified(&table.schema.id))
}

/// `name` as a quoted MySQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn qualified(id: &TableId) -> String {
    format!("{}.{}", ident(&id.schema), ident(&id.table))
}

/// Whether a table's chunk key is usable for paging (its types can be parameters).
pub fn pages_by_key(table: &TableInfo) -> bool {
    !matches!(table.chunk_key, ChunkKey::None) && pageable_key(table).is_ok()
}
