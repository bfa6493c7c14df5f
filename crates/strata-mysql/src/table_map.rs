//! TABLE_MAP events → the table's schema and how to decode each of its columns.
//!
//! Built from the binlog's own metadata (`binlog_row_metadata=FULL`), so rows are decoded
//! with the columns they were written with, whatever the table looks like today.

use crate::charset::{charset_name, encoding_of, TextEncoding};
use mysql_common::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_common::constants::ColumnType as MyType;
use std::sync::Arc;
use strata_core::{Column, ColumnType, TableId, TableSchema};

/// How one column's bytes are read from a row image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decode {
    Null,
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
    DateTime2 {
        fsp: u8,
    },
    DateTimeOld,
    Timestamp2 {
        fsp: u8,
    },
    TimestampOld,
    Time2 {
        fsp: u8,
    },
    TimeOld,
    Year,
    /// VARCHAR/VAR_STRING and CHAR: a 1- or 2-byte length, then the bytes.
    Sized {
        len_bytes: u8,
        encoding: TextEncoding,
    },
    /// BINARY(n): like CHAR, but the server strips trailing 0x00 bytes in the binlog, so they
    /// are padded back to the column's `width` (the value a SELECT returns).
    FixedBinary {
        len_bytes: u8,
        width: usize,
    },
    /// TEXT/BLOB: a 1–4-byte length, then the bytes.
    Blob {
        len_bytes: u8,
        encoding: TextEncoding,
    },
    Enum {
        pack: u8,
        members: Arc<[String]>,
    },
    Set {
        pack: u8,
        members: Arc<[String]>,
    },
    Bit {
        width: u8,
    },
    Json {
        len_bytes: u8,
    },
    /// MariaDB JSON: LONGTEXT holding JSON text.
    JsonText {
        len_bytes: u8,
    },
    Geometry {
        len_bytes: u8,
    },
    /// MySQL 9 VECTOR: kept as its bytes.
    Vector {
        len_bytes: u8,
    },
}

/// A table as a TABLE_MAP event describes it, ready to decode row images.
#[derive(Debug)]
pub(crate) struct TableDecoder {
    pub(crate) schema: Arc<TableSchema>,
    pub(crate) columns: Vec<Decode>,
    /// Number of JSON columns (the width of a partial-update JSON bitmap).
    pub(crate) json_columns: usize,
}

impl TableDecoder {
    /// The utf8mb4 LONGTEXT columns: the ones that may be MariaDB JSON columns.
    pub(crate) fn longtext_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .zip(&self.schema.columns)
            .filter(|(d, c)| {
                matches!(d, Decode::Blob { len_bytes: 4, .. })
                    && c.ty
                        == (ColumnType::Text {
                            charset: Some("utf8mb4".into()),
                        })
            })
            .map(|(_, c)| c.name.clone())
            .collect()
    }

    /// Marks the named LONGTEXT columns as JSON (MariaDB's JSON type).
    pub(crate) fn with_json_text(mut self, names: &std::collections::HashSet<String>) -> Self {
        let mut schema = (*self.schema).clone();
        for (decode, column) in self.columns.iter_mut().zip(schema.columns.iter_mut()) {
            if let Decode::Blob { len_bytes, .. } = decode {
                if names.contains(&column.name) {
                    *decode = Decode::JsonText {
                        len_bytes: *len_bytes,
                    };
                    column.ty = ColumnType::Json;
                }
            }
        }
        self.schema = Arc::new(schema);
        self
    }
}

