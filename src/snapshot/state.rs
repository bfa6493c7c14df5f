//! A snapshot's persisted progress, `<data_dir>/<version>/snapshot.json`: the recorded start
//! position, and per table the key of the last row durable in every target, the rows
//! copied and whether the table is done. Written atomically (temporary file, fsync,
//! rename, fsync of the directory), like the checkpoint file.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use strata_core::{BinlogPos, Date, DateTime, Time, Value};

/// The file format's version.
const FORMAT: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotState {
    /// The file format's version.
    pub format: u32,
    /// The version it belongs to.
    pub version: String,
    /// The binlog position recorded before the first row was read; every row is written
    /// with its order as version.
    pub position: PositionForm,
    /// The GTID set (MySQL) or GTID position (MariaDB) at `position`, when known.
    pub gtid: Option<String>,
    /// When the snapshot started, milliseconds since the epoch.
    pub started_at_ms: u64,
    /// When it finished (every table done).
    pub finished_at_ms: Option<u64>,
    /// The tables, in copy order.
    pub tables: Vec<TableProgress>,
}

/// `file:pos`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PositionForm {
    /// The binlog file.
    pub file: String,
    /// The offset in it.
    pub pos: u64,
}

impl From<&BinlogPos> for PositionForm {
    fn from(p: &BinlogPos) -> Self {
        PositionForm {
            file: p.file.clone(),
            pos: p.pos,
        }
    }
}

impl PositionForm {
    /// As a position.
    pub fn to_pos(&self) -> BinlogPos {
        BinlogPos::new(&self.file, self.pos)
    }
}

/// One table's progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableProgress {
    /// `schema.table`.
    pub table: String,
    /// The columns the table is paged by, in key order; empty for a full-table copy.
    pub key: Vec<String>,
    /// The key of the last row durable in every target (`None`: nothing yet).
    pub last_key: Option<Vec<serde_json::Value>>,
    /// Rows durable in every target.
    pub rows: u64,
    /// The source's estimate of the table's rows when the snapshot started.
    pub estimated_rows: u64,
    /// Every row is durable in every target.
    pub done: bool,
}

impl SnapshotState {
    pub fn new(
        version: &str,
        position: &BinlogPos,
        gtid: Option<String>,
        tables: Vec<TableProgress>,
    ) -> Self {
        SnapshotState {
            format: FORMAT,
            version: version.to_owned(),
            position: position.into(),
            gtid,
            started_at_ms: now_ms(),
            finished_at_ms: None,
            tables,
        }
    }

    /// Every table is done.
    pub fn done(&self) -> bool {
        self.tables.iter().all(|t| t.done)
    }

    /// Rows durable in every target, over all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Reads the file; `None` when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<SnapshotState>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let state: SnapshotState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a strata snapshot state; move it away (or run with --restart) to start a new snapshot",
            path.display()
        )
    })?;
    if state.format != FORMAT {
        anyhow::bail!(
            "{} has format {}, this strata reads format {FORMAT}; run with --restart to start a new snapshot",
            path.display(),
            state.format
        );
    }
    Ok(Some(state))
}

/// Writes the file atomically: a crash leaves the old or the new state, never a mix.
pub fn save(path: &Path, state: &SnapshotState) -> std::io::Result<()> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot.json".into());
    let temp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A key value as JSON that reads back as the same value (a type tag and an exact text).
pub fn key_to_json(value: &Value) -> serde_json::Value {
    use serde_json::json;
    match value {
        Value::Null => json!({ "null": true }),
        Value::Int(v) => json!({ "int": v.to_string() }),
        Value::UInt(v) => json!({ "uint": v.to_string() }),
        Value::Float(v) => json!({ "float": v.to_bits() }),
        Value::Double(v) => json!({ "double": v.to_bits().to_string() }),
        Value::Decimal(s) => json!({ "decimal": s }),
        Value::Date(d) => json!({ "date": [d.year, d.month, d.day] }),
        Value::DateTime(dt) => {
            json!({ "datetime": [dt.date.year, dt.date.month, dt.date.day, dt.hour, dt.minute, dt.second, dt.micros] })
        }
        Value::Timestamp(us) => json!({ "timestamp": us.map(|u| u.to_string()) }),
        Value::Time(t) => {
            json!({ "time": [u32::from(t.negative), u32::from(t.hours), u32::from(t.minutes), u32::from(t.seconds), t.micros] })
        }
        Value::Year(y) => json!({ "year": y }),
        Value::String(s) => json!({ "string": s }),
        Value::Bytes(b) => json!({ "bytes": hex_encode(b) }),
        Value::Enum(s) => json!({ "enum": s }),
        Value::Set(m) => json!({ "set": m }),
        Value::Bit { bits, width } => json!({ "bit": [bits.to_string(), width.to_string()] }),
        Value::Json(s) => json!({ "json": s }),
        Value::Geometry { srid, wkb } => json!({ "geometry": [srid.to_string(), hex_encode(wkb)] }),
    }
}

