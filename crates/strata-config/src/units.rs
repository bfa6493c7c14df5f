//! Durations (`50ms`, `24h`) and sizes (`4MiB`) as written in the config file.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A duration written as whole numbers with units: `50ms`, `5s`, `10m`, `24h`, `7d`, or a
/// sum such as `1h30m`. Always greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationValue(pub Duration);

impl DurationValue {
    pub(crate) const fn secs(s: u64) -> Self {
        DurationValue(Duration::from_secs(s))
    }

    pub(crate) const fn millis(ms: u64) -> Self {
        DurationValue(Duration::from_millis(ms))
    }
}

const DURATION_HELP: &str =
    "write whole numbers with a unit, e.g. `50ms`, `5s`, `10m`, `24h`, `7d` or `1h30m`";

/// Parses a duration; the error says what is wrong and how to write it.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!(
            "an empty string is not a duration; {DURATION_HELP}"
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {DURATION_HELP}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large a duration; {DURATION_HELP}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "`{text}` has no unit; {DURATION_HELP} (a bare number is ambiguous)"
                ))
            }
            other => {
                return Err(format!(
                    "`{text}` has an unknown unit `{other}`; units are ms, s, m, h and d; \
                     {DURATION_HELP}"
                ))
            }
        };
        let part = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("`{text}` is too large a duration; {DURATION_HELP}"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| format!("`{text}` is too large a duration; {DURATION_HELP}"))?;
    }
    if total.is_zero() {
        return Err(format!(
            "`{text}` is zero; the duration must be greater than zero"
        ));
    }
    Ok(total)
}

impl<'de> serde::Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a duration string such as \"5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; write it as a string with a unit, e.g. \"{v}s\" or \
                     \"{v}ms\""
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A size in bytes written as a number (bytes) or a string with a unit: `512KiB`, `4MiB`,
/// `1GiB` (powers of 1024) or `10KB`, `4MB`, `1GB` (powers of 1000). Always greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeValue(pub u64);

const SIZE_HELP: &str = "write a number of bytes or a number with a unit, e.g. `512KiB`, `4MiB`, \
                         `1GiB` (1024-based) or `4MB` (1000-based)";

/// Parses a size; the error says what is wrong and how to write it.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return Err(format!("`{text}` is not a size; {SIZE_HELP}"));
    }
    let number: u64 = s[..digits]
        .parse()
        .map_err(|_| format!("`{text}` is too large a size; {SIZE_HELP}"))?;
    let multiplier: u64 = match s[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{text}` has an unknown unit `{other}`; {SIZE_HELP}"
            ))
        }
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large a size; {SIZE_HELP}"))?;
    if bytes == 0 {
        return Err(format!(
            "`{text}` is zero; the size must be greater than zero"
        ));
    }
    Ok(bytes)
}

impl<'de> serde::Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a size such as \"4MiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                parse_size(v).map(SizeValue).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                match u64::try_from(v) {
                    Ok(n) if n > 0 => Ok(SizeValue(n)),
                    _ => Err(E::custom(format!(
                        "`{v}` is not a size: it must be greater than zero; {SIZE_HELP}"
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                if v == 0 {
                    return self.visit_i64(0);
                }
                Ok(SizeValue(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_sums() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        let e = parse_duration("5").unwrap_err();
        assert!(e.contains("no unit"), "{e}");
        let e = parse_duration("5 minutes").unwrap_err();
        assert!(e.contains("unknown unit `minutes`"), "{e}");
        let e = parse_duration("0s").unwrap_err();
        assert!(e.contains("greater than zero"), "{e}");
        let e = parse_duration("fast").unwrap_err();
        assert!(e.contains("e.g. `50ms`"), "{e}");
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("4mb"), Ok(4_000_000));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("4 megs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("0MiB")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_size("MiB").is_err());
    }
}