/// Builds the decoder of a TABLE_MAP event; the error says what is missing.
pub(crate) fn build(tme: &TableMapEvent<'_>) -> Result<TableDecoder, String> {
    let schema_name = tme.database_name().into_owned();
    let table_name = tme.table_name().into_owned();
    let n = usize::try_from(tme.columns_count()).map_err(|_| "too many columns".to_owned())?;

    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())
        .map_err(|e| format!("invalid TABLE_MAP metadata of {schema_name}.{table_name}: {e}"))?;
    let names: Vec<String> = meta
        .iter_column_name()
        .map(|r| r.map(|c| c.name().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid column names of {schema_name}.{table_name}: {e}"))?;
    if names.len() != n {
        return Err(format!(
            "the TABLE_MAP of {schema_name}.{table_name} has no column names: it was written with binlog_row_metadata=MINIMAL; run `SET GLOBAL binlog_row_metadata=FULL` on the source and start from a position written after that"
        ));
    }
    let mut signedness = meta.iter_signedness();
    let mut charsets = meta.iter_charset();
    let mut enum_set_charsets = meta.iter_enum_and_set_charset();
    let primary_key: Vec<usize> = meta
        .iter_primary_key()
        .map(|r| r.map(|i| i as usize))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid primary key metadata: {e}"))?;

    let mut enum_values: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut set_values: Vec<Vec<Vec<u8>>> = Vec::new();
    for field in tme.iter_optional_meta() {
        match field.map_err(|e| format!("invalid TABLE_MAP metadata: {e}"))? {
            OptionalMetadataField::EnumStrValue(values) => {
                for v in values.iter_values() {
                    let v = v.map_err(|e| format!("invalid ENUM metadata: {e}"))?;
                    enum_values.push(v.values().iter().map(|s| s.value_raw().to_vec()).collect());
                }
            }
            OptionalMetadataField::SetStrValue(values) => {
                for v in values.iter_values() {
                    let v = v.map_err(|e| format!("invalid SET metadata: {e}"))?;
                    set_values.push(v.values().iter().map(|s| s.value_raw().to_vec()).collect());
                }
            }
            _ => {}
        }
    }
    let mut enum_values = enum_values.into_iter();
    let mut set_values = set_values.into_iter();
    let nullable = tme.null_bitmask();

    let mut columns = Vec::with_capacity(n);
    let mut decoders = Vec::with_capacity(n);
    let mut json_columns = 0;
    for (i, name) in names.into_iter().enumerate() {
        let ty = tme
            .get_column_type(i)
            .map_err(|e| format!("column {name}: {e}"))?
            .ok_or_else(|| format!("column {name}: no type"))?;
        let md = tme.get_column_metadata(i).unwrap_or(&[]);
        let md_at = |k: usize| -> Result<u8, String> {
            md.get(k)
                .copied()
                .ok_or_else(|| format!("column {name}: metadata too short for {ty:?}"))
        };
        let unsigned = if ty.is_numeric_type() {
            signedness.next().unwrap_or(false)
        } else {
            false
        };
        let mut charset = || -> Result<Option<String>, String> {
            let id = charsets
                .next()
                .transpose()
                .map_err(|e| format!("column {name}: charset metadata: {e}"))?;
            Ok(id.and_then(charset_name))
        };
        let (decode, column_type) = match ty {
            MyType::MYSQL_TYPE_NULL => (Decode::Null, ColumnType::Bytes),
            MyType::MYSQL_TYPE_TINY => int(1, unsigned),
            MyType::MYSQL_TYPE_SHORT => int(2, unsigned),
            MyType::MYSQL_TYPE_INT24 => int(3, unsigned),
            MyType::MYSQL_TYPE_LONG => int(4, unsigned),
            MyType::MYSQL_TYPE_LONGLONG => int(8, unsigned),
            MyType::MYSQL_TYPE_FLOAT => (Decode::Float, ColumnType::Float),
            MyType::MYSQL_TYPE_DOUBLE => (Decode::Double, ColumnType::Double),
            MyType::MYSQL_TYPE_NEWDECIMAL => {
                let (precision, scale) = (md_at(0)?, md_at(1)?);
                (
                    Decode::Decimal { precision, scale },
                    ColumnType::Decimal { precision, scale },
                )
            }
            MyType::MYSQL_TYPE_DATE | MyType::MYSQL_TYPE_NEWDATE => {
                (Decode::Date, ColumnType::Date)
            }
            MyType::MYSQL_TYPE_DATETIME2 => {
                let fsp = md_at(0)?;
                (Decode::DateTime2 { fsp }, ColumnType::DateTime { fsp })
            }
            MyType::MYSQL_TYPE_DATETIME => (Decode::DateTimeOld, ColumnType::DateTime { fsp: 0 }),
            MyType::MYSQL_TYPE_TIMESTAMP2 => {
                let fsp = md_at(0)?;
                (Decode::Timestamp2 { fsp }, ColumnType::Timestamp { fsp })
            }
            MyType::MYSQL_TYPE_TIMESTAMP => {
                (Decode::TimestampOld, ColumnType::Timestamp { fsp: 0 })
            }
            MyType::MYSQL_TYPE_TIME2 => {
                let fsp = md_at(0)?;
                (Decode::Time2 { fsp }, ColumnType::Time { fsp })
            }
            MyType::MYSQL_TYPE_TIME => (Decode::TimeOld, ColumnType::Time { fsp: 0 }),
            MyType::MYSQL_TYPE_YEAR => (Decode::Year, ColumnType::Year),
            MyType::MYSQL_TYPE_VARCHAR | MyType::MYSQL_TYPE_VAR_STRING => {
                let max = u16::from(md_at(0)?) | (u16::from(md_at(1)?) << 8);
                let charset = charset()?;
                let len_bytes = if max < 256 { 1 } else { 2 };
                text_or_bytes(charset, |encoding| Decode::Sized {
                    len_bytes,
                    encoding,
                })
            }
            MyType::MYSQL_TYPE_STRING => {
                let (b0, b1) = (usize::from(md_at(0)?), usize::from(md_at(1)?));
                // CHAR longer than 255 bytes keeps two bits of its length in the type byte.
                let max = if b0 & 0x30 != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                };
                let charset = charset()?;
                let len_bytes = if max < 256 { 1 } else { 2 };
                text_or_bytes(charset, |encoding| {
                    if encoding == TextEncoding::Binary {
                        Decode::FixedBinary {
                            len_bytes,
                            width: max,
                        }
                    } else {
                        Decode::Sized {
                            len_bytes,
                            encoding,
                        }
                    }
                })
            }
            MyType::MYSQL_TYPE_BLOB
            | MyType::MYSQL_TYPE_TINY_BLOB
            | MyType::MYSQL_TYPE_MEDIUM_BLOB
            | MyType::MYSQL_TYPE_LONG_BLOB => {
                let len_bytes = md_at(0)?;
                let charset = charset()?;
                text_or_bytes(charset, |encoding| Decode::Blob {
                    len_bytes,
                    encoding,
                })
            }
            MyType::MYSQL_TYPE_ENUM | MyType::MYSQL_TYPE_SET => {
                let pack = md_at(1)?;
                let cs = enum_set_charsets
                    .next()
                    .transpose()
                    .map_err(|e| format!("column {name}: charset metadata: {e}"))?
                    .and_then(charset_name);
                let raw = if ty == MyType::MYSQL_TYPE_ENUM {
                    enum_values.next()
                } else {
                    set_values.next()
                }
                .ok_or_else(|| format!("column {name}: no ENUM/SET member names in the TABLE_MAP (binlog_row_metadata must be FULL)"))?;
                let encoding = encoding_of(cs.as_deref());
                let members: Vec<String> = raw
                    .iter()
                    .map(|bytes: &Vec<u8>| match crate::charset::decode_text(bytes, encoding) {
                        strata_core::Value::String(s) => s,
                        _ => String::from_utf8_lossy(bytes).into_owned(),
                    })
                    .collect();
                if ty == MyType::MYSQL_TYPE_ENUM {
                    (
                        Decode::Enum {
                            pack,
                            members: members.clone().into(),
                        },
                        ColumnType::Enum { members },
                    )
                } else {
                    (
                        Decode::Set {
                            pack,
                            members: members.clone().into(),
                        },
                        ColumnType::Set { members },
                    )
                }
            }
            MyType::MYSQL_TYPE_BIT => {
                let width = md_at(1)?.saturating_mul(8).saturating_add(md_at(0)?);
                (Decode::Bit { width }, ColumnType::Bit { width })
            }
            MyType::MYSQL_TYPE_JSON => {
                json_columns += 1;
                (
                    Decode::Json {
                        len_bytes: md_at(0)?,
                    },
                    ColumnType::Json,
                )
            }
            MyType::MYSQL_TYPE_GEOMETRY => (
                Decode::Geometry {
                    len_bytes: md_at(0)?,
                },
                ColumnType::Geometry,
            ),
            MyType::MYSQL_TYPE_VECTOR => (
                Decode::Vector {
                    len_bytes: md_at(0)?,
                },
                ColumnType::Bytes,
            ),
            other => {
                return Err(format!(
                    "column {name} of {schema_name}.{table_name} has binlog type {other:?}, which strata cannot decode"
                ))
            }
        };
        columns.push(Column {
            name,
            ty: column_type,
            nullable: nullable.get(i).is_some_and(|b| *b),
        });
        decoders.push(decode);
    }
    Ok(TableDecoder {
        schema: Arc::new(TableSchema {
            id: TableId::new(schema_name, table_name),
            columns,
            primary_key: primary_key.into_iter().filter(|i| *i < n).collect(),
        }),
        columns: decoders,
        json_columns,
    })
}

fn int(bytes: u8, unsigned: bool) -> (Decode, ColumnType) {
    (
        Decode::Int { bytes, unsigned },
        ColumnType::Int { bytes, unsigned },
    )
}

/// A character column with the `binary` character set is BINARY/VARBINARY/BLOB.
fn text_or_bytes(
    charset: Option<String>,
    decode: impl FnOnce(TextEncoding) -> Decode,
) -> (Decode, ColumnType) {
    let encoding = encoding_of(charset.as_deref());
    let ty = if encoding == TextEncoding::Binary {
        ColumnType::Bytes
    } else {
        ColumnType::Text { charset }
    };
    (decode(encoding), ty)
}
