//! MySQL's binary JSON → canonical JSON text, exactly; and MySQL partial JSON updates
//! applied to a before image.
//!
//! `serde_json::Value` would turn decimals into floats, so documents go through a small DOM
//! of our own whose numbers keep their text. Object members keep MySQL's stored order (by
//! key length, then bytes), which is also the order MySQL prints them in.

use mysql_common::binlog::decimal::Decimal;
use mysql_common::binlog::jsonb;
use mysql_common::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use mysql_common::binlog::time::MysqlTime;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use std::fmt::Write as _;

/// A JSON document whose numbers keep their exact text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number as JSON text (`-12`, `1.50`, `1e300`).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Compact canonical text: no spaces, strings escaped as JSON requires.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses a MySQL binary JSON value (an empty value is JSON `null`, as MySQL reads it).
pub(crate) fn from_binary(bytes: &[u8]) -> Result<Json, String> {
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    let value: jsonb::Value<'_> = ParseBuf(bytes)
        .parse(())
        .map_err(|e| format!("invalid binary JSON: {e}"))?;
    convert(value)
}

fn convert(value: jsonb::Value<'_>) -> Result<Json, String> {
    let err = |e: std::io::Error| format!("invalid binary JSON: {e}");
    Ok(match value {
        jsonb::Value::Null => Json::Null,
        jsonb::Value::Bool(b) => Json::Bool(b),
        jsonb::Value::I16(x) => Json::Number(x.to_string()),
        jsonb::Value::U16(x) => Json::Number(x.to_string()),
        jsonb::Value::I32(x) => Json::Number(x.to_string()),
        jsonb::Value::U32(x) => Json::Number(x.to_string()),
        jsonb::Value::I64(x) => Json::Number(x.to_string()),
        jsonb::Value::U64(x) => Json::Number(x.to_string()),
        jsonb::Value::F64(x) => Json::Number(double_text(x)),
        jsonb::Value::String(s) => Json::String(
            String::from_utf8(s.str_raw().to_vec())
                .map_err(|_| "binary JSON string is not UTF-8".to_owned())?,
        ),
        jsonb::Value::SmallArray(a) => Json::Array(
            a.iter()
                .map(|v| v.map_err(err).and_then(convert))
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::LargeArray(a) => Json::Array(
            a.iter()
                .map(|v| v.map_err(err).and_then(convert))
                .collect::<Result<_, _>>()?,
        ),
        jsonb::Value::SmallObject(o) => Json::Object(
            o.iter()
                .map(|kv| {
                    let (k, v) = kv.map_err(err)?;
                    Ok((k.value().into_owned(), convert(v)?))
                })
                .collect::<Result<_, String>>()?,
        ),
        jsonb::Value::LargeObject(o) => Json::Object(
            o.iter()
                .map(|kv| {
                    let (k, v) = kv.map_err(err)?;
                    Ok((k.value().into_owned(), convert(v)?))
                })
                .collect::<Result<_, String>>()?,
        ),
        jsonb::Value::Opaque(o) => opaque(o.value_type(), o.data_raw())?,
    })
}

/// A double as JSON text, shortest round-trip form (`0.1`, `1e300`).
fn double_text(x: f64) -> String {
    serde_json::Number::from_f64(x)
        .map(|n| n.to_string())
        // Binary JSON cannot hold NaN or infinities; keep something visible if it does.
        .unwrap_or_else(|| format!("\"{x}\""))
}

/// Opaque scalars: DECIMAL stays an exact number; temporal values become the strings
/// MySQL prints; anything else becomes MySQL's `base64:typeN:…` text.
fn opaque(ty: ColumnType, data: &[u8]) -> Result<Json, String> {
    let packed = || -> Result<i64, String> {
        data.first_chunk::<8>()
            .map(|b| i64::from_le_bytes(*b))
            .ok_or_else(|| format!("JSON temporal value of {} bytes", data.len()))
    };
    Ok(match ty {
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let d = Decimal::read_packed(data, false)
                .map_err(|e| format!("invalid DECIMAL in JSON: {e}"))?;
            Json::Number(d.to_string())
        }
        ColumnType::MYSQL_TYPE_DATE => {
            Json::String(format!("{}", MysqlTime::from_int64_date_packed(packed()?)))
        }
        ColumnType::MYSQL_TYPE_TIME => Json::String(format!(
            "{:.6}",
            MysqlTime::from_int64_time_packed(packed()?)
        )),
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_TIMESTAMP => Json::String(
            format!("{:.6}", MysqlTime::from_int64_datetime_packed(packed()?)),
        ),
        other => {
            use base64::Engine as _;
            Json::String(format!(
                "base64:type{}:{}",
                other as u8,
                base64::engine::general_purpose::STANDARD.encode(data)
            ))
        }
    })
}

