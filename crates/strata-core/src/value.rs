//! Exact column values, as MySQL stored them.
//!
//! Every MySQL type maps to a variant that keeps the value exactly: DECIMAL stays a decimal
//! string, BIGINT UNSIGNED stays a `u64`, binary strings stay bytes, and temporal values
//! keep their fields (no time-zone arithmetic happens to DATETIME; TIMESTAMP is an instant
//! in UTC).

use base64::Engine as _;
use serde_json::json;
use std::fmt;

/// A calendar date as MySQL stores it. Zero parts are allowed (`0000-00-00`, `2024-00-00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// True for MySQL's "zero" dates, which name no real day (any part zero).
    pub fn is_zero(&self) -> bool {
        self.year == 0 || self.month == 0 || self.day == 0
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A date and time of day without a time zone (MySQL DATETIME), to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

impl fmt::Display for DateTime {
    /// ISO 8601 without an offset: `2024-01-02T03:04:05.123456` (fraction only when non-zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        if self.micros != 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

impl DateTime {
    /// Microseconds since 1970-01-01T00:00:00 reading the fields as UTC, or `None` for a
    /// zero date.
    pub fn to_unix_micros(&self) -> Option<i64> {
        if self.date.is_zero() {
            return None;
        }
        let days = days_from_civil(
            i64::from(self.date.year),
            u32::from(self.date.month),
            u32::from(self.date.day),
        );
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        Some(secs * 1_000_000 + i64::from(self.micros))
    }

    /// The UTC calendar fields of an instant given in microseconds since the epoch.
    pub fn from_unix_micros(micros: i64) -> DateTime {
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        DateTime {
            date: Date {
                year: y as u16,
                month: m as u8,
                day: d as u8,
            },
            hour: (tod / 3600) as u8,
            minute: (tod % 3600 / 60) as u8,
            second: (tod % 60) as u8,
            micros: frac,
        }
    }
}

/// A MySQL TIME: a signed duration up to ±838:59:59.999999, not only a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub negative: bool,
    pub hours: u16,
    pub minutes: u8,
    pub seconds: u8,
    pub micros: u32,
}

impl Time {
    /// The signed duration in microseconds.
    pub fn to_micros(&self) -> i64 {
        let m = ((i64::from(self.hours) * 60 + i64::from(self.minutes)) * 60
            + i64::from(self.seconds))
            * 1_000_000
            + i64::from(self.micros);
        if self.negative {
            -m
        } else {
            m
        }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        write!(
            f,
            "{sign}{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        )?;
        if self.micros != 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

/// One column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Any signed integer column (TINYINT … BIGINT).
    Int(i64),
    /// Any UNSIGNED integer column, up to BIGINT UNSIGNED's 18446744073709551615.
    UInt(u64),
    Float(f32),
    Double(f64),
    /// DECIMAL/NUMERIC as its exact canonical text, e.g. `-12.340` (scale kept).
    Decimal(String),
    Date(Date),
    /// DATETIME: wall-clock fields, no time zone.
    DateTime(DateTime),
    /// TIMESTAMP: an instant, microseconds since the Unix epoch in UTC. MySQL's zero
    /// timestamp (`0000-00-00 00:00:00`) is `None`.
    Timestamp(Option<i64>),
    Time(Time),
    Year(u16),
    /// Character data, decoded from the column's character set.
    String(String),
    /// BINARY/VARBINARY/BLOB, and character data that is not valid in its character set.
    Bytes(Vec<u8>),
    /// ENUM, as the member's name (empty string for MySQL's invalid-value index 0).
    Enum(String),
    /// SET, as the names of the members present, in definition order.
    Set(Vec<String>),
    /// BIT(n): the bits as an unsigned integer, and n.
    Bit {
        bits: u64,
        width: u8,
    },
    /// JSON as canonical JSON text (exact: decimals keep their digits).
    Json(String),
    /// GEOMETRY: SRID and the WKB body.
    Geometry {
        srid: u32,
        wkb: Vec<u8>,
    },
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value's type as a short name, never the value itself: what error messages say,
    /// since row values stay out of messages and logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "integer",
            Value::UInt(_) => "unsigned integer",
            Value::Float(_) => "FLOAT",
            Value::Double(_) => "DOUBLE",
            Value::Decimal(_) => "DECIMAL",
            Value::Date(_) => "DATE",
            Value::DateTime(_) => "DATETIME",
            Value::Timestamp(_) => "TIMESTAMP",
            Value::Time(_) => "TIME",
            Value::Year(_) => "YEAR",
            Value::String(_) => "text",
            Value::Bytes(_) => "binary",
            Value::Enum(_) => "ENUM",
            Value::Set(_) => "SET",
            Value::Bit { .. } => "BIT",
            Value::Json(_) => "JSON",
            Value::Geometry { .. } => "GEOMETRY",
        }
    }

    /// The JSON form used by `strata inspect` and as the common text form of a value.
    ///
    /// Exactness first: integers are JSON numbers (u64 included), DECIMAL is a string,
    /// bytes are base64, temporal values are ISO 8601 strings (TIMESTAMP ends in `Z`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(v) => json!(v),
            Value::UInt(v) => json!(v),
            Value::Float(v) => json!(v),
            Value::Double(v) => json!(v),
            Value::Decimal(s) => json!(s),
            Value::Date(d) => json!(d.to_string()),
            Value::DateTime(dt) => json!(dt.to_string()),
            Value::Timestamp(Some(us)) => json!(format!("{}Z", DateTime::from_unix_micros(*us))),
            Value::Timestamp(None) => json!("0000-00-00T00:00:00Z"),
            Value::Time(t) => json!(t.to_string()),
            Value::Year(y) => json!(y),
            Value::String(s) | Value::Enum(s) => json!(s),
            Value::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Set(members) => json!(members),
            Value::Bit { bits, .. } => json!(bits),
            Value::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
            Value::Geometry { srid, wkb } => json!({
                "srid": srid,
                "wkb": base64::engine::general_purpose::STANDARD.encode(wkb),
            }),
        }
    }

    /// A stable text form, used to build document ids from key values.
    pub fn key_text(&self) -> String {
        match self {
            Value::Null => String::from("\u{2400}"),
            Value::Int(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            Value::Double(v) => v.to_string(),
            Value::Decimal(s) | Value::String(s) | Value::Enum(s) | Value::Json(s) => s.clone(),
            Value::Bytes(b) => hex_lower(b),
            Value::Geometry { wkb, .. } => hex_lower(wkb),
            Value::Set(m) => m.join(","),
            Value::Bit { bits, .. } => bits.to_string(),
            Value::Year(y) => y.to_string(),
            Value::Date(_) | Value::DateTime(_) | Value::Timestamp(_) | Value::Time(_) => {
                match self.to_json() {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }
            }
        }
    }
}

