//! Configuration errors and the isolation lint through the binary: each mistake gets one
//! message naming the key (and how to fix it), and `strata run` exits with code 2 before
//! it touches any server.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::{path_str, run_cmd, Strata};

/// Two well-formed versions; each test breaks one thing. No server is contacted: every
/// error here is found before connecting.
const VALID: &str = r#"
[source]
url = "mysql://root@127.0.0.1:3307"

[servers]
redis = { url = "redis://127.0.0.1:6380" }
mongodb = { url = "mongodb://127.0.0.1:27019" }

[defaults]
data_dir = "{data_dir}"
batch_max_rows = 500

[versions.one]
server_id = 9101
schemas = ["cfg_one"]
[versions.one.redis]
db = 1
key_prefix = "cfg_one:"
[versions.one.mongodb]
database = "cfg_one"

[versions.two]
server_id = 9102
schemas = ["cfg_two"]
[versions.two.redis]
db = 2
key_prefix = "cfg_two:"
[versions.two.mongodb]
database = "cfg_two"
"#;

/// `strata run --config <file with `from` replaced by `to`> <args>`: (code, stderr).
fn run_with(name: &str, from: &str, to: &str, args: &[&str]) -> (i32, String) {
    assert!(VALID.contains(from), "the fixture has no `{from}`");
    let strata = Strata::with_config(name, &VALID.replacen(from, to, 1));
    let mut all = vec!["run", "--config", path_str(&strata.config)];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run_cmd(strata.command(&all));
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    (code, stderr)
}

fn assert_says(stderr: &str, phrases: &[&str]) {
    for phrase in phrases {
        assert!(
            stderr.contains(phrase),
            "expected `{phrase}` in the message:\n{stderr}"
        );
    }
}

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let (code, stderr) = run_with(
        "cfg_unknown",
        "batch_max_rows = 500",
        "batch_max_rowz = 500",
        &["--all"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_says(
        &stderr,
        &["batch_max_rowz", "did you mean `batch_max_rows`"],
    );
}

#[test]
fn missing_required_key_is_named_with_its_section() {
    let (code, stderr) = run_with(
        "cfg_missing",
        "server_id = 9102\n",
        "",
        &["--version", "two"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_says(
        &stderr,
        &["missing required key `server_id`", "versions.two"],
    );
}

#[test]
fn bad_value_is_named_with_its_key() {
    let (code, stderr) = run_with("cfg_bad", "db = 2", "db = 42", &["--all"]);
    assert_eq!(code, 2, "{stderr}");
    assert_says(&stderr, &["versions.two.redis.db", "42"]);
}

#[test]
fn two_versions_reading_one_schema_are_refused() {
    let (code, stderr) = run_with(
        "cfg_shared_schema",
        r#"schemas = ["cfg_two"]"#,
        r#"schemas = ["cfg_one"]"#,
        &["--version", "one"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_says(
        &stderr,
        &[
            "versions `one` and `two`",
            "source schema `cfg_one`",
            "own schemas",
        ],
    );
}

#[test]
fn two_versions_writing_one_namespace_are_refused() {
    let shared = VALID.replacen("db = 2", "db = 1", 1).replacen(
        r#"database = "cfg_two""#,
        r#"database = "cfg_one""#,
        1,
    );
    let strata = Strata::with_config("cfg_shared_ns", &shared);
    let (code, _, stderr) =
        run_cmd(strata.command(&["run", "--config", path_str(&strata.config), "--all"]));
    assert_eq!(code, 2, "{stderr}");
    // Every conflict at once, one line each.
    assert_says(
        &stderr,
        &["share Redis DBs", "both write MongoDB database `cfg_one`"],
    );
}

#[test]
fn unknown_version_lists_the_configured_ones() {
    let (code, stderr) = run_with("cfg_nope", "db = 2", "db = 2", &["--version", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert_says(
        &stderr,
        &["no version named `nope`", "configured versions: one, two"],
    );
}

#[test]
fn from_is_refused_once_a_checkpoint_exists() {
    let strata = Strata::with_config("cfg_from", VALID);
    let checkpoint = strata.checkpoint_path("one");
    std::fs::create_dir_all(checkpoint.parent().unwrap()).unwrap();
    std::fs::write(
        &checkpoint,
        r#"{"position":{"file":"binlog.000001","pos":4},"gtid_set":null,"commit_ts_ms":0,"written_at_ms":0,"format":1}"#,
    )
    .unwrap();
    let config = path_str(&strata.config);
    let (code, _, stderr) = run_cmd(strata.command(&[
        "run",
        "--config",
        config,
        "--version",
        "one",
        "--from",
        "binlog.000001:4",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert_says(
        &stderr,
        &["--from", "first start", "binlog.000001:4", "checkpoint"],
    );
    // The checkpoint is left as it was.
    assert!(std::fs::read_to_string(&checkpoint)
        .unwrap()
        .contains("\"pos\":4"));
}
