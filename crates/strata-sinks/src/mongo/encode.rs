//! Row values → BSON, exactly (see the type table in the module documentation).

use super::json;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use strata_core::{Column, ColumnType, DateTime, TargetTable, Value};

/// The field holding a document's version ([`strata_core::Version::sortable`]).
pub(super) const VERSION_FIELD: &str = "_strata_version";
/// Suffix of the field that keeps a DATETIME/TIMESTAMP's exact microseconds next to the
/// millisecond BSON date, for columns with more than 3 fractional digits.
pub(super) const MICROS_SUFFIX: &str = "__us";

/// The document fields a table's rows have (besides `_id` and the version field).
pub(super) fn field_names(table: &TargetTable) -> Vec<String> {
    let mut names = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        if is_id_column(table, column) {
            continue;
        }
        names.push(column.name.clone());
        if has_micros_field(&column.ty) {
            names.push(format!("{}{MICROS_SUFFIX}", column.name));
        }
    }
    names
}

/// Why a table cannot be written as documents (a column name strata needs), if it cannot.
pub(super) fn table_problem(table: &TargetTable) -> Option<String> {
    let fields = field_names(table);
    for (i, name) in fields.iter().enumerate() {
        if name == VERSION_FIELD || name == "_id" {
            return Some(format!(
                "column `{name}` of table `{}` collides with strata's field `{name}`: exclude \
                 or rename the column in this version's rules",
                table.name
            ));
        }
        if name.starts_with('$') || name.contains('\0') || name.is_empty() {
            return Some(format!(
                "column `{name}` of table `{}` is not a valid MongoDB field name: exclude or \
                 rename the column in this version's rules",
                table.name
            ));
        }
        if fields[..i].contains(name) {
            return Some(format!(
                "field `{name}` of table `{}` is written twice (a column named like the \
                 `{MICROS_SUFFIX}` field strata keeps for a DATETIME(6)): exclude or rename it",
                table.name
            ));
        }
    }
    None
}

/// A key column named `_id` that is the table's only key is stored once, as `_id`.
fn is_id_column(table: &TargetTable, column: &Column) -> bool {
    column.name == "_id" && table.key.len() == 1 && table.key_columns().any(|k| k.name == "_id")
}

fn has_micros_field(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::DateTime { fsp } | ColumnType::Timestamp { fsp } if *fsp > 3)
}

/// The document `_id` of a row: the key column's value for a one-column key, else a
/// sub-document `{column: value, …}` in key order.
///
/// Keys are encoded like fields, except temporal values with sub-millisecond digits, which
/// become their exact ISO text (a BSON date would make two keys one).
pub(super) fn document_id(table: &TargetTable, key: &[Value]) -> Bson {
    let key_value = |column: &Column, value: &Value| -> Bson {
        match value {
            Value::DateTime(dt) if dt.micros % 1000 != 0 => Bson::String(dt.to_string()),
            Value::Timestamp(Some(us)) if us % 1000 != 0 => {
                Bson::String(format!("{}Z", DateTime::from_unix_micros(*us)))
            }
            _ => value_to_bson(&column.ty, value),
        }
    };
    let columns: Vec<&Column> = table.key_columns().collect();
    match (columns.as_slice(), key) {
        ([column], [value]) => key_value(column, value),
        _ => {
            let mut doc = Document::new();
            for (column, value) in columns.iter().zip(key) {
                doc.insert(column.name.clone(), key_value(column, value));
            }
            Bson::Document(doc)
        }
    }
}

/// The whole document for a row: `_id`, every column, the version field.
pub(super) fn row_document(
    table: &TargetTable,
    id: Bson,
    row: &[Value],
    version: String,
) -> Document {
    let mut doc = Document::new();
    doc.insert("_id", id);
    for (column, value) in table.columns.iter().zip(row) {
        if is_id_column(table, column) {
            continue;
        }
        doc.insert(column.name.clone(), value_to_bson(&column.ty, value));
        if has_micros_field(&column.ty) {
            let micros = match value {
                Value::DateTime(dt) => dt.to_unix_micros().map_or(Bson::Null, Bson::Int64),
                Value::Timestamp(Some(us)) => Bson::Int64(*us),
                _ => Bson::Null,
            };
            doc.insert(format!("{}{MICROS_SUFFIX}", column.name), micros);
        }
    }
    doc.insert(VERSION_FIELD, version);
    doc
}

