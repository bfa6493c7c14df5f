//! `examples/jobfirst.toml` loads as-is and says what the JobFirst layout needs.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::path::Path;
use std::time::Duration;
use strata_config::{Config, Environment, Guard, StartFrom, TlsMode};

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobfirst.toml");
    Config::load_with_env(&path, &Environment::default())
        .unwrap_or_else(|e| panic!("examples/jobfirst.toml does not load: {e}"))
}

#[test]
fn jobfirst_example_loads_with_three_isolated_versions() {
    let config = example();
    assert_eq!(
        config.versions.keys().collect::<Vec<_>>(),
        ["blockchain", "dao", "future"]
    );
    assert_eq!(config.source.url.expose(), "mysql://root@127.0.0.1:3307");
    assert_eq!(config.source.tls.mode, TlsMode::Disabled);
    assert_eq!(config.source.heartbeat, Duration::from_secs(5));

    for (name, server_id, dbs, port) in [
        ("future", 1001, 0..=2, 9641),
        ("dao", 1002, 3..=5, 9642),
        ("blockchain", 1003, 6..=8, 9643),
    ] {
        let v = config.version(name).unwrap();
        let schema = format!("jobfirst_{name}");
        assert_eq!(v.server_id, server_id);
        assert_eq!(v.rules.schemas(), std::slice::from_ref(&schema));
        assert_eq!(v.http.port(), port);
        assert_eq!(v.start, StartFrom::Current);
        assert_eq!(v.data_dir(), Path::new(".strata").join(name));
        assert_eq!(
            v.checkpoint_path(),
            Path::new(".strata").join(name).join("checkpoint.json")
        );
        let t = &v.targets;
        let mongo = t.mongodb.as_ref().unwrap();
        assert_eq!(mongo.database, schema);
        assert_eq!(mongo.url.expose(), "mongodb://127.0.0.1:27019");
        let redis = t.redis.as_ref().unwrap();
        assert_eq!(redis.dbs, dbs);
        assert_eq!(redis.db, *dbs.start());
        assert_eq!(redis.key_prefix, format!("{name}:"));
        let search = t.opensearch.as_ref().unwrap();
        assert_eq!(search.index_prefix, format!("{schema}_"));
        assert_eq!(search.url.expose(), "http://127.0.0.1:9201");
        let pg = t.postgres.as_ref().unwrap();
        assert_eq!(pg.schema, schema);
        assert_eq!(pg.database(), "postgres");
        assert_eq!(
            v.rules.guard(&schema, "users"),
            &Guard::Column("updated_at".into())
        );
        assert!(v.rules.column_excluded(&schema, "users", "password_hash"));
        assert!(v.rules.wants(&schema, "users"));
        assert!(!v.rules.wants(&schema, "tmp_import"));
        assert!(!v.rules.wants("jobfirst_other", "users"));
    }
}

#[test]
fn jobfirst_example_carries_table_options_and_overrides() {
    let config = example();
    let future = config.version("future").unwrap();
    let opts = future
        .rules
        .table_options("jobfirst_future", "job_tags")
        .unwrap();
    assert_eq!(opts.key, ["job_id", "tag"]);
    assert_eq!(
        future.rules.target_name("jobfirst_future", "job_tags"),
        "job_tag"
    );
    assert!(future
        .rules
        .column_excluded("jobfirst_future", "resumes", "id_card_number"));
    assert_eq!(future.apply.workers, 4);
    assert_eq!(future.apply.batch_max_bytes, 4 << 20);
    assert_eq!(future.apply.batch_max_delay, Duration::from_millis(50));
    assert_eq!(future.apply.tombstone_ttl, Duration::from_secs(86_400));
    let blockchain = config.version("blockchain").unwrap();
    assert_eq!(blockchain.apply.workers, 8);
    assert!(blockchain
        .rules
        .column_excluded("jobfirst_blockchain", "wallets", "private_key"));
}

#[test]
fn asking_for_an_unknown_version_lists_the_configured_ones() {
    let err = example().version("legacy").unwrap_err().to_string();
    common::assert_mentions(
        &err,
        &[
            "no version named `legacy`",
            "blockchain, dao, future",
            "--version",
        ],
    );
}

#[test]
fn a_missing_file_says_which_path_and_where_it_came_from() {
    let err =
        Config::load_with_env("/nonexistent/strata.toml", &Environment::default()).unwrap_err();
    assert_eq!(strata_config::ConfigError::EXIT_CODE, 2);
    common::assert_mentions(
        &err.to_string(),
        &[
            "cannot read config file /nonexistent/strata.toml",
            "--config",
        ],
    );
}
