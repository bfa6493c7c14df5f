//! Tables and columns as the binlog describes them (TABLE_MAP with full row metadata).

use std::fmt;

/// `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId {
    pub schema: String,
    pub table: String,
}

impl TableId {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableId {
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A column's type, with what a target needs to store its values exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// TINYINT (1), SMALLINT (2), MEDIUMINT (3), INT (4), BIGINT (8).
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    DateTime {
        fsp: u8,
    },
    Timestamp {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    Year,
    /// CHAR, VARCHAR, TEXT types, with the character set's name when known.
    Text {
        charset: Option<String>,
    },
    /// BINARY, VARBINARY, BLOB types.
    Bytes,
    Enum {
        members: Vec<String>,
    },
    Set {
        members: Vec<String>,
    },
    Bit {
        width: u8,
    },
    Json,
    Geometry,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

/// A table's shape at one point of the binlog.
///
/// Built from the binlog's own metadata, so events are decoded with the columns they were
/// written with, not the table's current definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    pub id: TableId,
    pub columns: Vec<Column>,
    /// Indices into `columns` of the primary key (empty when the table has none).
    pub primary_key: Vec<usize>,
}

impl TableSchema {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}
