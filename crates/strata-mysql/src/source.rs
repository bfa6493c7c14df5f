//! The binlog source: preflight, open a replica stream, and hand whole transactions of
//! decoded row changes to the consumer through a bounded channel.

use crate::catalog::JsonCatalog;
use crate::config::SourceConfig;
use crate::connect::{self, exec, query_text, Flavor, ServerInfo};
use crate::error::SourceError;
use crate::gtid::mysql_sids;
use crate::preflight::preflight;
use crate::reader::{Flow, Reader, ReaderSetup};
use crate::stats::SourceStats;
use futures_util::StreamExt;
use mysql_async::{BinlogStream, BinlogStreamRequest};
use mysql_common::packets::Sid;
use std::sync::Arc;
use std::time::Duration;
use strata_core::StartFrom;
use strata_core::{BinlogPos, GtidSet, MariaGtidPos, SourceEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A running binlog stream.
///
/// Events arrive in binlog order: `Begin`, the transaction's `Change`s, `Commit`; `Idle`
/// when the server has nothing to send; `Ddl` for schema changes of wanted schemas.
/// `next()` returns `None` after a clean end (only with `stop_at_end`), and
/// `Some(Err(_))` once, as the last item, when the stream fails.
///
/// Memory is bounded whatever the transaction size: a reader task waits for room in a
/// channel of `channel_capacity` events before it decodes each row change, so at most
/// `channel_capacity` decoded changes wait in the channel, plus the one the consumer holds:
/// `channel_capacity + 1` (see [`crate::SourceCounters::in_flight_high_water`]). On top of
/// that the reader holds the one rows event it is decoding (≤ `binlog_row_event_max_size`,
/// 8 KiB by default) and, for a MySQL compressed transaction, its decompressed payload
/// (`mysql_async` inflates a TRANSACTION_PAYLOAD event whole, so a huge compressed
/// transaction costs its uncompressed size once).
pub struct BinlogSource {
    rx: mpsc::Receiver<Result<SourceEvent, SourceError>>,
    stats: Arc<SourceStats>,
    server: ServerInfo,
    start: BinlogPos,
    connection_id: u32,
    task: JoinHandle<()>,
}

/// Where the stream request starts, and the GTID state there when known.
struct Resolved {
    file: String,
    pos: u64,
    executed: Option<GtidSet>,
    mysql_gtid: Option<strata_core::MysqlGtidSet>,
    maria_gtid: Option<MariaGtidPos>,
}

impl BinlogSource {
    /// Runs the preflight checks, registers as a replica and starts streaming.
    pub async fn start(cfg: SourceConfig) -> Result<BinlogSource, SourceError> {
        let server = preflight(&cfg).await?;
        let mut conn = connect::connect(&cfg).await?;
        let resolved = resolve_start(&cfg, &server, &mut conn).await?;
        let checksum = query_text(&mut conn, "SELECT @@GLOBAL.binlog_checksum")
            .await?
            .is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));

        // Heartbeats let an idle stream be told apart from a dead connection. MySQL 8.0.26+
        // reads the `source_` name, older servers and MariaDB the `master_` one.
        let nanos = cfg.heartbeat.as_nanos().min(u128::from(u64::MAX)) as u64;
        exec(
            &mut conn,
            &format!("SET @master_heartbeat_period = {nanos}"),
        )
        .await?;
        exec(
            &mut conn,
            &format!("SET @source_heartbeat_period = {nanos}"),
        )
        .await?;
        if server.flavor == Flavor::MariaDb {
            // 4 = MARIA_SLAVE_CAPABILITY_GTID: send GTID events, not fake BEGIN queries.
            exec(&mut conn, "SET @mariadb_slave_capability = 4").await?;
            if let Some(pos) = &resolved.maria_gtid {
                exec(&mut conn, &format!("SET @slave_connect_state = '{pos}'")).await?;
                exec(&mut conn, "SET @slave_gtid_strict_mode = 0").await?;
                exec(&mut conn, "SET @slave_gtid_ignore_duplicates = 0").await?;
            }
        }

        let sids: Vec<Sid<'static>> = match &resolved.mysql_gtid {
            Some(set) => mysql_sids(set)?,
            None => Vec::new(),
        };
        let mut request = BinlogStreamRequest::new(cfg.server_id)
            .with_filename(resolved.file.as_bytes())
            .with_pos(resolved.pos);
        if resolved.mysql_gtid.is_some() {
            request = request.with_gtid().with_gtid_set(sids);
        }
        if cfg.stop_at_end {
            request = request.with_non_blocking();
        }
        let from = cfg.start.to_string();
        let connection_id = conn.id();
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| start_error(&from, e))?;

        let (tx, rx) = mpsc::channel(cfg.channel_capacity);
        let stats = Arc::new(SourceStats::default());
        let start = BinlogPos::new(&resolved.file, resolved.pos);
        let setup = ReaderSetup {
            flavor: server.flavor,
            filter: cfg.filter.clone(),
            start: start.clone(),
            executed: resolved.executed,
            server_checksum: checksum,
            catalog: (server.flavor == Flavor::MariaDb).then(|| JsonCatalog::new(cfg.clone())),
        };
        let reader = Reader::new(setup, tx, stats.clone());
        tracing::info!(
            flavor = %server.flavor,
            start = %cfg.start,
            server_id = cfg.server_id,
            "binlog stream started"
        );
        let task = tokio::spawn(run(
            reader,
            stream,
            cfg.read_timeout,
            cfg.heartbeat,
            cfg.stop_at_end,
            from,
        ));
        Ok(BinlogSource {
            rx,
            stats,
            server,
            start,
            connection_id,
            task,
        })
    }

    /// The next event; `None` after a clean end of the stream.
    pub async fn next(&mut self) -> Option<Result<SourceEvent, SourceError>> {
        let item = self.rx.recv().await;
        if let Some(Ok(SourceEvent::Change(_))) = &item {
            self.stats.change_consumed();
        }
        item
    }

    /// Events decoded and waiting in the channel (at most `channel_capacity`).
    pub fn buffered(&self) -> usize {
        self.rx.len()
    }

    /// Live counters (events, bytes, skipped rows events, memory high-water mark).
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// The server as preflight found it (flavour, version, binlog end when streaming began).
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// The file and offset the stream was requested from (empty file name for a GTID start,
    /// where the server picks the file).
    pub fn start_position(&self) -> &BinlogPos {
        &self.start
    }

    /// The server's id of the replica connection (`KILL <id>` ends the stream; it shows in
    /// SHOW PROCESSLIST as `Binlog Dump`).
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }
}

