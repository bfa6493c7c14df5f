//! Tables as `information_schema` describes them today, in exactly the form the binlog
//! decoder gives them ([`crate::table_map`]), so that a snapshot row and a binlog row of one
//! table route, key and encode alike.

use crate::charset::{encoding_of, TextEncoding};
use crate::connect::{self, Flavor};
use crate::error::SourceError;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use std::collections::HashSet;
use std::sync::Arc;
use strata_core::{Column, ColumnType, TableId, TableSchema};

/// The key a snapshot pages a table by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKey {
    /// The primary key (indices into the table's columns, in key order).
    Primary(Vec<usize>),
    /// A unique index whose columns are all NOT NULL, for a table without a primary key.
    Unique {
        /// The index's name.
        index: String,
        /// Its columns, in index order.
        columns: Vec<usize>,
    },
    /// Neither: the table can only be copied whole, in one ordered-by-nothing scan.
    None,
}

impl ChunkKey {
    /// The key's column indices (empty for [`ChunkKey::None`]).
    pub fn columns(&self) -> &[usize] {
        match self {
            ChunkKey::Primary(c) | ChunkKey::Unique { columns: c, .. } => c,
            ChunkKey::None => &[],
        }
    }
}

/// A table ready to be read by the snapshot reader.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The table as the binlog decoder would describe it.
    pub schema: Arc<TableSchema>,
    /// What the snapshot pages by.
    pub chunk_key: ChunkKey,
    /// `information_schema.TABLES.TABLE_ROWS`: an estimate, for progress and ETA only.
    pub estimated_rows: u64,
    /// How each column's bytes become text (aligned with `schema.columns`).
    pub(crate) encodings: Vec<TextEncoding>,
}

/// The base tables of `schemas`, in name order.
pub async fn list_tables(conn: &mut Conn, schemas: &[String]) -> Result<Vec<TableId>, SourceError> {
    const QUERY: &str = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                         WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME";
    let mut out = Vec::new();
    for schema in schemas {
        let rows: Vec<Row> = conn
            .exec(QUERY, (schema.as_str(),))
            .await
            .map_err(|source| query_error(QUERY, source))?;
        for row in rows {
            if let (Some(s), Some(t)) = (connect::cell_text(&row, 0), connect::cell_text(&row, 1)) {
                out.push(TableId::new(s, t));
            }
        }
    }
    Ok(out)
}

/// One `information_schema.COLUMNS` row.
struct ColumnRow {
    name: String,
    data_type: String,
    column_type: String,
    nullable: bool,
    precision: Option<u64>,
    scale: Option<u64>,
    fsp: Option<u64>,
    charset: Option<String>,
}

/// Describes `id` (columns, keys, size estimate); `None` when the table does not exist.
pub async fn table_info(
    conn: &mut Conn,
    flavor: Flavor,
    id: &TableId,
) -> Result<Option<TableInfo>, SourceError> {
    const COLUMNS: &str = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
        NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME \
        FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
        ORDER BY ORDINAL_POSITION";
    let rows: Vec<Row> = conn
        .exec(COLUMNS, (id.schema.as_str(), id.table.as_str()))
        .await
        .map_err(|source| query_error(COLUMNS, source))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let text = |row: &Row, i: usize| connect::cell_text(row, i);
    let number = |row: &Row, i: usize| text(row, i).and_then(|t| t.parse::<u64>().ok());
    let raw: Vec<ColumnRow> = rows
        .iter()
        .map(|row| ColumnRow {
            name: text(row, 0).unwrap_or_default(),
            data_type: text(row, 1).unwrap_or_default().to_ascii_lowercase(),
            column_type: text(row, 2).unwrap_or_default(),
            nullable: text(row, 3).is_some_and(|t| t.eq_ignore_ascii_case("YES")),
            precision: number(row, 4),
            scale: number(row, 5),
            fsp: number(row, 6),
            charset: text(row, 7).map(|c| if c == "utf8" { "utf8mb3".into() } else { c }),
        })
        .collect();

    // MariaDB's JSON is LONGTEXT with a json_valid() CHECK; the decoder marks those columns
    // JSON only when they are utf8mb4 LONGTEXT, and so must this.
    let json_text: HashSet<String> = if flavor == Flavor::MariaDb
        && raw
            .iter()
            .any(|c| c.data_type == "longtext" && c.charset.as_deref() == Some("utf8mb4"))
    {
        mariadb_json_columns(conn, id).await?
    } else {
        HashSet::new()
    };

    let mut columns = Vec::with_capacity(raw.len());
    let mut encodings = Vec::with_capacity(raw.len());
    for c in &raw {
        let ty = column_type(c, &json_text)
            .map_err(|e| SourceError::Config(format!("table {id}, column {}: {e}", c.name)))?;
        encodings.push(encoding_of(c.charset.as_deref()));
        columns.push(Column {
            name: c.name.clone(),
            ty,
            nullable: c.nullable,
        });
    }
    let (primary_key, unique) = keys(conn, id, &columns).await?;
    let chunk_key =
        if !primary_key.is_empty() && unique.as_ref().is_some_and(|(_, c)| *c == primary_key) {
            ChunkKey::Primary(primary_key.clone())
        } else if let Some((index, columns)) = unique {
            ChunkKey::Unique { index, columns }
        } else {
            ChunkKey::None
        };
    let estimated_rows = estimate_rows(conn, id).await?;
    Ok(Some(TableInfo {
        schema: Arc::new(TableSchema {
            id: id.clone(),
            columns,
            primary_key,
        }),
        chunk_key,
        estimated_rows,
        encodings,
    }))
}

