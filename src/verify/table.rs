//! Verifying one table against every target: the source in key-ordered chunks, each chunk
//! compared by checksum and, when the checksums differ, row by row; then a scan of each
//! target for rows the source no longer has; then a re-check of every difference once the
//! version's replicator has applied past the position at which it was seen.

use super::compare::{checksum, diff_rows, id_hash, DiffKind};
use super::keys::parse_key;
use super::settle::Settle;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use strata_core::value::key_id;
use strata_core::version::binlog_order;
use strata_core::{StoredVersion, TableId, TargetReader, TargetTable, Value};
use strata_mysql::{pages_by_key, SnapshotReader, TableInfo};
use strata_pipeline::Route;

/// Rows per page of a target scan.
const SCAN_PAGE: usize = 1_000;
/// Re-check rounds while the replicator runs (a difference that is still in flight after
/// them is reported).
const LIVE_ROUNDS: usize = 3;

/// Counts for one table in one target.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Source rows read.
    pub source_rows: u64,
    /// Source rows compared with the target (all of them unless sampling).
    pub checked_rows: u64,
    /// Chunks compared, and those whose checksums matched.
    pub chunks: u64,
    /// Chunks whose checksums matched (not compared row by row).
    pub chunks_equal: u64,
    /// Target rows scanned for rows the source does not have (0 when sampling).
    pub scanned_rows: u64,
    /// Rows the target lacks.
    pub missing: u64,
    /// Rows only the target has.
    pub extra: u64,
    /// Rows with differing fields.
    pub changed: u64,
    /// Differences repaired (and found fixed when checked again), and not.
    pub repaired: u64,
    /// Differences left after `--repair`.
    pub unrepaired: u64,
}

/// One confirmed difference.
#[derive(Debug, Clone)]
pub struct Difference {
    /// The source table.
    pub table: TableId,
    /// Index of the target in the verifier's readers.
    pub target: usize,
    /// The target's name.
    pub target_name: &'static str,
    /// The row's id in the target.
    pub id: String,
    /// The row's key (aligned with the route's key), when known.
    pub key: Option<Vec<Value>>,
    /// What differs.
    pub kind: DiffKind,
    /// The version the target holds the row with, if it holds it.
    pub stored_version: Option<StoredVersion>,
    /// After `--repair`: whether the row was found fixed.
    pub repaired: Option<bool>,
}

/// A table ready to verify.
pub struct Table {
    /// The table as the source describes it.
    pub info: TableInfo,
    /// How the version writes it.
    pub route: Route,
}

impl Table {
    fn guarded(&self) -> bool {
        self.route.guard.is_some()
    }

    fn target(&self) -> &TargetTable {
        &self.route.target
    }

    /// A source row as the target row (the kept columns) and its key.
    fn project(&self, row: &[Value]) -> (Vec<Value>, Vec<Value>) {
        (
            self.route.col_map.iter().map(|&i| row[i].clone()).collect(),
            self.route.key.iter().map(|&i| row[i].clone()).collect(),
        )
    }
}

/// Reads the source and the targets.
pub struct Verifier {
    /// The source connection.
    pub source: SnapshotReader,
    /// One reader per target.
    pub readers: Vec<Arc<dyn TargetReader>>,
    /// Source rows per chunk.
    pub chunk_rows: usize,
    /// Percentage of chunks compared (100: all; below, no scan for extra rows).
    pub sample_pct: f64,
    /// Waits for the replicator before re-checks.
    pub settle: Settle,
}

