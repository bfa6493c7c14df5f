//! Shared helpers: a minimal valid config to build cases from, and loading with an explicit
//! environment (tests never read or change the process environment).

#![allow(dead_code)]

use strata_config::{Config, ConfigError, Environment};

/// A valid config with one version, `future`, writing to Redis.
pub const MINIMAL: &str = r#"
[source]
url = "mysql://root@127.0.0.1:3307"

[servers]
redis = { url = "redis://127.0.0.1:6380" }

[versions.future]
server_id = 1001
schemas = ["jobfirst_future"]

[versions.future.redis]
db = 0
key_prefix = "future:"
"#;

pub fn env(pairs: &[(&str, &str)]) -> Environment {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn load(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", &Environment::default())
}

/// The error's message for a config that must not load.
pub fn error(text: &str) -> String {
    error_with(text, &Environment::default())
}

pub fn error_with(text: &str, env: &Environment) -> String {
    match Config::parse(text, "test.toml", env) {
        Ok(_) => panic!("config loaded but should not have:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `haystack` contains every needle, showing the message when not.
pub fn assert_mentions(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}
