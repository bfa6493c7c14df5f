//! Collections: names, the tombstone TTL index, and following a table's columns.

use super::encode::field_names;
use super::failure::SINK;
use super::guard::TOMBSTONE_AT;
use super::write::timeboxed;
use bson::doc;
use mongodb::Database;
use std::collections::HashMap;
use std::time::Duration;
use strata_core::{ErrorKind, SinkError, TargetTable};

/// Suffix of the side collection that holds a table's delete tombstones.
pub(super) const TOMBSTONE_SUFFIX: &str = "__strata_tombstones";
/// Name of the TTL index on the tombstone collections.
const TTL_INDEX: &str = "strata_tombstone_ttl";

/// The tombstone collection of the collection `name`.
pub(super) fn tombstone_collection(name: &str) -> String {
    format!("{name}{TOMBSTONE_SUFFIX}")
}

/// Why `name` cannot be a MongoDB database name, if it cannot.
pub(super) fn database_problem(name: &str) -> Option<String> {
    if name.is_empty()
        || name.len() > 63
        || name.contains([
            '/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|', '?', '\0',
        ])
    {
        return Some(format!(
            "`{name}` is not a valid MongoDB database name (1-63 bytes, none of /\\. \"$*<>:|?)"
        ));
    }
    None
}

/// Why a table's name cannot be a collection of `database`, if it cannot.
pub(super) fn collection_problem(database: &str, name: &str) -> Option<String> {
    let namespace = database.len() + 1 + name.len() + TOMBSTONE_SUFFIX.len();
    if name.is_empty()
        || name.contains(['$', '\0'])
        || name.starts_with("system.")
        || namespace > 255
    {
        return Some(format!(
            "table `{name}` cannot be a MongoDB collection name (no `$`, not `system.*`, and \
             `{database}.{name}{TOMBSTONE_SUFFIX}` at most 255 bytes): route it to another name"
        ));
    }
    None
}

/// Creates (or adjusts) the TTL index that expires a tombstone collection's entries after
/// `ttl`. Idempotent.
pub(super) async fn ensure_ttl_index(
    db: &Database,
    limit: Duration,
    collection: &str,
    ttl: Duration,
) -> Result<(), SinkError> {
    let seconds = i64::try_from(ttl.as_secs())
        .unwrap_or(i64::MAX)
        .clamp(1, i64::from(i32::MAX));
    let doing = format!("creating the tombstone TTL index on `{collection}`");
    let create = doc! {
        "createIndexes": collection,
        "indexes": [ {
            "key": { TOMBSTONE_AT: 1 },
            "name": TTL_INDEX,
            "expireAfterSeconds": seconds,
        } ],
    };
    match timeboxed(&doing, limit, db.run_command(create)).await {
        Ok(_) => Ok(()),
        // IndexOptionsConflict: the index exists with another TTL (the setting changed).
        Err(err) if is_index_options_conflict(&err) => {
            let modify = doc! {
                "collMod": collection,
                "index": { "name": TTL_INDEX, "expireAfterSeconds": seconds },
            };
            timeboxed(&doing, limit, db.run_command(modify))
                .await
                .map(|_| ())
        }
        Err(err) => Err(err),
    }
}

fn is_index_options_conflict(err: &SinkError) -> bool {
    err.source
        .as_ref()
        .and_then(|s| s.downcast_ref::<mongodb::error::Error>())
        .is_some_and(|e| matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 85 || c.code == 86))
}

/// Removes fields from every document of `collection` (columns the table dropped).
pub(super) async fn unset_fields(
    db: &Database,
    limit: Duration,
    collection: &str,
    fields: &[String],
) -> Result<(), SinkError> {
    let any_present: Vec<_> = fields
        .iter()
        .map(|f| doc! { f.as_str(): { "$exists": true } })
        .collect();
    let mut unset = bson::Document::new();
    for field in fields {
        unset.insert(field.as_str(), "");
    }
    let command = doc! {
        "update": collection,
        "updates": [ { "q": { "$or": any_present }, "u": { "$unset": unset }, "multi": true } ],
    };
    let doing = format!("removing dropped columns from `{collection}`");
    let reply = timeboxed(&doing, limit, db.run_command(command)).await?;
    if let Ok(errors) = reply.get_array("writeErrors") {
        if !errors.is_empty() {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Rejected,
                format!("{doing}: the server refused it: {errors:?}"),
            ));
        }
    }
    Ok(())
}

/// What the sink knows of each table's columns, to remove the fields of dropped columns
/// from existing documents (MongoDB has no ALTER TABLE).
///
/// A table's newest shape is the one seen with the highest binlog order; ops of an older
/// shape (a worker lagging behind a schema change) never undo a newer one. The first shape
/// seen after start-up is taken as known: columns dropped while strata was stopped stay in
/// documents written before, until the row is written again.
#[derive(Default)]
pub(super) struct Shapes {
    tables: HashMap<String, Shape>,
}

struct Shape {
    fields: Vec<String>,
    order: u64,
}

impl Shapes {
    /// The fields to remove if `table` (seen at binlog order `order`) is a newer shape than
    /// the known one, or `None` if nothing changes. Call [`Shapes::record`] once removed.
    pub(super) fn dropped_fields(&self, table: &TargetTable, order: u64) -> Option<Vec<String>> {
        let known = self.tables.get(&table.name)?;
        if order <= known.order {
            return None;
        }
        let fields = field_names(table);
        let dropped: Vec<String> = known
            .fields
            .iter()
            .filter(|f| !fields.contains(f))
            .cloned()
            .collect();
        (!dropped.is_empty()).then_some(dropped)
    }

    /// Records `table`'s shape as seen at `order`, unless a newer one is known.
    pub(super) fn record(&mut self, table: &TargetTable, order: u64) {
        match self.tables.get(&table.name) {
            Some(known) if known.order >= order => {}
            _ => {
                self.tables.insert(
                    table.name.clone(),
                    Shape {
                        fields: field_names(table),
                        order,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use strata_core::{Column, ColumnType, TableId};

    fn table(columns: &[&str]) -> TargetTable {
        TargetTable {
            source: TableId::new("s", "t"),
            name: "t".into(),
            columns: columns
                .iter()
                .map(|c| Column {
                    name: (*c).into(),
                    ty: ColumnType::Json,
                    nullable: true,
                })
                .collect(),
            key: vec![0],
        }
    }

    #[test]
    fn only_newer_shapes_drop_fields() {
        let mut shapes = Shapes::default();
        let old = table(&["id", "a", "b"]);
        let new = table(&["id", "b", "c"]);
        assert_eq!(shapes.dropped_fields(&old, 5), None);
        shapes.record(&old, 5);
        assert_eq!(shapes.dropped_fields(&new, 9), Some(vec!["a".to_owned()]));
        shapes.record(&new, 9);
        // A lagging op of the old shape neither drops `c` nor replaces the record.
        assert_eq!(shapes.dropped_fields(&old, 7), None);
        shapes.record(&old, 7);
        assert_eq!(
            shapes.dropped_fields(&table(&["id"]), 10),
            Some(vec!["b".to_owned(), "c".to_owned()])
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(database_problem("jobfirst_future").is_none());
        assert!(database_problem("a.b").is_some());
        assert!(collection_problem("db", "users").is_none());
        assert!(collection_problem("db", "pay$").is_some());
        assert!(collection_problem("db", "system.x").is_some());
    }
}
