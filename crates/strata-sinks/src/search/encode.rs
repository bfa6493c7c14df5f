//! Row values → the JSON text of a document, exactly (see the type table in the module
//! documentation).
//!
//! Documents are written as text rather than through `serde_json::Value`, which would
//! round JSON columns' decimals (`2.50` → `2.5`, 20-digit numbers → doubles) and widen
//! FLOAT bits (`0.1` → `0.10000000149011612`).

use base64::Engine as _;
use std::fmt::Write as _;
use strata_core::{DateTime, TargetTable, Value};

/// The document of a row: every column, in column order.
pub(super) fn document(table: &TargetTable, row: &[Value]) -> String {
    let mut out = String::with_capacity(64 * row.len());
    out.push('{');
    for (i, (column, value)) in table.columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, &column.name);
        out.push(':');
        push_value(&mut out, value);
    }
    out.push('}');
    out
}

/// Appends one value as JSON.
pub(super) fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Int(v) => push_display(out, v),
        Value::UInt(v) => push_display(out, v),
        // serde_json writes an f32 in its shortest form (what MySQL shows) and non-finite
        // values as null.
        Value::Float(v) => {
            out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
        }
        Value::Double(v) => {
            out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
        }
        Value::Decimal(text) => push_string(out, text),
        Value::Date(d) => push_string(out, &d.to_string()),
        Value::DateTime(dt) => push_string(out, &dt.to_string()),
        Value::Timestamp(Some(us)) => {
            push_string(out, &format!("{}Z", DateTime::from_unix_micros(*us)))
        }
        Value::Timestamp(None) => push_string(out, "0000-00-00T00:00:00Z"),
        Value::Time(t) => push_string(out, &t.to_string()),
        Value::Year(y) => push_display(out, y),
        Value::String(s) | Value::Enum(s) => push_string(out, s),
        Value::Bytes(b) => push_string(out, &base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Set(members) => {
            out.push('[');
            for (i, member) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, member);
            }
            out.push(']');
        }
        Value::Bit { bits, .. } => push_display(out, bits),
        Value::Json(text) => match compact_json(text) {
            Some(compact) => out.push_str(&compact),
            // Not valid JSON (MariaDB JSON is text): keep the text as a string.
            None => push_string(out, text),
        },
        Value::Geometry { srid, wkb } => {
            let _ = write!(out, "{{\"srid\":{srid},\"wkb\":");
            push_string(out, &base64::engine::general_purpose::STANDARD.encode(wkb));
            out.push('}');
        }
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Appends `s` as a JSON string.
pub(super) fn push_string(out: &mut String, s: &str) {
    // serde_json's string escaping cannot fail for a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// JSON text on one line (the bulk body is newline-delimited) with every token as
/// written, or `None` when the text is not valid JSON.
pub(super) fn compact_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn json_keeps_its_digits_on_one_line() {
        let text =
            "{\n  \"a\": [1, 2.50],\n  \"s\": \"x y\\\" z\",\n  \"d\": 12345678901234567890.123\n}";
        assert_eq!(
            compact_json(text).unwrap(),
            r#"{"a":[1,2.50],"s":"x y\" z","d":12345678901234567890.123}"#
        );
        assert_eq!(compact_json("{oops"), None);
    }

    #[test]
    fn scalars_are_exact() {
        let mut out = String::new();
        for v in [
            Value::Float(0.1),
            Value::UInt(u64::MAX),
            Value::Decimal("-0.10".into()),
            Value::Bytes(vec![0, 255]),
            Value::Json("not json".into()),
        ] {
            push_value(&mut out, &v);
            out.push(' ');
        }
        assert_eq!(
            out,
            r#"0.1 18446744073709551615 "-0.10" "AP8=" "not json" "#
        );
    }
}