/// One value as BSON, for a column of type `ty`.
pub(super) fn value_to_bson(ty: &ColumnType, value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Int(v) => match i32::try_from(*v) {
            Ok(small) if is_int32_column(ty) => Bson::Int32(small),
            _ => Bson::Int64(*v),
        },
        Value::UInt(v) => unsigned(is_int32_column(ty), *v),
        // The float's shortest decimal form (what MySQL shows), which reads back as the
        // same f32; widening the bits instead would turn FLOAT 0.1 into 0.10000000149….
        Value::Float(v) => Bson::Double(v.to_string().parse().unwrap_or(f64::from(*v))),
        Value::Double(v) => Bson::Double(*v),
        Value::Decimal(text) => match ty {
            ColumnType::Decimal { precision, .. } if *precision > 34 => Bson::String(text.clone()),
            _ => {
                json::decimal128(text).map_or_else(|| Bson::String(text.clone()), Bson::Decimal128)
            }
        },
        Value::Date(d) => {
            let midnight = DateTime {
                date: *d,
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
            };
            midnight
                .to_unix_micros()
                .map_or_else(|| Bson::String(d.to_string()), bson_date)
        }
        Value::DateTime(dt) => dt
            .to_unix_micros()
            .map_or_else(|| Bson::String(dt.to_string()), bson_date),
        Value::Timestamp(Some(us)) => bson_date(*us),
        Value::Timestamp(None) => Bson::String("0000-00-00T00:00:00Z".into()),
        Value::Time(t) => Bson::String(t.to_string()),
        Value::Year(y) => Bson::Int32(i32::from(*y)),
        Value::String(s) | Value::Enum(s) => Bson::String(s.clone()),
        Value::Bytes(b) => binary(b),
        Value::Set(members) => Bson::Array(members.iter().cloned().map(Bson::String).collect()),
        Value::Bit { bits, .. } => unsigned(false, *bits),
        Value::Json(text) => json::to_bson(text).unwrap_or_else(|| Bson::String(text.clone())),
        Value::Geometry { srid, wkb } => {
            let mut doc = Document::new();
            doc.insert("srid", i64::from(*srid));
            doc.insert("wkb", binary(wkb));
            Bson::Document(doc)
        }
    }
}

/// Columns whose every value fits a BSON Int32.
fn is_int32_column(ty: &ColumnType) -> bool {
    matches!(ty, ColumnType::Int { bytes, unsigned } if *bytes <= 3 || (*bytes == 4 && !*unsigned))
        || matches!(ty, ColumnType::Year)
}

/// An unsigned integer: Int32/Int64 where it fits, Decimal128 above 2^63-1 (exact, and
/// MongoDB compares it numerically with the Int64 values of the same field).
fn unsigned(as_int32: bool, v: u64) -> Bson {
    if let (true, Ok(small)) = (as_int32, i32::try_from(v)) {
        return Bson::Int32(small);
    }
    match i64::try_from(v) {
        Ok(signed) => Bson::Int64(signed),
        Err(_) => json::decimal128(&v.to_string())
            .map_or_else(|| Bson::String(v.to_string()), Bson::Decimal128),
    }
}

/// A BSON date (milliseconds) for an instant in microseconds, rounded down (toward the
/// past, so the date never shows a later millisecond than the value).
fn bson_date(micros: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(micros.div_euclid(1000)))
}

fn binary(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use strata_core::{Date, TableId};

    fn column(name: &str, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable: true,
        }
    }

    #[test]
    fn integers_keep_their_range() {
        let int = ColumnType::Int {
            bytes: 4,
            unsigned: false,
        };
        let big_unsigned = ColumnType::Int {
            bytes: 8,
            unsigned: true,
        };
        assert_eq!(value_to_bson(&int, &Value::Int(-5)), Bson::Int32(-5));
        assert_eq!(
            value_to_bson(&big_unsigned, &Value::UInt(5)),
            Bson::Int64(5)
        );
        assert_eq!(
            value_to_bson(&big_unsigned, &Value::UInt(u64::MAX)),
            Bson::Decimal128("18446744073709551615".parse().unwrap())
        );
    }

    #[test]
    fn datetime_keeps_micros_beside_the_date() {
        let table = TargetTable {
            source: TableId::new("s", "t"),
            name: "t".into(),
            columns: vec![
                column(
                    "id",
                    ColumnType::Int {
                        bytes: 4,
                        unsigned: false,
                    },
                ),
                column("dt", ColumnType::DateTime { fsp: 6 }),
            ],
            key: vec![0],
        };
        let dt = DateTime {
            date: Date {
                year: 1969,
                month: 12,
                day: 31,
            },
            hour: 23,
            minute: 59,
            second: 59,
            micros: 999_999,
        };
        let doc = row_document(
            &table,
            Bson::Int32(1),
            &[Value::Int(1), Value::DateTime(dt)],
            "v".into(),
        );
        assert_eq!(doc.get_i64("dt__us").unwrap(), -1);
        assert_eq!(doc.get_datetime("dt").unwrap().timestamp_millis(), -1);
        assert_eq!(field_names(&table), vec!["id", "dt", "dt__us"]);
    }

    #[test]
    fn float_is_stored_as_mysql_shows_it() {
        assert_eq!(
            value_to_bson(&ColumnType::Float, &Value::Float(0.1)),
            Bson::Double(0.1)
        );
    }
}
