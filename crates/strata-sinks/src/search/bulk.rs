//! The `_bulk` request: versioned `index`/`delete` actions, cut by size, and what each
//! item's answer means.
//!
//! The guard is Elasticsearch's own external versioning, checked per document inside the
//! store: `version_type=external` (strictly greater) for plain binlog versions, which are
//! unique per change, so an equal version is a replay and answers 409 (stale);
//! `external_gte` for versions with a guard column, whose single external number is the
//! guard value alone ([`strata_core::Version::as_external`]): several changes may share it,
//! and the later one (ops of a row arrive in order) must still land.

use super::client::{error_reason, item_kind, SINK};
use super::encode;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use strata_core::{ApplyStats, ErrorKind, SinkError, SinkOp, SinkOpKind};

/// Elasticsearch's limit on `_id` (bytes).
const MAX_ID_BYTES: usize = 512;

/// One op's lines of the bulk body.
pub(super) struct Entry {
    /// The op's index in the batch.
    pub op: usize,
    pub lines: String,
}

/// The bulk lines of `op` (the `batch[op_index]`) into `index`.
pub(super) fn entry(batch: &[SinkOp], op_index: usize, index: &str) -> Result<Entry, SinkError> {
    let op = &batch[op_index];
    let id = op.id();
    if id.len() > MAX_ID_BYTES {
        return Err(rejected(
            batch,
            op_index,
            &format!(
                "the key is {} bytes as a document id, over Elasticsearch's {MAX_ID_BYTES}",
                id.len()
            ),
        ));
    }
    let action = match op.kind {
        SinkOpKind::Upsert(_) => "index",
        SinkOpKind::Delete => "delete",
    };
    let version_type = if op.version.guard.is_some() {
        "external_gte"
    } else {
        "external"
    };
    let mut lines = String::new();
    let _ = write!(lines, "{{\"{action}\":{{\"_index\":");
    encode::push_string(&mut lines, index);
    lines.push_str(",\"_id\":");
    encode::push_string(&mut lines, &id);
    let _ = writeln!(
        lines,
        ",\"version\":{},\"version_type\":\"{version_type}\"}}}}",
        op.version.as_external()
    );
    if let SinkOpKind::Upsert(row) = &op.kind {
        lines.push_str(&encode::document(&op.table, row));
        lines.push('\n');
    }
    Ok(Entry {
        op: op_index,
        lines,
    })
}

