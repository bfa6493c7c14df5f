//! Character sets of text columns: which one a collation id names, and how its bytes
//! become a `String` without loss.

use mysql_common::collations::{Collation, CollationId};
use strata_core::Value;

/// How the bytes of a text column are turned into a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    /// utf8mb4, utf8mb3 and ascii: UTF-8 bytes.
    Utf8,
    /// MySQL's `latin1`, which is Windows-1252 with the five undefined bytes kept as the C1
    /// controls of the same number.
    Latin1,
    /// The `binary` pseudo character set: the column is BINARY/VARBINARY/BLOB.
    Binary,
    /// A character set strata does not decode: the value is kept as bytes.
    Other,
}

/// The character set's name for a collation id, covering MySQL's ids and MariaDB's own
/// (its `nopad` variants at id + 1024, its extra ids from 576 and its UCA 14.0 ids from 2048).
pub(crate) fn charset_name(collation_id: u16) -> Option<String> {
    let mysql_name = |id: u16| -> Option<String> {
        let collation = Collation::resolve(CollationId::from(id));
        (collation.id() != CollationId::UNKNOWN_COLLATION_ID)
            .then(|| collation.charset().to_owned())
    };
    match collation_id {
        0 => None,
        576..=607 => Some("utf8mb3".into()),
        608..=639 => Some("utf8mb4".into()),
        640..=671 => Some("ucs2".into()),
        672..=703 => Some("utf16".into()),
        736..=767 => Some("utf32".into()),
        1024..=2047 => mysql_name(collation_id - 1024),
        2048..=2303 => Some("utf8mb3".into()),
        2304..=2559 => Some("utf8mb4".into()),
        id => mysql_name(id),
    }
    .map(|name| {
        if name == "utf8" {
            "utf8mb3".to_owned()
        } else {
            name
        }
    })
}

/// How to decode text of a character set.
pub(crate) fn encoding_of(charset: Option<&str>) -> TextEncoding {
    match charset {
        Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii") => TextEncoding::Utf8,
        Some("latin1") => TextEncoding::Latin1,
        Some("binary") => TextEncoding::Binary,
        // Without metadata MySQL's default character set is the best guess; invalid UTF-8
        // still arrives as bytes, so nothing is lost.
        None => TextEncoding::Utf8,
        Some(_) => TextEncoding::Other,
    }
}

/// The value of text bytes in `encoding`: a `String` when they decode exactly, else the
/// bytes themselves.
pub(crate) fn decode_text(bytes: &[u8], encoding: TextEncoding) -> Value {
    match encoding {
        TextEncoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => Value::Bytes(bytes.to_vec()),
        },
        TextEncoding::Latin1 => Value::String(bytes.iter().map(|&b| latin1_char(b)).collect()),
        TextEncoding::Binary | TextEncoding::Other => Value::Bytes(bytes.to_vec()),
    }
}

/// The character MySQL's latin1 (cp1252) gives a byte.
fn latin1_char(b: u8) -> char {
    const HIGH: [u32; 32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ];
    if (0x80..0xA0).contains(&b) {
        char::from_u32(HIGH[usize::from(b - 0x80)]).unwrap_or(char::REPLACEMENT_CHARACTER)
    } else {
        char::from(b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn collation_ids_name_their_charsets() {
        assert_eq!(charset_name(45).as_deref(), Some("utf8mb4"));
        assert_eq!(charset_name(255).as_deref(), Some("utf8mb4"));
        assert_eq!(charset_name(33).as_deref(), Some("utf8mb3"));
        assert_eq!(charset_name(8).as_deref(), Some("latin1"));
        assert_eq!(charset_name(63).as_deref(), Some("binary"));
        // MariaDB ids.
        assert_eq!(charset_name(1069).as_deref(), Some("utf8mb4"));
        assert_eq!(charset_name(1032).as_deref(), Some("latin1"));
        assert_eq!(charset_name(2304).as_deref(), Some("utf8mb4"));
        assert_eq!(charset_name(608).as_deref(), Some("utf8mb4"));
    }

    #[test]
    fn latin1_is_cp1252() {
        let v = decode_text(&[0x80, b'a', 0xE9, 0x81, 0xFF], TextEncoding::Latin1);
        assert_eq!(v, Value::String("€aé\u{81}ÿ".into()));
    }

    #[test]
    fn invalid_utf8_stays_bytes() {
        assert_eq!(
            decode_text(&[0xff, 0xfe], TextEncoding::Utf8),
            Value::Bytes(vec![0xff, 0xfe])
        );
    }
}
