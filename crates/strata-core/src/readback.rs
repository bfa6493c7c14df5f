//! Reading rows back from a target, for `strata verify`: what a target holds, in the
//! target's own representation, next to what it would hold for given source rows (the
//! sink's own type mapping), so the two compare byte for byte.

use crate::sink::{SinkError, TargetTable};
use crate::value::Value;
use crate::version::Version;
use std::collections::BTreeMap;

/// A write version as a target keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredVersion {
    /// The whole version (guard and binlog order), e.g. Redis, MongoDB, PostgreSQL.
    Full(Version),
    /// One integer, [`Version::as_external`]: the binlog order, or the guard value for a
    /// table with a guard column (Elasticsearch/OpenSearch external versions).
    External(i64),
}

impl StoredVersion {
    /// The binlog order of the write, when the store keeps it (`External` is the order
    /// only for tables without a guard: `guarded` says which).
    pub fn order(&self, guarded: bool) -> Option<u64> {
        match self {
            StoredVersion::Full(v) => Some(v.order),
            StoredVersion::External(n) if !guarded => u64::try_from(*n).ok(),
            StoredVersion::External(_) => None,
        }
    }

    /// The guard value of the write, when the store keeps it.
    pub fn guard(&self, guarded: bool) -> Option<i64> {
        match self {
            StoredVersion::Full(v) => v.guard,
            StoredVersion::External(n) if guarded => Some(*n),
            StoredVersion::External(_) => None,
        }
    }
}

/// One row as a target stores it (or would store it): an id that both sides compute
/// alike, and each field's canonical bytes. Two rows are equal when their fields are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// The row's id in the target's terms (e.g. the document `_id`, the key columns).
    pub id: String,
    /// Field name → canonical bytes of the stored value; a NULL is whatever the store keeps
    /// for it (an absent field where the store omits NULLs).
    pub fields: BTreeMap<String, Vec<u8>>,
    /// The version the row was written with (`None` for expected rows).
    pub version: Option<StoredVersion>,
}

/// One row id found by scanning a target table, with its key as text, one part per key
/// column, for finding the row again at the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Same as [`StoredRow::id`].
    pub id: String,
    /// The key column values as the store spells them (see the reader's documentation).
    pub parts: Vec<String>,
}

/// A page of a scan over a target table's ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// The ids of this page.
    pub keys: Vec<StoredKey>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<String>,
}

/// Reads a target's rows back for comparison with the source.
///
/// Contract: [`expected`](Self::expected) and [`fetch`](Self::fetch) give equal
/// [`StoredRow`]s (id and fields) for a row the target holds exactly as the sink would
/// have written it from the same source values; anything the sink's mapping loses (e.g.
/// sub-millisecond digits a store cannot keep) is lost on both sides alike. Deleted rows
/// (tombstones) are never returned.
#[async_trait::async_trait]
pub trait TargetReader: Send + Sync {
    /// The store's short name (same as its sink's).
    fn name(&self) -> &'static str;

    /// What the target would hold for these source rows (aligned with `table.columns`),
    /// through the sink's own encoding.
    async fn expected(
        &self,
        table: &TargetTable,
        rows: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError>;

    /// The rows the target holds for these keys (aligned with `table.key`); missing rows
    /// are left out.
    async fn fetch(
        &self,
        table: &TargetTable,
        keys: &[Vec<Value>],
    ) -> Result<Vec<StoredRow>, SinkError>;

    /// A page of the ids the target holds for `table`, starting at `cursor` (`None`: the
    /// beginning), about `limit` long. A table the target does not have is empty.
    async fn scan(
        &self,
        table: &TargetTable,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage, SinkError>;
}

/// Parses [`Version::sortable`] text back into a version.
pub fn parse_sortable(text: &str) -> Option<Version> {
    if text.len() != 41 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let has_guard = &text[..1] == "1";
    let guard: u64 = text[1..21].parse().ok()?;
    let order: u64 = text[21..].parse().ok()?;
    Some(Version {
        guard: has_guard.then_some((guard ^ (1 << 63)) as i64),
        order,
    })
}

/// The key parts of a row id made by [`crate::value::key_id`]: split at unescaped `|`,
/// escapes removed.
pub fn split_key_id(id: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = id.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(next);
                }
            }
            '|' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_text_parses_back() {
        for v in [
            Version::from_order(0),
            Version::from_order(u64::MAX >> 1),
            Version {
                guard: Some(-5),
                order: 7,
            },
            Version {
                guard: Some(i64::MIN),
                order: 1,
            },
            Version {
                guard: Some(i64::MAX),
                order: 1,
            },
        ] {
            assert_eq!(parse_sortable(&v.sortable()), Some(v));
        }
        assert_eq!(parse_sortable("12"), None);
    }

    #[test]
    fn key_ids_split_back_into_their_parts() {
        use crate::value::key_id;
        for parts in [
            vec!["a|b", "c\\d"],
            vec!["plain"],
            vec!["", "x"],
            vec!["a\\|", "|"],
        ] {
            let values: Vec<Value> = parts.iter().map(|p| Value::String((*p).into())).collect();
            assert_eq!(split_key_id(&key_id(&values)), parts);
        }
    }
}
