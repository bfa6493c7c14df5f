//! The opt-in heartbeat row, against real servers: with the application idle, strata's own
//! row in the source keeps the applied commit time moving through the whole pipeline, while
//! nothing of the heartbeat table reaches the target.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod ops_support;

use mysql_async::prelude::Queryable;
use ops_support::*;
use std::time::Duration;

const VERSION: &str = "hbv";

/// `(commit_ts_ms, applied position)` of the checkpoint in a status document.
fn applied(status: &serde_json::Value) -> Option<(u64, String)> {
    let ts = status["checkpoint"]["commit_ts_ms"].as_u64()?;
    let pos = status["position"]["applied"].as_str()?.to_owned();
    Some((ts, pos))
}

/// Every key of the shared Redis DB `db` that starts with `prefix`.
async fn keys(redis_url: &str, db: u8, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(format!("{redis_url}/{db}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    let mut all = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.extend(batch);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_version_with_a_heartbeat_keeps_its_applied_commit_time_moving() {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), "ops_heartbeat").await;
    let redis_url = env_url("STRATA_TEST_REDIS_URL");
    let db = 0;
    let config = redis_config(&source.url, &source.name, VERSION, &redis_url, db, "1h").replace(
        &format!("schemas = [\"{}\"]\n", source.name),
        &format!(
            "schemas = [\"{}\"]\nheartbeat = {{ interval = \"1s\" }}\n",
            source.name
        ),
    );
    assert!(config.contains("heartbeat = {"), "{config}");
    let mut strata = Strata::with_config("ops_heartbeat", &config);
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();

    // No application writes: only the heartbeat moves the applied commit time.
    let (ts1, pos1) = wait_for(
        "a first applied commit from the heartbeat",
        Duration::from_secs(60),
        || async {
            let s = status(&client, addr).await?;
            match (s["phase"].as_str(), applied(&s)) {
                (Some("streaming"), Some(a)) => Ok(Some(a)),
                _ => Err(s.to_string()),
            }
        },
    )
    .await;
    let (ts2, pos2) = wait_for(
        "the applied commit time to advance again",
        Duration::from_secs(30),
        || {
            let (client, pos1) = (&client, &pos1);
            async move {
                let s = status(client, addr).await?;
                match applied(&s) {
                    Some((ts, pos)) if ts > ts1 && pos != *pos1 => Ok(Some((ts, pos))),
                    _ => Err(s.to_string()),
                }
            }
        },
    )
    .await;
    let (ts3, _) = wait_for(
        "the applied commit time to advance a third time",
        Duration::from_secs(30),
        || {
            let (client, pos2) = (&client, &pos2);
            async move {
                let s = status(client, addr).await?;
                match applied(&s) {
                    Some((ts, pos)) if ts > ts2 && pos != *pos2 => Ok(Some((ts, pos))),
                    _ => Err(s.to_string()),
                }
            }
        },
    )
    .await;
    assert!(ts1 < ts2 && ts2 < ts3, "{ts1} < {ts2} < {ts3}");
    // What moved it were transactions read from the binlog (the application wrote none).
    let s = status(&client, addr).await.unwrap();
    assert!(
        s["source"]["transactions"].as_u64().unwrap_or(0) >= 2,
        "transactions read: {s}"
    );
    assert_eq!(s["source"]["row_changes"]["insert"], 0, "{s}");
    // The heartbeat rows themselves were read and skipped by the rules (other schemas' rows
    // are filtered before decoding and not counted).
    assert!(
        s["source"]["row_changes"]["skipped"].as_u64().unwrap_or(0) >= 2,
        "skipped rows: {s}"
    );
    // The commit times are recent: they come from rows written now, not from the past.
    assert!(
        now_ms().saturating_sub(ts3) < 10_000,
        "applied commit {ts3} is {} ms old",
        now_ms().saturating_sub(ts3)
    );

    // The row is in the source, keyed by the version, and counts its beats.
    let mut conn = mysql(&source.url).await;
    let beats: Option<u64> = conn
        .exec_first(
            format!(
                "SELECT beats FROM {}.strata_heartbeat WHERE version = ?",
                source.name
            ),
            (VERSION,),
        )
        .await
        .unwrap();
    assert!(beats.unwrap_or(0) >= 2, "beats in the source: {beats:?}");

    // An application row does reach the target, and the heartbeat table never does.
    source.insert(1..=1).await;
    let prefix = format!("{}:", source.name);
    let found = wait_for(
        "the application row in Redis",
        Duration::from_secs(30),
        || {
            let (url, prefix) = (&redis_url, &prefix);
            async move {
                let keys = keys(url, db, prefix).await;
                if keys
                    .iter()
                    .any(|k| k.starts_with(&format!("{prefix}items:")))
                {
                    Ok(Some(keys))
                } else {
                    Err(format!("keys: {keys:?}"))
                }
            }
        },
    )
    .await;
    assert!(
        !found.iter().any(|k| k.contains("strata_heartbeat")),
        "heartbeat keys reached the target: {found:?}"
    );
    let s = status(&client, addr).await.unwrap();
    assert_eq!(s["lag"]["over_threshold"], false, "{s}");

    assert_eq!(
        strata.stop(VERSION),
        Some(0),
        "{}",
        strata.log_text(VERSION)
    );
    let client = redis::Client::open(format!("{redis_url}/{db}")).unwrap();
    let mut rc = client.get_multiplexed_async_connection().await.unwrap();
    for k in keys(&redis_url, db, &prefix).await {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&k).query_async(&mut rc).await;
    }
    source.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_write_grant_the_heartbeat_warns_once_with_the_fix_and_replication_goes_on() {
    let root_url = env_url("STRATA_TEST_MARIADB_URL");
    let source = SourceSchema::create(&root_url, "ops_heartbeat_nogrant").await;
    // A replication user of the test's own that may read but not write.
    let user = unique("hb_ro");
    let mut root = mysql(&root_url).await;
    exec(
        &mut root,
        &[
            &format!("DROP USER IF EXISTS '{user}'@'%'"),
            &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"),
            &format!("GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'"),
        ],
    )
    .await;
    let host = root_url.rsplit('@').next().unwrap();
    let user_url = format!("mysql://{user}:pw@{host}");
    let redis_url = env_url("STRATA_TEST_REDIS_URL");
    let db = 0;
    let config = redis_config(&user_url, &source.name, VERSION, &redis_url, db, "1h").replace(
        &format!("schemas = [\"{}\"]\n", source.name),
        &format!(
            "schemas = [\"{}\"]\nheartbeat = {{ interval = \"1s\" }}\n",
            source.name
        ),
    );
    let mut strata = Strata::with_config("ops_heartbeat_nogrant", &config);
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;

    // The warning names the grant that fixes it, once, while beats keep failing.
    let grant = format!(
        "GRANT INSERT, UPDATE, CREATE ON `{}`.`strata_heartbeat` TO '{user}'",
        source.name
    );
    wait_for(
        "the heartbeat warning in the log",
        Duration::from_secs(30),
        || async {
            let log = strata.log_text(VERSION);
            Ok(log.contains(&grant).then_some(()))
        },
    )
    .await;
    // Later failures are retried at the interval, logged at debug only.
    wait_for(
        "three more failed beats",
        Duration::from_secs(30),
        || async {
            let log = strata.log_text(VERSION);
            Ok((log.matches("heartbeat row still not written").count() >= 3).then_some(()))
        },
    )
    .await;
    let log = strata.log_text(VERSION);
    assert_eq!(log.matches(&grant).count(), 1, "{log}");

    // Replication goes on.
    source.insert(1..=1).await;
    let prefix = format!("{}:", source.name);
    wait_for(
        "the application row in Redis",
        Duration::from_secs(30),
        || {
            let (url, prefix) = (&redis_url, &prefix);
            async move {
                let keys = keys(url, db, prefix).await;
                Ok(keys
                    .iter()
                    .any(|k| k.starts_with(&format!("{prefix}items:")))
                    .then_some(()))
            }
        },
    )
    .await;
    let s = status(&client, addr).await.unwrap();
    assert_eq!(s["phase"], "streaming", "{s}");

    assert_eq!(
        strata.stop(VERSION),
        Some(0),
        "{}",
        strata.log_text(VERSION)
    );
    let client = redis::Client::open(format!("{redis_url}/{db}")).unwrap();
    let mut rc = client.get_multiplexed_async_connection().await.unwrap();
    for k in keys(&redis_url, db, &prefix).await {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&k).query_async(&mut rc).await;
    }
    exec(&mut root, &[&format!("DROP USER IF EXISTS '{user}'@'%'")]).await;
    source.drop_schema().await;
}
