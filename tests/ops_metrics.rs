//! `/metrics` parses as Prometheus exposition text with the documented families, types and
//! labels (and never a key value); `/health/live`, `/health/ready` and `/status` answer as
//! documented. Against real servers: MariaDB → Redis + PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod ops_support;

use ops_support::*;
use prometheus_parse::{Scrape, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const VERSION: &str = "metricsv";

fn config(source_url: &str, schema: &str, redis_url: &str, postgres_url: &str) -> String {
    format!(
        r#"
[source]
url = "{source_url}"
tls = {{ mode = "disabled" }}
heartbeat = "1s"
read_timeout = "10s"

[servers]
redis = {{ url = "{redis_url}" }}
postgres = {{ url = "{postgres_url}" }}

[defaults]
data_dir = "{{data_dir}}"
batch_max_delay = "10ms"

[versions.{VERSION}]
server_id = {server_id}
schemas = ["{schema}"]

[versions.{VERSION}.redis]
db = 11
key_prefix = "{schema}:"

[versions.{VERSION}.postgres]
schema = "{schema}"
"#,
        server_id = unique_server_id(),
    )
}

/// Checks the text line by line, strictly (the parser library skips what it cannot read):
/// every sample belongs to a family with `# HELP` and `# TYPE`, and reads
/// `name{label="value",…} number`.
fn check_exposition_syntax(text: &str) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    let mut helped = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unexpected type in `{line}`"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment `{line}`");
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "value of `{line}`"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "name of `{line}`"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "labels of `{line}`"
                );
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("`{line}`"));
                    assert!(
                        k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                        "`{line}`"
                    );
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "`{line}`"
                    );
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "`{line}` has no # TYPE");
        assert!(helped.contains(family), "`{line}` has no # HELP");
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_the_documented_families_and_labels() {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), "ops_metrics").await;
    let mut strata = Strata::with_config(
        "ops_metrics",
        &config(
            &source.url,
            &source.name,
            &env_url("STRATA_TEST_REDIS_URL"),
            &env_url("STRATA_TEST_POSTGRES_URL"),
        ),
    );
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;

    // Three inserts, one update, one delete; key values that must never become labels.
    source.insert(9_100_001..=9_100_003).await;
    source
        .exec(&[
            format!(
                "UPDATE {}.items SET v = 'changed' WHERE id = 9100002",
                source.name
            ),
            format!("DELETE FROM {}.items WHERE id = 9100003", source.name),
        ])
        .await;
    let done = wait_for(
        "both targets to apply the 5 writes",
        Duration::from_secs(60),
        || async {
            let s = status(&client, addr).await?;
            let all = s["sinks"].as_array().unwrap().iter().all(|sink| {
                let n = |k: &str| sink[k].as_u64().unwrap_or(0);
                n("applied") + n("stale") + n("superseded") >= 5
            });
            if all && lag_seconds(&s).is_some_and(|l| l < 1.0) {
                Ok(Some(s))
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    assert_eq!(done["state"], "running", "{done}");
    assert_eq!(done["ready"], true, "{done}");

    let (code, text) = get(&client, addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let types = check_exposition_syntax(&text);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();

    let expected = [
        ("strata_lag_seconds", "gauge"),
        ("strata_lag_bytes", "gauge"),
        ("strata_caught_up", "gauge"),
        ("strata_checkpoint_age_seconds", "gauge"),
        ("strata_lag_alert", "gauge"),
        ("strata_lag_alert_threshold_seconds", "gauge"),
        ("strata_ready", "gauge"),
        ("strata_state", "gauge"),
        ("strata_source_row_changes_total", "counter"),
        ("strata_table_row_changes_total", "counter"),
        ("strata_source_transactions_total", "counter"),
        ("strata_source_errors_total", "counter"),
        ("strata_sink_writes_total", "counter"),
        ("strata_sink_batches_total", "counter"),
        ("strata_sink_retries_total", "counter"),
        ("strata_sink_errors_total", "counter"),
        ("strata_sink_up", "gauge"),
        ("strata_sink_apply_duration_seconds", "histogram"),
        ("strata_sink_batch_size_rows", "histogram"),
    ];
    for (name, kind) in expected {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "family {name}"
        );
        assert!(scrape.docs.contains_key(name), "HELP of {name}");
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "samples of {name}"
        );
    }

    // Every series carries the version; labels are low-cardinality names, never a key.
    let allowed_values: BTreeSet<&str> = [
        VERSION,
        "redis",
        "postgres",
        "items",
        "insert",
        "update",
        "delete",
        "skipped",
        "applied",
        "stale",
        "superseded",
        "connection",
        "timeout",
        "throttled",
        "rejected",
        "config",
        "data",
        "internal",
        "starting",
        "running",
        "failing",
        "stopping",
        "stopped",
        "failed",
        env!("CARGO_PKG_VERSION"),
    ]
    .into_iter()
    .collect();
    for s in &scrape.samples {
        assert_eq!(
            s.labels.get("version"),
            Some(VERSION),
            "{} {:?}",
            s.metric,
            s.labels
        );
        for (k, v) in s.labels.iter() {
            assert!(
                ["version", "sink", "table", "op", "result", "kind", "state", "release"]
                    .contains(&k.as_str()),
                "label {k} on {}",
                s.metric
            );
            assert!(
                allowed_values.contains(v.as_str()),
                "label value {k}={v} on {}",
                s.metric
            );
        }
    }
    assert!(
        !text.contains("9100002"),
        "a key value leaked into /metrics"
    );

    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?}"));
        match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is {other:?}"),
        }
    };
    assert_eq!(
        value("strata_source_row_changes_total", &[("op", "insert")]),
        3.0
    );
    assert_eq!(
        value("strata_source_row_changes_total", &[("op", "update")]),
        1.0
    );
    assert_eq!(
        value("strata_source_row_changes_total", &[("op", "delete")]),
        1.0
    );
    for (op, n) in [("insert", 3.0), ("update", 1.0), ("delete", 1.0)] {
        assert_eq!(
            value(
                "strata_table_row_changes_total",
                &[("table", "items"), ("op", op)]
            ),
            n,
            "{op}s of table items"
        );
    }
    for sink in ["redis", "postgres"] {
        let writes: f64 = ["applied", "stale", "superseded"]
            .iter()
            .map(|r| value("strata_sink_writes_total", &[("sink", sink), ("result", r)]))
            .sum();
        assert_eq!(writes, 5.0, "every write of {sink} is counted once");
        assert_eq!(value("strata_sink_up", &[("sink", sink)]), 1.0);
        assert_eq!(value("strata_sink_retries_total", &[("sink", sink)]), 0.0);
        let batches = value("strata_sink_batches_total", &[("sink", sink)]);
        let histogram = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "strata_sink_apply_duration_seconds"
                    && s.labels.get("sink") == Some(sink)
            })
            .unwrap_or_else(|| panic!("apply latency of {sink}"));
        match &histogram.value {
            Value::Histogram(buckets) => {
                let total = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
                assert_eq!(
                    total, batches,
                    "one observation per durable batch of {sink}"
                );
            }
            other => panic!("apply latency is {other:?}"),
        }
    }
    // Other tests write to other schemas of the same server: their transactions pass
    // through this version too, so lag is about zero rather than exactly zero here.
    assert!(value("strata_lag_seconds", &[]) < 1.0);
    assert!([0.0, 1.0].contains(&value("strata_caught_up", &[])));
    assert_eq!(value("strata_ready", &[]), 1.0);
    assert_eq!(value("strata_state", &[("state", "running")]), 1.0);
    assert_eq!(value("strata_state", &[("state", "failing")]), 0.0);
    assert_eq!(value("strata_lag_alert_threshold_seconds", &[]), 300.0);

    let (code, live) = get(&client, addr, "/health/live").await.unwrap();
    assert_eq!((code, live.as_str()), (200, r#"{"live":true}"#));
    let (code, ready) = get(&client, addr, "/health/ready").await.unwrap();
    assert_eq!(code, 200, "{ready}");
    let (code, _) = get(&client, addr, "/nope").await.unwrap();
    assert_eq!(code, 404);
    source.drop_schema().await;
}
