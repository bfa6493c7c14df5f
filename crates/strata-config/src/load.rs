//! Loading: read → parse TOML → apply `STRATA_*` overrides → typed deserialization →
//! resolve and validate → isolation lint.

use crate::diagnose;
use crate::environment::{apply_overrides, Environment, Overrides};
use crate::error::{ConfigError, Problem};
use crate::file::ConfigFile;
use crate::lint;
use crate::resolve::resolve;
use crate::settings::Config;
use std::path::Path;

impl Config {
    /// Loads `path` in the process environment (overrides and secret references).
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &Environment::process())
    }

    /// Loads `path` in the given environment.
    pub fn load_with_env(path: impl AsRef<Path>, env: &Environment) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string(), env)
    }

    /// Loads a config from its text; `file` names it in messages.
    pub fn parse(text: &str, file: &str, env: &Environment) -> Result<Config, ConfigError> {
        let mut tree: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| diagnose::line_column(text, s.start));
            ConfigError::Syntax {
                file: file.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let invalid = |mut problems: Vec<Problem>, overrides: &Overrides| {
            diagnose::locate(&mut problems, text, overrides);
            ConfigError::Invalid {
                file: file.to_owned(),
                problems,
            }
        };
        let overrides = apply_overrides(&mut tree, env)
            .map_err(|problems| invalid(problems, &Overrides::default()))?;
        let parsed: ConfigFile = serde_path_to_error::deserialize(toml::Value::Table(tree))
            .map_err(|e| invalid(vec![diagnose::from_deserialize(&e)], &overrides))?;
        let (source, versions) =
            resolve(parsed, env).map_err(|problems| invalid(problems, &overrides))?;
        let conflicts = lint::conflicts(&versions);
        if !conflicts.is_empty() {
            return Err(ConfigError::NotIsolated {
                file: file.to_owned(),
                conflicts,
            });
        }
        Ok(Config {
            file: file.to_owned(),
            source,
            versions,
        })
    }
}
