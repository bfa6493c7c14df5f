//! The reader task: binlog events → whole transactions of row changes, in order.
//!
//! Positions. Each event's start offset is its end (`log_pos` in its header, widened past
//! 4 GiB) minus its size. Events inside a compressed TRANSACTION_PAYLOAD have no offset of
//! their own: they take the payload event's start offset, and the change index keeps
//! counting across all of them, so changes stay distinct and ordered. A transaction commits
//! at the position just after its XID/COMMIT (for a compressed transaction, just after the
//! payload event), so resuming there starts with the next transaction.
//!
//! Order. Each change gets `binlog_order(file_seq, event_start, index)`, raised to at least
//! one more than the previous change of its transaction (the floor is reset when a
//! transaction begins). The raise only matters where the arithmetic saturates (offsets past
//! 8 GiB, more changes in one event than its bytes × 2048), and guarantees that a row changed
//! twice in one transaction gets two strictly increasing versions.

use crate::catalog::JsonCatalog;
use crate::connect::Flavor;
use crate::error::SourceError;
use crate::filter::TableFilter;
use crate::framing::{bitmap_bytes, ends_with_crc32, is_heartbeat, is_rows_event, widen};
use crate::gtid::{previous_gtids, uuid_text};
use crate::json;
use crate::mariadb;
use crate::row_image::{decode_image, PendingDiff};
use crate::stats::SourceStats;
use crate::table_map::{self, TableDecoder};
use crate::temporal::Cursor;
use mysql_common::binlog::consts::EventType;
use mysql_common::binlog::events::{
    Event, EventData, GtidEvent, PreviousGtidsEvent, QueryEvent, RotateEvent, RowsEventData,
    TableMapEvent, TransactionPayloadEvent,
};
use std::collections::HashMap;
use std::sync::Arc;
use strata_core::position::file_seq;
use strata_core::version::binlog_order;
use strata_core::{BinlogPos, CommitInfo, GtidSet, MariaGtidPos, Op, RowChange, SourceEvent};
use tokio::sync::mpsc;

/// What the caller should do after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The consumer is gone.
    Stop,
}

/// The GTID that the next transaction or statement will carry.
#[derive(Debug, Clone)]
enum PendingGtid {
    Mysql {
        sid: String,
        gno: u64,
        text: Arc<str>,
        commit_ts_ms: Option<u64>,
    },
    Anonymous {
        commit_ts_ms: Option<u64>,
    },
    Maria(mariadb::MariaGtid),
}

/// The transaction being read.
#[derive(Debug)]
struct Tx {
    gtid: Option<PendingGtid>,
    gtid_text: Option<Arc<str>>,
    ts_ms: u64,
    last_order: u64,
}

/// A compressed transaction whose inner events are being read.
#[derive(Debug, Clone, Copy)]
struct Payload {
    start: u64,
    end: u64,
    remaining: u64,
}

/// Decoding state across events; owned by the reader task.
pub(crate) struct Reader {
    flavor: Flavor,
    filter: TableFilter,
    out: mpsc::Sender<Result<SourceEvent, SourceError>>,
    stats: Arc<SourceStats>,
    file: Arc<str>,
    file_seq: u64,
    /// The offset just after the last event read from the file.
    next_pos: u64,
    payload: Option<Payload>,
    /// `table_id` → its decoder, or `None` for a table that is not wanted.
    tables: HashMap<u64, Option<Arc<TableDecoder>>>,
    /// The raw TABLE_MAP each decoder was built from, to reuse it when MySQL re-sends the
    /// same map in the next transaction.
    table_maps: HashMap<u64, Vec<u8>>,
    pending: Option<PendingGtid>,
    tx: Option<Tx>,
    executed: Option<GtidSet>,
    /// The change index inside the current event (or compressed transaction).
    index: u64,
    /// The server checksums events (`binlog_checksum=CRC32`).
    server_checksum: bool,
    /// A FORMAT_DESCRIPTION event was read, so checksums are known to the event reader.
    seen_fde: bool,
    /// MariaDB only: tells which LONGTEXT columns are JSON.
    catalog: Option<JsonCatalog>,
}

