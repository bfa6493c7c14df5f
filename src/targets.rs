//! Connecting a version's configured targets as sinks.

use std::sync::Arc;
use std::time::Duration;
use strata_config::{Targets, VersionConfig};
use strata_core::{RetryDirective, Sink, SinkError};
use strata_pipeline::{CancellationToken, RetryPolicy};
use strata_sinks::mongo::{MongoSettings, MongoSink};
use strata_sinks::postgres::{PostgresSettings, PostgresSink};
use strata_sinks::redis::{RedisSettings, RedisSink};
use strata_sinks::search::{SearchSettings, SearchSink};

/// Who writes through the sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The version's replicator.
    Replicator,
    /// A snapshot or a repair, which may write the replicator's rows at the same time (a
    /// sink that needs to know, MongoDB's, checks its writes against the replicator's
    /// deletes again).
    BesideReplicator,
}

/// Connects every target of `version`. A target that is down is retried with backoff (a
/// version waits for its stores rather than failing), until `shutdown`; a target whose
/// settings are wrong fails at once. `on_retry` (target name, error) hears of each failed
/// attempt that is retried, so status can say which target is down and why.
pub async fn connect_all(
    version: &VersionConfig,
    writer: Writer,
    shutdown: &CancellationToken,
    on_retry: &(dyn Fn(&str, &SinkError) + Sync),
) -> Result<Option<Vec<Arc<dyn Sink>>>, SinkError> {
    let ttl = version.apply.tombstone_ttl;
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    let Targets {
        mongodb,
        redis,
        opensearch,
        postgres,
    } = &version.targets;
    if let Some(t) = mongodb {
        let mut s = MongoSettings::new(t.url.expose(), t.database.clone());
        s.tombstone_ttl = ttl;
        s.other_writers = writer == Writer::BesideReplicator;
        let Some(sink) = retrying("mongodb", shutdown, on_retry, || {
            MongoSink::connect(s.clone())
        })
        .await?
        else {
            return Ok(None);
        };
        sinks.push(Arc::new(sink));
    }
    if let Some(t) = redis {
        let mut s = RedisSettings::new(t.url.expose());
        s.db = t.db;
        s.key_prefix = t.key_prefix.clone();
        s.tombstone_ttl = ttl;
        let Some(sink) = retrying("redis", shutdown, on_retry, || {
            RedisSink::connect(s.clone())
        })
        .await?
        else {
            return Ok(None);
        };
        sinks.push(Arc::new(sink));
    }
    if let Some(t) = opensearch {
        let mut s = SearchSettings::new(t.url.expose(), t.index_prefix.clone());
        s.username = t.username.clone();
        s.password = t.password.as_ref().map(|p| p.expose().to_owned());
        s.tombstone_ttl = ttl;
        let Some(sink) = retrying("opensearch", shutdown, on_retry, || {
            SearchSink::connect(s.clone())
        })
        .await?
        else {
            return Ok(None);
        };
        sinks.push(Arc::new(sink));
    }
    if let Some(t) = postgres {
        let mut s = PostgresSettings::new(t.url.expose(), t.schema.clone());
        s.tombstone_ttl = ttl;
        let Some(sink) = retrying("postgres", shutdown, on_retry, || {
            PostgresSink::connect(s.clone())
        })
        .await?
        else {
            return Ok(None);
        };
        sinks.push(Arc::new(sink));
    }
    Ok(Some(sinks))
}

/// Calls `connect` until it succeeds, fails for good, or `shutdown` (then `Ok(None)`).
async fn retrying<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    on_retry: &(dyn Fn(&str, &SinkError) + Sync),
    mut connect: F,
) -> Result<Option<T>, SinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SinkError>>,
{
    let policy = RetryPolicy {
        max: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let mut attempt = 0;
    loop {
        match connect().await {
            Ok(sink) => return Ok(Some(sink)),
            Err(e) if e.kind.retry_directive() == RetryDirective::Backoff => {
                let delay = policy.delay(attempt);
                attempt += 1;
                tracing::warn!(target_store = what, attempt, delay_ms = delay.as_millis() as u64, error = %e, "target not reachable; retrying");
                on_retry(what, &e);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}