/// Deepest nesting accepted when parsing JSON text (MySQL allows 100).
const MAX_DEPTH: usize = 512;

/// Parses JSON text (MariaDB's JSON columns are text), keeping numbers as written and
/// members in document order.
pub(crate) fn parse_text(text: &str) -> Result<Json, String> {
    let mut p = TextParser {
        bytes: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.i != p.bytes.len() {
        return Err(format!("trailing characters at byte {}", p.i));
    }
    Ok(value)
}

struct TextParser<'a> {
    bytes: &'a [u8],
    i: usize,
}

impl TextParser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("invalid JSON text at byte {}: {what}", self.i)
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        if self.bytes[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err(&format!("expected {word}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.bytes.get(self.i) {
            Some(b'n') => self.expect("null").map(|()| Json::Null),
            Some(b't') => self.expect("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.bytes.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.bytes.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a member name"));
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    self.expect(":")?;
                    self.skip_ws();
                    members.push((key, self.value(depth + 1)?));
                    self.skip_ws();
                    match self.bytes.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(self.err("expected , or }")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while matches!(p.bytes.get(p.i), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > s
        };
        if self.bytes.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if self.bytes.get(self.i) == Some(&b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err("expected digits"));
        }
        if self.bytes.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("expected fraction digits"));
            }
        }
        if matches!(self.bytes.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.bytes.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("expected exponent digits"));
            }
        }
        // Only ASCII was consumed, so this slice is valid UTF-8.
        Ok(Json::Number(
            String::from_utf8_lossy(&self.bytes[start..self.i]).into_owned(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .bytes
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(hex)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while !matches!(self.bytes.get(self.i), Some(b'"' | b'\\') | None) {
                if self.bytes[self.i] < 0x20 {
                    return Err(self.err("control character in a string"));
                }
                self.i += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.i])
                    .map_err(|_| self.err("invalid UTF-8"))?,
            );
            match self.bytes.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {
                    self.i += 1;
                    let c = *self
                        .bytes
                        .get(self.i)
                        .ok_or_else(|| self.err("bad escape"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{08}'),
                        b'f' => out.push('\u{0c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.bytes[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            out.push(
                                char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))?,
                            );
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
            }
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Member(String),
    /// An array index; `from_end` counts back from the last element (`[last-N]`).
    Index {
        n: usize,
        from_end: bool,
    },
}

/// Parses the paths MySQL writes in partial JSON updates: `$`, `.key`, `."quoted key"`,
/// `[N]`, `[last]`, `[last-N]`. Wildcards never occur there and are refused.
fn parse_path(path: &str) -> Result<Vec<Leg>, String> {
    let bad = |why: &str| format!("unsupported JSON path `{path}`: {why}");
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("no leading $"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut legs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            ' ' => i += 1,
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'"') {
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(bad("unterminated quoted key")),
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some('\\') => {
                                let c = chars.get(i + 1).ok_or_else(|| bad("dangling escape"))?;
                                key.push(match c {
                                    'n' => '\n',
                                    't' => '\t',
                                    'r' => '\r',
                                    'b' => '\u{08}',
                                    'f' => '\u{0c}',
                                    other => *other,
                                });
                                i += 2;
                            }
                            Some(c) => {
                                key.push(*c);
                                i += 1;
                            }
                        }
                    }
                    legs.push(Leg::Member(key));
                } else {
                    let start = i;
                    while i < chars.len() && !matches!(chars[i], '.' | '[' | ' ') {
                        i += 1;
                    }
                    let key: String = chars[start..i].iter().collect();
                    if key.is_empty() || key == "*" {
                        return Err(bad("empty or wildcard member"));
                    }
                    legs.push(Leg::Member(key));
                }
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| bad("unterminated ["))?;
                let inner: String = chars[i + 1..i + close].iter().collect();
                let inner = inner.trim();
                let leg = if let Some(after_last) = inner.strip_prefix("last") {
                    let after_last = after_last.trim();
                    let n = if after_last.is_empty() {
                        0
                    } else {
                        after_last
                            .strip_prefix('-')
                            .and_then(|n| n.trim().parse().ok())
                            .ok_or_else(|| bad("bad [last-N]"))?
                    };
                    Leg::Index { n, from_end: true }
                } else {
                    Leg::Index {
                        n: inner.parse().map_err(|_| bad("bad array index"))?,
                        from_end: false,
                    }
                };
                legs.push(leg);
                i += close + 1;
            }
            _ => return Err(bad("unexpected character")),
        }
    }
    Ok(legs)
}

