//! A row id found only in a target (a scan's key parts, as the store spells them) back into
//! typed key values, so the row can be looked up at the source and deleted through the
//! guarded write path.
//!
//! Parts come as [`strata_core::Value::key_text`] (Redis, OpenSearch ids), PostgreSQL's text
//! output (`\x0102`, `2024-01-02 03:04:05.5`, `2024-01-02 03:04:05+00`) or MongoDB `_id`
//! text (`2024-01-02T00:00:00.000000Z` for dates). Key types outside the common ones give
//! `None`: such an extra row is reported but not looked up or repaired.

use strata_core::{Column, ColumnType, Date, DateTime, Value};

/// The typed key of `parts` for key `columns`, or `None` when a part cannot be read.
pub fn parse_key(columns: &[&Column], parts: &[String]) -> Option<Vec<Value>> {
    if columns.len() != parts.len() {
        return None;
    }
    columns
        .iter()
        .zip(parts)
        .map(|(c, p)| parse_part(&c.ty, p))
        .collect()
}

fn parse_part(ty: &ColumnType, text: &str) -> Option<Value> {
    Some(match ty {
        ColumnType::Int {
            unsigned: false, ..
        } => Value::Int(text.parse().ok()?),
        ColumnType::Int { unsigned: true, .. } => Value::UInt(text.parse().ok()?),
        ColumnType::Year => Value::Year(text.parse().ok()?),
        ColumnType::Decimal { .. } => {
            let ok = !text.is_empty()
                && text
                    .trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.');
            ok.then(|| Value::Decimal(text.to_owned()))?
        }
        ColumnType::Text { .. } => Value::String(text.to_owned()),
        ColumnType::Bytes => Value::Bytes(hex(text.strip_prefix("\\x").unwrap_or(text))?),
        ColumnType::Date => Value::Date(date(text.get(..10)?)?),
        ColumnType::DateTime { .. } => Value::DateTime(datetime(
            text.trim_end_matches('Z').trim_end_matches("+00"),
        )?),
        ColumnType::Timestamp { .. } => {
            let dt = datetime(text.trim_end_matches('Z').trim_end_matches("+00"))?;
            Value::Timestamp(dt.to_unix_micros())
        }
        ColumnType::Float => Value::Float(text.parse().ok()?),
        ColumnType::Double => Value::Double(text.parse().ok()?),
        ColumnType::Bit { width } => Value::Bit {
            bits: text.parse().ok()?,
            width: *width,
        },
        ColumnType::Time { .. }
        | ColumnType::Enum { .. }
        | ColumnType::Set { .. }
        | ColumnType::Json
        | ColumnType::Geometry => return None,
    })
}

fn date(text: &str) -> Option<Date> {
    let mut it = text.splitn(3, '-');
    Some(Date {
        year: it.next()?.parse().ok()?,
        month: it.next()?.parse().ok()?,
        day: it.next()?.parse().ok()?,
    })
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f…]`.
fn datetime(text: &str) -> Option<DateTime> {
    let date_part = date(text.get(..10)?)?;
    let time = text.get(11..)?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut it = hms.splitn(3, ':');
    let (hour, minute, second) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    let micros = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(6).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<6}").parse().ok()?
    };
    Some(DateTime {
        date: date_part,
        hour,
        minute,
        second,
        micros,
    })
}

fn hex(text: &str) -> Option<Vec<u8>> {
    crate::snapshot::state::hex_decode(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn col(ty: ColumnType) -> Column {
        Column {
            name: "k".into(),
            ty,
            nullable: false,
        }
    }

    #[test]
    fn key_texts_of_every_store_parse_back() {
        let int = col(ColumnType::Int {
            bytes: 8,
            unsigned: false,
        });
        let dt = col(ColumnType::DateTime { fsp: 6 });
        let bytes = col(ColumnType::Bytes);
        let ts = col(ColumnType::Timestamp { fsp: 0 });
        let want_dt = Value::DateTime(DateTime::from_unix_micros(1_700_000_000_500_000));
        for text in [
            "2023-11-14T22:13:20.5",
            "2023-11-14 22:13:20.5",
            "2023-11-14T22:13:20.500000Z",
        ] {
            assert_eq!(
                parse_key(&[&dt], &[text.into()]),
                Some(vec![want_dt.clone()]),
                "{text}"
            );
        }
        // Value::key_text forms round-trip.
        assert_eq!(
            parse_key(&[&dt], &[want_dt.key_text()]),
            Some(vec![want_dt.clone()])
        );
        assert_eq!(
            parse_key(&[&int, &bytes], &["-5".into(), "\\x00ff".into()]),
            Some(vec![Value::Int(-5), Value::Bytes(vec![0, 255])])
        );
        assert_eq!(
            parse_key(&[&bytes], &[Value::Bytes(vec![1, 2]).key_text()]),
            Some(vec![Value::Bytes(vec![1, 2])])
        );
        assert_eq!(
            parse_key(&[&ts], &["1970-01-01 00:00:01+00".into()]),
            Some(vec![Value::Timestamp(Some(1_000_000))])
        );
        assert_eq!(parse_key(&[&int], &["x".into()]), None);
        assert_eq!(parse_key(&[&int], &[]), None);
    }
}
