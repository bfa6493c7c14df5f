//! MySQL column types as PostgreSQL column types, and values as statement parameters.
//!
//! Every column is sent as one array parameter per statement (`unnest` turns the arrays
//! into rows), in one of five wire forms; the statement casts each to the column's type,
//! so PostgreSQL's own input functions do the exact conversions (numeric, interval, …).

use std::borrow::Cow;
use strata_core::{Column, ColumnType, DateTime, Value};
use tokio_postgres::types::{ToSql, Type};

/// How a column's values travel to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Int8,
    Float4,
    Float8,
    Text,
    Bytes,
}

impl Wire {
    /// The array type of the parameter that carries a column of this wire form.
    pub(crate) fn array_type(self) -> Type {
        match self {
            Wire::Int8 => Type::INT8_ARRAY,
            Wire::Float4 => Type::FLOAT4_ARRAY,
            Wire::Float8 => Type::FLOAT8_ARRAY,
            Wire::Text => Type::TEXT_ARRAY,
            Wire::Bytes => Type::BYTEA_ARRAY,
        }
    }

    /// The SQL spelling of that array type, for the casts in `unnest(…)`.
    pub(crate) fn array_sql(self) -> &'static str {
        match self {
            Wire::Int8 => "int8[]",
            Wire::Float4 => "float4[]",
            Wire::Float8 => "float8[]",
            Wire::Text => "text[]",
            Wire::Bytes => "bytea[]",
        }
    }
}

/// A column's PostgreSQL type and how its values get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgColumn {
    /// The type as `format_type()` spells it, so the catalog can be compared with it.
    pub(crate) pg_type: String,
    pub(crate) wire: Wire,
}

impl PgColumn {
    /// The SQL that turns the wire value `expr` into a value of the column's type.
    pub(crate) fn cast(&self, expr: &str) -> String {
        match (self.wire, self.pg_type.as_str()) {
            (Wire::Bytes, _) | (Wire::Text, "text") => expr.to_owned(),
            (Wire::Float4, _) | (Wire::Float8, _) => expr.to_owned(),
            // MySQL SET members cannot contain a comma, so the joined text splits back
            // exactly; '' is the empty set ('{}'), NULL stays NULL.
            (Wire::Text, "text[]") => format!("string_to_array({expr}, ',')"),
            (_, pg_type) => format!("{expr}::{pg_type}"),
        }
    }
}

/// The PostgreSQL type of a MySQL column (see the mapping table in `mod.rs`).
pub(crate) fn pg_column(ty: &ColumnType) -> PgColumn {
    let (pg_type, wire): (Cow<'static, str>, Wire) = match ty {
        ColumnType::Int { bytes, unsigned } => match (bytes, unsigned) {
            (1, _) | (2, false) => ("smallint".into(), Wire::Int8),
            (2, true) | (3, _) | (4, false) => ("integer".into(), Wire::Int8),
            (4, true) | (8, false) => ("bigint".into(), Wire::Int8),
            (_, false) => ("bigint".into(), Wire::Int8),
            (_, true) => ("numeric(20,0)".into(), Wire::Text),
        },
        ColumnType::Float => ("real".into(), Wire::Float4),
        ColumnType::Double => ("double precision".into(), Wire::Float8),
        ColumnType::Decimal { precision, scale } => {
            let precision = (*precision).max(1);
            let scale = (*scale).min(precision);
            (format!("numeric({precision},{scale})").into(), Wire::Text)
        }
        ColumnType::Date => ("date".into(), Wire::Text),
        ColumnType::DateTime { fsp } => (
            format!("timestamp({}) without time zone", (*fsp).min(6)).into(),
            Wire::Text,
        ),
        ColumnType::Timestamp { fsp } => (
            format!("timestamp({}) with time zone", (*fsp).min(6)).into(),
            Wire::Text,
        ),
        ColumnType::Time { .. } => ("interval".into(), Wire::Text),
        ColumnType::Year => ("smallint".into(), Wire::Int8),
        ColumnType::Text { .. } | ColumnType::Enum { .. } => ("text".into(), Wire::Text),
        ColumnType::Bytes | ColumnType::Geometry => ("bytea".into(), Wire::Bytes),
        ColumnType::Set { .. } => ("text[]".into(), Wire::Text),
        ColumnType::Bit { .. } => ("bit varying(64)".into(), Wire::Text),
        ColumnType::Json => ("jsonb".into(), Wire::Text),
    };
    PgColumn {
        pg_type: pg_type.into_owned(),
        wire,
    }
}

