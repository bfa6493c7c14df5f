//! The isolation lint: versions that share a source schema, a server_id or a target
//! namespace are refused, every conflict reported at once; distinct servers are fine.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{assert_mentions, load};
use strata_config::ConfigError;

/// Two versions `a` and `b` with their own schemas and server ids, plus extra lines each.
fn two_versions(a_extra: &str, b_extra: &str) -> String {
    format!(
        r#"
[source]
url = "mysql://root@127.0.0.1:3307"

[servers]
mongodb = {{ url = "mongodb://127.0.0.1:27019" }}
redis = {{ url = "redis://127.0.0.1:6380" }}
opensearch = {{ url = "http://127.0.0.1:9201" }}
postgres = {{ url = "postgres://postgres@127.0.0.1:5433/postgres" }}

[versions.a]
server_id = 1
schemas = ["app_a"]
{a_extra}

[versions.b]
server_id = 2
schemas = ["app_b"]
{b_extra}
"#
    )
}

fn targets(name: &str, db: &str, prefix: &str) -> String {
    format!(
        r#"
[versions.{name}.mongodb]
database = "{name}_db"
[versions.{name}.redis]
{db}
key_prefix = "{name}:"
[versions.{name}.opensearch]
index_prefix = "{prefix}"
[versions.{name}.postgres]
schema = "{name}_schema"
"#
    )
}

/// The conflict lines of a config that must fail the lint.
fn conflicts(text: &str) -> Vec<String> {
    match load(text) {
        Err(ConfigError::NotIsolated { conflicts, .. }) => conflicts,
        Err(other) => panic!("expected an isolation error, got: {other}"),
        Ok(_) => panic!("expected an isolation error, the config loaded:\n{text}"),
    }
}

fn one_conflict(text: &str, needles: &[&str]) {
    let c = conflicts(text);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_mentions(&c[0], needles);
    assert_mentions(&c[0], &["versions `a` and `b`"]);
}

#[test]
fn separate_namespaces_pass() {
    let text = two_versions(
        &targets("a", "db = 0", "a_"),
        &targets("b", "dbs = \"1-2\"", "b_"),
    );
    let config = load(&text).unwrap();
    assert_eq!(config.versions.len(), 2);
}

#[test]
fn shared_source_schema_is_refused() {
    let text = two_versions(
        &targets("a", "db = 0", "a_"),
        &format!("{}\n", targets("b", "db = 1", "b_")),
    )
    .replace("schemas = [\"app_b\"]", "schemas = [\"app_b\", \"app_a\"]");
    one_conflict(
        &text,
        &["source schema `app_a`", "compared exactly", "own schemas"],
    );
    // Schema names compare exactly, as MySQL does on Linux.
    let text = two_versions(&targets("a", "db = 0", "a_"), &targets("b", "db = 1", "b_"))
        .replace("schemas = [\"app_b\"]", "schemas = [\"APP_A\"]");
    assert!(load(&text).is_ok());
}

#[test]
fn shared_server_id_is_refused() {
    let text = two_versions(&targets("a", "db = 0", "a_"), &targets("b", "db = 1", "b_"))
        .replace("server_id = 2", "server_id = 1");
    one_conflict(&text, &["server_id 1", "own server_id"]);
}

#[test]
fn shared_mongodb_database_is_refused_case_insensitively() {
    let text = two_versions(&targets("a", "db = 0", "a_"), &targets("b", "db = 1", "b_"))
        .replace("database = \"b_db\"", "database = \"A_DB\"");
    one_conflict(
        &text,
        &["MongoDB database", "localhost:27019", "own `database`"],
    );
}

#[test]
fn overlapping_redis_dbs_on_one_server_are_refused() {
    let text = two_versions(
        &targets("a", "dbs = \"0-2\"", "a_"),
        &targets("b", "dbs = \"2-4\"", "b_"),
    );
    one_conflict(
        &text,
        &["Redis DBs", "DBs 0-2 and DBs 2-4", "non-overlapping"],
    );
    let text = two_versions(&targets("a", "db = 3", "a_"), &targets("b", "db = 3", "b_"));
    one_conflict(&text, &["DB 3 and DB 3"]);
}

