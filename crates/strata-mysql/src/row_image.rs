//! Row images of rows events → exact values, one column at a time.

use crate::charset::decode_text;
use crate::json::{self, Json};
use crate::table_map::{Decode, TableDecoder};
use crate::temporal::{self, Cursor};
use mysql_common::binlog::decimal::Decimal;
use mysql_common::binlog::jsondiff::JsonDiff;
use mysql_common::io::ParseBuf;
use strata_core::Value;

/// `binlog_row_value_options` bit for partial JSON updates in the after image.
const PARTIAL_JSON_UPDATES: u64 = 1;

/// A decoded row image: the values aligned with the table's columns.
pub(crate) struct Image {
    pub(crate) values: Vec<Value>,
    /// For before images of partial-update events: the JSON documents, aligned with the
    /// columns (empty otherwise), kept so the after image's diffs can be applied to them.
    pub(crate) json_docs: Vec<Option<Json>>,
}

/// A column value of an after image that holds partial JSON updates instead of a document.
pub(crate) struct PendingDiff {
    pub(crate) column: usize,
    pub(crate) diffs: Vec<JsonDiff<'static>>,
}

/// Which columns an image carries (one bit per table column, LSB first).
pub(crate) fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Decodes one row image at the cursor.
///
/// `present` is the event's column bitmap for this image. Columns the image leaves out are
/// an error: strata needs full row images (`binlog_row_image=FULL`). With `keep_json`, the
/// JSON documents are kept for partial updates. With `shared_image` (the after image of a
/// PARTIAL_UPDATE_ROWS event), JSON columns may carry diffs, returned in `pending`.
pub(crate) fn decode_image(
    table: &TableDecoder,
    present: &[u8],
    c: &mut Cursor<'_>,
    keep_json: bool,
    shared_image: bool,
    pending: &mut Vec<PendingDiff>,
) -> Result<Image, String> {
    let n = table.columns.len();
    let mut partial_bits: Option<Vec<u8>> = None;
    if shared_image {
        let options = c.lenenc()?;
        if options & PARTIAL_JSON_UPDATES != 0 {
            partial_bits = Some(c.take(table.json_columns.div_ceil(8))?.to_vec());
        }
    }
    let shown = (0..n).filter(|i| bit(present, *i)).count();
    if shown != n {
        let missing: Vec<&str> = (0..n)
            .filter(|i| !bit(present, *i))
            .map(|i| table.schema.columns[i].name.as_str())
            .collect();
        return Err(format!(
            "the row image of {} leaves out columns {}: it was written with binlog_row_image=MINIMAL or NOBLOB; run `SET GLOBAL binlog_row_image=FULL` (and in the writing sessions) on the source",
            table.schema.id,
            missing.join(", ")
        ));
    }
    let nulls = c.take(n.div_ceil(8))?;
    let mut values = Vec::with_capacity(n);
    let mut json_docs: Vec<Option<Json>> = if keep_json { vec![None; n] } else { Vec::new() };
    let mut json_idx = 0;
    for (i, decode) in table.columns.iter().enumerate() {
        let is_json = matches!(decode, Decode::Json { .. });
        let partial = is_json
            && partial_bits
                .as_deref()
                .is_some_and(|bits| bit(bits, json_idx));
        if is_json {
            json_idx += 1;
        }
        if bit(nulls, i) {
            values.push(Value::Null);
            continue;
        }
        let column = || format!("column {}", table.schema.columns[i].name);
        match decode {
            Decode::Json { len_bytes } => {
                let len = c.le(usize::from(*len_bytes))? as usize;
                let bytes = c.take(len)?;
                if partial {
                    let mut buf = ParseBuf(bytes);
                    let mut diffs = Vec::new();
                    while !buf.is_empty() {
                        let diff: JsonDiff<'_> = buf.parse(()).map_err(|e| {
                            format!("{}: invalid partial JSON update: {e}", column())
                        })?;
                        diffs.push(diff.into_owned());
                    }
                    pending.push(PendingDiff { column: i, diffs });
                    values.push(Value::Null);
                } else {
                    let doc = json::from_binary(bytes).map_err(|e| format!("{}: {e}", column()))?;
                    values.push(Value::Json(doc.to_text()));
                    if keep_json {
                        json_docs[i] = Some(doc);
                    }
                }
            }
            other => values.push(decode_value(other, c).map_err(|e| format!("{}: {e}", column()))?),
        }
    }
    Ok(Image { values, json_docs })
}

