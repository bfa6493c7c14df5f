//! The opt-in heartbeat row: off by default, defaults when enabled, its schema one of the
//! version's own, and its table excluded from replication.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{assert_mentions, error, load, MINIMAL};
use std::time::Duration;

/// MINIMAL with `line` added to `[versions.future]` and a second schema.
fn with(line: &str) -> String {
    MINIMAL.replace(
        "schemas = [\"jobfirst_future\"]\n",
        &format!("schemas = [\"jobfirst_future\", \"jobfirst_extra\"]\n{line}\n"),
    )
}

#[test]
fn heartbeat_is_off_by_default() {
    let config = load(MINIMAL).unwrap();
    let v = config.version("future").unwrap();
    assert_eq!(v.heartbeat, None);
    assert!(v.rules.wants("jobfirst_future", "strata_heartbeat"));
}

#[test]
fn an_empty_heartbeat_table_takes_the_defaults_and_the_first_schema() {
    let config = load(&with("heartbeat = {}")).unwrap();
    let h = config.version("future").unwrap().heartbeat.clone().unwrap();
    assert_eq!(h.schema, "jobfirst_future");
    assert_eq!(h.table, "strata_heartbeat");
    assert_eq!(h.interval, Duration::from_secs(10));
}

#[test]
fn heartbeat_keys_are_read_and_its_table_is_excluded_from_replication() {
    let text =
        with("heartbeat = { schema = \"jobfirst_extra\", table = \"hb\", interval = \"2s\" }");
    let config = load(&text).unwrap();
    let v = config.version("future").unwrap();
    let h = v.heartbeat.clone().unwrap();
    assert_eq!(
        (h.schema.as_str(), h.table.as_str(), h.interval),
        ("jobfirst_extra", "hb", Duration::from_secs(2))
    );
    assert!(!v.rules.wants("jobfirst_extra", "hb"));
    // Only that table of that schema.
    assert!(v.rules.wants("jobfirst_future", "hb"));
    assert!(v.rules.wants("jobfirst_extra", "users"));
}

#[test]
fn a_heartbeat_schema_outside_the_version_is_an_error_naming_the_fix() {
    let err = error(&with("heartbeat = { schema = \"jobfirst_past\" }"));
    assert_mentions(
        &err,
        &[
            "versions.future.heartbeat.schema",
            "\"jobfirst_past\" is not one of the version's schemas",
            "jobfirst_future, jobfirst_extra",
            "remove `schema` to use the first (\"jobfirst_future\")",
        ],
    );
}

#[test]
fn a_heartbeat_table_that_is_not_a_plain_name_is_refused() {
    let err = error(&with("heartbeat = { table = \"strata.heartbeat\" }"));
    assert_mentions(
        &err,
        &[
            "versions.future.heartbeat.table",
            "\"strata.heartbeat\" is not a plain table name",
        ],
    );
}

#[test]
fn a_zero_heartbeat_interval_is_refused() {
    let err = error(&with("heartbeat = { interval = \"0s\" }"));
    assert_mentions(&err, &["versions.future.heartbeat.interval", "zero"]);
}

#[test]
fn an_unknown_heartbeat_key_is_refused() {
    let err = error(&with("heartbeat = { tabel = \"hb\" }"));
    assert_mentions(&err, &["unknown key `tabel`", "did you mean `table`?"]);
}