#[test]
fn the_same_redis_db_on_different_servers_is_fine() {
    let b = targets("b", "db = 0\nurl = \"redis://127.0.0.1:6381\"", "b_");
    let text = two_versions(&targets("a", "db = 0", "a_"), &b);
    let config = load(&text).unwrap();
    let b = config.version("b").unwrap().targets.redis.clone().unwrap();
    assert_eq!(b.url.expose(), "redis://127.0.0.1:6381");
}

#[test]
fn the_same_server_written_two_ways_is_one_server() {
    let b = targets("b", "db = 0\nurl = \"redis://localhost:6380/\"", "b_");
    let text = two_versions(&targets("a", "db = 0", "a_"), &b);
    one_conflict(&text, &["Redis DBs", "localhost:6380"]);
}

#[test]
fn overlapping_index_prefixes_are_refused() {
    let text = two_versions(
        &targets("a", "db = 0", "jobfirst_"),
        &targets("b", "db = 1", "jobfirst_future_"),
    );
    one_conflict(
        &text,
        &[
            "index prefixes `jobfirst_` and `jobfirst_future_`",
            "one is a prefix",
        ],
    );
    let text = two_versions(
        &targets("a", "db = 0", "same_"),
        &targets("b", "db = 1", "same_"),
    );
    one_conflict(&text, &["index prefixes `same_` and `same_`"]);
}

#[test]
fn index_prefixes_on_different_clusters_are_fine() {
    let b = targets("b", "db = 1", "jobfirst_").replace(
        "index_prefix = \"jobfirst_\"",
        "index_prefix = \"jobfirst_\"\nurl = \"http://127.0.0.1:9202\"",
    );
    assert!(load(&two_versions(&targets("a", "db = 0", "jobfirst_"), &b)).is_ok());
}

#[test]
fn shared_postgres_schema_on_one_database_is_refused() {
    let text = two_versions(&targets("a", "db = 0", "a_"), &targets("b", "db = 1", "b_"))
        .replace("schema = \"b_schema\"", "schema = \"a_schema\"");
    one_conflict(
        &text,
        &[
            "PostgreSQL schema `a_schema`",
            "database `postgres`",
            "own `schema`",
        ],
    );
    // The same schema name in another database of the server is another schema.
    let b = targets("b", "db = 1", "b_").replace(
        "schema = \"b_schema\"",
        "schema = \"a_schema\"\nurl = \"postgres://postgres@127.0.0.1:5433/other\"",
    );
    assert!(load(&two_versions(&targets("a", "db = 0", "a_"), &b)).is_ok());
}

#[test]
fn shared_http_port_and_checkpoint_file_are_refused() {
    let text = two_versions(
        &format!(
            "http = \"127.0.0.1:9641\"\n{}",
            targets("a", "db = 0", "a_")
        ),
        &format!("http = \"0.0.0.0:9641\"\n{}", targets("b", "db = 1", "b_")),
    );
    one_conflict(&text, &["listen on", "9641", "own `http` port"]);
    let text = two_versions(
        &format!(
            "checkpoint = {{ path = \"cp.json\" }}\n{}",
            targets("a", "db = 0", "a_")
        ),
        &format!(
            "checkpoint = {{ path = \"cp.json\" }}\n{}",
            targets("b", "db = 1", "b_")
        ),
    );
    one_conflict(&text, &["checkpoint in cp.json"]);
}

#[test]
fn every_conflict_is_reported_at_once_one_line_each() {
    let b = targets("b", "db = 0", "a_")
        .replace("database = \"b_db\"", "database = \"a_db\"")
        .replace("schema = \"b_schema\"", "schema = \"a_schema\"");
    let text = two_versions(&targets("a", "db = 0", "a_"), &b)
        .replace("server_id = 2", "server_id = 1")
        .replace("schemas = [\"app_b\"]", "schemas = [\"app_a\"]");
    let err = load(&text).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.lines().len(), 6, "{msg}");
    assert_mentions(
        &msg,
        &[
            "test.toml has 6 isolation conflicts between versions:",
            "source schema `app_a`",
            "server_id 1",
            "MongoDB database `a_db`",
            "Redis DBs",
            "index prefixes `a_` and `a_`",
            "PostgreSQL schema `a_schema`",
        ],
    );
    assert_eq!(ConfigError::EXIT_CODE, 2);
}
