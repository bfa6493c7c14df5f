//! Values and keys as Redis holds them: one hash field per non-NULL column, with an exact
//! text (or raw byte) form for every MySQL type.

use strata_core::{DateTime, SinkOp, Value};

/// The hash field that holds the row's version ([`strata_core::Version::sortable`]).
pub(crate) const VERSION_FIELD: &str = "_strata_version";

/// The hash key of a row: `<key_prefix><table>:<id>`.
pub(crate) fn row_key(prefix: &str, op: &SinkOp) -> String {
    format!("{prefix}{}:{}", op.table.name, op.id())
}

/// The tombstone key of a row: `<key_prefix>~tomb:<table>:<id>`.
///
/// Kept outside the `<key_prefix><table>:` key space so that a scan of a table's rows never
/// meets a tombstone.
pub(crate) fn tombstone_key(prefix: &str, op: &SinkOp) -> String {
    format!("{prefix}~tomb:{}:{}", op.table.name, op.id())
}

/// The bytes stored for a value, or `None` for NULL (the field is left out of the hash).
pub(crate) fn field_value(value: &Value) -> Option<Vec<u8>> {
    let text = match value {
        Value::Null => return None,
        Value::Int(v) => v.to_string(),
        Value::UInt(v) => v.to_string(),
        Value::Float(v) => float_text(*v, f64::from(v.abs())),
        Value::Double(v) => float_text(*v, v.abs()),
        Value::Decimal(s) | Value::String(s) | Value::Enum(s) | Value::Json(s) => s.clone(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(dt) => dt.to_string(),
        Value::Timestamp(Some(us)) => format!("{}Z", DateTime::from_unix_micros(*us)),
        // MySQL's zero timestamp has no instant; Redis holds text, so keep MySQL's spelling.
        Value::Timestamp(None) => String::from("0000-00-00T00:00:00Z"),
        Value::Time(t) => t.to_string(),
        Value::Year(y) => y.to_string(),
        Value::Set(members) => members.join(","),
        Value::Bit { bits, .. } => bits.to_string(),
        Value::Bytes(b) => return Some(b.clone()),
        Value::Geometry { srid, wkb } => {
            // MySQL's own storage form: the SRID as 4 little-endian bytes, then the WKB.
            let mut out = Vec::with_capacity(4 + wkb.len());
            out.extend_from_slice(&srid.to_le_bytes());
            out.extend_from_slice(wkb);
            return Some(out);
        }
    };
    Some(text.into_bytes())
}

/// The shortest decimal text that reads back as the same float, spelled as JavaScript
/// spells numbers: plain decimals for magnitudes in [1e-7, 1e21) (`1.5`, `0.1`, `-0`),
/// exponent form outside (`-2.25e+300`, `1e-8`).
fn float_text<T: std::fmt::Display + std::fmt::LowerExp>(v: T, magnitude: f64) -> String {
    if magnitude == 0.0 || (1e-7..1e21).contains(&magnitude) || !magnitude.is_finite() {
        return v.to_string();
    }
    let text = format!("{v:e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}e+{exponent}")
        }
        _ => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn floats_use_shortest_round_trip_text() {
        assert_eq!(field_value(&Value::Float(1.5)).unwrap(), b"1.5");
        assert_eq!(field_value(&Value::Float(-0.0)).unwrap(), b"-0");
        assert_eq!(field_value(&Value::Float(0.1)).unwrap(), b"0.1");
        assert_eq!(
            field_value(&Value::Double(-2.25e300)).unwrap(),
            b"-2.25e+300"
        );
        assert_eq!(field_value(&Value::Double(1e-8)).unwrap(), b"1e-8");
        assert_eq!(field_value(&Value::Double(0.1)).unwrap(), b"0.1");
        assert_eq!(
            field_value(&Value::Double(1e20)).unwrap(),
            b"100000000000000000000"
        );
    }

    #[test]
    fn null_is_absent_and_bytes_stay_bytes() {
        assert_eq!(field_value(&Value::Null), None);
        assert_eq!(
            field_value(&Value::Bytes(vec![0, 255])).unwrap(),
            vec![0, 255]
        );
        assert_eq!(
            field_value(&Value::Geometry {
                srid: 4326,
                wkb: vec![1]
            })
            .unwrap(),
            vec![0xe6, 0x10, 0, 0, 1]
        );
    }
}