/// The `ColumnType` the binlog decoder gives a column of this definition.
fn column_type(c: &ColumnRow, json_text: &HashSet<String>) -> Result<ColumnType, String> {
    let unsigned = c.column_type.to_ascii_lowercase().contains("unsigned");
    let int = |bytes| Ok(ColumnType::Int { bytes, unsigned });
    let fsp = || c.fsp.unwrap_or(0).min(6) as u8;
    let text = || {
        if encoding_of(c.charset.as_deref()) == TextEncoding::Binary {
            ColumnType::Bytes
        } else {
            ColumnType::Text {
                charset: c.charset.clone(),
            }
        }
    };
    match c.data_type.as_str() {
        "tinyint" => int(1),
        "smallint" => int(2),
        "mediumint" => int(3),
        "int" | "integer" => int(4),
        "bigint" => int(8),
        "float" => Ok(ColumnType::Float),
        "double" | "real" | "double precision" => Ok(ColumnType::Double),
        "decimal" | "numeric" => Ok(ColumnType::Decimal {
            precision: c.precision.unwrap_or(10).min(255) as u8,
            scale: c.scale.unwrap_or(0).min(255) as u8,
        }),
        "date" => Ok(ColumnType::Date),
        "datetime" => Ok(ColumnType::DateTime { fsp: fsp() }),
        "timestamp" => Ok(ColumnType::Timestamp { fsp: fsp() }),
        "time" => Ok(ColumnType::Time { fsp: fsp() }),
        "year" => Ok(ColumnType::Year),
        "longtext" if json_text.contains(&c.name) => Ok(ColumnType::Json),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Ok(text()),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "vector" => {
            Ok(ColumnType::Bytes)
        }
        "enum" => Ok(ColumnType::Enum {
            members: members(&c.column_type)?,
        }),
        "set" => Ok(ColumnType::Set {
            members: members(&c.column_type)?,
        }),
        "bit" => Ok(ColumnType::Bit {
            width: c.precision.unwrap_or(1).min(64) as u8,
        }),
        "json" => Ok(ColumnType::Json),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Ok(ColumnType::Geometry),
        other => Err(format!(
            "type `{other}` is not supported by the snapshot reader; exclude the column \
             (exclude_columns) or the table"
        )),
    }
}

/// The members of `enum('a','b''c')` / `set(…)`, unquoted.
pub(crate) fn members(column_type: &str) -> Result<Vec<String>, String> {
    let open = column_type.find('(').ok_or("no member list")?;
    let close = column_type.rfind(')').ok_or("no member list")?;
    let inner: Vec<char> = column_type[open + 1..close].chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != '\'' {
            i += 1;
            continue;
        }
        i += 1;
        let mut member = String::new();
        loop {
            match inner.get(i) {
                None => return Err("unterminated member".into()),
                Some('\'') if inner.get(i + 1) == Some(&'\'') => {
                    member.push('\'');
                    i += 2;
                }
                Some('\'') => {
                    i += 1;
                    break;
                }
                Some('\\') if i + 1 < inner.len() => {
                    member.push(inner[i + 1]);
                    i += 2;
                }
                Some(ch) => {
                    member.push(*ch);
                    i += 1;
                }
            }
        }
        out.push(member);
    }
    Ok(out)
}

