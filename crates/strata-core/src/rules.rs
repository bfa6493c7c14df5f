//! Which tables and columns a version replicates, and per-table options.
//!
//! Names compare the way MySQL compares them on Linux: schema and table names exactly
//! (case-sensitive), column names case-insensitively. Patterns use `*` (any run of
//! characters) and `?` (one character) as wildcards.

use std::collections::BTreeMap;
use std::fmt;

/// A pattern that could not be parsed; the message says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    message: String,
}

impl PatternError {
    fn new(message: String) -> Self {
        PatternError { message }
    }

    /// The message, e.g. `"a..b" has an empty name; write …`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A version's table rules: its schemas, include/exclude patterns, excluded columns and
/// per-table options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRules {
    schemas: Vec<String>,
    include: Vec<TablePattern>,
    exclude: Vec<TablePattern>,
    exclude_columns: Vec<ColumnPattern>,
    tables: BTreeMap<String, TableOptions>,
}

impl TableRules {
    /// Rules reading `schemas` (exact names), replicating the tables some `include`
    /// pattern matches and no `exclude` pattern does, leaving out the columns that
    /// `exclude_columns` match, with per-table options keyed by `table` or `schema.table`
    /// (the latter wins).
    ///
    /// Nothing is wanted outside `schemas`, and nothing at all when `include` is empty
    /// (use `*` for every table).
    pub fn new(
        schemas: Vec<String>,
        include: Vec<TablePattern>,
        exclude: Vec<TablePattern>,
        exclude_columns: Vec<ColumnPattern>,
        tables: BTreeMap<String, TableOptions>,
    ) -> TableRules {
        TableRules {
            schemas,
            include,
            exclude,
            exclude_columns,
            tables,
        }
    }

    /// The source schemas the version reads.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
    }

    /// The patterns of the tables replicated.
    pub fn include(&self) -> &[TablePattern] {
        &self.include
    }

    /// The patterns of the tables never replicated (they win over [`include`](Self::include)).
    pub fn exclude(&self) -> &[TablePattern] {
        &self.exclude
    }

    /// The patterns of the columns left out of every target.
    pub fn exclude_columns(&self) -> &[ColumnPattern] {
        &self.exclude_columns
    }

    /// The per-table options, keyed by `table` or `schema.table`, as configured.
    pub fn tables(&self) -> &BTreeMap<String, TableOptions> {
        &self.tables
    }

    /// Whether the version reads anything from `schema`.
    pub fn wants_schema(&self, schema: &str) -> bool {
        self.schemas.iter().any(|s| s == schema)
    }

    /// Whether the version replicates `schema.table`: the schema is one of its own, some
    /// include pattern matches and no exclude pattern does.
    pub fn wants(&self, schema: &str, table: &str) -> bool {
        self.wants_schema(schema)
            && self.include.iter().any(|p| p.matches(schema, table))
            && !self.exclude.iter().any(|p| p.matches(schema, table))
    }

    /// Whether `column` of `schema.table` is left out of every target.
    pub fn column_excluded(&self, schema: &str, table: &str, column: &str) -> bool {
        self.exclude_columns
            .iter()
            .any(|p| p.matches(schema, table, column))
    }

    /// The options configured for `schema.table` (a `schema.table` key wins over a
    /// `table` key).
    pub fn table_options(&self, schema: &str, table: &str) -> Option<&TableOptions> {
        self.tables
            .get(&format!("{schema}.{table}"))
            .or_else(|| self.tables.get(table))
    }

    /// The table's name in targets: its configured `target`, else its source name.
    pub fn target_name<'a>(&'a self, schema: &str, table: &'a str) -> &'a str {
        self.table_options(schema, table)
            .and_then(|o| o.target.as_deref())
            .unwrap_or(table)
    }

    /// The guard of `schema.table` (binlog order unless configured).
    pub fn guard(&self, schema: &str, table: &str) -> &Guard {
        const BINLOG: &Guard = &Guard::BinlogOrder;
        self.table_options(schema, table)
            .map_or(BINLOG, |o| &o.guard)
    }
}

/// Options of one table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableOptions {
    /// The table's name in targets, when not its source name.
    pub target: Option<String>,
    /// Key columns for a table without a primary key (empty: use the primary key).
    pub key: Vec<String>,
    /// What orders writes to a row.
    pub guard: Guard,
}

/// What decides which of two writes to a row wins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Guard {
    /// The change's position in the binlog (the default).
    #[default]
    BinlogOrder,
    /// This column's value first (e.g. `updated_at`), then the binlog order.
    Column(String),
}

/// `table` or `schema.table` with `*` and `?` wildcards; case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePattern {
    schema: Option<String>,
    table: String,
}

impl TablePattern {
    /// Parses a pattern; the error says how to write one.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, table) = match parts.as_slice() {
            [t] => (None, *t),
            [s, t] => (Some((*s).to_owned()), *t),
            _ => {
                return Err(PatternError::new(format!(
                    "\"{text}\" has more than one `.`; write `table` or `schema.table`, with \
                     `*` and `?` as wildcards"
                )))
            }
        };
        if table.is_empty() || schema.as_deref() == Some("") {
            return Err(PatternError::new(format!(
                "\"{text}\" has an empty name; write `table` or `schema.table`, e.g. \"tmp_*\""
            )));
        }
        Ok(TablePattern {
            schema,
            table: table.to_owned(),
        })
    }

    /// Whether the pattern matches `schema.table`.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        self.schema
            .as_deref()
            .is_none_or(|s| wildcard_match(s, schema, false))
            && wildcard_match(&self.table, table, false)
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// `table.column` or `schema.table.column` with `*` and `?` wildcards; the table part is
/// case-sensitive, the column part is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPattern {
    table: TablePattern,
    column: String,
}