/// Cuts entries into bulk bodies of at most `max_bytes` (an entry larger than that goes
/// alone).
pub(super) fn chunks(entries: &[Entry], max_bytes: usize) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        if i > start && bytes + entry.lines.len() > max_bytes {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += entry.lines.len();
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

#[derive(Deserialize)]
struct Reply {
    items: Vec<HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Tallies a bulk answer for `chunk`: 2xx applied (a delete's 404 too: the document was
/// already gone and its tombstone now has this version), 409 stale; anything else fails the
/// batch — transient items (429/5xx) first, so the whole batch is retried, else the first
/// refused item as `Rejected` with its op.
pub(super) fn tally(
    batch: &[SinkOp],
    chunk: &[Entry],
    body: &[u8],
) -> Result<ApplyStats, SinkError> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| {
        SinkError::new(
            SINK,
            ErrorKind::Internal,
            format!("_bulk answered something unexpected: {e}"),
        )
    })?;
    if reply.items.len() != chunk.len() {
        return Err(SinkError::new(
            SINK,
            ErrorKind::Internal,
            format!(
                "_bulk answered {} items for {} actions",
                reply.items.len(),
                chunk.len()
            ),
        ));
    }
    let mut stats = ApplyStats::default();
    let mut transient: Option<SinkError> = None;
    let mut refused: Option<SinkError> = None;
    for (entry, item) in chunk.iter().zip(reply.items) {
        let Some((action, item)) = item.into_iter().next() else {
            continue;
        };
        match item.status {
            200..=299 => stats.applied += 1,
            404 if action == "delete" => stats.applied += 1,
            409 => stats.stale += 1,
            status => {
                let reason = item
                    .error
                    .as_ref()
                    .and_then(error_reason)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                match item_kind(status) {
                    ErrorKind::Rejected => {
                        refused.get_or_insert_with(|| rejected(batch, entry.op, &reason));
                    }
                    kind => {
                        transient.get_or_insert_with(|| {
                            SinkError::new(SINK, kind, format!("_bulk item {status}: {reason}"))
                                .at_op(entry.op)
                        });
                    }
                }
            }
        }
    }
    match transient.or(refused) {
        Some(err) => Err(err),
        None => Ok(stats),
    }
}

/// A write refused for good, naming the table, the row's key and the reason.
pub(super) fn rejected(batch: &[SinkOp], op: usize, reason: &str) -> SinkError {
    let (table, key) = batch.get(op).map_or((String::new(), String::new()), |o| {
        (o.table.name.clone(), o.id())
    });
    SinkError::new(
        SINK,
        ErrorKind::Rejected,
        format!("the search cluster refused the write of table `{table}` key `{key}`: {reason}"),
    )
    .at_op(op)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::sync::Arc;
    use strata_core::{Column, ColumnType, TableId, TargetTable, Value, Version};

    fn op(id: i64, kind: SinkOpKind, version: Version) -> SinkOp {
        let table = Arc::new(TargetTable {
            source: TableId::new("s", "t"),
            name: "t".into(),
            columns: vec![Column {
                name: "id".into(),
                ty: ColumnType::Int {
                    bytes: 8,
                    unsigned: false,
                },
                nullable: false,
            }],
            key: vec![0],
        });
        SinkOp {
            table,
            key: vec![Value::Int(id)],
            kind,
            version,
        }
    }

    #[test]
    fn actions_carry_the_version() {
        let batch = vec![
            op(
                1,
                SinkOpKind::Upsert(vec![Value::Int(1)]),
                Version::from_order(7),
            ),
            op(
                2,
                SinkOpKind::Delete,
                Version {
                    guard: Some(5),
                    order: 9,
                },
            ),
        ];
        let a = entry(&batch, 0, "p_t").unwrap();
        assert_eq!(
            a.lines,
            "{\"index\":{\"_index\":\"p_t\",\"_id\":\"1\",\"version\":7,\"version_type\":\"external\"}}\n{\"id\":1}\n"
        );
        let d = entry(&batch, 1, "p_t").unwrap();
        assert_eq!(
            d.lines,
            "{\"delete\":{\"_index\":\"p_t\",\"_id\":\"2\",\"version\":5,\"version_type\":\"external_gte\"}}\n"
        );
    }

    #[test]
    fn items_are_tallied_and_the_first_refusal_named() {
        let batch: Vec<_> = (0..4)
            .map(|i| op(i, SinkOpKind::Delete, Version::from_order(1)))
            .collect();
        let entries: Vec<_> = (0..4).map(|i| entry(&batch, i, "x").unwrap()).collect();
        let body = br#"{"errors":true,"items":[
            {"delete":{"status":200}},{"delete":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"r"}}},
            {"delete":{"status":404}},{"delete":{"status":400,"error":{"type":"x","reason":"bad"}}}]}"#;
        let err = tally(&batch, &entries, body).unwrap_err();
        assert_eq!((err.kind, err.op_index), (ErrorKind::Rejected, Some(3)));
        let ok = br#"{"items":[{"delete":{"status":200}},{"delete":{"status":409}},{"delete":{"status":404}},{"delete":{"status":201}}]}"#;
        assert_eq!(
            tally(&batch, &entries, ok).unwrap(),
            ApplyStats {
                applied: 3,
                stale: 1
            }
        );
        let busy = br#"{"items":[{"delete":{"status":400}},{"delete":{"status":429}},{"delete":{"status":200}},{"delete":{"status":200}}]}"#;
        assert_eq!(
            tally(&batch, &entries, busy).unwrap_err().kind,
            ErrorKind::Throttled
        );
    }

    #[test]
    fn chunks_respect_the_size() {
        let batch: Vec<_> = (0..5)
            .map(|i| op(i, SinkOpKind::Delete, Version::from_order(1)))
            .collect();
        let entries: Vec<_> = (0..5).map(|i| entry(&batch, i, "x").unwrap()).collect();
        let one = entries[0].lines.len();
        let cut = chunks(&entries, one * 2);
        assert_eq!(
            cut.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(chunks(&entries, 1).len(), 5);
    }
}
