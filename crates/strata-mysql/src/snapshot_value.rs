//! Values of a snapshot SELECT (binary protocol, `time_zone='+00:00'`,
//! `character_set_results=binary`) → exactly the [`Value`] the binlog decoder gives the same
//! data, and key values back into statement parameters.
//!
//! Text goes through the decoder's own character-set function and JSON through its own
//! parser and printer, so the two paths cannot drift apart.

use crate::charset::{decode_text, TextEncoding};
use crate::json;
use mysql_async::Value as My;
use strata_core::{ColumnType, Date, DateTime, Time, Value};

/// One selected cell as the decoder would give it; the error names the problem, never the
/// value.
///
/// `binary_json`: the server is MySQL, whose JSON columns are binary documents printed as
/// text by the server (MariaDB's are text, read exactly as the decoder reads them).
pub(crate) fn from_cell(
    ty: &ColumnType,
    encoding: TextEncoding,
    binary_json: bool,
    cell: My,
) -> Result<Value, String> {
    if matches!(cell, My::NULL) {
        return Ok(Value::Null);
    }
    let unexpected = |cell: &My| {
        format!(
            "unexpected wire value {} for a {ty:?} column",
            wire_kind(cell)
        )
    };
    Ok(match ty {
        ColumnType::Int { unsigned, .. } => match (cell, unsigned) {
            (My::Int(i), false) => Value::Int(i),
            (My::UInt(u), false) => Value::Int(u as i64),
            (My::Int(i), true) => Value::UInt(i as u64),
            (My::UInt(u), true) => Value::UInt(u),
            (other, _) => return Err(unexpected(&other)),
        },
        ColumnType::Float => match cell {
            My::Float(f) => Value::Float(f),
            My::Double(d) => Value::Float(d as f32),
            other => return Err(unexpected(&other)),
        },
        ColumnType::Double => match cell {
            My::Double(d) => Value::Double(d),
            My::Float(f) => Value::Double(f64::from(f)),
            other => return Err(unexpected(&other)),
        },
        ColumnType::Decimal { .. } => Value::Decimal(ascii(cell, ty)?),
        ColumnType::Date => match cell {
            My::Date(y, m, d, ..) => Value::Date(Date {
                year: y,
                month: m,
                day: d,
            }),
            other => return Err(unexpected(&other)),
        },
        ColumnType::DateTime { .. } => match cell {
            My::Date(y, mo, d, h, mi, s, us) => Value::DateTime(DateTime {
                date: Date {
                    year: y,
                    month: mo,
                    day: d,
                },
                hour: h,
                minute: mi,
                second: s,
                micros: us,
            }),
            other => return Err(unexpected(&other)),
        },
        ColumnType::Timestamp { .. } => match cell {
            // The session runs in UTC, so the fields are the instant's UTC fields.
            My::Date(y, mo, d, h, mi, s, us) => {
                let dt = DateTime {
                    date: Date {
                        year: y,
                        month: mo,
                        day: d,
                    },
                    hour: h,
                    minute: mi,
                    second: s,
                    micros: us,
                };
                Value::Timestamp(dt.to_unix_micros())
            }
            other => return Err(unexpected(&other)),
        },
        ColumnType::Time { .. } => match cell {
            My::Time(negative, days, h, m, s, us) => Value::Time(Time {
                negative,
                hours: (days * 24 + u32::from(h)).min(u32::from(u16::MAX)) as u16,
                minutes: m,
                seconds: s,
                micros: us,
            }),
            other => return Err(unexpected(&other)),
        },
        ColumnType::Year => match cell {
            My::Int(y) => Value::Year(y.clamp(0, 9999) as u16),
            My::UInt(y) => Value::Year(y.min(9999) as u16),
            other => return Err(unexpected(&other)),
        },
        ColumnType::Text { .. } => decode_text(&bytes(cell, ty)?, encoding),
        ColumnType::Bytes => Value::Bytes(bytes(cell, ty)?),
        ColumnType::Enum { .. } => match decode_text(&bytes(cell, ty)?, encoding) {
            Value::String(s) => Value::Enum(s),
            _ => return Err("an ENUM value is not valid in its character set".into()),
        },
        ColumnType::Set { .. } => {
            let raw = bytes(cell, ty)?;
            if raw.is_empty() {
                Value::Set(Vec::new())
            } else {
                let mut members = Vec::new();
                for part in raw.split(|b| *b == b',') {
                    match decode_text(part, encoding) {
                        Value::String(s) => members.push(s),
                        _ => return Err("a SET member is not valid in its character set".into()),
                    }
                }
                Value::Set(members)
            }
        }
        ColumnType::Bit { width } => {
            let raw = bytes(cell, ty)?;
            let bits = raw.iter().fold(0_u64, |acc, b| (acc << 8) | u64::from(*b));
            Value::Bit {
                bits,
                width: *width,
            }
        }
        ColumnType::Json => json_value(bytes(cell, ty)?, binary_json),
        ColumnType::Geometry => {
            let raw = bytes(cell, ty)?;
            if raw.len() < 4 {
                return Err(format!("GEOMETRY value of {} bytes", raw.len()));
            }
            Value::Geometry {
                srid: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
                wkb: raw[4..].to_vec(),
            }
        }
    })
}