/// One column's values for one statement, as the array parameter that carries them.
#[derive(Debug)]
pub(crate) enum ParamArray<'a> {
    Int8(Vec<Option<i64>>),
    Float4(Vec<Option<f32>>),
    Float8(Vec<Option<f64>>),
    Text(Vec<Option<Cow<'a, str>>>),
    Bytes(Vec<Option<Cow<'a, [u8]>>>),
}

impl<'a> ParamArray<'a> {
    pub(crate) fn new(wire: Wire, capacity: usize) -> Self {
        match wire {
            Wire::Int8 => ParamArray::Int8(Vec::with_capacity(capacity)),
            Wire::Float4 => ParamArray::Float4(Vec::with_capacity(capacity)),
            Wire::Float8 => ParamArray::Float8(Vec::with_capacity(capacity)),
            Wire::Text => ParamArray::Text(Vec::with_capacity(capacity)),
            Wire::Bytes => ParamArray::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// The parameter, to pass with [`Wire::array_type`].
    pub(crate) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            ParamArray::Int8(v) => v,
            ParamArray::Float4(v) => v,
            ParamArray::Float8(v) => v,
            ParamArray::Text(v) => v,
            ParamArray::Bytes(v) => v,
        }
    }

    /// Appends `value`, converted for `column`; the error says why it does not fit.
    pub(crate) fn push(&mut self, column: &Column, value: &'a Value) -> Result<(), String> {
        let misfit = || {
            format!(
                "column {} ({}) cannot hold a {} value",
                column.name,
                pg_column(&column.ty).pg_type,
                value_kind(value)
            )
        };
        if value.is_null() {
            match self {
                ParamArray::Int8(v) => v.push(None),
                ParamArray::Float4(v) => v.push(None),
                ParamArray::Float8(v) => v.push(None),
                ParamArray::Text(v) => v.push(None),
                ParamArray::Bytes(v) => v.push(None),
            }
            return Ok(());
        }
        match self {
            ParamArray::Int8(v) => v.push(Some(match value {
                Value::Int(i) => *i,
                Value::UInt(u) => i64::try_from(*u).map_err(|_| misfit())?,
                Value::Year(y) => i64::from(*y),
                _ => return Err(misfit()),
            })),
            ParamArray::Float4(v) => v.push(Some(match value {
                Value::Float(f) => *f,
                _ => return Err(misfit()),
            })),
            ParamArray::Float8(v) => v.push(Some(match value {
                Value::Double(d) => *d,
                Value::Float(f) => f64::from(*f),
                _ => return Err(misfit()),
            })),
            ParamArray::Bytes(v) => v.push(Some(match value {
                Value::Bytes(b) => Cow::Borrowed(b.as_slice()),
                Value::String(s) => Cow::Borrowed(s.as_bytes()),
                Value::Geometry { srid, wkb } => {
                    // MySQL's storage form: the SRID as 4 little-endian bytes, then the WKB.
                    let mut out = Vec::with_capacity(4 + wkb.len());
                    out.extend_from_slice(&srid.to_le_bytes());
                    out.extend_from_slice(wkb);
                    Cow::Owned(out)
                }
                _ => return Err(misfit()),
            })),
            ParamArray::Text(v) => {
                let text = text_form(value).ok_or_else(misfit)?;
                if text.contains('\0') {
                    return Err(format!(
                        "column {} holds a NUL character, which PostgreSQL text cannot store",
                        column.name
                    ));
                }
                v.push(Some(text));
            }
        }
        Ok(())
    }
}

/// The text a value is sent as, for columns that travel as text; PostgreSQL's input
/// function of the column's type reads it. `None` for values that have no text form
/// (bytes that are not UTF-8).
fn text_form(value: &Value) -> Option<Cow<'_, str>> {
    Some(match value {
        Value::Null => return None,
        Value::Int(v) => v.to_string().into(),
        Value::UInt(v) => v.to_string().into(),
        Value::Float(v) => v.to_string().into(),
        Value::Double(v) => v.to_string().into(),
        Value::Decimal(s) | Value::String(s) | Value::Enum(s) | Value::Json(s) => {
            Cow::Borrowed(s.as_str())
        }
        // PostgreSQL has no zero dates: they become -infinity (see the mapping table).
        Value::Date(d) if d.is_zero() => "-infinity".into(),
        Value::Date(d) => d.to_string().into(),
        Value::DateTime(dt) if dt.date.is_zero() => "-infinity".into(),
        Value::DateTime(dt) => sql_datetime(dt).into(),
        Value::Timestamp(None) => "-infinity".into(),
        Value::Timestamp(Some(us)) => {
            format!("{}+00", sql_datetime(&DateTime::from_unix_micros(*us))).into()
        }
        Value::Time(t) => t.to_string().into(),
        Value::Year(y) => y.to_string().into(),
        Value::Set(members) => members.join(",").into(),
        Value::Bit { bits, width } => {
            let width = usize::from((*width).clamp(1, 64));
            format!("{bits:0width$b}").into()
        }
        Value::Bytes(b) => Cow::Borrowed(std::str::from_utf8(b).ok()?),
        Value::Geometry { .. } => return None,
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, which PostgreSQL reads the same under any DateStyle.
fn sql_datetime(dt: &DateTime) -> String {
    format!(
        "{} {:02}:{:02}:{:02}.{:06}",
        dt.date, dt.hour, dt.minute, dt.second, dt.micros
    )
}

/// The value's type for a message; flags binary values that are not UTF-8, the usual reason
/// a text column refuses them.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Bytes(b) if std::str::from_utf8(b).is_err() => "binary (not UTF-8)",
        other => other.kind_name(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use strata_core::{Date, Time};

    fn text(v: &Value) -> String {
        text_form(v).unwrap().into_owned()
    }

    #[test]
    fn temporal_text_is_exact_and_zone_free() {
        let dt = DateTime {
            date: Date {
                year: 9999,
                month: 12,
                day: 31,
            },
            hour: 23,
            minute: 59,
            second: 59,
            micros: 999_999,
        };
        assert_eq!(text(&Value::DateTime(dt)), "9999-12-31 23:59:59.999999");
        assert_eq!(
            text(&Value::Timestamp(Some(1_700_000_000_123_456))),
            "2023-11-14 22:13:20.123456+00"
        );
        assert_eq!(text(&Value::Timestamp(None)), "-infinity");
        let t = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 58,
            micros: 999_999,
        };
        assert_eq!(text(&Value::Time(t)), "-838:59:58.999999");
    }

    #[test]
    fn bits_keep_their_width_and_sets_join() {
        assert_eq!(text(&Value::Bit { bits: 5, width: 4 }), "0101");
        assert_eq!(text(&Value::Set(vec!["a".into(), "c".into()])), "a,c");
        assert_eq!(text(&Value::Set(vec![])), "");
    }

    #[test]
    fn types_map_to_exact_postgres_types() {
        let u64_col = pg_column(&ColumnType::Int {
            bytes: 8,
            unsigned: true,
        });
        assert_eq!(u64_col.pg_type, "numeric(20,0)");
        assert_eq!(u64_col.cast("x"), "x::numeric(20,0)");
        let set = pg_column(&ColumnType::Set { members: vec![] });
        assert_eq!(set.cast("x"), "string_to_array(x, ',')");
        assert_eq!(pg_column(&ColumnType::Float).cast("x"), "x");
    }

    #[test]
    fn non_utf8_bytes_have_no_text_form() {
        assert!(text_form(&Value::Bytes(vec![0xff])).is_none());
        assert_eq!(text(&Value::Bytes(b"ok".to_vec())), "ok");
    }
}
