//! Comparing what a target holds with what it should hold: a checksum per chunk first
//! (equal chunks are not compared row by row), then row by row.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use strata_core::{StoredRow, StoredVersion};

/// What is wrong with one row in one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffKind {
    /// The source has the row, the target does not.
    Missing,
    /// The target has a row the source does not have.
    Extra,
    /// Both have it, with different values in these fields.
    Changed(Vec<String>),
}

impl DiffKind {
    /// `missing`, `extra` or `changed`.
    pub fn name(&self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Changed(_) => "changed",
        }
    }
}

/// One row's difference, with the stored version (to tell an in-flight write).
#[derive(Debug, Clone)]
pub struct RowDiff {
    /// Index of the row in the expected rows (`None` for an extra row).
    pub expected: Option<usize>,
    /// The row's id in the target.
    pub id: String,
    /// What differs.
    pub kind: DiffKind,
    /// The version the target holds the row with, if it holds it.
    pub stored_version: Option<StoredVersion>,
}

/// An order-independent checksum of rows (ids and fields).
pub fn checksum(rows: &[StoredRow]) -> (u64, usize) {
    let mut sum = 0u64;
    for row in rows {
        sum = sum.wrapping_add(row_hash(row));
    }
    (sum, rows.len())
}

fn row_hash(row: &StoredRow) -> u64 {
    let mut h = DefaultHasher::new();
    row.id.hash(&mut h);
    row.fields.hash(&mut h);
    h.finish()
}

/// A 64-bit hash of an id, for the set of ids seen at the source.
pub fn id_hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The differences between the expected rows and the stored ones (fetched by the same
/// keys). A stored row whose id no expected row has is reported as extra.
pub fn diff_rows(expected: &[StoredRow], stored: Vec<StoredRow>) -> Vec<RowDiff> {
    let mut by_id: HashMap<String, StoredRow> =
        stored.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut out = Vec::new();
    for (i, want) in expected.iter().enumerate() {
        match by_id.remove(&want.id) {
            None => out.push(RowDiff {
                expected: Some(i),
                id: want.id.clone(),
                kind: DiffKind::Missing,
                stored_version: None,
            }),
            Some(got) if got.fields != want.fields => {
                let mut fields: Vec<String> = want
                    .fields
                    .iter()
                    .filter(|(k, v)| got.fields.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect();
                fields.extend(
                    got.fields
                        .keys()
                        .filter(|k| !want.fields.contains_key(*k))
                        .cloned(),
                );
                out.push(RowDiff {
                    expected: Some(i),
                    id: want.id.clone(),
                    kind: DiffKind::Changed(fields),
                    stored_version: got.version,
                });
            }
            Some(_) => {}
        }
    }
    let mut extra: Vec<StoredRow> = by_id.into_values().collect();
    extra.sort_by(|a, b| a.id.cmp(&b.id));
    out.extend(extra.into_iter().map(|r| RowDiff {
        expected: None,
        id: r.id,
        kind: DiffKind::Extra,
        stored_version: r.version,
    }));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(id: &str, fields: &[(&str, &str)]) -> StoredRow {
        StoredRow {
            id: id.into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect::<BTreeMap<_, _>>(),
            version: None,
        }
    }

    #[test]
    fn equal_rows_have_equal_checksums_in_any_order() {
        let a = vec![row("1", &[("x", "1")]), row("2", &[("x", "2")])];
        let b = vec![row("2", &[("x", "2")]), row("1", &[("x", "1")])];
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(
            checksum(&a),
            checksum(&[row("1", &[("x", "1")]), row("2", &[("x", "3")])])
        );
        assert!(diff_rows(&a, b).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let expected = vec![row("1", &[("a", "1"), ("b", "2")]), row("2", &[("a", "1")])];
        let stored = vec![
            row("1", &[("a", "1"), ("b", "3"), ("c", "0")]),
            row("9", &[]),
        ];
        let diffs = diff_rows(&expected, stored);
        let kinds: Vec<(&str, &DiffKind)> =
            diffs.iter().map(|d| (d.id.as_str(), &d.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("1", &DiffKind::Changed(vec!["b".into(), "c".into()])),
                ("2", &DiffKind::Missing),
                ("9", &DiffKind::Extra),
            ]
        );
    }
}