/// JSON text as the server prints it → the decoder's canonical text.
///
/// MariaDB stores JSON as text: this is the decoder's own path. MySQL prints its binary
/// JSON as text; the decoder prints the binary form directly, and both give the same
/// canonical text once doubles are spelled alike (see [`respell_doubles`]).
fn json_value(raw: Vec<u8>, binary_json: bool) -> Value {
    match String::from_utf8(raw) {
        Ok(text) => match json::parse_text(&text) {
            Ok(doc) if binary_json => Value::Json(respell_doubles(doc).to_text()),
            Ok(doc) => Value::Json(doc.to_text()),
            Err(_) => Value::String(text),
        },
        Err(e) => Value::Bytes(e.into_bytes()),
    }
}

/// MySQL prints a binary JSON double its own way; the decoder spells it as the shortest
/// text that reads back as the same double (serde_json's form). Numbers with a fraction or
/// an exponent are doubles in MySQL's binary JSON (DECIMALs only get there through CAST or
/// JSON functions, and print without an exponent, keeping trailing zeros that a double
/// never has), so those are respelled; integers stay as printed.
fn respell_doubles(doc: json::Json) -> json::Json {
    use json::Json;
    match doc {
        Json::Number(text) if text.contains(['.', 'e', 'E']) => {
            let keeps_zeros = !text.contains(['e', 'E']) && text.ends_with('0');
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() && !keeps_zeros => {
                    Json::Number(serde_json::Number::from_f64(x).map_or(text, |n| n.to_string()))
                }
                _ => Json::Number(text),
            }
        }
        Json::Array(items) => Json::Array(items.into_iter().map(respell_doubles).collect()),
        Json::Object(members) => Json::Object(
            members
                .into_iter()
                .map(|(k, v)| (k, respell_doubles(v)))
                .collect(),
        ),
        other => other,
    }
}

fn bytes(cell: My, ty: &ColumnType) -> Result<Vec<u8>, String> {
    match cell {
        My::Bytes(b) => Ok(b),
        other => Err(format!(
            "unexpected wire value {} for a {ty:?} column",
            wire_kind(&other)
        )),
    }
}

fn ascii(cell: My, ty: &ColumnType) -> Result<String, String> {
    String::from_utf8(bytes(cell, ty)?).map_err(|_| "a DECIMAL value is not ASCII text".into())
}

fn wire_kind(cell: &My) -> &'static str {
    match cell {
        My::NULL => "NULL",
        My::Bytes(_) => "bytes",
        My::Int(_) => "int",
        My::UInt(_) => "uint",
        My::Float(_) => "float",
        My::Double(_) => "double",
        My::Date(..) => "date",
        My::Time(..) => "time",
    }
}

