//! JSON column text → native BSON, keeping numbers exact.
//!
//! `serde_json` would turn `2.50` into the double `2.5` and a 20-digit integer into a lossy
//! double, so this small parser keeps each number's text and picks the BSON type that holds
//! it exactly: Int32/Int64 for integers that fit, Decimal128 for anything else with at most
//! 34 significant digits, and the number's text as a string beyond that.

use bson::{Bson, Decimal128, Document};

/// Nesting deeper than this is not parsed (MongoDB itself refuses documents nested over 100
/// levels); the column is then stored as its text.
const MAX_DEPTH: usize = 100;

/// Parses JSON text into BSON, or `None` when the text is not valid JSON or cannot be a BSON
/// value (a key containing NUL, nesting too deep); the caller then stores the text itself.
pub(super) fn to_bson(text: &str) -> Option<Bson> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_ws();
    (parser.pos == parser.bytes.len()).then_some(value)
}

/// A number's exact BSON form: Int32/Int64 when it is an integer that fits, Decimal128 when
/// its digits fit in 34, else `None`.
pub(super) fn exact_number(text: &str) -> Option<Bson> {
    let is_integer = !text.contains(['.', 'e', 'E']);
    if is_integer {
        if let Ok(v) = text.parse::<i64>() {
            return Some(match i32::try_from(v) {
                Ok(small) => Bson::Int32(small),
                Err(_) => Bson::Int64(v),
            });
        }
    }
    decimal128(text).map(Bson::Decimal128)
}

/// A decimal's exact Decimal128, or `None` when it has more than 34 significant digits or
/// an exponent outside Decimal128's range (`bson` would round those).
pub(super) fn decimal128(text: &str) -> Option<Decimal128> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let significant = digits.trim_start_matches('0').len();
    let exponent = exponent - i32::try_from(frac_part.len()).ok()?;
    // Decimal128: coefficient below 10^34, exponent in [-6176, 6111].
    if significant > 34 || !(-6176..=6111).contains(&exponent) {
        return None;
    }
    text.parse::<Decimal128>().ok()
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, value: Bson) -> Option<Bson> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end)? == word.as_bytes() {
            self.pos = end;
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Bson> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Bson::String),
            b't' => self.literal("true", Bson::Boolean(true)),
            b'f' => self.literal("false", Bson::Boolean(false)),
            b'n' => self.literal("null", Bson::Null),
            _ => self.number(),
        }
    }

    fn object(&mut self, depth: usize) -> Option<Bson> {
        self.pos += 1;
        let mut doc = Document::new();
        self.skip_ws();
        if self.eat(b'}') {
            return Some(Bson::Document(doc));
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            if key.contains('\0') {
                return None;
            }
            self.skip_ws();
            if !self.eat(b':') {
                return None;
            }
            let value = self.value(depth + 1)?;
            doc.insert(key, value);
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(Bson::Document(doc));
        }
    }

    fn array(&mut self, depth: usize) -> Option<Bson> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']') {
            return Some(Bson::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(Bson::Array(items));
        }
    }

    fn number(&mut self) -> Option<Bson> {
        let start = self.pos;
        self.eat(b'-');
        let int_start = self.pos;
        self.digits();
        let int_len = self.pos - int_start;
        // JSON forbids empty integer parts and leading zeros ("01").
        if int_len == 0 || (int_len > 1 && self.bytes[int_start] == b'0') {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        let text = &self.text[start..self.pos];
        Some(exact_number(text).unwrap_or_else(|| Bson::String(text.to_owned())))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let escaped = self.peek()?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
                // A raw control character inside a string is invalid JSON.
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(hex, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by `\uDC00`-`\uDFFF`.
            if !(self.eat(b'\\') && self.eat(b'u')) {
                return None;
            }
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        } else {
            char::from_u32(first)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn numbers_keep_their_digits() {
        let v = to_bson(r#"{"a":[1,2.50,{"b":null}],"c":"x","d":12345678901234567890.123}"#);
        let expected = doc! {
            "a": [1, Bson::Decimal128("2.50".parse().unwrap()), {"b": Bson::Null}],
            "c": "x",
            "d": Bson::Decimal128("12345678901234567890.123".parse().unwrap()),
        };
        assert_eq!(v, Some(Bson::Document(expected)));
        assert_eq!(to_bson("5000000000"), Some(Bson::Int64(5_000_000_000)));
        assert_eq!(
            to_bson("18446744073709551615"),
            Some(Bson::Decimal128("18446744073709551615".parse().unwrap()))
        );
        let long = "1.2345678901234567890123456789012345678";
        assert_eq!(to_bson(long), Some(Bson::String(long.into())));
        assert_eq!(
            to_bson("-1e-400"),
            Some(Bson::Decimal128("-1e-400".parse().unwrap()))
        );
    }

    #[test]
    fn strings_unescape_and_invalid_text_is_refused() {
        assert_eq!(
            to_bson(r#" "a\"\\\/\n\u00e9\ud834\udd1e" "#),
            Some(Bson::String("a\"\\/\né𝄞".into()))
        );
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "1.",
            "\"\\ud834\"",
            "tru",
            "{\"a\":1}x",
            "\"\u{1}\"",
        ] {
            assert_eq!(to_bson(bad), None, "{bad:?}");
        }
        assert_eq!(to_bson("{\"a\\u0000\":1}"), None);
    }

    #[test]
    fn decimal128_refuses_what_it_would_round() {
        assert!(decimal128("9999999999999999999999999999999999").is_some());
        assert!(decimal128("99999999999999999999999999999999999").is_none());
        assert!(decimal128("0.000000000000000000000000000001").is_some());
        assert_eq!(
            decimal128("-12.340").map(|d| d.to_string()),
            Some("-12.340".into())
        );
        assert!(decimal128("abc").is_none());
        assert!(decimal128(".").is_none());
    }
}