/// One non-NULL value.
fn decode_value(decode: &Decode, c: &mut Cursor<'_>) -> Result<Value, String> {
    Ok(match decode {
        Decode::Null => Value::Null,
        Decode::Int { bytes, unsigned } => {
            let n = usize::from(*bytes);
            let raw = c.le(n)?;
            if *unsigned {
                Value::UInt(raw)
            } else {
                let shift = 64 - 8 * n as u32;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        Decode::Float => {
            let raw = c.take(4)?;
            Value::Float(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
        }
        Decode::Double => {
            let mut b = [0_u8; 8];
            b.copy_from_slice(c.take(8)?);
            Value::Double(f64::from_le_bytes(b))
        }
        Decode::Decimal { precision, scale } => {
            let size = mysql_common::binlog::decimal::decimal_bin_size(
                usize::from(*precision),
                usize::from(*scale),
            );
            let bytes = c.take(size)?;
            let d = Decimal::read_bin(bytes, usize::from(*precision), usize::from(*scale), false)
                .map_err(|e| format!("invalid DECIMAL: {e}"))?;
            Value::Decimal(d.to_string())
        }
        Decode::Date => temporal::date(c)?,
        Decode::DateTime2 { fsp } => temporal::datetime2(c, *fsp)?,
        Decode::DateTimeOld => temporal::datetime_old(c)?,
        Decode::Timestamp2 { fsp } => temporal::timestamp2(c, *fsp)?,
        Decode::TimestampOld => temporal::timestamp_old(c)?,
        Decode::Time2 { fsp } => temporal::time2(c, *fsp)?,
        Decode::TimeOld => temporal::time_old(c)?,
        Decode::Year => temporal::year(c)?,
        Decode::Sized {
            len_bytes,
            encoding,
        }
        | Decode::Blob {
            len_bytes,
            encoding,
        } => {
            let len = c.le(usize::from(*len_bytes))? as usize;
            decode_text(c.take(len)?, *encoding)
        }
        Decode::FixedBinary { len_bytes, width } => {
            let len = c.le(usize::from(*len_bytes))? as usize;
            let mut bytes = c.take(len)?.to_vec();
            if bytes.len() < *width {
                bytes.resize(*width, 0);
            }
            Value::Bytes(bytes)
        }
        Decode::Enum { pack, members } => {
            let idx = c.le(usize::from(*pack))? as usize;
            match idx {
                // MySQL's "invalid value" index, stored for out-of-range input in
                // non-strict mode.
                0 => Value::Enum(String::new()),
                i => {
                    Value::Enum(members.get(i - 1).cloned().ok_or_else(|| {
                        format!("ENUM index {i} beyond {} members", members.len())
                    })?)
                }
            }
        }
        Decode::Set { pack, members } => {
            let bits = c.le(usize::from(*pack))?;
            if members.len() < 64 && bits >> members.len() != 0 {
                return Err(format!(
                    "SET bits {bits:#x} beyond {} members",
                    members.len()
                ));
            }
            Value::Set(
                members
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, m)| m.clone())
                    .collect(),
            )
        }
        Decode::Bit { width } => {
            let n = usize::from(*width).div_ceil(8);
            Value::Bit {
                bits: c.be(n)?,
                width: *width,
            }
        }
        Decode::Geometry { len_bytes } => {
            let len = c.le(usize::from(*len_bytes))? as usize;
            let bytes = c.take(len)?;
            if bytes.len() < 4 {
                return Err(format!("GEOMETRY value of {} bytes", bytes.len()));
            }
            Value::Geometry {
                srid: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                wkb: bytes[4..].to_vec(),
            }
        }
        Decode::JsonText { len_bytes } => {
            let len = c.le(usize::from(*len_bytes))? as usize;
            let bytes = c.take(len)?;
            match std::str::from_utf8(bytes) {
                Ok(text) => match json::parse_text(text) {
                    Ok(doc) => Value::Json(doc.to_text()),
                    // Only possible if the column became JSON after this row was written:
                    // keep the text as it is.
                    Err(_) => Value::String(text.to_owned()),
                },
                Err(_) => Value::Bytes(bytes.to_vec()),
            }
        }
        Decode::Vector { len_bytes } => {
            let len = c.le(usize::from(*len_bytes))? as usize;
            Value::Bytes(c.take(len)?.to_vec())
        }
        // JSON columns are decoded by `decode_image` itself, as they may carry diffs.
        Decode::Json { .. } => return Err("JSON column reached the scalar decoder".into()),
    })
}
