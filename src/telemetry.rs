//! Every metric strata exports, named in one place (`strata_<name>_<unit>[_total]`), and
//! the per-version recorder that `/metrics` renders.
//!
//! Labels are low-cardinality only: `version` (on every series), `sink`, `op`, `result`,
//! `kind`, `state`. Never a key or a row value. Values are refreshed from the pipeline's
//! `Progress` snapshot (cumulative counters set with `absolute`) when `/metrics` is scraped
//! and once a second, so the pipeline does no per-row metric work; the two histograms are
//! recorded once per durable batch.
//!
//! There is no dead-letter metric: strata does not dead-letter rows. A write a target
//! refuses for good stops the version (its checkpoint stays before the write), which shows as
//! `strata_state{state="failed"}`, `strata_sink_errors_total{kind="rejected"}` and the
//! replicator-down alert.

use crate::lag::Lag;
use crate::report::State;
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::collections::BTreeMap;
use std::time::Duration;
use strata_pipeline::Progress;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` name.
    #[cfg_attr(not(test), allow(dead_code))] // read by the docs and deployment checks
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, kind, labels (besides `version`) and meaning.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The metric's name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its labels besides `version`.
    #[cfg_attr(not(test), allow(dead_code))] // read by the docs and deployment checks
    pub labels: &'static [&'static str],
    /// What it measures (the `# HELP` text).
    pub help: &'static str,
}

const fn def(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        labels,
        help,
    }
}

/// Seconds the oldest change not yet in every target has waited; 0 only when caught up; NaN
/// while unknown.
pub const LAG_SECONDS: &str = "strata_lag_seconds";
/// Binlog bytes between the applied position and the server's end.
pub const LAG_BYTES: &str = "strata_lag_bytes";
/// 1 when everything the server has written is applied.
pub const CAUGHT_UP: &str = "strata_caught_up";
/// Seconds applied changes have waited for the next checkpoint save.
pub const CHECKPOINT_AGE_SECONDS: &str = "strata_checkpoint_age_seconds";
/// The version's `lag_alert` threshold.
pub const LAG_ALERT_THRESHOLD_SECONDS: &str = "strata_lag_alert_threshold_seconds";
/// 1 while lag is above the threshold.
pub const LAG_ALERT: &str = "strata_lag_alert";
/// Source commit time of the last transaction applied to every target.
pub const LAST_APPLIED_COMMIT_SECONDS: &str = "strata_last_applied_commit_timestamp_seconds";
/// 1 when `/health/ready` answers 200.
pub const READY: &str = "strata_ready";
/// 1 for the version's current state, 0 for the others.
pub const STATE: &str = "strata_state";
/// Row changes read from the binlog, by operation.
pub const SOURCE_ROW_CHANGES_TOTAL: &str = "strata_source_row_changes_total";
/// Row changes of replicated tables read from the binlog, by target table and operation.
pub const TABLE_ROW_CHANGES_TOTAL: &str = "strata_table_row_changes_total";
/// Transactions read from the binlog.
pub const SOURCE_TRANSACTIONS_TOTAL: &str = "strata_source_transactions_total";
/// Source errors (lost or refused connections, …) by kind.
pub const SOURCE_ERRORS_TOTAL: &str = "strata_source_errors_total";
/// Writes per target by result: applied, stale (skipped: the target held a newer version),
/// superseded (dropped for a newer write of the same row in the same batch).
pub const SINK_WRITES_TOTAL: &str = "strata_sink_writes_total";
/// Batches made durable per target.
pub const SINK_BATCHES_TOTAL: &str = "strata_sink_batches_total";
/// Retries of failed batches per target.
pub const SINK_RETRIES_TOTAL: &str = "strata_sink_retries_total";
/// Target errors by kind, retried ones included.
pub const SINK_ERRORS_TOTAL: &str = "strata_sink_errors_total";
/// 1 when the target's health check passes.
pub const SINK_UP: &str = "strata_sink_up";
/// Time from a batch's first write attempt to its acknowledgement, retries included.
pub const SINK_APPLY_DURATION_SECONDS: &str = "strata_sink_apply_duration_seconds";
/// Rows (ops) per durable batch.
pub const SINK_BATCH_SIZE_ROWS: &str = "strata_sink_batch_size_rows";
/// Always 1; carries the strata release in a label.
pub const BUILD_INFO: &str = "strata_build_info";

