//! Showing a snapshot's progress: on a terminal, one bar per table (rows, rows/s, ETA);
//! otherwise a log line per table every few seconds. Counts are rows durable in every
//! target, read from the persisted progress.

use super::feed::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_pipeline::CancellationToken;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, log lines otherwise.
    Auto,
    /// Bars.
    Bars,
    /// Log lines.
    Log,
    /// Nothing but the final summary.
    None,
}

/// Reports until `stop` is cancelled.
pub async fn report(progress: Arc<Progress>, mode: ProgressMode, stop: CancellationToken) {
    let bars = match mode {
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Bars => true,
        ProgressMode::Log | ProgressMode::None => false,
    };
    if bars {
        report_bars(progress, stop).await;
    } else if mode != ProgressMode::None {
        report_logs(progress, stop).await;
    }
}

async fn report_bars(progress: Arc<Progress>, stop: CancellationToken) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>28} [{bar:30}] {human_pos}/{human_len} rows  {msg}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let state = progress.snapshot();
    let bars: Vec<ProgressBar> = state
        .tables
        .iter()
        .map(|t| {
            let bar = multi.add(ProgressBar::new(t.estimated_rows.max(t.rows)));
            bar.set_style(style.clone());
            bar.set_prefix(t.table.clone());
            bar.set_position(t.rows);
            bar.reset_eta();
            bar
        })
        .collect();
    // Rows/s over the last few seconds (indicatif's own rate prints four decimals).
    let mut rates: Vec<(u64, Instant, f64)> = state
        .tables
        .iter()
        .map(|t| (t.rows, Instant::now(), 0.0))
        .collect();
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_millis(250)) => false,
        };
        let state = progress.snapshot();
        for ((bar, table), rate) in bars.iter().zip(&state.tables).zip(rates.iter_mut()) {
            if table.rows > bar.length().unwrap_or(0) {
                bar.set_length(table.rows);
            }
            let elapsed = rate.1.elapsed().as_secs_f64();
            if elapsed >= 1.0 {
                let now = table.rows.saturating_sub(rate.0) as f64 / elapsed;
                rate.2 = if rate.2 == 0.0 {
                    now
                } else {
                    0.5 * rate.2 + 0.5 * now
                };
                *rate = (table.rows, Instant::now(), rate.2);
                bar.set_message(format!("{:.0} rows/s", rate.2));
            }
            bar.set_position(table.rows);
            if table.done && !bar.is_finished() {
                bar.set_length(table.rows);
                bar.finish_with_message("done");
            }
        }
        if stopping {
            for bar in &bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            return;
        }
    }
}

async fn report_logs(progress: Arc<Progress>, stop: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let first = progress.snapshot();
    let mut last: Vec<(u64, Instant)> = first.tables.iter().map(|t| (t.rows, started)).collect();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let state = progress.snapshot();
        for (table, seen) in state.tables.iter().zip(last.iter_mut()) {
            if table.done && seen.0 == table.rows {
                continue;
            }
            let elapsed = seen.1.elapsed().as_secs_f64().max(0.001);
            let rate = (table.rows.saturating_sub(seen.0)) as f64 / elapsed;
            let left = table.estimated_rows.saturating_sub(table.rows);
            let eta = if table.done {
                "done".to_owned()
            } else if rate > 0.0 {
                format!("{:.0}s", left as f64 / rate)
            } else {
                "unknown".to_owned()
            };
            tracing::info!(
                table = %table.table,
                rows = table.rows,
                estimated_rows = table.estimated_rows,
                rows_per_sec = rate.round() as u64,
                eta = %eta,
                "snapshot progress"
            );
            *seen = (table.rows, Instant::now());
        }
    }
}
