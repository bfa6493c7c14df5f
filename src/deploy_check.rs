//! Checks of the deployment files (tests only; no container engine runs here): the compose
//! file, the Kubernetes manifests, the systemd unit, the alert rules and the dashboard parse;
//! every strata command in them is one this CLI accepts, for a version their config has; the
//! configs they mount load; and the rules, dashboard and docs name only exported metrics.

#![allow(clippy::unwrap_used)] // tests may unwrap

use crate::telemetry::{Kind, METRICS};
use crate::Cli;
use clap::Parser;
use serde_norway::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use strata_config::{Config, Environment};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a multi-document YAML file.
fn yaml_documents(path: &str) -> Vec<Yaml> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|doc: &Yaml| !doc.is_null())
        .collect()
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Loads a config as the deployment would, with its secrets set.
fn load_config(text: &str, name: &str) -> Config {
    let env: Environment = [("STRATA_SOURCE_PASSWORD".to_owned(), "secret".to_owned())]
        .into_iter()
        .collect();
    Config::parse(text, name, &env).unwrap_or_else(|e| panic!("{name} does not load:\n{e}"))
}

/// Checks that `args` (after the program name) is a command the CLI accepts, and that a
/// `--version` it names is in `config`. Returns the version, if any.
fn accepted(args: &[String], config: Option<&Config>, whence: &str) -> Option<String> {
    let argv = std::iter::once("strata".to_owned()).chain(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!(
            "{whence}: `strata {}` is refused by the CLI:\n{e}",
            args.join(" ")
        );
    }
    let version = args
        .iter()
        .position(|a| a == "--version")
        .map(|i| args[i + 1].clone());
    if let (Some(v), Some(config)) = (&version, config) {
        assert!(
            config.versions.contains_key(v),
            "{whence}: version {v} is not in its config"
        );
    }
    version
}

#[test]
fn compose_file_parses_and_its_strata_commands_are_accepted() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().unwrap();
    let config = load_config(
        &read("deploy/docker/strata.toml"),
        "deploy/docker/strata.toml",
    );

    // The stores of the brief, and the binlog settings strata needs.
    let image = |name: &str| services[name]["image"].as_str().unwrap().to_owned();
    assert!(image("mysql").starts_with("mysql:8.4"));
    let mysql_flags = strings(&services["mysql"]["command"]).join(" ");
    for flag in [
        "--log-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--server-id=",
        "--gtid-mode=ON",
    ] {
        assert!(mysql_flags.contains(flag), "mysql lacks {flag}");
    }
    assert!(image("mongodb").starts_with("mongo:"));
    assert!(image("redis").starts_with("redis:7"));
    assert!(image("elasticsearch").contains("elasticsearch:8."));
    let prometheus_volumes = strings(&services["prometheus"]["volumes"]).join(" ");
    assert!(prometheus_volumes.contains("deploy/prometheus/alerts.yml"));
    assert!(prometheus_volumes.contains("deploy/prometheus/prometheus.yml"));

    let mut versions = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(
            !service["healthcheck"]["test"].is_null(),
            "service {name} has no health check"
        );
        if service["image"].as_str() != Some("strata:local") {
            continue;
        }
        assert!(!service["build"].is_null(), "{name} builds the Dockerfile");
        let command = strings(&service["command"]);
        let version = accepted(&command, Some(&config), name).expect("a version");
        assert_eq!(command[0], "run", "{name}");
        assert_eq!(name, format!("strata-{version}"));
        let health = strings(&service["healthcheck"]["test"]);
        assert_eq!(&health[..2], ["CMD", "strata"], "{name}");
        accepted(&health[2..], Some(&config), &format!("{name} health check"));
        // Prometheus scrapes the port the version listens on.
        let port = config.versions[&version].http.port();
        let scrape = read("deploy/prometheus/prometheus.yml");
        assert!(
            scrape.contains(&format!("{name}:{port}")),
            "prometheus scrapes {name}:{port}"
        );
        versions.insert(version);
    }
    let all: BTreeSet<String> = config.versions.keys().cloned().collect();
    assert_eq!(versions, all, "one strata service per version");
    assert!(root().join("Dockerfile").exists() && root().join(".dockerignore").exists());
}