/// What the reader starts from.
pub(crate) struct ReaderSetup {
    pub(crate) flavor: Flavor,
    pub(crate) filter: TableFilter,
    /// The requested start (the fake ROTATE at the stream start confirms or corrects it).
    pub(crate) start: BinlogPos,
    /// The GTID state at `start`, when known.
    pub(crate) executed: Option<GtidSet>,
    /// The server checksums events (`binlog_checksum=CRC32`).
    pub(crate) server_checksum: bool,
    /// MariaDB only: tells which LONGTEXT columns are JSON.
    pub(crate) catalog: Option<JsonCatalog>,
}

impl Reader {
    /// A reader sending to `out` and counting in `stats`.
    pub(crate) fn new(
        setup: ReaderSetup,
        out: mpsc::Sender<Result<SourceEvent, SourceError>>,
        stats: Arc<SourceStats>,
    ) -> Self {
        Reader {
            flavor: setup.flavor,
            filter: setup.filter,
            out,
            stats,
            file_seq: file_seq(&setup.start.file),
            file: setup.start.file.into(),
            next_pos: setup.start.pos,
            payload: None,
            tables: HashMap::new(),
            table_maps: HashMap::new(),
            pending: None,
            tx: None,
            executed: setup.executed,
            index: 0,
            server_checksum: setup.server_checksum,
            seen_fde: false,
            catalog: setup.catalog,
        }
    }

    /// Where the reader stands: just after the last event read.
    pub(crate) fn position(&self) -> BinlogPos {
        BinlogPos::new(self.file.as_ref(), self.next_pos)
    }

    /// Hands the stream's final error to the consumer.
    pub(crate) async fn fail(&self, error: SourceError) {
        let _ = self.out.send(Err(error)).await;
    }

