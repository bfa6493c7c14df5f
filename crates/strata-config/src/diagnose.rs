//! Turning a deserializer's complaint into a message a person can act on: the key path, the
//! line in the file (or the overriding variable), a suggestion for a misspelt key, and the
//! form the value should take.

use crate::environment::Overrides;
use crate::error::{Origin, Problem};
use crate::key_path::{KeyPath, Segment};

/// What a value of this key looks like, keyed by the key's last name. Used for missing keys
/// and values of the wrong type.
fn hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "source" => "a [source] table with `url = \"mysql://user@host:3306\"`",
        "url" => "a URL string, e.g. \"mysql://strata@127.0.0.1:3306\" for the source",
        "username" => "a user name string",
        "password" => "a string, or better `{ env = \"VARIABLE\" }`",
        "tls" => "a table such as `{ mode = \"required\" }`",
        "mode" => {
            "one of \"disabled\", \"preferred\", \"required\", \"verify-ca\", \"verify-full\""
        }
        "ca_file" => "a path to a PEM file",
        "heartbeat" | "read_timeout" | "connect_timeout" | "tombstone_ttl" | "batch_max_delay"
        | "lag_alert" => "a duration string such as \"5s\", \"50ms\" or \"24h\"",
        "batch_max_bytes" => "a size such as \"4MiB\" or a number of bytes",
        "batch_max_rows" | "workers" | "queue_capacity" => "a whole number greater than zero",
        "data_dir" => "a directory path string, e.g. \".strata\"",
        "http" => "a listen address string such as \"127.0.0.1:9641\" (port 0 picks a free one)",
        "versions" => "one [versions.<name>] table per application version",
        "server_id" => {
            "a whole number from 1 to 4294967295 (e.g. `server_id = 1001`), unique per version \
             and different from every server id in the replication topology"
        }
        "schemas" => "a list of source schema names, e.g. `schemas = [\"jobfirst_future\"]`",
        "include" | "exclude" => "a list of table patterns, e.g. [\"*\"] or [\"tmp_*\"]",
        "exclude_columns" => "a list of table.column patterns, e.g. [\"users.password_hash\"]",
        "start" => "\"current\", \"oldest\", a FILE:POS such as \"binlog.000042:4\", or a GTID set",
        "checkpoint" => "a table such as `{ kind = \"file\" }`",
        "kind" => "\"file\"",
        "path" => "a file path string",
        "tables" => "one [versions.<name>.tables.<table>] table per configured table",
        "target" => "the table's name in targets, a non-empty string",
        "key" => "a list of column names, e.g. [\"id\"]",
        "guard" => "a column name such as \"updated_at\"",
        "database" => "a MongoDB database name, e.g. `database = \"jobfirst_future\"`",
        "db" => "a Redis DB index from 0 to 15, e.g. `db = 0`",
        "dbs" => "a Redis DB range string such as \"0-2\"",
        "key_prefix" => "a non-empty string such as \"future:\"",
        "index_prefix" => "a lowercase string such as \"jobfirst_future_\"",
        "schema" => "a PostgreSQL schema name, e.g. `schema = \"jobfirst_future\"`",
        _ => return None,
    })
}

/// The words inside backticks of a serde message (`unknown field `x`, expected `a` or `b``).
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Close valid names for a misspelt one: the nearest by edit distance when it is close, else
/// those sharing a word (`batch_size` → `batch_max_rows`, `batch_max_bytes`, …).
pub(crate) fn suggestions<'a>(wrong: &str, valid: &[&'a str]) -> Vec<&'a str> {
    let wrong_l = wrong.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = valid
        .iter()
        .map(|v| (edit_distance(&wrong_l, v), *v))
        .collect();
    scored.sort();
    let limit = (wrong.len() / 3).max(2);
    if let Some(&(d, best)) = scored.first() {
        if d <= limit {
            return vec![best];
        }
    }
    let words: Vec<&str> = wrong_l.split(['_', '-']).filter(|w| w.len() > 1).collect();
    scored
        .into_iter()
        .filter(|(_, v)| v.split('_').any(|w| words.contains(&w)))
        .map(|(_, v)| v)
        .take(3)
        .collect()
}

