//! Which schemas and tables the source reads.
//!
//! Decided once per TABLE_MAP event: rows of unwanted tables are skipped before their values
//! are decoded. Matching is `strata_core::TablePattern`'s (case-sensitive names, `*` and `?`
//! wildcards), so a pattern means the same here as in the config and the router.

use crate::error::SourceError;
use strata_core::rules::TablePattern;

/// Schemas every MySQL/MariaDB server has for itself; never read unless named explicitly.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "sys", "information_schema", "performance_schema"];

/// One `SCHEMA` or `SCHEMA.TABLE` source pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourcePattern {
    /// The pattern as given.
    text: String,
    /// The schema part, as given.
    schema: String,
    /// `SCHEMA.TABLE`, or `SCHEMA.*` for a bare schema.
    table: TablePattern,
    /// `SCHEMA.*`: matches a schema whatever the table.
    any_table: TablePattern,
}

/// The tables a source reads: the union of its `SCHEMA` / `SCHEMA.TABLE` patterns. No
/// pattern means every table outside the [`SYSTEM_SCHEMAS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFilter {
    patterns: Vec<SourcePattern>,
}

impl TableFilter {
    /// Every table outside the system schemas.
    pub fn all() -> Self {
        TableFilter::default()
    }

    /// Parses `SCHEMA` / `SCHEMA.TABLE` patterns (`*` and `?` are wildcards); a bare name
    /// is a whole schema.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, SourceError> {
        let mut parsed = Vec::with_capacity(patterns.len());
        for p in patterns {
            let text = p.as_ref().trim();
            let bad = |why: String| {
                SourceError::Config(format!(
                    "`{text}` is not a source table pattern ({why}): expected SCHEMA or SCHEMA.TABLE, with `*` and `?` as wildcards (e.g. shop or shop.order_*)"
                ))
            };
            let (schema, table) = match text.split_once('.') {
                Some((schema, table)) => (schema, table),
                None => (text, "*"),
            };
            if schema.is_empty() {
                return Err(bad("no schema".into()));
            }
            let table_pattern = TablePattern::parse(&format!("{schema}.{table}"))
                .map_err(|e| bad(e.message().to_owned()))?;
            let any_table = TablePattern::parse(&format!("{schema}.*"))
                .map_err(|e| bad(e.message().to_owned()))?;
            parsed.push(SourcePattern {
                text: text.to_owned(),
                schema: schema.to_owned(),
                table: table_pattern,
                any_table,
            });
        }
        Ok(TableFilter { patterns: parsed })
    }

    /// True when no pattern was given (every non-system table is read).
    pub fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    /// The schema part of each pattern, as given (may contain wildcards).
    pub fn schema_patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.schema.as_str())
    }

    /// True when rows of `schema.table` are read.
    pub fn wants_table(&self, schema: &str, table: &str) -> bool {
        if self.patterns.is_empty() {
            return !is_system_schema(schema);
        }
        self.patterns.iter().any(|p| p.table.matches(schema, table))
    }

    /// True when some table of `schema` may be read (used for DDL events).
    pub fn wants_schema(&self, schema: &str) -> bool {
        if self.patterns.is_empty() {
            return !is_system_schema(schema);
        }
        // `SCHEMA.*` matches the empty table name: a schema-only test.
        self.patterns
            .iter()
            .any(|p| p.any_table.matches(schema, ""))
    }
}

fn is_system_schema(schema: &str) -> bool {
    SYSTEM_SCHEMAS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(schema))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn empty_filter_reads_everything_but_system_schemas() {
        let f = TableFilter::all();
        assert!(f.wants_table("shop", "orders"));
        assert!(!f.wants_table("mysql", "user"));
        assert!(!f.wants_table("performance_schema", "threads"));
        assert!(!f.wants_schema("sys"));
    }

    #[test]
    fn patterns_match_schemas_tables_and_wildcards() {
        let f = TableFilter::parse(&["shop", "crm.cust*", "*_audit.log", "v?.t"]).unwrap();
        assert!(f.wants_table("shop", "anything"));
        assert!(f.wants_table("crm", "customers"));
        assert!(!f.wants_table("crm", "orders"));
        assert!(f.wants_table("x_audit", "log"));
        assert!(!f.wants_table("x_audit", "logs"));
        assert!(f.wants_table("v1", "t"));
        assert!(f.wants_schema("crm"));
        assert!(f.wants_schema("v2"));
        assert!(!f.wants_schema("other"));
        // Names are case-sensitive, as MySQL's are on Linux.
        assert!(!f.wants_table("Shop", "x"));
        // An explicit pattern may name a system schema.
        assert!(TableFilter::parse(&["mysql.user"])
            .unwrap()
            .wants_table("mysql", "user"));
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_expected_form() {
        for bad in ["", ".t", "s.", "a.b.c"] {
            let err = TableFilter::parse(&[bad]).unwrap_err().to_string();
            assert!(err.contains("SCHEMA.TABLE"), "{bad}: {err}");
        }
    }
}
