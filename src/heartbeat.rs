//! The opt-in heartbeat row: while a version runs, strata upserts one row per version into a
//! table of the version's own source schema at every interval. The row's transactions go
//! through the binlog and the whole pipeline (the table is excluded from replication, so
//! nothing reaches a target), which keeps the applied commit time moving while the
//! application is idle: lag is then measured end to end rather than from the source's
//! binlog heartbeats alone.
//!
//! It is off by default because it needs a write grant on the source. Failures (no grant,
//! the source away) are logged once at warn with the fix and retried at the interval; they
//! never stop the version.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::time::Duration;
use strata_config::HeartbeatSettings;
use strata_mysql::SourceConfig;
use strata_pipeline::CancellationToken;

/// Longest one beat (connecting included) may take before it counts as failed.
const BEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Stops the heartbeat task when dropped.
pub struct Stop(pub CancellationToken);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What the heartbeat task needs to know.
pub struct Heartbeat {
    /// The table and interval.
    pub settings: HeartbeatSettings,
    /// The version's name: the row's key.
    pub version: String,
    /// How to reach the source (its URL and TLS settings).
    pub source: SourceConfig,
    /// The source user, for the GRANT statement in the warning.
    pub user: String,
}

impl Heartbeat {
    /// `` `schema`.`table` `` (both are plain identifiers, checked by the config).
    fn table(&self) -> String {
        format!("`{}`.`{}`", self.settings.schema, self.settings.table)
    }

    /// Writes the row every interval until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut conn: Option<Conn> = None;
        let mut created = false;
        let mut failing = false;
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            table = %self.table(),
            interval_ms = self.settings.interval.as_millis() as u64,
            "heartbeat row on"
        );
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let beat = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tokio::time::timeout(BEAT_TIMEOUT, self.beat(&mut conn, &mut created)) => {
                    r.unwrap_or_else(|_| {
                        Err(format!("the source did not answer within {BEAT_TIMEOUT:?}"))
                    })
                }
            };
            match beat {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(table = %self.table(), "heartbeat row written again");
                }
                Ok(()) => {}
                Err(e) => {
                    // A failed connection is not reused; the next beat reconnects.
                    conn = None;
                    if failing {
                        tracing::debug!(error = %e, "heartbeat row still not written");
                    } else {
                        failing = true;
                        tracing::warn!(
                            table = %self.table(),
                            error = %e,
                            "cannot write the heartbeat row (retrying every {:?}; replication \
                             goes on, but idle lag is measured without it): give the source \
                             user the grant with `GRANT INSERT, UPDATE, CREATE ON {} TO '{}'`, \
                             or remove `heartbeat` from the version",
                            self.settings.interval,
                            self.table(),
                            self.user,
                        );
                    }
                }
            }
        }
        if let Some(conn) = conn {
            let _ = conn.disconnect().await;
        }
    }

    /// One beat: connects when needed, creates the table once, upserts the row.
    async fn beat(&self, conn: &mut Option<Conn>, created: &mut bool) -> Result<(), String> {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(
                strata_mysql::connect_source(&self.source)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        let table = self.table();
        if !*created {
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {table} (version VARCHAR(64) PRIMARY KEY, \
                 beat_at DATETIME(6) NOT NULL, beats BIGINT UNSIGNED NOT NULL)"
            );
            c.query_drop(&create)
                .await
                .map_err(|e| format!("creating {table}: {e}"))?;
            *created = true;
        }
        let upsert = format!(
            "INSERT INTO {table} (version, beat_at, beats) VALUES (?, UTC_TIMESTAMP(6), 1) \
             ON DUPLICATE KEY UPDATE beat_at = VALUES(beat_at), beats = beats + 1"
        );
        c.exec_drop(&upsert, (self.version.as_str(),))
            .await
            .map_err(|e| format!("writing the row into {table}: {e}"))
    }
}