fn resolve_index(n: usize, from_end: bool, len: usize) -> Option<usize> {
    if from_end {
        len.checked_sub(1)?.checked_sub(n)
    } else {
        Some(n)
    }
}

/// The value at `legs`, for change.
fn lookup_mut<'a>(doc: &'a mut Json, legs: &[Leg]) -> Option<&'a mut Json> {
    let mut cur = doc;
    for leg in legs {
        cur = match (leg, cur) {
            (Leg::Member(k), Json::Object(members)) => {
                &mut members.iter_mut().find(|(name, _)| name == k)?.1
            }
            (Leg::Index { n, from_end }, Json::Array(items)) => {
                let idx = resolve_index(*n, *from_end, items.len())?;
                items.get_mut(idx)?
            }
            // MySQL auto-wraps a scalar as a one-element array for `[0]`/`[last]`.
            (Leg::Index { n, from_end }, other) if resolve_index(*n, *from_end, 1) == Some(0) => {
                other
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies MySQL's partial JSON update operations, in order, to `doc`.
pub(crate) fn apply_diffs(doc: &mut Json, diffs: &[JsonDiff<'_>]) -> Result<(), String> {
    for diff in diffs {
        let path = diff.path_str().into_owned();
        let legs = parse_path(&path)?;
        let value = match diff.value() {
            Some(v) => Some(convert(v.clone())?),
            None => None,
        };
        let missing = || format!("path `{path}` does not exist in the before image");
        match diff.operation() {
            JsonDiffOperation::REPLACE => {
                let new = value.ok_or_else(|| format!("REPLACE at `{path}` without a value"))?;
                *lookup_mut(doc, &legs).ok_or_else(missing)? = new;
            }
            JsonDiffOperation::INSERT => {
                let new = value.ok_or_else(|| format!("INSERT at `{path}` without a value"))?;
                let (last, parent_legs) = legs
                    .split_last()
                    .ok_or_else(|| format!("INSERT at the document root `{path}`"))?;
                let parent = lookup_mut(doc, parent_legs).ok_or_else(missing)?;
                match (last, parent) {
                    (Leg::Member(k), Json::Object(members)) => {
                        if members.iter().any(|(name, _)| name == k) {
                            return Err(format!("INSERT at `{path}`: the key exists already"));
                        }
                        members.push((k.clone(), new));
                        sort_members(members);
                    }
                    (Leg::Index { n, from_end }, Json::Array(items)) => {
                        let idx = resolve_index(*n, *from_end, items.len()).unwrap_or(0);
                        items.insert(idx.min(items.len()), new);
                    }
                    _ => return Err(format!("INSERT at `{path}`: parent has the wrong type")),
                }
            }
            JsonDiffOperation::REMOVE => {
                let (last, parent_legs) = legs
                    .split_last()
                    .ok_or_else(|| format!("REMOVE of the document root `{path}`"))?;
                let parent = lookup_mut(doc, parent_legs).ok_or_else(missing)?;
                match (last, parent) {
                    (Leg::Member(k), Json::Object(members)) => {
                        let before = members.len();
                        members.retain(|(name, _)| name != k);
                        if members.len() == before {
                            return Err(missing());
                        }
                    }
                    (Leg::Index { n, from_end }, Json::Array(items)) => {
                        let idx = resolve_index(*n, *from_end, items.len())
                            .filter(|i| *i < items.len())
                            .ok_or_else(missing)?;
                        items.remove(idx);
                    }
                    _ => return Err(missing()),
                }
            }
        }
    }
    Ok(())
}

/// MySQL's member order: shorter keys first, then by bytes.
fn sort_members(members: &mut [(String, Json)]) {
    members.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn obj(members: &[(&str, Json)]) -> Json {
        Json::Object(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn text_is_compact_and_escaped() {
        let doc = obj(&[
            ("a", Json::Number("1.50".into())),
            ("b\"", Json::Array(vec![Json::Null, Json::Bool(true)])),
            ("c", Json::String("x\ny\u{1}".into())),
        ]);
        assert_eq!(
            doc.to_text(),
            r#"{"a":1.50,"b\"":[null,true],"c":"x\ny\u0001"}"#
        );
    }

    #[test]
    fn text_parses_exactly_and_prints_canonically() {
        let doc =
            parse_text(r#" {"b": [1, 2.50, -0.0e+1], "a": "x\"y\u00e9\ud83d\ude00", "n": null} "#)
                .unwrap();
        assert_eq!(
            doc.to_text(),
            r#"{"b":[1,2.50,-0.0e+1],"a":"x\"yé😀","n":null}"#
        );
        for bad in ["", "{", "[1,]", "01", "\"a", "{\"a\" 1}", "tru", "1 2"] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
    }

    /// A JsonDiff as MySQL writes it: operation, length-prefixed path, length-prefixed
    /// binary JSON value (here an INT16).
    fn diff(op: u8, path: &str, int16: Option<i16>) -> JsonDiff<'static> {
        let mut bytes = vec![op, path.len() as u8];
        bytes.extend(path.as_bytes());
        if let Some(v) = int16 {
            bytes.push(3);
            bytes.push(0x05);
            bytes.extend(v.to_le_bytes());
        }
        let d: JsonDiff<'_> = ParseBuf(&bytes).parse(()).unwrap();
        d.into_owned()
    }

    #[test]
    fn diffs_apply_or_fail_loudly() {
        let mut doc = parse_text(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let ops = [
            diff(0, "$.a", Some(7)),    // REPLACE
            diff(1, "$.b[1]", Some(9)), // INSERT into the array
            diff(1, "$.c", Some(3)),    // INSERT a member
            diff(2, "$.b[0]", None),    // REMOVE
        ];
        apply_diffs(&mut doc, &ops).unwrap();
        assert_eq!(doc.to_text(), r#"{"a":7,"b":[9,2],"c":3}"#);
        // A path the before image lacks is an error, never a silent skip.
        let err = apply_diffs(&mut doc, &[diff(0, "$.missing.x", Some(1))]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = apply_diffs(&mut doc, &[diff(2, "$.b[5]", None)]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path(r#"$.a[2]."b c"[last-1]"#).unwrap(),
            vec![
                Leg::Member("a".into()),
                Leg::Index {
                    n: 2,
                    from_end: false
                },
                Leg::Member("b c".into()),
                Leg::Index {
                    n: 1,
                    from_end: true
                },
            ]
        );
        assert!(parse_path("$.*").is_err());
        assert!(parse_path("a").is_err());
    }

    #[test]
    fn lookups_follow_members_and_indices() {
        let mut doc = obj(&[(
            "a",
            Json::Array(vec![Json::Number("1".into()), Json::Number("2".into())]),
        )]);
        let legs = parse_path("$.a[last]").unwrap();
        *lookup_mut(&mut doc, &legs).unwrap() = Json::Number("9".into());
        assert_eq!(doc.to_text(), r#"{"a":[1,9]}"#);
        assert!(lookup_mut(&mut doc, &parse_path("$.b").unwrap()).is_none());
    }

    #[test]
    fn members_sort_like_mysql() {
        let mut m = vec![
            ("bb".to_owned(), Json::Null),
            ("c".to_owned(), Json::Null),
            ("a".to_owned(), Json::Null),
        ];
        sort_members(&mut m);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "c", "bb"]);
    }
}