async fn mariadb_json_columns(
    conn: &mut Conn,
    id: &TableId,
) -> Result<HashSet<String>, SourceError> {
    const QUERY: &str = "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?";
    let clauses: Vec<String> = conn
        .exec(QUERY, (id.schema.as_str(), id.table.as_str()))
        .await
        .map_err(|source| query_error(QUERY, source))?;
    let mut names = HashSet::new();
    for clause in clauses {
        // `json_valid(`col`)`: collect every quoted name inside a json_valid call.
        let mut rest = clause.as_str();
        while let Some(at) = rest.find("json_valid(`") {
            let after = &rest[at + "json_valid(`".len()..];
            let Some(end) = after.find("`)") else { break };
            names.insert(after[..end].replace("``", "`"));
            rest = &after[end..];
        }
    }
    Ok(names)
}

/// The primary key as the binlog reports it, and the key a snapshot pages by.
///
/// Without a PRIMARY KEY, InnoDB clusters the table by its first UNIQUE index whose columns
/// are all NOT NULL and the binlog reports that index as the primary key; `SHOW INDEX` lists
/// indexes in the server's own order, so "first" means the same here. The paging key is
/// that key when it has no prefix parts, else the first unique NOT NULL index without
/// prefixes.
async fn keys(
    conn: &mut Conn,
    id: &TableId,
    columns: &[Column],
) -> Result<(Vec<usize>, Option<(String, Vec<usize>)>), SourceError> {
    let query = format!(
        "SHOW INDEX FROM {}.{}",
        crate::snapshot::ident(&id.schema),
        crate::snapshot::ident(&id.table)
    );
    let rows: Vec<Row> = conn
        .query(query.as_str())
        .await
        .map_err(|source| query_error(&query, source))?;
    // (name, columns, all NOT NULL, no prefix), in the server's order.
    let mut indexes: Vec<(String, Vec<usize>, bool, bool)> = Vec::new();
    for row in &rows {
        let field = |name: &str| -> Option<String> {
            let i = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
            connect::cell_text(row, i)
        };
        if field("Non_unique").as_deref() != Some("0") {
            continue;
        }
        let Some(index) = field("Key_name") else {
            continue;
        };
        let column = field("Column_name");
        let prefix = field("Sub_part").is_some();
        if indexes.last().is_none_or(|(name, ..)| *name != index) {
            indexes.push((index.clone(), Vec::new(), true, true));
        }
        let Some(entry) = indexes.last_mut() else {
            continue;
        };
        match column.and_then(|c| columns.iter().position(|col| col.name == c)) {
            Some(i) => {
                entry.1.push(i);
                entry.2 &= !columns[i].nullable;
                entry.3 &= !prefix;
            }
            // An expression part: neither a clustering key nor one we can page by.
            None => entry.2 = false,
        }
    }
    let primary = indexes
        .iter()
        .find(|(name, ..)| name == "PRIMARY")
        .or_else(|| {
            indexes
                .iter()
                .find(|(_, cols, not_null, _)| *not_null && !cols.is_empty())
        })
        .map(|(_, cols, ..)| cols.clone())
        .unwrap_or_default();
    let unique = indexes
        .into_iter()
        .find(|(_, cols, not_null, whole)| *not_null && *whole && !cols.is_empty())
        .map(|(name, cols, ..)| (name, cols));
    Ok((primary, unique))
}

async fn estimate_rows(conn: &mut Conn, id: &TableId) -> Result<u64, SourceError> {
    const QUERY: &str = "SELECT TABLE_ROWS FROM information_schema.TABLES \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";
    let rows: Vec<Row> = conn
        .exec(QUERY, (id.schema.as_str(), id.table.as_str()))
        .await
        .map_err(|source| query_error(QUERY, source))?;
    Ok(rows
        .first()
        .and_then(|r| connect::cell_text(r, 0))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0))
}

pub(crate) fn query_error(query: &str, source: mysql_async::Error) -> SourceError {
    SourceError::Query {
        query: query.to_owned(),
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn enum_members_unquote() {
        assert_eq!(
            members("enum('a','it''s','x,y','')").unwrap(),
            vec!["a", "it's", "x,y", ""]
        );
        assert_eq!(members("set('r','w')").unwrap(), vec!["r", "w"]);
        assert!(members("enum").is_err());
    }
}