#[test]
fn k8s_manifests_parse_and_run_one_accepted_command_per_version() {
    let kustomization = yaml("deploy/k8s/kustomization.yaml");
    let mut versions = BTreeSet::new();
    let mut pod_monitor = false;
    for file in strings(&kustomization["resources"]) {
        let path = format!("deploy/k8s/{file}");
        let docs = yaml_documents(&path);
        let config_text = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap")
            .map(|d| d["data"]["strata.toml"].as_str().unwrap().to_owned());
        let config = config_text.map(|t| load_config(&t, &path));
        for doc in &docs {
            for key in ["apiVersion", "kind"] {
                assert!(doc[key].is_string(), "{path}: {key}");
            }
            assert!(doc["metadata"]["name"].is_string(), "{path}: metadata.name");
            match doc["kind"].as_str().unwrap() {
                "StatefulSet" => {
                    assert_eq!(
                        doc["spec"]["replicas"].as_u64(),
                        Some(1),
                        "{path}: one replicator per version"
                    );
                    let pod = &doc["spec"]["template"]["spec"];
                    let container = &pod["containers"][0];
                    let args = strings(&container["args"]);
                    let version = accepted(&args, config.as_ref(), &path).expect("a version");
                    let config = config.as_ref().expect("the version's ConfigMap");
                    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
                    assert_eq!(
                        u64::from(config.versions[&version].http.port()),
                        port,
                        "{path}"
                    );
                    assert_eq!(
                        container["livenessProbe"]["httpGet"]["path"],
                        "/health/live"
                    );
                    assert_eq!(
                        container["readinessProbe"]["httpGet"]["path"],
                        "/health/ready"
                    );
                    assert!(
                        !doc["spec"]["volumeClaimTemplates"].is_null(),
                        "{path}: checkpoint volume"
                    );
                    versions.insert(version);
                }
                "Service" => {
                    assert_eq!(doc["spec"]["ports"][0]["name"], "metrics", "{path}");
                }
                "PodMonitor" => {
                    assert_eq!(doc["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
                    assert_eq!(doc["spec"]["podMetricsEndpoints"][0]["path"], "/metrics");
                    pod_monitor = true;
                }
                "ConfigMap" | "Namespace" => {}
                other => panic!("{path}: unexpected kind {other}"),
            }
        }
    }
    assert!(pod_monitor, "a PodMonitor");
    assert_eq!(
        versions,
        ["blockchain", "dao", "future"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[test]
fn systemd_unit_runs_an_accepted_command() {
    let unit = read("deploy/systemd/strata@.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let mut words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("%i", "future"))
        .collect();
    assert!(words.remove(0).ends_with("/strata"), "{exec}");
    assert_eq!(
        accepted(&words, None, "strata@.service").as_deref(),
        Some("future")
    );
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.contains(section), "{section}");
    }
}

/// The metric names an expression uses (`strata_…`, histogram suffixes removed).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("strata_"))
        .map(|w| {
            let histogram = |base: &str| {
                METRICS
                    .iter()
                    .any(|m| m.name == base && m.kind == Kind::Histogram)
            };
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s).filter(|b| histogram(b)))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

fn assert_exported(names: &BTreeSet<String>, whence: &str) {
    for name in names {
        assert!(
            METRICS.iter().any(|m| m.name == name),
            "{whence} uses {name}, which strata does not export"
        );
    }
}

#[test]
fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().unwrap().to_owned();
            let expr = rule["expr"].as_str().unwrap();
            assert!(rule["for"].is_string(), "{alert}: for");
            assert!(rule["labels"]["severity"].is_string(), "{alert}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{alert}: summary"
            );
            assert_exported(&metric_names(expr), &alert);
            alerts.insert((alert, expr.to_owned()));
        }
    }
    let has = |metric: &str| alerts.iter().any(|(_, e)| e.contains(metric));
    assert!(
        has("strata_lag_seconds > strata_lag_alert_threshold_seconds"),
        "the lag rule"
    );
    assert!(
        has("up{") && has("strata_state"),
        "the replicator-down rule"
    );
    assert!(has("rate(strata_sink_errors_total"), "the error-rate rule");

    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/strata.json")).unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            used.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    assert_exported(&used, "deploy/grafana/strata.json");
    for needed in [
        "strata_lag_seconds",
        "strata_source_row_changes_total",
        "strata_sink_writes_total",
        "strata_sink_errors_total",
        "strata_source_errors_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows {needed}");
    }
}

#[test]
fn operations_doc_lists_every_metric_with_its_type_and_labels() {
    let doc = read("docs/operations.md");
    for m in METRICS {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", m.name)))
            .unwrap_or_else(|| panic!("docs/operations.md has no row for {}", m.name));
        assert!(row.contains(&format!("| {} |", m.kind.as_str())), "{row}");
        for label in m.labels {
            assert!(
                row.contains(&format!("`{label}`")),
                "{row} lacks label {label}"
            );
        }
    }
    assert!(Path::new(&root().join("docs/operations.md")).exists());
}