impl Verifier {
    /// Verifies one table in every target; stats per target, and the confirmed differences.
    pub async fn verify_table(
        &mut self,
        table: &Table,
    ) -> anyhow::Result<(Vec<Stats>, Vec<Difference>)> {
        let n = self.readers.len();
        let mut stats = vec![Stats::default(); n];
        let mut seen: Vec<HashSet<u64>> = vec![HashSet::new(); n];
        // Candidate keys per target, by key id.
        let mut candidates: Vec<BTreeMap<String, Vec<Value>>> = vec![BTreeMap::new(); n];
        let mut unreadable: Vec<Difference> = Vec::new();
        let sampling = self.sample_pct < 100.0;
        if !pages_by_key(&table.info) {
            anyhow::bail!(
                "table {} has no key strata can page by",
                table.info.schema.id
            );
        }
        let chunk_key = table.info.chunk_key.columns().to_vec();
        let key_of = |rows: &[Vec<Value>]| -> Option<Vec<Value>> {
            rows.last()
                .map(|r| chunk_key.iter().map(|&i| r[i].clone()).collect())
        };
        let mut rows = self
            .source
            .read_chunk(&table.info, None, self.chunk_rows)
            .await?;
        let mut chunk_index = 0u64;
        loop {
            let count = rows.len();
            let last = count < self.chunk_rows;
            let after = key_of(&rows);
            let (target_rows, keys): (Vec<Vec<Value>>, Vec<Vec<Value>>) =
                rows.iter().map(|r| table.project(r)).unzip();
            let compare = count > 0 && (!sampling || sampled(chunk_index, self.sample_pct));
            chunk_index += 1;
            // The next chunk is read while this one is compared, in every target at once.
            let source = &mut self.source;
            let next = async {
                match (&after, last) {
                    (Some(after), false) => source
                        .read_chunk(&table.info, Some(after), self.chunk_rows)
                        .await
                        .map(Some),
                    _ => Ok(None),
                }
            };
            let compared = futures_util::future::try_join_all(self.readers.iter().map(|reader| {
                compare_chunk(
                    reader.as_ref(),
                    table.target(),
                    &target_rows,
                    &keys,
                    compare,
                )
            }));
            let (next, compared) = tokio::join!(next, compared);
            for (t, outcome) in compared?.into_iter().enumerate() {
                stats[t].source_rows += count as u64;
                let Some(outcome) = outcome else { continue };
                seen[t].extend(outcome.seen);
                stats[t].checked_rows += count as u64;
                stats[t].chunks += 1;
                stats[t].chunks_equal += u64::from(outcome.equal);
                for i in outcome.differing {
                    candidates[t].insert(key_id(&keys[i]), keys[i].clone());
                }
            }
            match next? {
                Some(next) => rows = next,
                None => break,
            }
        }

        if !sampling {
            let key_columns: Vec<&strata_core::Column> = table.target().key_columns().collect();
            for (t, reader) in self.readers.iter().enumerate() {
                let mut cursor: Option<String> = None;
                loop {
                    let page = reader
                        .scan(table.target(), cursor.as_deref(), SCAN_PAGE)
                        .await?;
                    stats[t].scanned_rows += page.keys.len() as u64;
                    for key in page.keys {
                        if seen[t].contains(&id_hash(&key.id)) {
                            continue;
                        }
                        match parse_key(&key_columns, &key.parts) {
                            Some(values) => {
                                candidates[t].insert(key_id(&values), values);
                            }
                            None => unreadable.push(Difference {
                                table: table.info.schema.id.clone(),
                                target: t,
                                target_name: reader.name(),
                                id: key.id,
                                key: None,
                                kind: DiffKind::Extra,
                                stored_version: None,
                                repaired: None,
                            }),
                        }
                    }
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
        }

        let mut diffs = self.recheck(table, candidates).await?;
        diffs.extend(unreadable);
        for d in &diffs {
            let s = &mut stats[d.target];
            match d.kind {
                DiffKind::Missing => s.missing += 1,
                DiffKind::Extra => s.extra += 1,
                DiffKind::Changed(_) => s.changed += 1,
            }
        }
        Ok((stats, diffs))
    }

    /// Re-reads the candidate rows at the source and in their targets, after the version's
    /// replicator (when it runs) has applied past the position the source read reflects,
    /// and returns the differences that remain.
    ///
    /// While the replicator runs, a difference is confirmed when the target's copy is not
    /// newer than the source read (its version's binlog order is not past the position) and,
    /// for a missing row, when it was missing in two rounds in a row (a delete applied in
    /// between would otherwise look like one). A row whose target copy is newer than the
    /// source read in every round, with a version that moved since the round before (it
    /// keeps changing), is logged, not reported. Without a
    /// running replicator, one round.
    pub async fn recheck(
        &mut self,
        table: &Table,
        mut pending: Vec<BTreeMap<String, Vec<Value>>>,
    ) -> anyhow::Result<Vec<Difference>> {
        let rounds = if self.settle.live() { LIVE_ROUNDS } else { 1 };
        let mut confirmed = Vec::new();
        let mut missing_before: Vec<HashSet<String>> = vec![HashSet::new(); pending.len()];
        let mut ahead_before: Vec<HashMap<String, Option<StoredVersion>>> =
            vec![HashMap::new(); pending.len()];
        for round in 0..rounds {
            let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for p in &pending {
                all.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if all.is_empty() {
                break;
            }
            let keys: Vec<Vec<Value>> = all.into_values().collect();
            // The source read reflects the binlog somewhere between `before` and `at`. A
            // target copy whose version is past `before` may be newer than what was read:
            // such a row is read again in the next round rather than reported.
            let before = self.source.current_position().await?.position;
            let rows = self
                .source
                .read_by(&table.info, &table.route.key, &keys)
                .await?;
            let at = self.source.current_position().await?.position;
            let order_before = binlog_order(before.file_seq(), before.pos, 0);
            self.settle.wait(&at).await;
            let live = self.settle.live();
            let last = round + 1 == rounds || !live;
            let by_key: BTreeMap<String, Vec<Value>> = rows
                .iter()
                .map(|r| {
                    let (target_row, key) = table.project(r);
                    (key_id(&key), target_row)
                })
                .collect();
            for (t, reader) in self.readers.iter().enumerate() {
                let mine = std::mem::take(&mut pending[t]);
                if mine.is_empty() {
                    continue;
                }
                let keys: Vec<Vec<Value>> = mine.values().cloned().collect();
                let present: Vec<Vec<Value>> =
                    mine.keys().filter_map(|k| by_key.get(k).cloned()).collect();
                let present_keys: Vec<Vec<Value>> = mine
                    .iter()
                    .filter(|(k, _)| by_key.contains_key(*k))
                    .map(|(_, v)| v.clone())
                    .collect();
                let expected = reader.expected(table.target(), &present).await?;
                let stored = reader.fetch(table.target(), &keys).await?;
                let ids = ids_of(reader.as_ref(), table.target(), &keys).await?;
                let key_of_id: BTreeMap<String, Vec<Value>> =
                    ids.into_iter().zip(keys.iter().cloned()).collect();
                let mut now_missing = HashSet::new();
                let mut now_ahead = HashMap::new();
                for diff in diff_rows(&expected, stored) {
                    let key = match diff.expected {
                        Some(i) => Some(present_keys[i].clone()),
                        None => key_of_id.get(&diff.id).cloned(),
                    };
                    let ahead = diff
                        .stored_version
                        .and_then(|v| v.order(table.guarded()))
                        .is_some_and(|o| o > order_before);
                    let settled = match diff.kind {
                        _ if !live => true,
                        _ if ahead => false,
                        DiffKind::Missing => missing_before[t].contains(&diff.id),
                        _ => true,
                    };
                    if diff.kind == DiffKind::Missing {
                        now_missing.insert(diff.id.clone());
                    }
                    if ahead {
                        now_ahead.insert(diff.id.clone(), diff.stored_version);
                    }
                    // Newer in the target in every round, with a version that moved since
                    // the last: the row keeps changing and the replicator keeps writing it.
                    // Not a difference verify can confirm; say so rather than report it. (A
                    // version that stays put while ahead is a copy edited in the target.)
                    let churning = ahead
                        && ahead_before[t]
                            .get(&diff.id)
                            .is_some_and(|v| *v != diff.stored_version);
                    if last && live && churning {
                        tracing::warn!(table = %table.info.schema.id, target = reader.name(), id = %diff.id, "row changed during every re-check; not reported (verify again when it is quiet)");
                    } else if settled || last {
                        confirmed.push(Difference {
                            table: table.info.schema.id.clone(),
                            target: t,
                            target_name: reader.name(),
                            id: diff.id,
                            key,
                            kind: diff.kind,
                            stored_version: diff.stored_version,
                            repaired: None,
                        });
                    } else if let Some(key) = key {
                        pending[t].insert(key_id(&key), key);
                    }
                }
                missing_before[t] = now_missing;
                ahead_before[t] = now_ahead;
            }
            if !live {
                break;
            }
        }
        Ok(confirmed)
    }
}

/// What comparing one chunk with one target found.
struct ChunkOutcome {
    /// Hashes of the target ids of the chunk's rows.
    seen: Vec<u64>,
    /// The checksums matched.
    equal: bool,
    /// Indices of the rows that differ.
    differing: Vec<usize>,
}

/// Compares one chunk with one target (`None` when `compare` is off: sampled out).
async fn compare_chunk(
    reader: &dyn TargetReader,
    table: &TargetTable,
    rows: &[Vec<Value>],
    keys: &[Vec<Value>],
    compare: bool,
) -> anyhow::Result<Option<ChunkOutcome>> {
    if !compare {
        return Ok(None);
    }
    let (expected, stored) = tokio::join!(reader.expected(table, rows), reader.fetch(table, keys));
    let (expected, stored) = (expected?, stored?);
    let seen = expected.iter().map(|e| id_hash(&e.id)).collect();
    if checksum(&expected) == checksum(&stored) {
        return Ok(Some(ChunkOutcome {
            seen,
            equal: true,
            differing: Vec::new(),
        }));
    }
    let differing = diff_rows(&expected, stored)
        .into_iter()
        .filter_map(|d| d.expected)
        .collect();
    Ok(Some(ChunkOutcome {
        seen,
        equal: false,
        differing,
    }))
}

/// The target ids of keys: what the reader makes of rows that hold only the key.
async fn ids_of(
    reader: &dyn TargetReader,
    table: &TargetTable,
    keys: &[Vec<Value>],
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<Vec<Value>> = keys
        .iter()
        .map(|key| {
            let mut row = vec![Value::Null; table.columns.len()];
            for (&i, v) in table.key.iter().zip(key) {
                row[i] = v.clone();
            }
            row
        })
        .collect();
    Ok(reader
        .expected(table, &rows)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// Whether chunk `index` is compared when sampling `pct` percent of chunks: a fixed
/// pseudo-random choice, so a run is reproducible.
fn sampled(index: u64, pct: f64) -> bool {
    let mut x = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    ((x % 10_000) as f64) < pct * 100.0
}

#[cfg(test)]
mod tests {
    use super::sampled;

    #[test]
    fn sampling_takes_about_the_asked_share() {
        let n = (0..10_000).filter(|i| sampled(*i, 10.0)).count();
        assert!((800..1200).contains(&n), "{n}");
        assert!((0..100).all(|i| sampled(i, 100.0)));
        assert!(!(0..100).any(|i| sampled(i, 0.0)));
    }
}