/// Every metric, for `/metrics` help texts, the docs and the checks of the alert rules and
/// the dashboard.
pub const METRICS: &[MetricDef] = &[
    def(LAG_SECONDS, Kind::Gauge, &[], "Seconds the oldest change not yet in every target has waited; 0 only when caught up, NaN while unknown."),
    def(LAG_BYTES, Kind::Gauge, &[], "Binlog bytes between the position applied to every target and the end of the server's binlog."),
    def(CAUGHT_UP, Kind::Gauge, &[], "1 when everything the server has written is applied to every target."),
    def(CHECKPOINT_AGE_SECONDS, Kind::Gauge, &[], "Seconds applied changes have waited for the next checkpoint save (0 when the checkpoint holds everything applied)."),
    def(LAG_ALERT_THRESHOLD_SECONDS, Kind::Gauge, &[], "The version's lag_alert threshold in seconds."),
    def(LAG_ALERT, Kind::Gauge, &[], "1 while strata_lag_seconds is above the version's threshold."),
    def(LAST_APPLIED_COMMIT_SECONDS, Kind::Gauge, &[], "Source commit time (Unix seconds) of the last transaction applied to every target."),
    def(READY, Kind::Gauge, &[], "1 when /health/ready answers 200: streaming, targets reachable, lag under the threshold."),
    def(STATE, Kind::Gauge, &["state"], "1 for the version's current state (starting, running, failing, stopping, stopped, failed), 0 for the others."),
    def(SOURCE_ROW_CHANGES_TOTAL, Kind::Counter, &["op"], "Row changes read from the binlog by operation (insert, update, delete; skipped: tables the version does not replicate)."),
    def(TABLE_ROW_CHANGES_TOTAL, Kind::Counter, &["table", "op"], "Row changes of replicated tables read from the binlog, by target table (as configured, never a key) and operation."),
    def(SOURCE_TRANSACTIONS_TOTAL, Kind::Counter, &[], "Transactions read from the binlog."),
    def(SOURCE_ERRORS_TOTAL, Kind::Counter, &["kind"], "Source errors by kind (connection, timeout, config, data, ...)."),
    def(SINK_WRITES_TOTAL, Kind::Counter, &["sink", "result"], "Writes per target by result: applied, stale (the target held an equal or newer version), superseded (a newer write of the row was in the same batch)."),
    def(SINK_BATCHES_TOTAL, Kind::Counter, &["sink"], "Batches made durable per target."),
    def(SINK_RETRIES_TOTAL, Kind::Counter, &["sink"], "Retries of failed batches per target."),
    def(SINK_ERRORS_TOTAL, Kind::Counter, &["sink", "kind"], "Target errors by kind, retried ones included."),
    def(SINK_UP, Kind::Gauge, &["sink"], "1 when the target's health check passes."),
    def(SINK_APPLY_DURATION_SECONDS, Kind::Histogram, &["sink"], "Seconds from a batch's first write attempt to its acknowledgement, retries included."),
    def(SINK_BATCH_SIZE_ROWS, Kind::Histogram, &["sink"], "Rows per durable batch."),
    def(BUILD_INFO, Kind::Gauge, &["release"], "Always 1; the release label is strata's version."),
];

/// The error kinds counted, so every series exists (at 0) from the start and `rate()` works.
const ERROR_KINDS: [&str; 7] = [
    "connection",
    "timeout",
    "throttled",
    "rejected",
    "config",
    "data",
    "internal",
];

const STATES: [State; 6] = [
    State::Starting,
    State::Running,
    State::Failing,
    State::Stopping,
    State::Stopped,
    State::Failed,
];

const METADATA: Metadata<'static> = Metadata::new("strata", Level::INFO, Some(module_path!()));

/// A snapshot of one version, as the metrics show it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The lag reading.
    pub lag: &'a Lag,
    /// The pipeline's progress (default before it starts).
    pub progress: &'a Progress,
    /// The version's state.
    pub state: State,
    /// Whether it is ready.
    pub ready: bool,
    /// The lag alert threshold.
    pub threshold: Duration,
    /// Lag is above the threshold.
    pub over_threshold: bool,
    /// Per target: its name and whether its health check passes.
    pub sinks_up: &'a [(&'static str, bool)],
    /// Source errors by kind.
    pub source_errors: &'a BTreeMap<&'static str, u64>,
}

