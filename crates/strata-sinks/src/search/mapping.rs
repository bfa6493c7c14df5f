//! Index names and mappings derived from the table's columns.

use serde_json::{json, Map, Value as Json};
use std::time::Duration;
use strata_core::{ColumnType, TargetTable};

/// Date formats: ISO 8601 with up to nanosecond fractions (`_source` keeps the exact
/// micros; the index holds milliseconds), or epoch milliseconds.
const DATE_FORMAT: &str = "strict_date_optional_time||epoch_millis";

/// The index of a table: `<index_prefix><table>`, lower case, or why it cannot be one.
pub(super) fn index_name(prefix: &str, table: &str) -> Result<String, String> {
    let name = format!("{prefix}{table}").to_lowercase();
    let bad_char = name.chars().find(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':' | '%'
        ) || c.is_control()
    });
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with(['-', '_', '+'])
        || name.len() > 255
        || bad_char.is_some()
    {
        return Err(format!(
            "`{name}` (index_prefix + table `{table}`) is not a valid index name: at most 255 \
             bytes, not starting with - _ +, none of \\/*?\"<>| ,#:% — change index_prefix or \
             route the table to another name"
        ));
    }
    Ok(name)
}

/// A column's field mapping.
pub(super) fn field_mapping(ty: &ColumnType) -> Json {
    match ty {
        ColumnType::Int {
            bytes: 8,
            unsigned: true,
        } => json!({ "type": "unsigned_long" }),
        ColumnType::Int { .. } => json!({ "type": "long" }),
        ColumnType::Float => json!({ "type": "float" }),
        ColumnType::Double => json!({ "type": "double" }),
        // Exact digits; a number type would round them.
        ColumnType::Decimal { .. } | ColumnType::Time { .. } => json!({ "type": "keyword" }),
        // `ignore_malformed`: a zero date ("0000-00-00") is kept in `_source` as written and
        // left out of the index instead of failing the document.
        ColumnType::Date | ColumnType::DateTime { .. } | ColumnType::Timestamp { .. } => json!({
            "type": "date", "format": DATE_FORMAT, "ignore_malformed": true,
        }),
        ColumnType::Year => json!({ "type": "integer" }),
        ColumnType::Text { .. } => json!({
            "type": "text",
            "fields": { "keyword": { "type": "keyword", "ignore_above": 256 } },
        }),
        ColumnType::Bytes => json!({ "type": "binary" }),
        ColumnType::Enum { .. } | ColumnType::Set { .. } => json!({ "type": "keyword" }),
        ColumnType::Bit { width } if *width >= 64 => json!({ "type": "unsigned_long" }),
        ColumnType::Bit { .. } => json!({ "type": "long" }),
        // Any JSON value, exact in `_source`, never a mapping conflict; not searchable.
        ColumnType::Json => json!({ "type": "object", "enabled": false }),
        ColumnType::Geometry => json!({
            "properties": { "srid": { "type": "long" }, "wkb": { "type": "binary" } },
        }),
    }
}

/// The mapping properties of some of a table's columns.
pub(super) fn properties<'a>(
    columns: impl IntoIterator<Item = &'a strata_core::Column>,
) -> Map<String, Json> {
    columns
        .into_iter()
        .map(|c| (c.name.clone(), field_mapping(&c.ty)))
        .collect()
}

/// `index.gc_deletes`: how long delete tombstones (versions of deleted documents) last.
pub(super) fn gc_deletes(ttl: Duration) -> String {
    format!("{}s", ttl.as_secs().max(1))
}

/// The body that creates a table's index.
pub(super) fn create_body(table: &TargetTable, tombstone_ttl: Duration) -> Json {
    json!({
        "settings": { "index": { "gc_deletes": gc_deletes(tombstone_ttl) } },
        "mappings": {
            // Every field is mapped before it is written; anything else is a bug to report.
            "dynamic": "strict",
            "properties": properties(&table.columns),
        },
    })
}

/// The field names of a `GET <index>/_mapping` answer.
pub(super) fn mapped_fields(answer: &Json) -> Vec<String> {
    answer
        .as_object()
        .and_then(|indices| indices.values().next())
        .and_then(|index| index.pointer("/mappings/properties"))
        .and_then(Json::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn index_names_are_lower_case_and_checked() {
        assert_eq!(
            index_name("JobFirst_future_", "Users").unwrap(),
            "jobfirst_future_users"
        );
        assert!(index_name("", "_hidden").is_err());
        assert!(index_name("p_", "a:b").is_err());
        assert!(index_name("p_", "100%").is_err());
    }

    #[test]
    fn unsigned_bigint_is_unsigned_long() {
        let ty = ColumnType::Int {
            bytes: 8,
            unsigned: true,
        };
        assert_eq!(field_mapping(&ty)["type"], "unsigned_long");
        assert_eq!(gc_deletes(Duration::from_secs(86_400)), "86400s");
    }

    #[test]
    fn mapped_fields_reads_properties() {
        let answer = json!({ "i": { "mappings": { "properties": { "a": {}, "b": {} } } } });
        assert_eq!(mapped_fields(&answer), vec!["a", "b"]);
    }
}
