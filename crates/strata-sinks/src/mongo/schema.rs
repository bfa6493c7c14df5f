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
/// shape (a worker lagging behind a schema change, or older ops in the same batch) never
/// undo a newer one, and the fields they write that the newest shape lacks are removed
/// again. The first shape seen after start-up is taken as known: columns dropped while
/// strata was stopped stay in documents written before, until the row is written again.
#[derive(Default)]
pub(super) struct Shapes {
    tables: HashMap<String, Shape>,
}

struct Shape {
    fields: Vec<String>,
    order: u64,
    /// Fields documents may still hold that the newest shape lacks, until an `$unset` of
    /// them succeeds (a failed one is retried with the batch).
    pending: Vec<String>,
}

impl Shapes {
    /// After a batch wrote documents of `newest.name` with the fields `written` (of every
    /// shape among its upserts) and `newest` is the batch's newest shape, seen at binlog
    /// order `order`: records `newest` unless a newer shape is known, and returns the
    /// fields to remove from the collection (empty: none). Call [`Shapes::removed`] once
    /// they are removed.
    pub(super) fn settle(
        &mut self,
        newest: &TargetTable,
        order: u64,
        written: &[String],
    ) -> Vec<String> {
        let fields = field_names(newest);
        let known = self
            .tables
            .entry(newest.name.clone())
            .or_insert_with(|| Shape {
                fields: fields.clone(),
                order,
                pending: Vec::new(),
            });
        if order > known.order {
            for gone in known.fields.iter().filter(|f| !fields.contains(f)) {
                if !known.pending.contains(gone) {
                    known.pending.push(gone.clone());
                }
            }
            known.fields = fields;
            known.order = order;
        }
        for field in written {
            if !known.fields.contains(field) && !known.pending.contains(field) {
                known.pending.push(field.clone());
            }
        }
        known.pending.clone()
    }

    /// `fields` are gone from every document of `table`'s collection.
    pub(super) fn removed(&mut self, table: &str, fields: &[String]) {
        if let Some(known) = self.tables.get_mut(table) {
            known.pending.retain(|f| !fields.contains(f));
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
        let names = |t: &TargetTable| field_names(t);
        assert!(shapes.settle(&old, 5, &names(&old)).is_empty());
        let drop_a = shapes.settle(&new, 9, &names(&new));
        assert_eq!(drop_a, vec!["a".to_owned()]);
        // Until the removal is confirmed, it is asked again (a failed `$unset` is retried).
        assert_eq!(shapes.settle(&new, 9, &names(&new)), drop_a);
        shapes.removed("t", &drop_a);
        assert!(shapes.settle(&new, 10, &names(&new)).is_empty());
        // A lagging op of the old shape keeps the newer record, and the `a` it wrote again
        // is removed again; `c` is not.
        assert_eq!(shapes.settle(&old, 7, &names(&old)), vec!["a".to_owned()]);
        shapes.removed("t", &["a".to_owned()]);
        assert_eq!(
            shapes.settle(&table(&["id"]), 11, &[]),
            vec!["b".to_owned(), "c".to_owned()]
        );
    }

    #[test]
    fn a_first_batch_of_several_shapes_removes_the_older_fields() {
        // Ops of shapes (id, a, b) and (id, b, c) in the first batch seen after start-up.
        let mut shapes = Shapes::default();
        let new = table(&["id", "b", "c"]);
        let written = vec![
            "id".to_owned(),
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
        ];
        assert_eq!(shapes.settle(&new, 9, &written), vec!["a".to_owned()]);
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
