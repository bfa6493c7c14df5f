//! Every class of configuration error gives one message naming the file, the key, the place
//! and the fix.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{assert_mentions, env, error, error_with, load, MINIMAL};
use strata_config::{Config, ConfigError, Origin};

#[test]
fn the_minimal_config_loads() {
    let config = load(MINIMAL).unwrap();
    let v = config.version("future").unwrap();
    assert_eq!(v.targets.names(), ["redis"]);
    assert_eq!(v.targets.redis.as_ref().unwrap().dbs, 0..=0);
}

#[test]
fn unknown_key_names_file_line_section_and_suggests_the_valid_keys() {
    let text = format!("{MINIMAL}\n[defaults]\nbatch_size = 500\n");
    let err = error(&text);
    let line = text
        .lines()
        .position(|l| l.starts_with("batch_size"))
        .unwrap()
        + 1;
    assert_mentions(
        &err,
        &[
            &format!("test.toml:{line}:1:"),
            "unknown key `batch_size` in [defaults]",
            "did you mean",
            "`batch_max_rows`",
            "valid keys there: data_dir, tombstone_ttl",
        ],
    );
}

#[test]
fn misspelt_key_gets_the_closest_spelling() {
    let text = MINIMAL.replace("server_id", "server-id");
    let err = error(&text);
    assert_mentions(
        &err,
        &[
            "unknown key `server-id` in [versions.future]",
            "did you mean `server_id`?",
        ],
    );
}

#[test]
fn missing_required_key_names_the_table_and_how_to_write_it() {
    let text = MINIMAL.replace("server_id = 1001\n", "");
    let err = error(&text);
    let line = text.lines().position(|l| l == "[versions.future]").unwrap() + 1;
    assert_mentions(
        &err,
        &[
            &format!("test.toml:{line}:"),
            "missing required key `server_id` in [versions.future]",
            "server_id = 1001",
            "1 to 4294967295",
        ],
    );
}

#[test]
fn missing_source_url_is_reported() {
    let text = MINIMAL.replace("url = \"mysql://root@127.0.0.1:3307\"", "");
    assert_mentions(&error(&text), &["missing required key `url` in [source]"]);
}

#[test]
fn wrong_value_type_names_the_key_and_the_expected_form() {
    let text = MINIMAL.replace("server_id = 1001", "server_id = \"one\"");
    assert_mentions(
        &error(&text),
        &[
            "`versions.future.server_id` has a bad value",
            "string \"one\"",
            "a whole number from 1 to 4294967295",
        ],
    );
    let text = MINIMAL.replace(
        "schemas = [\"jobfirst_future\"]",
        "schemas = \"jobfirst_future\"",
    );
    assert_mentions(
        &error(&text),
        &[
            "`versions.future.schemas` has a bad value",
            "list of source schema names",
        ],
    );
}

#[test]
fn bad_duration_and_size_say_how_to_write_them() {
    let text = format!("{MINIMAL}\n[defaults]\nbatch_max_delay = \"50 msec\"\n");
    assert_mentions(
        &error(&text),
        &[
            "`defaults.batch_max_delay`",
            "unknown unit `msec`",
            "e.g. `50ms`",
        ],
    );
    let text = format!("{MINIMAL}\n[defaults]\nlag_alert = 300\n");
    assert_mentions(
        &error(&text),
        &["`defaults.lag_alert`", "no unit", "\"300s\""],
    );
    let text = format!("{MINIMAL}\n[defaults]\ntombstone_ttl = \"0s\"\n");
    assert_mentions(
        &error(&text),
        &["`defaults.tombstone_ttl`", "greater than zero"],
    );
    let text = format!("{MINIMAL}\n[defaults]\nbatch_max_bytes = \"4 megs\"\n");
    assert_mentions(&error(&text), &["`defaults.batch_max_bytes`", "`4MiB`"]);
}