/// One version's metrics: its own recorder (every series labelled with the version), so
/// each replicator's `/metrics` shows its version only, also when several run in one process.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Telemetry {
    /// A recorder for `version`, with every metric described.
    pub fn new(version: &str) -> Telemetry {
        let builder = PrometheusBuilder::new()
            .add_global_label("version", version)
            .set_buckets_for_metric(
                Matcher::Full(SINK_APPLY_DURATION_SECONDS.to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(SINK_BATCH_SIZE_ROWS.to_owned()),
                    &[
                        1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
                    ],
                )
            });
        // Setting buckets only fails for an empty list, which these are not; fall back to
        // the exporter's defaults (summaries) rather than failing start-up.
        let builder = builder
            .unwrap_or_else(|_| PrometheusBuilder::new().add_global_label("version", version));
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        for m in METRICS {
            let (name, help) = (m.name.into(), m.help.into());
            match m.kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, None, help),
            }
        }
        let t = Telemetry { recorder, handle };
        t.gauge(BUILD_INFO, &[("release", env!("CARGO_PKG_VERSION"))], 1.0);
        for op in ["insert", "update", "delete", "skipped"] {
            t.counter(SOURCE_ROW_CHANGES_TOTAL, &[("op", op)], 0);
        }
        t.counter(SOURCE_TRANSACTIONS_TOTAL, &[], 0);
        for kind in ERROR_KINDS {
            t.counter(SOURCE_ERRORS_TOTAL, &[("kind", kind)], 0);
        }
        t
    }

    /// Registers a target's series at 0, so they exist before its first write.
    pub fn add_sink(&self, sink: &'static str) {
        for result in ["applied", "stale", "superseded"] {
            self.counter(SINK_WRITES_TOTAL, &[("sink", sink), ("result", result)], 0);
        }
        self.counter(SINK_BATCHES_TOTAL, &[("sink", sink)], 0);
        self.counter(SINK_RETRIES_TOTAL, &[("sink", sink)], 0);
        for kind in ERROR_KINDS {
            self.counter(SINK_ERRORS_TOTAL, &[("sink", sink), ("kind", kind)], 0);
        }
    }

    /// Sets every gauge and counter from `sample`.
    pub fn update(&self, sample: &Sample<'_>) {
        let lag = sample.lag;
        self.gauge(LAG_SECONDS, &[], lag.seconds.unwrap_or(f64::NAN));
        self.gauge(LAG_BYTES, &[], lag.bytes.map_or(f64::NAN, |b| b as f64));
        self.gauge(CAUGHT_UP, &[], bool_value(lag.caught_up));
        self.gauge(
            CHECKPOINT_AGE_SECONDS,
            &[],
            lag.checkpoint_age_seconds.unwrap_or(f64::NAN),
        );
        self.gauge(
            LAG_ALERT_THRESHOLD_SECONDS,
            &[],
            sample.threshold.as_secs_f64(),
        );
        self.gauge(LAG_ALERT, &[], bool_value(sample.over_threshold));
        self.gauge(READY, &[], bool_value(sample.ready));
        for state in STATES {
            self.gauge(
                STATE,
                &[("state", state.as_str())],
                bool_value(state == sample.state),
            );
        }
        let p = sample.progress;
        if let Some(applied) = &p.last_applied_commit {
            self.gauge(
                LAST_APPLIED_COMMIT_SECONDS,
                &[],
                applied.ts_ms as f64 / 1000.0,
            );
        }
        let rows = &p.rows_read;
        for (op, n) in [
            ("insert", rows.inserts),
            ("update", rows.updates),
            ("delete", rows.deletes),
            ("skipped", rows.skipped),
        ] {
            self.counter(SOURCE_ROW_CHANGES_TOTAL, &[("op", op)], n);
        }
        for (table, rows) in &p.rows_by_table {
            for (op, n) in [
                ("insert", rows.inserts),
                ("update", rows.updates),
                ("delete", rows.deletes),
            ] {
                self.counter(TABLE_ROW_CHANGES_TOTAL, &[("table", table), ("op", op)], n);
            }
        }
        self.counter(SOURCE_TRANSACTIONS_TOTAL, &[], p.transactions_read);
        for (kind, n) in sample.source_errors {
            self.counter(SOURCE_ERRORS_TOTAL, &[("kind", kind)], *n);
        }
        for s in &p.sinks {
            let sink = s.name;
            for (result, n) in [
                ("applied", s.applied),
                ("stale", s.stale),
                ("superseded", s.superseded),
            ] {
                self.counter(SINK_WRITES_TOTAL, &[("sink", sink), ("result", result)], n);
            }
            self.counter(SINK_BATCHES_TOTAL, &[("sink", sink)], s.batches);
            self.counter(SINK_RETRIES_TOTAL, &[("sink", sink)], s.retries);
            for (kind, n) in &s.errors {
                self.counter(SINK_ERRORS_TOTAL, &[("sink", sink), ("kind", kind)], *n);
            }
        }
        for (sink, up) in sample.sinks_up {
            self.gauge(SINK_UP, &[("sink", sink)], bool_value(*up));
        }
    }

    /// Records one durable batch.
    pub fn batch_applied(&self, sink: &'static str, ops: usize, elapsed: Duration) {
        let labels = vec![Label::new("sink", sink)];
        self.recorder
            .register_histogram(
                &Key::from_parts(SINK_APPLY_DURATION_SECONDS, labels.clone()),
                &METADATA,
            )
            .record(elapsed.as_secs_f64());
        self.recorder
            .register_histogram(&Key::from_parts(SINK_BATCH_SIZE_ROWS, labels), &METADATA)
            .record(ops as f64);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, &str)], value: u64) {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
            .absolute(value);
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        self.recorder
            .register_gauge(&key(name, labels), &METADATA)
            .set(value);
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in METRICS {
            assert!(m.name.starts_with("strata_"), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                _ => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            assert!(
                !m.labels.contains(&"version"),
                "version is added to every series"
            );
        }
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a metric is defined twice");
    }

    #[test]
    fn every_series_carries_the_version() {
        let t = Telemetry::new("future");
        t.add_sink("redis");
        t.batch_applied("redis", 10, Duration::from_millis(3));
        let text = t.render();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.contains("version=\"future\""), "{line}");
        }
        assert!(
            text.contains("strata_sink_apply_duration_seconds_bucket"),
            "{text}"
        );
    }
}