fn did_you_mean(candidates: &[&str]) -> String {
    match candidates {
        [] => String::new(),
        [one] => format!("did you mean `{one}`? "),
        [init @ .., last] => format!(
            "did you mean {} or `{last}`? ",
            init.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A problem from a typed-deserialization error.
pub(crate) fn from_deserialize(err: &serde_path_to_error::Error<toml::de::Error>) -> Problem {
    let path = KeyPath::from_serde(err.path());
    let raw = err.inner().message();
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        let names = backticked(rest);
        let (wrong, valid) = names.split_first().map_or(("", &[][..]), |(w, v)| (*w, v));
        let section = path.parent().section();
        let message = format!(
            "unknown key `{wrong}` in {section}; {}valid keys there: {}",
            did_you_mean(&suggestions(wrong, valid)),
            valid.join(", ")
        );
        return Problem::new(path, message);
    }
    if let Some(rest) = raw.strip_prefix("missing field ") {
        let field = backticked(rest)
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        let section = path.section();
        let fix = hint(&field).map_or(String::new(), |h| format!(": {h}"));
        let message = format!("missing required key `{field}` in {section}; add it{fix}");
        return Problem::new(path.key(&field), message);
    }
    if let Some(rest) = raw.strip_prefix("unknown variant ") {
        let names = backticked(rest);
        let (wrong, valid) = names.split_first().map_or(("", &[][..]), |(w, v)| (*w, v));
        let message = format!(
            "`{path}` = \"{wrong}\" is not a valid value; {}valid values: {}",
            did_you_mean(&suggestions(wrong, valid)),
            valid.join(", ")
        );
        return Problem::new(path, message);
    }
    // The field whose value is wrong: the last key, skipping array indices.
    let field = path
        .0
        .iter()
        .rev()
        .find_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .unwrap_or_default();
    let bad_value = raw
        .strip_prefix("invalid type: ")
        .or_else(|| raw.strip_prefix("invalid value: "));
    let message = if let (Some(what), Some(hint)) = (bad_value, hint(field)) {
        // serde's own "expected u32" says less than the hint.
        let found = what.split(", expected").next().unwrap_or(what);
        format!("`{path}` has a bad value ({found}); expected {hint}")
    } else if !raw.contains(';') {
        let expected = hint(field).map_or(String::new(), |h| format!("; expected {h}"));
        format!("`{path}` has a bad value: {raw}{expected}")
    } else {
        format!("`{path}`: {raw}")
    };
    Problem::new(path, message)
}

/// Fills in where each problem's setting came from: the overriding variable, or the line
/// and column of the key (or of the nearest table above it) in the file.
pub(crate) fn locate(problems: &mut [Problem], text: &str, overrides: &Overrides) {
    let doc = toml_edit::ImDocument::parse(text).ok();
    for p in problems {
        if let Some(var) = overrides.setting(&p.key) {
            p.origin = Origin::Env(var.to_owned());
            continue;
        }
        let (span, found) = doc
            .as_ref()
            .map_or((None, 0), |d| span_of(d.as_table(), &p.key));
        // The part of the path the file lacks: when an override created it, the problem is
        // the variable's (e.g. a version that exists only in the environment).
        let created_by = (found < p.key.0.len())
            .then(|| overrides.below(&KeyPath(p.key.0[..=found].to_vec())))
            .flatten();
        p.origin = match (created_by, span) {
            (Some(var), _) => Origin::Env(var.to_owned()),
            (None, Some(start)) => {
                let (line, column) = line_column(text, start);
                Origin::File { line, column }
            }
            (None, None) => Origin::Unknown,
        };
    }
}

/// The start of the deepest key of `path` found in the document, and how many of the path's
/// segments were found.
fn span_of(root: &toml_edit::Table, path: &KeyPath) -> (Option<usize>, usize) {
    use toml_edit::{Item, TableLike, Value};
    enum Node<'a> {
        Table(&'a dyn TableLike),
        Item(&'a Item),
        Value(&'a Value),
    }
    fn table_like<'a>(node: &Node<'a>) -> Option<&'a dyn TableLike> {
        match node {
            Node::Table(t) => Some(*t),
            Node::Item(i) => i.as_table_like(),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }
    let mut best: Option<usize> = None;
    let mut found = 0;
    let mut node = Node::Table(root);
    for seg in &path.0 {
        let next = match seg {
            Segment::Key(k) => table_like(&node)
                .and_then(|t| t.get_key_value(k))
                .map(|(key, item)| (key.span().or_else(|| item.span()), Node::Item(item))),
            Segment::Index(i) => match &node {
                Node::Item(Item::ArrayOfTables(a)) => a
                    .get(*i)
                    .map(|t| (t.span(), Node::Table(t as &dyn TableLike))),
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                    a.get(*i).map(|v| (v.span(), Node::Value(v)))
                }
                _ => None,
            },
        };
        let Some((span, next)) = next else {
            break;
        };
        if let Some(span) = span {
            best = Some(span.start);
        }
        found += 1;
        node = next;
    }
    (best, found)
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_prefer_close_spellings_then_shared_words() {
        let valid = ["data_dir", "batch_max_rows", "batch_max_bytes", "workers"];
        assert_eq!(suggestions("worker", &valid), vec!["workers"]);
        assert_eq!(suggestions("data-dir", &valid), vec!["data_dir"]);
        let batch = suggestions("batch_size", &valid);
        assert!(batch.contains(&"batch_max_rows"), "{batch:?}");
        assert!(suggestions("zzzzzzzz", &valid).is_empty());
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        assert_eq!(line_column("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_column("abc", 0), (1, 1));
    }
}
