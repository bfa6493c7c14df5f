//! Name patterns with `*` (any run of characters) and `?` (one character), as the config
//! writes table and column selections.

/// True when `text` matches `pattern` as a whole. Case-sensitive, like MySQL table names on
/// Linux.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// True when a table pattern (`table` or `schema.table`) matches the table.
pub(crate) fn matches_table(pattern: &str, schema: &str, table: &str) -> bool {
    match pattern.split_once('.') {
        Some((sp, tp)) => matches(sp, schema) && matches(tp, table),
        None => matches(pattern, table),
    }
}

/// True when a column pattern (`column`, `table.column` or `schema.table.column`) matches.
pub(crate) fn matches_column(pattern: &str, schema: &str, table: &str, column: &str) -> bool {
    match pattern.rsplit_once('.') {
        Some((tp, cp)) => matches_table(tp, schema, table) && matches(cp, column),
        None => matches(pattern, column),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        assert!(matches("*", ""));
        assert!(matches("*", "users"));
        assert!(matches("user?", "users"));
        assert!(!matches("user?", "user"));
        assert!(matches("tmp_*", "tmp_2024"));
        assert!(!matches("tmp_*", "x_tmp_2024"));
        assert!(matches("*_log*", "audit_log_2024"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(!matches("Users", "users"));
    }

    #[test]
    fn table_and_column_patterns_take_optional_prefixes() {
        assert!(matches_table("users", "app", "users"));
        assert!(matches_table("app.users", "app", "users"));
        assert!(!matches_table("other.users", "app", "users"));
        assert!(matches_table("app.*", "app", "orders"));
        assert!(matches_column(
            "users.password_hash",
            "app",
            "users",
            "password_hash"
        ));
        assert!(matches_column(
            "app.users.pass*",
            "app",
            "users",
            "password_hash"
        ));
        assert!(!matches_column(
            "orders.password_hash",
            "app",
            "users",
            "password_hash"
        ));
        assert!(matches_column("secret", "app", "users", "secret"));
    }
}
