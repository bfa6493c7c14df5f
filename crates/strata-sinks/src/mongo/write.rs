//! Sending statements: as few `update`/`delete` commands as the size limits allow, each
//! ordered, each statement traced back to the op it came from.

use super::failure::{code_kind, driver_error, timed_out, SINK};
use super::guard::{self, Reply};
use bson::{Bson, Document, RawArrayBuf, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongodb::Database;
use std::future::IntoFuture;
use std::time::Duration;
use strata_core::{ErrorKind, SinkError, SinkOp};

/// MongoDB's largest document (and so the largest statement that can carry one).
const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Statements per command are cut at this many bytes, well under the 16 MiB command limit.
const MAX_COMMAND_BYTES: usize = 8 * 1024 * 1024;
/// MongoDB's `maxWriteBatchSize`.
const MAX_STATEMENTS: usize = 100_000;
/// Ids per tombstone lookup (keys are at most a few KiB, so this stays far below 16 MiB).
const IDS_PER_LOOKUP: usize = 128;
/// Tombstone lookups in flight at once.
const CONCURRENT_LOOKUPS: usize = 4;

/// One statement, and the index in the batch of the op it writes.
pub(super) struct Statement {
    pub op: usize,
    pub raw: RawDocumentBuf,
}

impl Statement {
    /// Serialises a statement once (its size decides how commands are cut).
    pub(super) fn new(
        batch: &[SinkOp],
        op: usize,
        statement: &Document,
    ) -> Result<Self, SinkError> {
        let raw = RawDocumentBuf::from_document(statement).map_err(|e| {
            rejected(
                batch,
                op,
                &format!("the row cannot be encoded as BSON ({e})"),
            )
        })?;
        if raw.as_bytes().len() > MAX_DOCUMENT_BYTES {
            return Err(rejected(
                batch,
                op,
                &format!(
                    "the row is {} bytes as BSON, over MongoDB's 16 MiB document limit",
                    raw.as_bytes().len()
                ),
            ));
        }
        Ok(Statement { op, raw })
    }
}

/// Which write command to send.
#[derive(Clone, Copy)]
pub(super) enum Command {
    Update,
    Delete,
}

impl Command {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Command::Update => ("update", "updates"),
            Command::Delete => ("delete", "deletes"),
        }
    }
}

/// Runs `statements` against `collection` in order, in as many commands as needed, and
/// returns how many documents they changed.
pub(super) async fn run(
    db: &Database,
    limit: Duration,
    batch: &[SinkOp],
    command: Command,
    collection: &str,
    statements: Vec<Statement>,
) -> Result<u64, SinkError> {
    let (name, list) = command.names();
    let mut changed = 0;
    let mut rest = statements.as_slice();
    while !rest.is_empty() {
        let mut bytes = 0;
        let mut take = 0;
        for statement in rest {
            let size = statement.raw.as_bytes().len();
            if take > 0 && (bytes + size > MAX_COMMAND_BYTES || take == MAX_STATEMENTS) {
                break;
            }
            bytes += size;
            take += 1;
        }
        let (chunk, tail) = rest.split_at(take);
        rest = tail;

        let mut array = RawArrayBuf::new();
        for statement in chunk {
            array.push(statement.raw.clone());
        }
        let mut body = RawDocumentBuf::new();
        body.append(name, collection);
        body.append(list, array);
        body.append("ordered", true);

        let doing = format!("{name} on collection `{collection}`");
        let reply = timeboxed(&doing, limit, db.run_raw_command(body)).await?;
        let parsed = match command {
            Command::Update => guard::update_reply(&reply),
            Command::Delete => guard::delete_reply(&reply),
        };
        changed += checked(batch, chunk, &doing, parsed)?;
    }
    Ok(changed)
}