/// The value [`key_to_json`] wrote, or `None` when the JSON is not one of its forms.
pub fn key_from_json(json: &serde_json::Value) -> Option<Value> {
    let obj = json.as_object()?;
    let (tag, v) = obj.iter().next()?;
    let text = || v.as_str().map(str::to_owned);
    let nums = |n: usize| -> Option<Vec<u64>> {
        let a = v.as_array()?;
        (a.len() == n).then_some(())?;
        a.iter().map(|x| x.as_u64()).collect()
    };
    Some(match tag.as_str() {
        "null" => Value::Null,
        "int" => Value::Int(text()?.parse().ok()?),
        "uint" => Value::UInt(text()?.parse().ok()?),
        "float" => Value::Float(f32::from_bits(u32::try_from(v.as_u64()?).ok()?)),
        "double" => Value::Double(f64::from_bits(text()?.parse().ok()?)),
        "decimal" => Value::Decimal(text()?),
        "date" => {
            let n = nums(3)?;
            Value::Date(Date {
                year: n[0] as u16,
                month: n[1] as u8,
                day: n[2] as u8,
            })
        }
        "datetime" => {
            let n = nums(7)?;
            Value::DateTime(DateTime {
                date: Date {
                    year: n[0] as u16,
                    month: n[1] as u8,
                    day: n[2] as u8,
                },
                hour: n[3] as u8,
                minute: n[4] as u8,
                second: n[5] as u8,
                micros: n[6] as u32,
            })
        }
        "timestamp" => Value::Timestamp(match v {
            serde_json::Value::Null => None,
            _ => Some(text()?.parse().ok()?),
        }),
        "time" => {
            let n = nums(5)?;
            Value::Time(Time {
                negative: n[0] != 0,
                hours: n[1] as u16,
                minutes: n[2] as u8,
                seconds: n[3] as u8,
                micros: n[4] as u32,
            })
        }
        "year" => Value::Year(u16::try_from(v.as_u64()?).ok()?),
        "string" => Value::String(text()?),
        "bytes" => Value::Bytes(hex_decode(&text()?)?),
        "enum" => Value::Enum(text()?),
        "set" => Value::Set(
            v.as_array()?
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
        "bit" => {
            let a = v.as_array()?;
            Value::Bit {
                bits: a.first()?.as_str()?.parse().ok()?,
                width: a.get(1)?.as_str()?.parse().ok()?,
            }
        }
        "json" => Value::Json(text()?),
        "geometry" => {
            let a = v.as_array()?;
            Value::Geometry {
                srid: a.first()?.as_str()?.parse().ok()?,
                wkb: hex_decode(a.get(1)?.as_str()?)?,
            }
        }
        _ => return None,
    })
}

/// Lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex text, or `None` when it is not hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn key_values_round_trip_through_json() {
        let values = [
            Value::Null,
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(-0.1),
            Value::Double(f64::MAX),
            Value::Decimal("-12.340".into()),
            Value::Date(Date {
                year: 0,
                month: 0,
                day: 0,
            }),
            Value::DateTime(DateTime::from_unix_micros(1_700_000_000_123_456)),
            Value::Timestamp(None),
            Value::Timestamp(Some(-5)),
            Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 58,
                micros: 999_999,
            }),
            Value::Year(2155),
            Value::String("a|b\u{0}é".into()),
            Value::Bytes(vec![0, 255, 16]),
            Value::Enum("x".into()),
            Value::Set(vec!["a".into(), "b".into()]),
            Value::Bit {
                bits: u64::MAX,
                width: 64,
            },
            Value::Json("{\"a\":1.50}".into()),
            Value::Geometry {
                srid: 4326,
                wkb: vec![1, 2],
            },
        ];
        for v in values {
            let json = key_to_json(&v);
            let text = json.to_string();
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(key_from_json(&back), Some(v.clone()), "{text}");
        }
    }

    #[test]
    fn state_files_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("strata_state_{}", std::process::id()));
        let path = dir.join("snapshot.json");
        let state = SnapshotState::new("v", &BinlogPos::new("binlog.000003", 1234), None, vec![]);
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        std::fs::write(&path, "{").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("--restart"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
