//! `strata verify [--repair] [--dry-run]`: compares the source with every target of a
//! version, table by table, and repairs the differences through the guarded write path.
//!
//! - Per table, the source is read in key-ordered chunks; for each target the same rows are
//!   fetched by key and both sides are put in the target's own representation (the sink's
//!   encoder, [`strata_core::TargetReader`]). A checksum per chunk decides whether the
//!   chunk is compared row by row.
//! - Each target is then scanned for ids the source did not have (rows deleted at the
//!   source but not in the target).
//! - Every difference is re-checked: the source row read again, the version's replicator
//!   (when it runs) waited for until its checkpoint passes the position of that read, and
//!   the target read again; in-flight changes are not reported.
//! - `--repair` writes each differing row again from the source at the source's current
//!   position, through the sinks' guards (newer data is never overwritten), then checks the
//!   repaired rows again. `--dry-run` prints what it would write and writes nothing.

mod compare;
mod keys;
mod readers;
mod repair;
mod settle;
mod table;

use crate::exit;
use anyhow::Context as _;
use clap::Args;
use compare::DiffKind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use strata_config::Config;
use strata_core::value::key_id;
use strata_core::{TableId, Value};
use strata_mysql::SnapshotReader;
use strata_pipeline::{CancellationToken, FileCheckpointStore, Route};
use table::{Difference, Stats, Table, Verifier};

/// Compare a version's source tables with every one of its targets.
///
/// Reports, per table and target, rows missing from the target, rows the target has that
/// the source no longer has, and rows whose fields differ (compared after the same type
/// mapping the sinks use). Works in chunks with a checksum per chunk. While the version's
/// replicator runs, a difference is re-checked once the replicator has applied past the
/// position at which it was seen, so changes in flight are not reported.
///
/// Prints a summary table and writes a JSON report (<data_dir>/<version>/verify-<time>.json
/// unless --report is given).
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  strata verify --config prod.toml --version future
  strata verify --config prod.toml --version future --table users --sample 5
  strata verify --config prod.toml --version future --repair --dry-run
  strata verify --config prod.toml --version future --repair

Exit codes: 0 no differences (or every difference repaired); 1 differences found (or left);
2 usage or configuration error.")]
pub struct VerifyArgs {
    /// The TOML configuration file.
    #[arg(long, short, env = "STRATA_CONFIG", value_name = "FILE")]
    config: PathBuf,

    /// The version to verify (a `[versions.NAME]` section of the config).
    #[arg(long, env = "STRATA_VERSION", value_name = "NAME")]
    version: String,

    /// Verify only this table (`table` or `schema.table`); repeat for several.
    #[arg(long = "table", value_name = "TABLE")]
    tables: Vec<String>,

    /// Compare only this percentage of chunks (rows missing or changed in them are found;
    /// rows only the target has are not looked for).
    #[arg(long, value_name = "PCT", default_value_t = 100.0, value_parser = parse_pct)]
    sample: f64,

    /// Fix every difference from the source through the guarded write path.
    #[arg(long)]
    repair: bool,

    /// With --repair: print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// Rows per chunk.
    #[arg(long, value_name = "ROWS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    chunk_rows: u64,
}

fn parse_pct(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!(
            "`{text}` is not a percentage in (0, 100], e.g. 5 or 12.5"
        )),
    }
}