#[test]
fn unknown_enum_value_lists_the_valid_ones() {
    let text = MINIMAL.replace(
        "url = \"mysql://root@127.0.0.1:3307\"",
        "url = \"mysql://root@127.0.0.1:3307\"\ntls = { mode = \"verify_ca\" }",
    );
    assert_mentions(
        &error(&text),
        &[
            "`source.tls.mode` = \"verify_ca\" is not a valid value",
            "did you mean `verify-ca`?",
            "disabled, preferred, required, verify-ca, verify-full",
        ],
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = load("[source]\nurl = \"mysql://x\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    assert_mentions(&err.to_string(), &["test.toml:2:", "not valid TOML"]);
}

#[test]
fn env_override_replaces_values_of_any_type() {
    let e = env(&[
        ("STRATA_SOURCE__URL", "mysql://strata@db.internal:3306"),
        ("STRATA_VERSIONS__FUTURE__REDIS__DB", "5"),
        ("STRATA_DEFAULTS__BATCH_MAX_ROWS", "500"),
        ("STRATA_DEFAULTS__BATCH_MAX_DELAY", "10ms"),
        ("STRATA_LOG", "debug"),
        ("STRATA_TEST_REDIS_URL", "redis://elsewhere"),
    ]);
    let config = Config::parse(MINIMAL, "test.toml", &e).unwrap();
    assert_eq!(
        config.source.url.expose(),
        "mysql://strata@db.internal:3306"
    );
    let v = config.version("future").unwrap();
    assert_eq!(v.targets.redis.as_ref().unwrap().db, 5);
    assert_eq!(v.apply.batch_max_rows, 500);
    assert_eq!(v.apply.batch_max_delay.as_millis(), 10);
}

#[test]
fn env_override_can_add_a_whole_target() {
    let e = env(&[
        (
            "STRATA_SERVERS__POSTGRES__URL",
            "postgres://postgres@127.0.0.1:5433/postgres",
        ),
        (
            "STRATA_VERSIONS__FUTURE__POSTGRES__SCHEMA",
            "jobfirst_future",
        ),
    ]);
    let config = Config::parse(MINIMAL, "test.toml", &e).unwrap();
    let pg = config.version("future").unwrap().targets.postgres.clone();
    assert_eq!(pg.unwrap().schema, "jobfirst_future");
}

#[test]
fn env_override_with_unknown_key_names_the_variable() {
    let e = env(&[("STRATA_DEFAULTS__BATCH_SIZE", "500")]);
    let err = Config::parse(MINIMAL, "test.toml", &e).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(
        problems[0].origin,
        Origin::Env("STRATA_DEFAULTS__BATCH_SIZE".into())
    );
    assert_mentions(
        &err.to_string(),
        &[
            "environment variable STRATA_DEFAULTS__BATCH_SIZE",
            "unknown key `batch_size` in [defaults]",
            "`batch_max_rows`",
        ],
    );
}

#[test]
fn env_override_with_a_bad_value_names_the_variable() {
    let e = env(&[("STRATA_VERSIONS__FUTURE__SERVER_ID", "lots")]);
    let err = error_with(MINIMAL, &e);
    assert_mentions(
        &err,
        &[
            "STRATA_VERSIONS__FUTURE__SERVER_ID",
            "`versions.future.server_id` has a bad value",
        ],
    );
}

#[test]
fn secret_from_env_is_applied_and_a_missing_variable_is_named() {
    let text = MINIMAL.replace(
        "url = \"mysql://root@127.0.0.1:3307\"",
        "url = \"mysql://strata@127.0.0.1:3307\"\npassword = { env = \"STRATA_TEST_CFG_PW_1\" }",
    );
    let err = error(&text);
    assert_mentions(
        &err,
        &[
            "`source.password`",
            "`STRATA_TEST_CFG_PW_1`",
            "is not set",
            "export",
        ],
    );
    let config = Config::parse(
        &text,
        "test.toml",
        &env(&[("STRATA_TEST_CFG_PW_1", "s3cr3t/pw")]),
    )
    .unwrap();
    assert_eq!(
        config.source.url.expose(),
        "mysql://strata:s3cr3t%2Fpw@127.0.0.1:3307"
    );
    assert!(!format!("{config:?}").contains("s3cr3t"));
    assert!(!config.source.url.to_string().contains("s3cr3t"));
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let text = r#"
[source]
url = "mysql://strata@127.0.0.1:3307"
password = "hunter2-literal"

[servers]
opensearch = { url = "http://127.0.0.1:9201", username = "admin", password = "os-hunter2" }
redis = { url = "redis://:redis-hunter2@127.0.0.1:6380" }

[versions.future]
server_id = 1001
schemas = ["jobfirst_future"]
[versions.future.opensearch]
index_prefix = "jobfirst_future_"
[versions.future.redis]
db = 0
key_prefix = "future:"
"#;
    let config = load(text).unwrap();
    let debug = format!("{config:?}");
    for secret in ["hunter2-literal", "os-hunter2", "redis-hunter2"] {
        assert!(
            !debug.contains(secret),
            "{secret} leaked into Debug: {debug}"
        );
    }
    let search = config
        .version("future")
        .unwrap()
        .targets
        .opensearch
        .clone()
        .unwrap();
    assert_eq!(search.password.unwrap().expose(), "os-hunter2");
    assert_eq!(search.username.as_deref(), Some("admin"));
    let redis = config
        .version("future")
        .unwrap()
        .targets
        .redis
        .clone()
        .unwrap();
    assert_eq!(redis.url.expose(), "redis://:redis-hunter2@127.0.0.1:6380");

    // A bad value in a secret's place, or a bad URL around a password, is not echoed.
    let bad = text.replace("password = \"hunter2-literal\"", "password = 424242");
    let err = error(&bad);
    assert_mentions(&err, &["`source.password`", "env = "]);
    assert!(!err.contains("424242"), "{err}");
    let bad = text.replace(
        "redis://:redis-hunter2@127.0.0.1:6380",
        "redis://:redis-hunter2@h:port",
    );
    let err = error(&bad);
    assert_mentions(&err, &["`servers.redis.url`", "bad host"]);
    assert!(!err.contains("redis-hunter2"), "{err}");
}

#[test]
fn a_version_without_targets_says_which_sections_to_add() {
    let text = r#"
[source]
url = "mysql://root@127.0.0.1:3307"
[versions.future]
server_id = 1001
schemas = ["jobfirst_future"]
"#;
    assert_mentions(
        &error(text),
        &[
            "[versions.future] has no target",
            "[versions.future.mongodb] (database)",
            "[versions.future.redis] (db, key_prefix)",
            "[versions.future.opensearch] (index_prefix)",
            "[versions.future.postgres] (schema)",
        ],
    );
}

#[test]
fn no_versions_at_all_is_an_error() {
    let text = "[source]\nurl = \"mysql://root@127.0.0.1:3307\"\n";
    assert_mentions(
        &error(text),
        &["no version is configured", "[versions.<name>]"],
    );
}

#[test]
fn a_target_without_a_server_says_where_to_put_one() {
    let text = format!("{MINIMAL}\n[versions.future.mongodb]\ndatabase = \"jobfirst_future\"\n");
    assert_mentions(
        &error(&text),
        &[
            "[versions.future.mongodb] has no server",
            "[servers.mongodb]",
            "own `url`",
        ],
    );
}

#[test]
fn value_rules_are_checked_and_all_problems_reported_at_once() {
    let text = r#"
[source]
url = "mysql://root@127.0.0.1:3307"
[servers]
redis = { url = "redis://127.0.0.1:6380" }
opensearch = { url = "http://127.0.0.1:9201" }
[defaults]
workers = 0
[versions.Future]
server_id = 0
schemas = []
start = "yesterday"
exclude_columns = ["password_hash"]
[versions.Future.tables.users]
guard = ""
[versions.Future.redis]
db = 16
key_prefix = ""
[versions.Future.opensearch]
index_prefix = "JobFirst_"
"#;
    let err = load(text).unwrap_err();
    let lines = err.lines();
    let msg = err.to_string();
    assert_mentions(
        &msg,
        &[
            "test.toml has 10 problems",
            "`defaults.workers` is 0",
            "version name \"Future\"",
            "`versions.Future.server_id` is 0",
            "`versions.Future.schemas` is empty",
            "`versions.Future.start`: \"yesterday\"",
            "`versions.Future.exclude_columns[0]`",
            "`versions.Future.tables.users.guard` is empty",
            "`versions.Future.redis.db` reaches DB 16",
            "`versions.Future.redis.key_prefix` is empty",
            "`versions.Future.opensearch.index_prefix` = \"JobFirst_\" has uppercase",
        ],
    );
    assert_eq!(lines.len(), 10, "{msg}");
    // Each line points at its key in the file.
    let redis_line = text.lines().position(|l| l == "db = 16").unwrap() + 1;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("test.toml:{redis_line}:"))),
        "{msg}"
    );
}