/// The id of a row in a target: its key values' text joined by `|`, with `\` and `|`
/// escaped, so that different keys never give the same id.
pub fn key_id(key: &[Value]) -> String {
    if let [single] = key {
        return escape_key_part(&single.key_text());
    }
    key.iter()
        .map(|v| escape_key_part(&v.key_text()))
        .collect::<Vec<_>>()
        .join("|")
}

fn escape_key_part(s: &str) -> String {
    if !s.contains(['\\', '|']) {
        return s.to_owned();
    }
    s.replace('\\', "\\\\").replace('|', "\\|")
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trips_through_unix_micros() {
        for us in [
            0_i64,
            1,
            86_399_999_999,
            1_700_000_000_123_456,
            -1,
            253_402_300_799_999_999,
        ] {
            let dt = DateTime::from_unix_micros(us);
            assert_eq!(dt.to_unix_micros(), Some(us), "{dt}");
        }
        let dt = DateTime::from_unix_micros(1_700_000_000_123_456);
        assert_eq!(dt.to_string(), "2023-11-14T22:13:20.123456");
    }

    #[test]
    fn zero_dates_have_no_instant() {
        let dt = DateTime {
            date: Date {
                year: 0,
                month: 0,
                day: 0,
            },
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
        };
        assert_eq!(dt.to_unix_micros(), None);
        assert_eq!(dt.to_string(), "0000-00-00T00:00:00");
    }

    #[test]
    fn negative_fractional_time_prints_sign_and_fraction() {
        let t = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 58,
            micros: 999_999,
        };
        assert_eq!(t.to_string(), "-838:59:58.999999");
        assert_eq!(
            t.to_micros(),
            -((838 * 3600 + 59 * 60 + 58) * 1_000_000 + 999_999)
        );
    }

    #[test]
    fn key_ids_do_not_collide() {
        let a = key_id(&[Value::String("a|b".into()), Value::String("c".into())]);
        let b = key_id(&[Value::String("a".into()), Value::String("b|c".into())]);
        assert_ne!(a, b);
        assert_eq!(key_id(&[Value::UInt(u64::MAX)]), "18446744073709551615");
    }

    #[test]
    fn json_form_is_exact() {
        assert_eq!(
            Value::UInt(u64::MAX).to_json().to_string(),
            "18446744073709551615"
        );
        assert_eq!(
            Value::Decimal("-0.000000000000000000000000000001".into()).to_json(),
            json!("-0.000000000000000000000000000001")
        );
        assert_eq!(Value::Bytes(vec![0, 255]).to_json(), json!("AP8="));
        assert_eq!(
            Value::Timestamp(Some(0)).to_json(),
            json!("1970-01-01T00:00:00Z")
        );
    }
}