impl ColumnPattern {
    /// Parses a pattern; the error says how to write one.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let how = "write `table.column` (or `*.column` for every table, or \
                   `schema.table.column`), e.g. \"users.password_hash\"";
        let Some((table, column)) = text.rsplit_once('.') else {
            return Err(PatternError::new(format!(
                "\"{text}\" names no table; {how}"
            )));
        };
        if column.is_empty() {
            return Err(PatternError::new(format!(
                "\"{text}\" names no column; {how}"
            )));
        }
        let table = TablePattern::parse(table)
            .map_err(|_| PatternError::new(format!("\"{text}\": {how}")))?;
        Ok(ColumnPattern {
            table,
            column: column.to_owned(),
        })
    }

    /// Whether the pattern matches `column` of `schema.table`.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        self.table.matches(schema, table) && wildcard_match(&self.column, column, true)
    }
}

impl fmt::Display for ColumnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// Glob match with `*` (any run) and `?` (one character).
fn wildcard_match(pattern: &str, name: &str, ignore_case: bool) -> bool {
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last `*`: linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], n[ni]))) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(include: &[&str], exclude: &[&str], columns: &[&str]) -> TableRules {
        TableRules::new(
            vec!["app".into(), "app2".into()],
            include
                .iter()
                .map(|p| TablePattern::parse(p).unwrap())
                .collect(),
            exclude
                .iter()
                .map(|p| TablePattern::parse(p).unwrap())
                .collect(),
            columns
                .iter()
                .map(|p| ColumnPattern::parse(p).unwrap())
                .collect(),
            BTreeMap::new(),
        )
    }

    #[test]
    fn wildcards_match_like_globs() {
        assert!(wildcard_match("tmp_*", "tmp_", false));
        assert!(wildcard_match("tmp_*", "tmp_x_y", false));
        assert!(!wildcard_match("tmp_*", "x_tmp_2024", false));
        assert!(wildcard_match("a?c", "abc", false));
        assert!(!wildcard_match("a?c", "ac", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("*_log*", "audit_log_2024", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
        assert!(!wildcard_match("Users", "users", false));
        assert!(wildcard_match("Password*", "password_hash", true));
    }

    #[test]
    fn include_exclude_and_schemas_decide_tables() {
        let r = rules(&["*"], &["tmp_*", "app2.jobs"], &[]);
        assert!(r.wants("app", "users"));
        assert!(!r.wants("app", "tmp_import"));
        assert!(r.wants("app", "jobs"));
        assert!(!r.wants("app2", "jobs"));
        assert!(
            !r.wants("other", "users"),
            "schemas outside the version are never wanted"
        );
        let only = rules(&["app.users", "orders_?"], &[], &[]);
        assert!(only.wants("app", "users") && !only.wants("app2", "users"));
        assert!(only.wants("app2", "orders_1") && !only.wants("app2", "orders_10"));
        assert!(
            !rules(&[], &[], &[]).wants("app", "users"),
            "no include pattern wants nothing"
        );
    }

    #[test]
    fn column_patterns_name_tables_and_ignore_column_case() {
        let r = rules(
            &["*"],
            &[],
            &["users.password_hash", "*.ssn", "app2.jobs.secret"],
        );
        assert!(r.column_excluded("app", "users", "Password_Hash"));
        assert!(!r.column_excluded("app", "users", "email"));
        assert!(r.column_excluded("app", "orders", "ssn"));
        assert!(r.column_excluded("app2", "jobs", "secret"));
        assert!(!r.column_excluded("app", "jobs", "secret"));
        assert!(ColumnPattern::parse("password").is_err());
        assert!(ColumnPattern::parse("a.b.c.d").is_err());
        assert!(ColumnPattern::parse("users.").is_err());
        assert!(TablePattern::parse("a..b").is_err());
        assert!(TablePattern::parse("app.").is_err());
        let err = TablePattern::parse("a.b.c").unwrap_err();
        assert!(err.message().contains("`schema.table`"), "{err}");
    }

    #[test]
    fn patterns_print_as_written() {
        assert_eq!(
            TablePattern::parse("app.tmp_*").unwrap().to_string(),
            "app.tmp_*"
        );
        assert_eq!(TablePattern::parse("users").unwrap().to_string(), "users");
        assert_eq!(
            ColumnPattern::parse("app.users.pass*").unwrap().to_string(),
            "app.users.pass*"
        );
    }

    #[test]
    fn table_options_prefer_the_qualified_key() {
        let mut tables = BTreeMap::new();
        tables.insert(
            "users".into(),
            TableOptions {
                target: Some("people".into()),
                ..Default::default()
            },
        );
        tables.insert(
            "app2.users".into(),
            TableOptions {
                guard: Guard::Column("updated_at".into()),
                ..Default::default()
            },
        );
        let r = TableRules::new(
            vec!["app".into(), "app2".into()],
            vec![TablePattern::parse("*").unwrap()],
            vec![],
            vec![],
            tables,
        );
        assert_eq!(r.target_name("app", "users"), "people");
        assert_eq!(r.target_name("app2", "users"), "users");
        assert_eq!(
            r.guard("app2", "users"),
            &Guard::Column("updated_at".into())
        );
        assert_eq!(r.guard("app", "orders"), &Guard::BinlogOrder);
        assert_eq!(r.tables().len(), 2);
        assert_eq!(r.include().len(), 1);
    }
}