/// A key value as a statement parameter that compares with the column as the stored value
/// does; `None` for values that cannot page a table (JSON, GEOMETRY, ENUM, SET).
pub(crate) fn to_param(value: &Value) -> Option<My> {
    Some(match value {
        Value::Null => My::NULL,
        Value::Int(i) => My::Int(*i),
        Value::UInt(u) => My::UInt(*u),
        Value::Float(f) => My::Float(*f),
        Value::Double(d) => My::Double(*d),
        Value::Decimal(s) => My::Bytes(s.as_bytes().to_vec()),
        Value::Date(d) => My::Date(d.year, d.month, d.day, 0, 0, 0, 0),
        Value::DateTime(dt) => My::Date(
            dt.date.year,
            dt.date.month,
            dt.date.day,
            dt.hour,
            dt.minute,
            dt.second,
            dt.micros,
        ),
        Value::Timestamp(None) => My::Date(0, 0, 0, 0, 0, 0, 0),
        Value::Timestamp(Some(us)) => {
            let dt = DateTime::from_unix_micros(*us);
            My::Date(
                dt.date.year,
                dt.date.month,
                dt.date.day,
                dt.hour,
                dt.minute,
                dt.second,
                dt.micros,
            )
        }
        Value::Time(t) => My::Time(
            t.negative,
            u32::from(t.hours) / 24,
            (t.hours % 24) as u8,
            t.minutes,
            t.seconds,
            t.micros,
        ),
        Value::Year(y) => My::UInt(u64::from(*y)),
        Value::String(s) => My::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => My::Bytes(b.clone()),
        Value::Bit { bits, .. } => My::UInt(*bits),
        Value::Enum(_) | Value::Set(_) | Value::Json(_) | Value::Geometry { .. } => return None,
    })
}

/// Whether a column of this type can be part of a key the snapshot pages by.
pub(crate) fn can_page_by(ty: &ColumnType) -> bool {
    !matches!(
        ty,
        ColumnType::Enum { .. } | ColumnType::Set { .. } | ColumnType::Json | ColumnType::Geometry
    )
}

/// Whether text of this encoding round-trips through a parameter: the parameter is sent as
/// UTF-8 and converted by the server, which only works for character sets strata decodes.
pub(crate) fn text_param_ok(encoding: TextEncoding) -> bool {
    matches!(encoding, TextEncoding::Utf8 | TextEncoding::Latin1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_instants_and_zero_is_none() {
        let ty = ColumnType::Timestamp { fsp: 6 };
        let v = from_cell(
            &ty,
            TextEncoding::Utf8,
            false,
            My::Date(1970, 1, 1, 0, 0, 1, 5),
        )
        .unwrap();
        assert_eq!(v, Value::Timestamp(Some(1_000_005)));
        let zero = from_cell(
            &ty,
            TextEncoding::Utf8,
            false,
            My::Date(0, 0, 0, 0, 0, 0, 0),
        )
        .unwrap();
        assert_eq!(zero, Value::Timestamp(None));
    }

    #[test]
    fn times_fold_days_into_hours() {
        let v = from_cell(
            &ColumnType::Time { fsp: 1 },
            TextEncoding::Utf8,
            false,
            My::Time(true, 34, 22, 59, 58, 500_000),
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 58,
                micros: 500_000
            })
        );
        assert_eq!(to_param(&v), Some(My::Time(true, 34, 22, 59, 58, 500_000)));
    }

    #[test]
    fn sets_bits_and_geometry_split_like_the_decoder() {
        let set = ColumnType::Set {
            members: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            from_cell(&set, TextEncoding::Utf8, false, My::Bytes(b"a,b".to_vec())).unwrap(),
            Value::Set(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            from_cell(&set, TextEncoding::Utf8, false, My::Bytes(Vec::new())).unwrap(),
            Value::Set(vec![])
        );
        assert_eq!(
            from_cell(
                &ColumnType::Bit { width: 12 },
                TextEncoding::Binary,
                false,
                My::Bytes(vec![0x0a, 0xbc])
            )
            .unwrap(),
            Value::Bit {
                bits: 0xabc,
                width: 12
            }
        );
        assert_eq!(
            from_cell(
                &ColumnType::Geometry,
                TextEncoding::Binary,
                false,
                My::Bytes(vec![0xe6, 0x10, 0, 0, 1])
            )
            .unwrap(),
            Value::Geometry {
                srid: 4326,
                wkb: vec![1]
            }
        );
    }
}
