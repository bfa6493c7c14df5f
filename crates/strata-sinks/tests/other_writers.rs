//! Two writers of the same rows at once, against the real servers: a replicator applying
//! deletes and a snapshot (or a repair) writing older copies of the same rows through its
//! own sink and connections. Whatever the interleaving, a newer delete must win: no row
//! may be left behind. (STRATA_TEST_{POSTGRES,MONGO,REDIS,OPENSEARCH}_URL)
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{delete, env_url, install_tls_provider, people, person, unique, upsert};
use strata_core::{Sink, TargetReader, Value};
use strata_sinks::mongo::{MongoReader, MongoSettings, MongoSink};
use strata_sinks::postgres::{PostgresReader, PostgresSettings, PostgresSink};
use strata_sinks::redis::{RedisReader, RedisSettings, RedisSink};
use strata_sinks::search::{SearchReader, SearchSettings, SearchSink};

/// Rounds of the race; each uses its own keys.
const ROUNDS: i64 = 12;
/// Keys per round.
const KEYS: i64 = 240;
/// Ops per batch (each side sends a round's keys in several batches, to interleave).
const BATCH: usize = 40;

/// Races, round after round, a writer of older upserts (`copier`, version 20) against a
/// writer of newer deletes (`replicator`, version 30). In even rounds the rows exist
/// beforehand (version 10); in odd rounds they do not, which leaves no row to lock.
/// Afterwards every key must be absent.
async fn older_upserts_never_outlive_newer_deletes(
    copier: &dyn Sink,
    replicator: &dyn Sink,
    reader: &dyn TargetReader,
) {
    let table = people("items");
    for round in 0..ROUNDS {
        let ids: Vec<i64> = (round * KEYS + 1..=(round + 1) * KEYS).collect();
        if round % 2 == 0 {
            let first: Vec<_> = ids
                .iter()
                .map(|&id| upsert(&table, person(id, "first", 1), 10))
                .collect();
            replicator.apply(&first).await.unwrap();
        }
        let copies: Vec<_> = ids
            .iter()
            .map(|&id| upsert(&table, person(id, "copied", 2), 20))
            .collect();
        let deletes: Vec<_> = ids
            .iter()
            .map(|&id| delete(&table, vec![Value::Int(id)], 30))
            .collect();
        // Each side walks the keys from a different end, so they meet in the middle.
        let copy = async {
            for chunk in copies.chunks(BATCH) {
                copier.apply(chunk).await.unwrap();
            }
        };
        let remove = async {
            for chunk in deletes.rchunks(BATCH) {
                replicator.apply(chunk).await.unwrap();
            }
        };
        tokio::join!(copy, remove);
    }
    let mut left = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = reader.scan(&table, cursor.as_deref(), 1_000).await.unwrap();
        left.extend(page.keys.into_iter().map(|k| k.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(
        left.is_empty(),
        "{} rows deleted at version 30 are back with an older copy (version 20): {:?}",
        left.len(),
        &left[..left.len().min(20)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_older_upserts_of_another_writer_never_outlive_newer_deletes() {
    let url = env_url("STRATA_TEST_POSTGRES_URL");
    let schema = unique("others");
    let settings = PostgresSettings::new(url.clone(), schema.clone());
    let copier = PostgresSink::connect(settings.clone()).await.unwrap();
    let replicator = PostgresSink::connect(settings.clone()).await.unwrap();
    let reader = PostgresReader::connect(settings).await.unwrap();
    older_upserts_never_outlive_newer_deletes(&copier, &replicator, &reader).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_older_upserts_of_another_writer_never_outlive_newer_deletes() {
    let url = env_url("STRATA_TEST_MONGO_URL");
    let database = unique("others");
    let settings = MongoSettings::new(url.clone(), &database);
    let mut shared = settings.clone();
    shared.other_writers = true;
    let copier = MongoSink::connect(shared).await.unwrap();
    let replicator = MongoSink::connect(settings.clone()).await.unwrap();
    let reader = MongoReader::connect(settings).await.unwrap();
    older_upserts_never_outlive_newer_deletes(&copier, &replicator, &reader).await;
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    client.database(&database).drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_older_upserts_of_another_writer_never_outlive_newer_deletes() {
    let mut settings = RedisSettings::new(env_url("STRATA_TEST_REDIS_URL"));
    settings.db = 14;
    settings.key_prefix = format!("{}:", unique("others"));
    let copier = RedisSink::connect(settings.clone()).await.unwrap();
    let replicator = RedisSink::connect(settings.clone()).await.unwrap();
    let reader = RedisReader::connect(settings).await.unwrap();
    older_upserts_never_outlive_newer_deletes(&copier, &replicator, &reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opensearch_older_upserts_of_another_writer_never_outlive_newer_deletes() {
    install_tls_provider();
    let url = env_url("STRATA_TEST_OPENSEARCH_URL");
    let prefix = format!("{}_", unique("others"));
    let settings = SearchSettings::new(&url, &prefix);
    let copier = SearchSink::connect(settings.clone()).await.unwrap();
    let replicator = SearchSink::connect(settings.clone()).await.unwrap();
    let reader = SearchReader::connect(settings).await.unwrap();
    older_upserts_never_outlive_newer_deletes(&copier, &replicator, &reader).await;
    reqwest::Client::new()
        .delete(format!("{}/{prefix}*", url.trim_end_matches('/')))
        .send()
        .await
        .unwrap();
}
