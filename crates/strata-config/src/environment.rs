//! The environment a config is loaded in: `STRATA_<PATH>` overrides and secret references.

use crate::error::{Origin, Problem};
use crate::key_path::KeyPath;
use std::collections::BTreeMap;

/// Environment variables as the loader sees them.
///
/// [`Environment::process`] takes the process environment; tests build one from pairs so
/// that they never touch (or race on) the real one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The process environment. Variables whose name or value is not UTF-8 are left out.
    pub fn process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl FromIterator<(String, String)> for Environment {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Environment {
            vars: iter.into_iter().collect(),
        }
    }
}

/// The prefix of every strata variable. Only those with `__` in the rest are overrides: the
/// binary's own `STRATA_LOG`, `STRATA_CONFIG`, … and the tests' `STRATA_TEST_*` are not.
const PREFIX: &str = "STRATA_";
const SEPARATOR: &str = "__";

/// The overrides applied to a config tree: which variable set which key.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    applied: Vec<(KeyPath, String)>,
}

impl Overrides {
    /// The variable that set `path` or one of the tables above it.
    pub(crate) fn setting(&self, path: &KeyPath) -> Option<&str> {
        self.applied
            .iter()
            .filter(|(p, _)| path.starts_with(p))
            .max_by_key(|(p, _)| p.0.len())
            .map(|(_, var)| var.as_str())
    }

    /// A variable that set something below `path` (which then exists only because of it).
    pub(crate) fn below(&self, path: &KeyPath) -> Option<&str> {
        self.applied
            .iter()
            .find(|(p, _)| p.starts_with(path))
            .map(|(_, var)| var.as_str())
    }
}

/// Applies every `STRATA_<PATH>` variable (segments separated by `__`) to `root`.
///
/// A segment names an existing key at its level when it equals that key upper-cased with
/// `-` as `_`; otherwise it is taken lower-cased, and a table is created for it if needed.
/// The value replaces a string as it is; anything else is read as a TOML value when it
/// parses as one (`5`, `true`, `["a", "b"]`, `{ env = "X" }`) and as a string otherwise.
pub(crate) fn apply_overrides(
    root: &mut toml::Table,
    env: &Environment,
) -> Result<Overrides, Vec<Problem>> {
    let mut overrides = Overrides::default();
    let mut problems = Vec::new();
    for (var, raw) in &env.vars {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        if !rest.contains(SEPARATOR) {
            continue;
        }
        match apply_one(root, rest, raw) {
            Ok(path) => overrides.applied.push((path, var.clone())),
            Err(message) => problems.push(Problem {
                key: KeyPath::default(),
                origin: Origin::Env(var.clone()),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(overrides)
    } else {
        Err(problems)
    }
}

fn apply_one(root: &mut toml::Table, rest: &str, raw: &str) -> Result<KeyPath, String> {
    let segments: Vec<&str> = rest.split(SEPARATOR).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(
            "the variable name has an empty key between `__` separators; write \
                    STRATA_<SECTION>__<KEY>, e.g. STRATA_DEFAULTS__WORKERS=8"
                .to_owned(),
        );
    }
    let mut path = KeyPath::default();
    let mut table = root;
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| "the variable names no key".to_owned())?;
    for seg in parents {
        let key = existing_key(table, seg);
        path = path.key(&key);
        let entry = table
            .entry(key)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{path}` is a value, not a table, so nothing can be set below it; \
                     override `{path}` itself with STRATA_{}",
                    path_to_var(&path)
                ))
            }
        };
    }
    let key = existing_key(table, last);
    path = path.key(&key);
    let value = match table.get(&key) {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_owned()),
        _ => parse_value(raw),
    };
    table.insert(key, value);
    Ok(path)
}

/// The key at this level that `segment` names, or `segment` lower-cased.
fn existing_key(table: &toml::Table, segment: &str) -> String {
    table
        .keys()
        .find(|k| k.to_ascii_uppercase().replace('-', "_") == segment.to_ascii_uppercase())
        .cloned()
        .unwrap_or_else(|| segment.to_ascii_lowercase())
}

/// The value as TOML if it parses as one, else the text as a string.
fn parse_value(raw: &str) -> toml::Value {
    let parsed = format!("value = {raw}").parse::<toml::Table>();
    match parsed {
        Ok(mut t) if t.len() == 1 => t
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        _ => toml::Value::String(raw.to_owned()),
    }
}

/// The variable name that overrides `path`, without the `STRATA_` prefix.
pub(crate) fn path_to_var(path: &KeyPath) -> String {
    path.0
        .iter()
        .filter_map(|s| match s {
            crate::key_path::Segment::Key(k) => Some(k.to_ascii_uppercase().replace('-', "_")),
            crate::key_path::Segment::Index(_) => None,
        })
        .collect::<Vec<_>>()
        .join(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn overrides_set_typed_values_and_keep_strings_strings() {
        let mut root: toml::Table = r#"
            [source]
            url = "mysql://root@127.0.0.1:3307"
            [versions.dao-v2]
            server_id = 1
        "#
        .parse()
        .unwrap();
        let o = apply_overrides(
            &mut root,
            &env(&[
                ("STRATA_SOURCE__URL", "mysql://strata@db:3306"),
                ("STRATA_VERSIONS__DAO_V2__SERVER_ID", "7"),
                ("STRATA_VERSIONS__DAO_V2__REDIS__DB", "5"),
                ("STRATA_VERSIONS__DAO_V2__SCHEMAS", r#"["a", "b"]"#),
                ("STRATA_DEFAULTS__DATA_DIR", "/var/lib/strata"),
                ("STRATA_LOG", "debug"),
                ("STRATA_TEST_REDIS_URL", "redis://x"),
            ]),
        )
        .unwrap();
        let v = toml::Value::Table(root);
        assert_eq!(v["source"]["url"].as_str(), Some("mysql://strata@db:3306"));
        assert_eq!(v["versions"]["dao-v2"]["server_id"].as_integer(), Some(7));
        assert_eq!(v["versions"]["dao-v2"]["redis"]["db"].as_integer(), Some(5));
        assert_eq!(
            v["versions"]["dao-v2"]["schemas"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(v["defaults"]["data_dir"].as_str(), Some("/var/lib/strata"));
        assert!(v.get("log").is_none() && v.get("test_redis_url").is_none());
        assert_eq!(
            o.setting(&KeyPath::of(&["versions", "dao-v2", "redis", "db"])),
            Some("STRATA_VERSIONS__DAO_V2__REDIS__DB")
        );
    }

    #[test]
    fn overrides_below_a_value_are_refused() {
        let mut root: toml::Table = "[source]\nurl = \"x\"".parse().unwrap();
        let problems =
            apply_overrides(&mut root, &env(&[("STRATA_SOURCE__URL__HOST", "h")])).unwrap_err();
        assert!(problems[0].message.contains("`source.url` is a value"));
        let problems =
            apply_overrides(&mut root, &env(&[("STRATA_SOURCE____URL", "h")])).unwrap_err();
        assert!(problems[0].message.contains("empty key"));
    }
}