/// The stored tombstone versions of these ids in `collection`, by key text.
///
/// The ids go in `$in` lists of [`IDS_PER_LOOKUP`], a few requests at a time: some
/// servers match a long `$in` list in time quadratic in its length.
pub(super) async fn tombstones(
    db: &Database,
    limit: Duration,
    collection: &str,
    ids: Vec<Bson>,
) -> Result<Vec<(String, String)>, SinkError> {
    use super::guard::{TOMBSTONE_KEY, TOMBSTONE_VERSION};
    use futures_util::StreamExt;
    let doing = format!("reading tombstones from `{collection}`");
    let coll = db.collection::<Document>(collection);
    let chunks: Vec<Vec<Bson>> = ids.chunks(IDS_PER_LOOKUP).map(<[Bson]>::to_vec).collect();
    let lookups = chunks.into_iter().map(|chunk| {
        let filter = bson::doc! { "_id": { "$in": chunk } };
        let projection = bson::doc! { TOMBSTONE_KEY: 1, TOMBSTONE_VERSION: 1 };
        let (coll, doing) = (coll.clone(), doing.clone());
        async move {
            let docs: Vec<Document> = timeboxed(&doing, limit, async {
                coll.find(filter)
                    .projection(projection)
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
            Ok::<_, SinkError>(docs)
        }
    });
    let mut replies = futures_util::stream::iter(lookups).buffer_unordered(CONCURRENT_LOOKUPS);
    let mut found = Vec::new();
    while let Some(docs) = replies.next().await {
        for doc in docs? {
            if let (Ok(key), Ok(version)) =
                (doc.get_str(TOMBSTONE_KEY), doc.get_str(TOMBSTONE_VERSION))
            {
                found.push((key.to_owned(), version.to_owned()));
            }
        }
    }
    Ok(found)
}

/// How many documents a collection holds (0 when it does not exist).
pub(super) async fn count(
    db: &Database,
    limit: Duration,
    collection: &str,
) -> Result<u64, SinkError> {
    let doing = format!("counting `{collection}`");
    let reply = timeboxed(
        &doing,
        limit,
        db.run_command(bson::doc! { "count": collection }),
    )
    .await?;
    Ok(match reply.get("n") {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Double(n)) if *n > 0.0 => *n as u64,
        _ => 0,
    })
}

/// Runs a driver call with the request time limit, mapping its failure.
pub(super) async fn timeboxed<T>(
    doing: &str,
    limit: Duration,
    call: impl IntoFuture<Output = mongodb::error::Result<T>>,
) -> Result<T, SinkError> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(driver_error(doing, err)),
        Err(_) => Err(timed_out(doing, limit)),
    }
}

/// The changed count of a reply, or the error its first refused statement stands for.
fn checked(
    batch: &[SinkOp],
    chunk: &[Statement],
    doing: &str,
    reply: Reply,
) -> Result<u64, SinkError> {
    if let Some(error) = reply.error {
        let Some(statement) = chunk.get(error.index) else {
            return Err(SinkError::new(
                SINK,
                ErrorKind::Internal,
                format!(
                    "{doing}: the server refused statement {} of {} ({}: {})",
                    error.index,
                    chunk.len(),
                    error.code,
                    error.message
                ),
            ));
        };
        let kind = code_kind(error.code);
        let reason = format!(
            "server error {}: {}",
            error.code,
            super::failure::without_values(&error.message)
        );
        return Err(match kind {
            ErrorKind::Rejected => rejected(batch, statement.op, &reason),
            _ => SinkError::new(SINK, kind, format!("{doing}: {reason}")).at_op(statement.op),
        });
    }
    if let Some(message) = reply.write_concern {
        return Err(SinkError::new(
            SINK,
            ErrorKind::Connection,
            format!("{doing}: write concern not satisfied ({message}); the batch will be retried"),
        ));
    }
    Ok(reply.changed)
}

/// A write refused for good, naming the table, the row's key and the reason.
pub(super) fn rejected(batch: &[SinkOp], op: usize, reason: &str) -> SinkError {
    let (table, key) = batch.get(op).map_or((String::new(), String::new()), |o| {
        (o.table.name.clone(), o.id())
    });
    SinkError::new(
        SINK,
        ErrorKind::Rejected,
        format!("MongoDB refused the write of table `{table}` key `{key}`: {reason}"),
    )
    .at_op(op)
}