    async fn send(&self, event: Result<SourceEvent, SourceError>) -> Flow {
        match self.out.send(event).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    fn decode_error(&self, at: u64, reason: impl Into<String>) -> SourceError {
        SourceError::Decode {
            position: BinlogPos::new(self.file.as_ref(), at),
            reason: reason.into(),
        }
    }

    /// Handles one event from the stream.
    pub(crate) async fn handle(&mut self, event: &Event) -> Result<Flow, SourceError> {
        let header = event.header();
        let size = u64::from(header.event_size());
        let raw_type = header.event_type_raw();
        let log_pos = header.log_pos();

        // Inner events of a compressed transaction are counted down by size.
        let inner = match self.payload.as_mut() {
            Some(p) if p.remaining > 0 => {
                if log_pos != 0 && u64::from(log_pos) != p.end {
                    let at = p.start;
                    return Err(self.decode_error(
                        at,
                        "the compressed transaction payload could not be decompressed (its events did not arrive)",
                    ));
                }
                p.remaining = p.remaining.saturating_sub(size);
                true
            }
            _ => false,
        };
        let (event_start, event_end) = if let Some(p) = self.payload.filter(|_| inner) {
            (p.start, p.end)
        } else {
            self.payload = None;
            self.stats
                .event(if is_heartbeat(raw_type) { 0 } else { size });
            self.index = 0;
            if log_pos == 0 || is_heartbeat(raw_type) {
                // Artificial events (the fake ROTATE, a re-sent FORMAT_DESCRIPTION) and
                // heartbeats take no room in the file.
                (self.next_pos, self.next_pos)
            } else {
                let end = widen(log_pos, self.next_pos);
                self.next_pos = end;
                (end.saturating_sub(size), end)
            }
        };
        if inner {
            self.stats.event(0);
        }

        match raw_type {
            t if t == EventType::ROTATE_EVENT as u8 => {
                let rotate: RotateEvent<'_> = event
                    .read_event()
                    .map_err(|e| self.decode_error(event_start, format!("ROTATE: {e}")))?;
                let mut name = rotate.name_raw().to_vec();
                // The fake ROTATE at the start of the stream comes before any
                // FORMAT_DESCRIPTION, so a checksum it carries (MariaDB sends one, MySQL
                // does not) was not recognised and ends its name: strip it when it is one.
                if !self.seen_fde && self.server_checksum && ends_with_crc32(event) {
                    name.truncate(name.len().saturating_sub(4));
                }
                let name = String::from_utf8_lossy(&name).into_owned();
                self.file_seq = file_seq(&name);
                self.file = name.into();
                self.next_pos = rotate.position();
                Ok(Flow::Continue)
            }
            t if t == EventType::FORMAT_DESCRIPTION_EVENT as u8 => {
                self.seen_fde = true;
                Ok(Flow::Continue)
            }
            t if t == EventType::QUERY_EVENT as u8 => {
                let query: QueryEvent<'_> = event
                    .read_event()
                    .map_err(|e| self.decode_error(event_start, format!("QUERY: {e}")))?;
                self.on_query(&query, header.timestamp(), event_end).await
            }
            t if t == EventType::XID_EVENT as u8 || t == EventType::XA_PREPARE_LOG_EVENT as u8 => {
                self.commit(header.timestamp(), event_end).await
            }
            t if t == EventType::TABLE_MAP_EVENT as u8 => {
                let tme: TableMapEvent<'_> = event
                    .read_event()
                    .map_err(|e| self.decode_error(event_start, format!("TABLE_MAP: {e}")))?;
                self.on_table_map(&tme, event.data(), event_start).await?;
                Ok(Flow::Continue)
            }
            t if is_rows_event(t) => self.on_rows(event, event_start).await,
            t if t == EventType::GTID_EVENT as u8
                || t == EventType::GTID_TAGGED_LOG_EVENT as u8
                || t == EventType::ANONYMOUS_GTID_EVENT as u8 =>
            {
                let gtid: GtidEvent = if t == EventType::ANONYMOUS_GTID_EVENT as u8 {
                    event
                        .read_event::<mysql_common::binlog::events::AnonymousGtidEvent>()
                        .map(|a| a.0)
                } else {
                    event.read_event()
                }
                .map_err(|e| self.decode_error(event_start, format!("GTID: {e}")))?;
                self.on_mysql_gtid(&gtid, t == EventType::ANONYMOUS_GTID_EVENT as u8);
                Ok(Flow::Continue)
            }
            t if t == EventType::PREVIOUS_GTIDS_EVENT as u8 => {
                if self.executed.is_none() {
                    let prev: PreviousGtidsEvent<'_> = event.read_event().map_err(|e| {
                        self.decode_error(event_start, format!("PREVIOUS_GTIDS: {e}"))
                    })?;
                    self.executed = Some(GtidSet::Mysql(previous_gtids(&prev)?));
                }
                Ok(Flow::Continue)
            }
            t if t == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => {
                let tpe: TransactionPayloadEvent<'_> = event.read_event().map_err(|e| {
                    self.decode_error(event_start, format!("TRANSACTION_PAYLOAD: {e}"))
                })?;
                self.payload = Some(Payload {
                    start: event_start,
                    end: event_end,
                    remaining: tpe.uncompressed_size(),
                });
                Ok(Flow::Continue)
            }
            t if is_heartbeat(t) => {
                let file = if t == EventType::HEARTBEAT_EVENT as u8 && !event.data().is_empty() {
                    String::from_utf8_lossy(event.data()).into_owned()
                } else {
                    self.file.to_string()
                };
                let pos = if log_pos == 0 {
                    self.next_pos
                } else {
                    widen(log_pos, self.next_pos)
                };
                Ok(self
                    .send(Ok(SourceEvent::Idle {
                        position: BinlogPos::new(file, pos),
                    }))
                    .await)
            }
            t if t == EventType::INCIDENT_EVENT as u8 => Err(self.decode_error(
                event_start,
                "the source logged an INCIDENT (it may have lost changes, e.g. a failed non-transactional write); re-snapshot the affected tables, then start after this position",
            )),
            mariadb::GTID_EVENT => {
                let gtid = mariadb::parse_gtid(event.data(), header.server_id())
                    .map_err(|e| self.decode_error(event_start, format!("GTID: {e}")))?;
                let standalone = gtid.standalone;
                self.pending = Some(PendingGtid::Maria(gtid));
                if standalone {
                    // One statement (DDL) follows, without BEGIN/COMMIT.
                    Ok(Flow::Continue)
                } else {
                    self.begin(header.timestamp()).await
                }
            }
            mariadb::GTID_LIST_EVENT => {
                if self.executed.is_none() {
                    let list = mariadb::parse_gtid_list(event.data())
                        .map_err(|e| self.decode_error(event_start, format!("GTID_LIST: {e}")))?;
                    let mut pos = MariaGtidPos::default();
                    for (domain, server, seq) in list {
                        pos.update(domain, server, seq);
                    }
                    self.executed = Some(GtidSet::MariaDb(pos));
                }
                Ok(Flow::Continue)
            }
            mariadb::FIRST_COMPRESSED_EVENT..=mariadb::LAST_COMPRESSED_EVENT => Err(self.decode_error(
                event_start,
                "MariaDB compressed binlog events are not supported: run `SET GLOBAL log_bin_compress=OFF` on the source and start from a position written after that",
            )),
            mariadb::ANNOTATE_ROWS_EVENT
            | mariadb::BINLOG_CHECKPOINT_EVENT
            | mariadb::START_ENCRYPTION_EVENT => Ok(Flow::Continue),
            // FORMAT_DESCRIPTION (handled by the stream reader), ROWS_QUERY, INTVAR, RAND,
            // USER_VAR and the like carry nothing a row-based replica needs.
            _ => Ok(Flow::Continue),
        }
    }

    fn on_mysql_gtid(&mut self, gtid: &GtidEvent, anonymous: bool) {
        let ts = gtid.immediate_commit_timestamp();
        let commit_ts_ms = (ts > 0).then_some(ts / 1000);
        self.pending = Some(if anonymous {
            PendingGtid::Anonymous { commit_ts_ms }
        } else {
            let uuid = uuid_text(&gtid.sid());
            let sid = match gtid.tag() {
                Some(tag) => format!("{uuid}:{}", tag.as_str()),
                None => uuid,
            };
            let text: Arc<str> = format!("{sid}:{}", gtid.gno()).into();
            PendingGtid::Mysql {
                sid,
                gno: gtid.gno(),
                text,
                commit_ts_ms,
            }
        });
    }

    async fn on_query(
        &mut self,
        query: &QueryEvent<'_>,
        header_ts: u32,
        event_end: u64,
    ) -> Result<Flow, SourceError> {
        let text = query.query();
        let statement = text.trim();
        let word = |w: &str| {
            statement.len() >= w.len()
                && statement.as_bytes()[..w.len()].eq_ignore_ascii_case(w.as_bytes())
        };
        if word("BEGIN") || word("XA START") {
            return self.begin(header_ts).await;
        }
        if word("COMMIT") {
            return self.commit(header_ts, event_end).await;
        }
        if word("ROLLBACK") && self.tx.is_some() {
            // Only changes to non-transactional tables are logged before a ROLLBACK, and
            // those changes did happen.
            tracing::warn!(position = %self.position(), "transaction with non-transactional changes ended in ROLLBACK; delivering its logged changes");
            return self.commit(header_ts, event_end).await;
        }
        if self.tx.is_some() || word("XA ") || word("SAVEPOINT") {
            return Ok(Flow::Continue);
        }
        // A statement outside a transaction: DDL (or an administrative statement).
        self.finish_statement();
        if let Some(catalog) = self.catalog.as_mut() {
            catalog.forget();
        }
        let schema = query.schema().into_owned();
        if !schema.is_empty() && !self.filter.wants_schema(&schema) {
            return Ok(Flow::Continue);
        }
        if schema.is_empty() && !self.filter.is_all() {
            return Ok(Flow::Continue);
        }
        Ok(self
            .send(Ok(SourceEvent::Ddl {
                schema,
                statement: statement.to_owned(),
                position: BinlogPos::new(self.file.as_ref(), event_end),
            }))
            .await)
    }

    /// Adds a finished transaction's or statement's GTID to the executed set.
    fn record_gtid(&mut self, gtid: Option<PendingGtid>) {
        match (gtid, self.executed.as_mut()) {
            (Some(PendingGtid::Mysql { sid, gno, .. }), Some(GtidSet::Mysql(set))) => {
                set.add(&sid, gno)
            }
            (Some(PendingGtid::Maria(g)), Some(GtidSet::MariaDb(pos))) => {
                pos.update(g.domain, g.server, g.seq)
            }
            _ => {}
        }
    }

    /// A statement outside a transaction consumed its pending GTID.
    fn finish_statement(&mut self) {
        let gtid = self.pending.take();
        self.record_gtid(gtid);
    }

    async fn begin(&mut self, header_ts: u32) -> Result<Flow, SourceError> {
        let gtid = self.pending.take();
        let (gtid_text, commit_ts) = match &gtid {
            Some(PendingGtid::Mysql {
                text, commit_ts_ms, ..
            }) => (Some(text.clone()), *commit_ts_ms),
            Some(PendingGtid::Anonymous { commit_ts_ms }) => (None, *commit_ts_ms),
            Some(PendingGtid::Maria(g)) => (Some(Arc::from(g.text())), None),
            None => (None, None),
        };
        let ts_ms = commit_ts.unwrap_or(u64::from(header_ts) * 1000);
        self.tx = Some(Tx {
            gtid,
            gtid_text: gtid_text.clone(),
            ts_ms,
            last_order: 0,
        });
        Ok(self
            .send(Ok(SourceEvent::Begin {
                gtid: gtid_text,
                ts_ms,
            }))
            .await)
    }

    async fn commit(&mut self, header_ts: u32, event_end: u64) -> Result<Flow, SourceError> {
        let Some(tx) = self.tx.take() else {
            // The stream started inside a transaction after its last change: nothing of it
            // was delivered, so there is nothing to commit.
            self.finish_statement();
            return Ok(Flow::Continue);
        };
        self.record_gtid(tx.gtid);
        self.stats.transaction();
        // MySQL's GTID event carries the commit time in microseconds; MariaDB's events only
        // their second, the latest of which is the commit event's.
        let ts_ms = match self.flavor {
            Flavor::MySql => tx.ts_ms,
            Flavor::MariaDb => tx.ts_ms.max(u64::from(header_ts) * 1000),
        };
        let info = CommitInfo {
            position: BinlogPos::new(self.file.as_ref(), event_end),
            gtid_set: self.executed.clone(),
            ts_ms,
        };
        Ok(self.send(Ok(SourceEvent::Commit(info))).await)
    }

    async fn on_table_map(
        &mut self,
        tme: &TableMapEvent<'_>,
        raw: &[u8],
        event_start: u64,
    ) -> Result<(), SourceError> {
        let id = tme.table_id();
        if !self
            .filter
            .wants_table(&tme.database_name(), &tme.table_name())
        {
            self.tables.insert(id, None);
            self.table_maps.remove(&id);
            return Ok(());
        }
        let reusable = self.table_maps.get(&id).is_some_and(|r| r == raw)
            && self.tables.get(&id).is_some_and(Option::is_some);
        if !reusable {
            let mut decoder =
                table_map::build(tme).map_err(|reason| self.decode_error(event_start, reason))?;
            let longtext = decoder.longtext_columns();
            if let (Some(catalog), false) = (self.catalog.as_mut(), longtext.is_empty()) {
                let id = &decoder.schema.id;
                let json = catalog
                    .json_columns(&id.schema, &id.table, &longtext)
                    .await?;
                if !json.is_empty() {
                    decoder = decoder.with_json_text(&json);
                }
            }
            self.tables.insert(id, Some(Arc::new(decoder)));
            self.table_maps.insert(id, raw.to_vec());
        }
        Ok(())
    }

    async fn on_rows(&mut self, event: &Event, event_start: u64) -> Result<Flow, SourceError> {
        let data = event
            .read_data()
            .map_err(|e| self.decode_error(event_start, format!("rows event: {e}")))?;
        let Some(EventData::RowsEvent(rows)) = data else {
            return Err(self.decode_error(event_start, "rows event of unknown shape"));
        };
        let table_id = rows.table_id();
        let table = match self.tables.get(&table_id) {
            Some(Some(table)) => table.clone(),
            Some(None) => {
                self.stats.rows_event_skipped();
                return Ok(Flow::Continue);
            }
            // MySQL's end-of-statement marker for statements that changed no rows.
            None if table_id == 0x00ff_ffff => return Ok(Flow::Continue),
            None => {
                return Err(self.decode_error(
                    event_start,
                    format!("rows event for table id {table_id} without its TABLE_MAP: the start position is inside a transaction; start at a commit position (a transaction boundary)"),
                ))
            }
        };
        if self.tx.is_none() {
            return Err(self.decode_error(
                event_start,
                format!("rows of {} outside a transaction: the start position is inside a transaction; start at a commit position (a transaction boundary)", table.schema.id),
            ));
        }
        let (op, partial) = match &rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                (Op::Insert, false)
            }
            RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => {
                (Op::Update, false)
            }
            RowsEventData::PartialUpdateRowsEvent(_) => (Op::Update, true),
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                (Op::Delete, false)
            }
        };
        let before_bits = rows.columns_before_image().map(|b| bitmap_bytes(b.iter()));
        let after_bits = rows.columns_after_image().map(|b| bitmap_bytes(b.iter()));
        let mut c = Cursor::new(rows.rows_data());
        let mut pending = Vec::new();
        let out = self.out.clone();
        while !c.is_empty() {
            // Wait for room in the channel before decoding the next row, so a decoded
            // change never waits outside it: memory stays at `channel_capacity` changes.
            let Ok(permit) = out.reserve().await else {
                return Ok(Flow::Stop);
            };
            let before = match &before_bits {
                Some(bits) => Some(
                    decode_image(&table, bits, &mut c, partial, false, &mut pending)
                        .map_err(|reason| self.decode_error(event_start, reason))?,
                ),
                None => None,
            };
            let after = match &after_bits {
                Some(bits) => Some(
                    decode_image(&table, bits, &mut c, false, partial, &mut pending)
                        .map_err(|reason| self.decode_error(event_start, reason))?,
                ),
                None => None,
            };
            let mut after = after.map(|image| image.values);
            if !pending.is_empty() {
                let (Some(before), Some(after)) = (before.as_ref(), after.as_mut()) else {
                    return Err(
                        self.decode_error(event_start, "partial JSON update without images")
                    );
                };
                for PendingDiff { column, diffs } in pending.drain(..) {
                    let name = table.schema.columns[column].name.clone();
                    let err = |reason: String| SourceError::PartialJson {
                        table: table.schema.id.to_string(),
                        column: name.clone(),
                        position: BinlogPos::new(self.file.as_ref(), event_start),
                        reason,
                    };
                    let mut doc = before
                        .json_docs
                        .get(column)
                        .cloned()
                        .flatten()
                        .ok_or_else(|| err("the before image has no document to update".into()))?;
                    json::apply_diffs(&mut doc, &diffs).map_err(err)?;
                    self.stats.json_diff_applied();
                    after[column] = strata_core::Value::Json(doc.to_text());
                }
            }
            let order = self.next_order(event_start);
            let change = RowChange {
                table: table.schema.clone(),
                op,
                before: before.map(|image| image.values),
                after,
                file: self.file.clone(),
                event_pos: event_start,
                gtid: self.tx.as_ref().and_then(|tx| tx.gtid_text.clone()),
                ts_ms: self.tx.as_ref().map_or(0, |tx| tx.ts_ms),
                order,
            };
            self.stats.change_decoded();
            permit.send(Ok(SourceEvent::Change(change)));
        }
        Ok(Flow::Continue)
    }

    /// The next change's order: its binlog order, and strictly above the previous change
    /// of the transaction.
    fn next_order(&mut self, event_start: u64) -> u64 {
        let computed = binlog_order(self.file_seq, event_start, self.index);
        self.index += 1;
        let tx = self.tx.as_mut();
        match tx {
            Some(tx) => {
                let order = computed.max(tx.last_order.saturating_add(1));
                tx.last_order = order;
                order
            }
            None => computed,
        }
    }
}
