//! Dotted key paths (`versions.future.redis.db`) that name a setting in messages.

use std::fmt;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a setting sits in the config tree, printed the way it is written in TOML
/// (`versions.future.tables."jobfirst_future.users".guard`, `versions.dao.schemas[1]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    /// A path of table keys.
    pub(crate) fn of(keys: &[&str]) -> Self {
        KeyPath(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// This path with one more key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path with one more array index.
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// The path without its last step.
    pub(crate) fn parent(&self) -> KeyPath {
        let mut p = self.clone();
        p.0.pop();
        p
    }

    /// The last key, if the path ends in one.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    pub(crate) fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The table header that holds this path's key, e.g. `[versions.future]`, or "the top
    /// level".
    pub(crate) fn section(&self) -> String {
        if self.0.is_empty() {
            "the top level".to_owned()
        } else {
            format!("[{self}]")
        }
    }

    /// From `serde_path_to_error`'s path.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

/// A key that TOML can write bare; others are quoted.
fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    if is_bare(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_toml_keys() {
        let p = KeyPath::of(&["versions", "future", "tables", "jobfirst_future.users"]);
        assert_eq!(
            p.key("guard").to_string(),
            "versions.future.tables.\"jobfirst_future.users\".guard"
        );
        assert_eq!(
            KeyPath::of(&["versions", "dao", "schemas"])
                .index(1)
                .to_string(),
            "versions.dao.schemas[1]"
        );
        assert_eq!(KeyPath::default().section(), "the top level");
        assert_eq!(KeyPath::of(&["defaults"]).section(), "[defaults]");
    }
}