impl Drop for BinlogSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn resolve_start(
    cfg: &SourceConfig,
    server: &ServerInfo,
    conn: &mut mysql_async::Conn,
) -> Result<Resolved, SourceError> {
    let plain = |file: String, pos: u64, executed: Option<GtidSet>| Resolved {
        file,
        pos,
        executed,
        mysql_gtid: None,
        maria_gtid: None,
    };
    Ok(match &cfg.start {
        StartFrom::Oldest => {
            let oldest = server.oldest().ok_or_else(|| {
                SourceError::Config(
                    "the source lists no binlog files (SHOW BINARY LOGS is empty)".into(),
                )
            })?;
            // The first file's PREVIOUS_GTIDS / GTID_LIST event gives the GTID state.
            plain(oldest.file, oldest.pos, None)
        }
        StartFrom::Current => plain(server.end.file.clone(), server.end.pos, server.gtid.clone()),
        StartFrom::FilePos(pos) => {
            let executed = match server.flavor {
                Flavor::MariaDb => {
                    let text = query_text(
                        conn,
                        &format!(
                            "SELECT BINLOG_GTID_POS('{}', {})",
                            pos.file.replace('\'', "''"),
                            pos.pos
                        ),
                    )
                    .await
                    .ok()
                    .flatten();
                    text.and_then(|t| t.parse::<MariaGtidPos>().ok())
                        .map(GtidSet::MariaDb)
                }
                // Unknown until the next file's PREVIOUS_GTIDS event, unless the start is the
                // beginning of a file.
                Flavor::MySql => None,
            };
            plain(pos.file.clone(), pos.pos, executed)
        }
        StartFrom::Gtid(GtidSet::Mysql(set)) => Resolved {
            file: String::new(),
            pos: 4,
            executed: Some(GtidSet::Mysql(set.clone())),
            mysql_gtid: Some(set.clone()),
            maria_gtid: None,
        },
        StartFrom::Gtid(GtidSet::MariaDb(pos)) => Resolved {
            file: String::new(),
            pos: 4,
            executed: Some(GtidSet::MariaDb(pos.clone())),
            mysql_gtid: None,
            maria_gtid: Some(pos.clone()),
        },
    })
}

/// Server error codes that mean "cannot stream from there" (1236: ER_MASTER_FATAL_ERROR_
/// READING_BINLOG; 13114: MySQL 8's ER_SOURCE_FATAL_ERROR_READING_BINLOG).
fn is_binlog_read_error(code: u16) -> bool {
    matches!(code, 1236 | 13114)
}

fn start_error(from: &str, e: mysql_async::Error) -> SourceError {
    match e {
        mysql_async::Error::Server(se) if is_binlog_read_error(se.code) => {
            let lower = se.message.to_ascii_lowercase();
            let fix = if lower.contains("server_id") || lower.contains("server_uuid") {
                "another replica uses the same server_id: give each replicator its own --server-id"
                    .to_owned()
            } else if lower.contains("purged") || lower.contains("could not find") {
                "the position is no longer on the source: re-snapshot the tables, or accept the gap with --from oldest".to_owned()
            } else {
                "check the start position (a commit position strata printed, --from oldest or --from current)".to_owned()
            };
            SourceError::StartRejected {
                from: from.to_owned(),
                message: se.message,
                fix,
            }
        }
        other => SourceError::Query {
            query: "COM_BINLOG_DUMP".into(),
            source: other,
        },
    }
}

/// The reader task: reads until the end, an error, or the consumer leaves.
async fn run(
    mut reader: Reader,
    mut stream: BinlogStream,
    read_timeout: Duration,
    heartbeat: Duration,
    stop_at_end: bool,
    from: String,
) {
    let outcome: Result<(), SourceError> = loop {
        let item = match tokio::time::timeout(read_timeout, stream.next()).await {
            Err(_) => {
                break Err(SourceError::ConnectionLost {
                    position: reader.position(),
                    reason: format!(
                        "no event or heartbeat for {read_timeout:?} (heartbeats are due every {heartbeat:?})"
                    ),
                })
            }
            Ok(item) => item,
        };
        match item {
            None if stop_at_end => break Ok(()),
            None => {
                break Err(SourceError::ConnectionLost {
                    position: reader.position(),
                    reason: "the server ended the binlog stream".into(),
                })
            }
            Some(Err(mysql_async::Error::Server(se))) if is_binlog_read_error(se.code) => {
                break Err(start_error(&from, mysql_async::Error::Server(se)))
            }
            Some(Err(e)) => {
                break Err(SourceError::ConnectionLost {
                    position: reader.position(),
                    reason: e.to_string(),
                })
            }
            Some(Ok(event)) => match reader.handle(&event).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(error = %e, "binlog stream ended with an error");
        reader.fail(e).await;
    }
    // Closing may block on a dead socket; never wait long for it.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
}
