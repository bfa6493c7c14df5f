//! What can be wrong with a configuration, said so that the reader knows what to change.

use crate::key_path::KeyPath;
use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be used. Its `Display` is one message (one line per
/// problem when there are several) naming the file, the key, what is wrong and the fix.
///
/// Every variant is a usage error: the binary exits with [`ConfigError::EXIT_CODE`] (2).
/// Messages never contain a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read config file {}: {source}; check the path given with --config (or \
         STRATA_CONFIG)",
        path.display()
    )]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}:{line}:{column}: not valid TOML: {message}; fix the syntax there")]
    Syntax {
        /// The file's name as given.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// Keys that are unknown, missing or have bad values, as many as were found.
    #[error("{}", Listing { file, what: "problems", items: problems })]
    Invalid {
        /// The file's name as given.
        file: String,
        /// Each problem, in file order where possible.
        problems: Vec<Problem>,
    },
    /// Versions that would share a source schema, a server_id or a target namespace.
    #[error("{}", Listing { file, what: "isolation conflicts between versions", items: conflicts })]
    NotIsolated {
        /// The file's name as given.
        file: String,
        /// One line per pair of versions and shared thing.
        conflicts: Vec<String>,
    },
    /// A version was asked for by name and the file has no such version.
    #[error(
        "{file} has no version named `{name}`; configured versions: {}; pass one of them with \
         --version (or STRATA_VERSION)",
        known.join(", ")
    )]
    UnknownVersion {
        /// The file's name as given.
        file: String,
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
}

impl ConfigError {
    /// The process exit code for any configuration error: 2, "fix the input and run again".
    pub const EXIT_CODE: u8 = 2;

    /// The retry policy's kind: configuration, never retried.
    pub fn kind(&self) -> strata_core::ErrorKind {
        strata_core::ErrorKind::Config
    }

    /// The individual problem lines (one for `Read`, `Syntax` and `UnknownVersion`).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { file, problems } => problems
                .iter()
                .map(|p| p.display(file).to_string())
                .collect(),
            ConfigError::NotIsolated { file, conflicts } => {
                conflicts.iter().map(|c| format!("{file}: {c}")).collect()
            }
            other => vec![other.to_string()],
        }
    }
}

/// Where a bad setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A spot in the file (1-based line and column).
    File {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A `STRATA_…` environment override.
    Env(String),
    /// Not known (e.g. a default).
    Unknown,
}

/// One bad setting: the key, where it came from, and a message that says what is wrong and
/// how to fix it (the message already names the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub(crate) key: KeyPath,
    /// Where the setting came from.
    pub origin: Origin,
    /// What is wrong and the fix.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: KeyPath, message: impl Into<String>) -> Self {
        Problem {
            key,
            origin: Origin::Unknown,
            message: message.into(),
        }
    }

    /// The dotted key path, e.g. `versions.future.redis.db` (empty for the whole file).
    pub fn key(&self) -> String {
        self.key.to_string()
    }

    /// The problem as one line prefixed with its place: `file:line:col: …`, or the
    /// environment variable that set the value.
    pub fn display<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct D<'a>(&'a Problem, &'a str);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let D(p, file) = self;
                match &p.origin {
                    Origin::File { line, column } => write!(f, "{file}:{line}:{column}: ")?,
                    Origin::Env(var) => {
                        write!(f, "{file}: environment variable {var} (an override): ")?
                    }
                    Origin::Unknown => write!(f, "{file}: ")?,
                }
                f.write_str(&p.message)
            }
        }
        D(self, file)
    }
}

/// One line for a single item; a count and one indented line per item for several.
struct Listing<'a, T> {
    file: &'a str,
    what: &'a str,
    items: &'a [T],
}

trait ListItem {
    /// Writes the item; `listed` when under a heading that already names the file.
    fn write(&self, file: &str, listed: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl ListItem for Problem {
    fn write(&self, file: &str, _: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Kept under a heading too: `file:line:col` is what editors jump to.
        write!(f, "{}", self.display(file))
    }
}

impl ListItem for String {
    fn write(&self, file: &str, listed: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if listed {
            f.write_str(self)
        } else {
            write!(f, "{file}: {self}")
        }
    }
}

impl<T: ListItem> fmt::Display for Listing<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.items {
            [one] => one.write(self.file, false, f),
            many => {
                write!(f, "{} has {} {}:", self.file, many.len(), self.what)?;
                for item in many {
                    f.write_str("\n  ")?;
                    item.write(self.file, true, f)?;
                }
                Ok(())
            }
        }
    }
}
