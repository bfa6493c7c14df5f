//! The guarded statements, and what the server answers about them.
//!
//! Every write compares versions inside the server, in the same statement that writes:
//! - upsert: an `update` statement with `upsert: true` whose update *pipeline* replaces
//!   the document only when the stored version is lower (`$ifNull` makes a missing
//!   document or a document without a version lower than any version);
//! - delete: a `delete` statement whose filter requires a lower version;
//! - tombstone: the same guarded replace as an upsert, on the tombstone collection.
//!
//! Versions are [`strata_core::Version::sortable`] strings: fixed width, so MongoDB's
//! binary string order is the version order, guard column included.

use super::encode::VERSION_FIELD;
use bson::{doc, Bson, Document};

/// Field of a tombstone holding the deleted row's key text ([`strata_core::SinkOp::id`]).
pub(super) const TOMBSTONE_KEY: &str = "key";
/// Field of a tombstone holding the delete's version.
pub(super) const TOMBSTONE_VERSION: &str = "version";
/// Field of a tombstone holding when it was written; the TTL index expires it.
pub(super) const TOMBSTONE_AT: &str = "deleted_at";

/// A pipeline stage that replaces the document with `replacement` when the stored
/// `version_field` is lower than `version`, and keeps it as it is otherwise.
fn replace_if_newer(version_field: &str, version: &str, replacement: Document) -> Document {
    doc! {
        "$replaceWith": {
            "$cond": [
                { "$lt": [ { "$ifNull": [ format!("${version_field}"), "" ] }, version ] },
                // `$literal`: row values such as "$x" or {"$gt": 1} are data, not
                // expressions.
                { "$literal": replacement },
                "$$ROOT",
            ]
        }
    }
}

/// The guarded upsert of a row's whole document (which carries `_id` and its version).
pub(super) fn upsert(id: &Bson, document: Document, version: &str) -> Document {
    doc! {
        "q": { "_id": id.clone() },
        "u": [ replace_if_newer(VERSION_FIELD, version, document) ],
        "upsert": true,
    }
}

/// The guarded delete of a row: removes it only when its version is lower.
pub(super) fn delete(id: &Bson, version: &str) -> Document {
    doc! {
        // Plain `$lt` (no `$or` with `$exists`, which some servers answer with a scan):
        // a document strata did not write (no version field) is not deleted.
        "q": { "_id": id.clone(), VERSION_FIELD: { "$lt": version } },
        "limit": 1,
    }
}

/// The guarded upsert of a row's tombstone: keeps the highest delete version.
pub(super) fn tombstone(id: &Bson, key: &str, version: &str, at: bson::DateTime) -> Document {
    let replacement = doc! {
        "_id": id.clone(),
        TOMBSTONE_KEY: key,
        TOMBSTONE_VERSION: version,
        TOMBSTONE_AT: at,
    };
    doc! {
        "q": { "_id": id.clone() },
        "u": [ replace_if_newer(TOMBSTONE_VERSION, version, replacement) ],
        "upsert": true,
    }
}

/// A statement the server refused.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StatementError {
    /// The statement's index in the command.
    pub index: usize,
    pub code: i32,
    pub message: String,
}

/// What an `update` or `delete` command reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Reply {
    /// Documents changed: modified or inserted (update), removed (delete).
    pub changed: u64,
    /// The first statement refused (the command is ordered, so later ones did not run).
    pub error: Option<StatementError>,
    /// A write concern failure: the writes may not be durable.
    pub write_concern: Option<String>,
}

/// Reads an `update` command's reply: `nModified` plus the `upserted` entries are the
/// statements that wrote (a guarded statement that kept the stored document modifies
/// nothing).
pub(super) fn update_reply(reply: &Document) -> Reply {
    let upserted = reply.get_array("upserted").map_or(0, |a| a.len() as u64);
    Reply {
        changed: count(reply, "nModified") + upserted,
        ..common_reply(reply)
    }
}

/// Reads a `delete` command's reply.
pub(super) fn delete_reply(reply: &Document) -> Reply {
    Reply {
        changed: count(reply, "n"),
        ..common_reply(reply)
    }
}

fn common_reply(reply: &Document) -> Reply {
    let error = reply.get_array("writeErrors").ok().and_then(|errors| {
        errors
            .iter()
            .filter_map(Bson::as_document)
            .map(statement_error)
            .min_by_key(|e| e.index)
    });
    let write_concern = reply.get_document("writeConcernError").ok().map(|wce| {
        wce.get_str("errmsg")
            .unwrap_or("write concern not satisfied")
            .to_owned()
    });
    Reply {
        changed: 0,
        error,
        write_concern,
    }
}

fn statement_error(error: &Document) -> StatementError {
    StatementError {
        index: usize::try_from(count(error, "index")).unwrap_or(usize::MAX),
        code: i32::try_from(count(error, "code")).unwrap_or(-1),
        message: error.get_str("errmsg").unwrap_or("").to_owned(),
    }
}

/// A non-negative count the server may send as Int32, Int64 or Double.
fn count(doc: &Document, field: &str) -> u64 {
    match doc.get(field) {
        Some(Bson::Int32(v)) => u64::try_from(*v).unwrap_or(0),
        Some(Bson::Int64(v)) => u64::try_from(*v).unwrap_or(0),
        Some(Bson::Double(v)) if *v >= 0.0 => *v as u64,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn reply_counts_modified_and_upserted_and_reports_the_first_error() {
        let reply = doc! {
            "n": 3, "nModified": 1_i64,
            "upserted": [ { "index": 0, "_id": 1 }, { "index": 2, "_id": 3 } ],
            "writeErrors": [
                { "index": 5, "code": 11000, "errmsg": "dup" },
                { "index": 4, "code": 121, "errmsg": "invalid" },
            ],
            "ok": 1.0,
        };
        let parsed = update_reply(&reply);
        assert_eq!(parsed.changed, 3);
        assert_eq!(
            parsed.error,
            Some(StatementError {
                index: 4,
                code: 121,
                message: "invalid".into()
            })
        );
        assert_eq!(parsed.write_concern, None);
    }

    #[test]
    fn row_values_are_literals() {
        let stmt = upsert(&Bson::Int32(1), doc! { "_id": 1, "s": "$x" }, "v");
        let text = stmt.to_string();
        assert!(text.contains("$literal"), "{text}");
    }
}