#[test]
fn redis_db_and_range_rules() {
    let text = MINIMAL.replace("db = 0", "dbs = \"3-1\"");
    assert_mentions(
        &error(&text),
        &["`versions.future.redis.dbs`", "runs backwards"],
    );
    let text = MINIMAL.replace("db = 0", "db = 0\ndbs = \"0-2\"");
    assert_mentions(&error(&text), &["sets both `db` and `dbs`"]);
    let text = MINIMAL.replace("db = 0\n", "");
    assert_mentions(&error(&text), &["needs `db = <0-15>` or `dbs"]);
    let text = MINIMAL.replace("redis://127.0.0.1:6380", "redis://127.0.0.1:6380/4");
    assert_mentions(
        &error(&text),
        &["names DB \"4\"", "leave the DB out of the URL"],
    );
}

#[test]
fn tls_and_timeouts_are_checked() {
    let with = |extra: &str| {
        MINIMAL.replace(
            "url = \"mysql://root@127.0.0.1:3307\"",
            &format!("url = \"mysql://root@127.0.0.1:3307\"\n{extra}"),
        )
    };
    assert_mentions(
        &error(&with("tls = { mode = \"verify-ca\" }")),
        &["verify-ca", "no CA is given", "ca_file"],
    );
    assert_mentions(
        &error(&with("heartbeat = \"30s\"\nread_timeout = \"10s\"")),
        &["`source.read_timeout`", "longer than `source.heartbeat`"],
    );
    assert_mentions(
        &error(&MINIMAL.replace("mysql://root@", "postgres://root@")),
        &["`source.url`", "expected `mysql://`"],
    );
}

#[test]
fn explicit_targets_that_collide_inside_a_version_are_refused() {
    let text = format!(
        "{MINIMAL}\n[versions.future.tables.people]\ntarget = \"users\"\n\
         [versions.future.tables.users]\nguard = \"updated_at\"\n"
    );
    assert_mentions(
        &error(&text),
        &[
            "tables \"people\" and \"users\"",
            "both be written as \"users\"",
        ],
    );
}

#[test]
fn a_table_created_only_by_an_override_is_blamed_on_the_variable() {
    let e = env(&[("STRATA_VERSIONS__NEW__SERVER_ID", "5")]);
    let err = error_with(MINIMAL, &e);
    assert_mentions(
        &err,
        &[
            "environment variable STRATA_VERSIONS__NEW__SERVER_ID",
            "missing required key `schemas` in [versions.new]",
        ],
    );
}

#[test]
fn a_broken_shared_server_is_reported_once() {
    let text = MINIMAL.replace("redis://127.0.0.1:6380", "http://127.0.0.1:6380");
    let err = load(&text).unwrap_err();
    assert_eq!(err.lines().len(), 1, "{err}");
    assert_mentions(
        &err.to_string(),
        &["`servers.redis.url`", "expected `redis://` or `rediss://`"],
    );
}