/// `strata verify`.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_ms = crate::snapshot::state::now_ms();
    let config = Config::load(&args.config).map_err(|e| exit::UsageError(e.to_string()))?;
    let version = config
        .version(&args.version)
        .map_err(|e| exit::UsageError(e.to_string()))?
        .clone();
    let cfg = crate::snapshot::source_config(&config.source, &version)?;
    let mut source = SnapshotReader::connect(&cfg)
        .await
        .map_err(crate::snapshot::source_error)?;
    let at_start = source.current_position().await?;
    let readers = readers::connect_all(&version)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read target {e}"))?;
    let all = source.list_tables(version.rules.schemas()).await?;
    let ids = crate::snapshot::select_tables(&version, &all, &args.tables)?;

    let mut tables: BTreeMap<TableId, Table> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    for id in &ids {
        let Some(info) = source.table_info(id).await? else {
            continue;
        };
        if !strata_mysql::pages_by_key(&info) {
            notes.push(format!(
                "{id}: not verified: no primary key or unique NOT NULL key strata can page by"
            ));
            continue;
        }
        match Route::build(&version.rules, &info.schema) {
            Ok(route) => {
                tables.insert(id.clone(), Table { info, route });
            }
            Err(e) => notes.push(format!("{id}: not verified: {e}")),
        }
    }
    let settle = settle::Settle::new(FileCheckpointStore::new(version.checkpoint_path())).await;
    let mut verifier = Verifier {
        source,
        readers,
        chunk_rows: usize::try_from(args.chunk_rows).unwrap_or(1_000),
        sample_pct: args.sample,
        settle,
    };

    let mut results: Vec<(TableId, Vec<Stats>)> = Vec::new();
    let mut diffs: Vec<Difference> = Vec::new();
    for (id, table) in &tables {
        let t0 = Instant::now();
        match verifier.verify_table(table).await {
            Ok((stats, found)) => {
                tracing::info!(table = %id, rows = stats.first().map_or(0, |s| s.source_rows), differences = found.len(), elapsed_ms = t0.elapsed().as_millis() as u64, "table verified");
                results.push((id.clone(), stats));
                diffs.extend(found);
            }
            Err(e) => return Err(e.context(format!("verifying table {id}"))),
        }
    }
    let rows_read: u64 = results
        .iter()
        .map(|(_, s)| s.first().map_or(0, |s| s.source_rows))
        .sum();

    let repair = args.repair || args.dry_run;
    let mut repair_summary = None;
    if repair && !diffs.is_empty() {
        let (actions, skipped) =
            repair::plan_repairs(&mut verifier.source, &tables, &diffs).await?;
        notes.extend(skipped);
        if args.dry_run {
            repair::print_dry_run(&actions);
        } else {
            let shutdown = CancellationToken::new();
            let Some(sinks) = crate::targets::connect_all(
                &version,
                crate::targets::Writer::BesideReplicator,
                &shutdown,
                &|_, _| {},
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot use target {e}"))?
            else {
                anyhow::bail!("interrupted while connecting the targets");
            };
            let (applied, stale) = repair::apply(&sinks, &actions).await?;
            tracing::info!(writes = actions.len(), applied, stale, "repairs written");
            repair_summary = Some((actions.len(), applied, stale));
            mark_repaired(&mut verifier, &tables, &mut diffs, &mut results).await?;
        }
    }

    let remaining = diffs.iter().filter(|d| d.repaired != Some(true)).count();
    let names: Vec<&'static str> = verifier.readers.iter().map(|r| r.name()).collect();
    print_summary(&results, &verifier, &notes);
    let report = serde_json::json!({
        "version": version.name,
        "started_at_ms": started_ms,
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "source_position": at_start.position.to_string(),
        "sample_pct": args.sample,
        "repair": args.repair,
        "dry_run": args.dry_run,
        "rows_read": rows_read,
        "rows_per_sec": (rows_read as f64 / started.elapsed().as_secs_f64().max(0.001)).round(),
        "tables": results.iter().flat_map(|(id, stats)| stats.iter().enumerate().map(|(t, s)| {
            serde_json::json!({ "table": id.to_string(), "target": names[t], "stats": s })
        })).collect::<Vec<_>>(),
        "differences": diffs.iter().map(|d| serde_json::json!({
            "table": d.table.to_string(),
            "target": d.target_name,
            "id": d.id,
            "kind": d.kind.name(),
            "fields": match &d.kind { DiffKind::Changed(f) => f.clone(), _ => Vec::new() },
            "repaired": d.repaired,
        })).collect::<Vec<_>>(),
        "repair_writes": repair_summary.map(|(n, applied, stale)| serde_json::json!({"planned": n, "applied": applied, "stale": stale})),
        "notes": notes,
        "clean": remaining == 0,
    });
    let path = args.report.clone().unwrap_or_else(|| {
        version
            .data_dir()
            .join(format!("verify-{}.json", started_ms))
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    println!("report: {}", path.display());
    if remaining == 0 {
        println!("no differences");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{remaining} differences{}",
            if args.dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        );
        Ok(ExitCode::from(exit::FAILURE))
    }
}

/// Checks the repaired rows again and marks each difference fixed or not.
async fn mark_repaired(
    verifier: &mut Verifier,
    tables: &BTreeMap<TableId, Table>,
    diffs: &mut [Difference],
    results: &mut [(TableId, Vec<Stats>)],
) -> anyhow::Result<()> {
    for (id, table) in tables {
        let mut pending: Vec<BTreeMap<String, Vec<Value>>> =
            vec![BTreeMap::new(); verifier.readers.len()];
        for d in diffs.iter().filter(|d| d.table == *id) {
            if let Some(key) = &d.key {
                pending[d.target].insert(key_id(key), key.clone());
            }
        }
        if pending.iter().all(BTreeMap::is_empty) {
            continue;
        }
        let left = verifier.recheck(table, pending).await?;
        for d in diffs.iter_mut().filter(|d| d.table == *id) {
            let still =
                d.key.is_none() || left.iter().any(|l| l.target == d.target && l.key == d.key);
            d.repaired = Some(!still);
        }
        if let Some(stats) = results.iter_mut().find(|(t, _)| t == id).map(|(_, s)| s) {
            for d in diffs.iter().filter(|d| d.table == *id) {
                if d.repaired == Some(true) {
                    stats[d.target].repaired += 1;
                } else {
                    stats[d.target].unrepaired += 1;
                }
            }
        }
    }
    Ok(())
}

fn print_summary(results: &[(TableId, Vec<Stats>)], verifier: &Verifier, notes: &[String]) {
    println!(
        "{:<32} {:<11} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "table", "target", "rows", "checked", "chunks=", "missing", "extra", "changed", "repaired"
    );
    for (id, stats) in results {
        for (t, s) in stats.iter().enumerate() {
            println!(
                "{:<32} {:<11} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}",
                id.to_string(),
                verifier.readers[t].name(),
                s.source_rows,
                s.checked_rows,
                format!("{}/{}", s.chunks_equal, s.chunks),
                s.missing,
                s.extra,
                s.changed,
                s.repaired
            );
        }
    }
    for note in notes {
        println!("note: {note}");
    }
}
