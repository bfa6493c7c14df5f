//! Lag that tells the truth, against real servers: it grows with wall time while a target
//! is stalled and falls back to zero when it returns; it reads zero and stays there when
//! idle and caught up; after a restart behind the source it shows the real distance.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod ops_support;

use ops_support::*;
use std::time::{Duration, Instant};

const VERSION: &str = "lagv";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_grows_while_a_sink_is_stalled_and_falls_back_to_zero_after() {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), "ops_lag_stall").await;
    let redis = PrivateRedis::start().await;
    let mut strata = Strata::with_config(
        "ops_lag_stall",
        &redis_config(&source.url, &source.name, VERSION, &redis.url(), 0, "3s"),
    );
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;

    redis.stall();
    let written = now_ms();
    source.insert(1..=3).await;

    // Lag follows the oldest waiting change, and grows with wall time.
    let first = wait_for(
        "lag to reach 2 s with the sink stalled",
        Duration::from_secs(30),
        || async {
            let s = status(&client, addr).await?;
            match lag_seconds(&s) {
                Some(l) if l >= 2.0 => Ok(Some((Instant::now(), s))),
                _ => Err(s.to_string()),
            }
        },
    )
    .await;
    let (t1, s1) = first;
    assert_eq!(s1["lag"]["caught_up"], false, "{s1}");
    assert_eq!(s1["lag"]["basis"], "oldest_unapplied", "{s1}");
    assert!(
        s1["lag"]["bytes"].as_u64().unwrap() > 0,
        "bytes behind: {s1}"
    );
    let truth = (now_ms() - written) as f64 / 1000.0;
    let l1 = lag_seconds(&s1).unwrap();
    // MariaDB stamps commits to the second: the reading may be up to 1 s more.
    assert!(
        (l1 - truth).abs() <= 1.5,
        "lag {l1} s, but the change has waited {truth} s"
    );

    let (t2, s2) = wait_for(
        "two more seconds of stall",
        Duration::from_secs(30),
        || async {
            let s = status(&client, addr).await?;
            if t1.elapsed() >= Duration::from_secs(2) {
                Ok(Some((Instant::now(), s)))
            } else {
                Ok(None)
            }
        },
    )
    .await;
    let grown = lag_seconds(&s2).unwrap() - l1;
    let wall = t2.duration_since(t1).as_secs_f64();
    assert!(
        (grown - wall).abs() <= 0.6,
        "lag grew {grown} s while {wall} s passed: {s2}"
    );

    // Over the 3 s threshold: the alert gauge, readiness and the log say so; the stalled
    // target's failing health check makes the version "failing".
    wait_for(
        "the lag alert, not ready, failing",
        Duration::from_secs(30),
        || async {
            let (_, metrics) = get(&client, addr, "/metrics").await?;
            let alert = metrics
                .lines()
                .any(|l| l.starts_with("strata_lag_alert{") && l.ends_with(" 1"));
            let (code, ready) = get(&client, addr, "/health/ready").await?;
            let s = status(&client, addr).await?;
            if alert && code == 503 && ready.contains("threshold") && s["state"] == "failing" {
                Ok(Some(()))
            } else {
                Err(format!(
                    "alert={alert} ready={code} {ready} state={}",
                    s["state"]
                ))
            }
        },
    )
    .await;
    let log = strata.log_text(VERSION);
    assert!(
        log.contains("replication lag is over the alert threshold"),
        "{log}"
    );

    redis.resume();
    let back = wait_caught_up(&client, addr, Duration::from_secs(90)).await;
    assert_eq!(lag_seconds(&back), Some(0.0), "{back}");
    assert_eq!(back["lag"]["bytes"], 0, "{back}");
    for id in 1..=3 {
        let row = redis.hash(0, &format!("{}:items:{id}", source.name)).await;
        assert_eq!(
            row.get("v").map(String::as_str),
            Some(format!("v{id}").as_str()),
            "row {id}: {row:?}"
        );
    }
    wait_for(
        "the all-clear in the log",
        Duration::from_secs(10),
        || async {
            Ok(strata
                .log_text(VERSION)
                .contains("replication lag is back under the alert threshold")
                .then_some(()))
        },
    )
    .await;
    source.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_caught_up_lag_reads_zero_and_stays_there() {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), "ops_lag_idle").await;
    let redis_url = env_url("STRATA_TEST_REDIS_URL");
    let mut strata = Strata::with_config(
        "ops_lag_idle",
        &redis_config(&source.url, &source.name, VERSION, &redis_url, 12, "300s"),
    );
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;
    source.insert(1..=2).await;
    wait_for(
        "the rows to be applied",
        Duration::from_secs(30),
        || async {
            let s = status(&client, addr).await?;
            let applied = s["sinks"][0]["applied"].as_u64().unwrap_or(0);
            Ok((applied >= 2 && s["lag"]["caught_up"] == true).then_some(()))
        },
    )
    .await;

    // Idle for this version for several heartbeats (1 s) and polls (5 s). Other tests may
    // write to other schemas of the same server meanwhile: their transactions pass through
    // too, so a reading may catch one in flight for a moment, but lag never builds up.
    let started = Instant::now();
    let mut readings = Vec::new();
    while started.elapsed() < Duration::from_secs(8) {
        let s = status(&client, addr).await.unwrap();
        readings.push((lag_seconds(&s), s["lag"]["caught_up"] == true));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        readings.iter().all(|(l, _)| l.is_some_and(|l| l <= 1.0)),
        "lag must stay at about zero while idle: {readings:?}"
    );
    let zero = readings
        .iter()
        .filter(|(l, caught_up)| *l == Some(0.0) && *caught_up)
        .count();
    assert!(
        zero > 0,
        "caught up and exactly zero between other schemas' transactions: {readings:?}"
    );
    let (_, metrics) = get(&client, addr, "/metrics").await.unwrap();
    assert!(
        metrics.contains("strata_lag_seconds{version=\"lagv\"}"),
        "{metrics}"
    );
    source.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_after_writes_lag_shows_the_real_distance() {
    let source = SourceSchema::create(&env_url("STRATA_TEST_MARIADB_URL"), "ops_lag_restart").await;
    let redis = PrivateRedis::start().await;
    let mut strata = Strata::with_config(
        "ops_lag_restart",
        &redis_config(&source.url, &source.name, VERSION, &redis.url(), 0, "300s"),
    );
    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let client = http();
    source.insert(1..=1).await;
    wait_caught_up(&client, addr, Duration::from_secs(60)).await;
    assert_eq!(strata.stop(VERSION), Some(0), "a clean stop exits 0");

    // Writes while the replicator is stopped, then time passes.
    let written = now_ms();
    source.insert(2..=4).await;
    wait_for(
        "4 s to pass since the writes",
        Duration::from_secs(10),
        || async { Ok((now_ms() - written >= 4_000).then_some(())) },
    )
    .await;

    // The target accepts connections but holds writes: the backlog is read, not applied.
    let admin = redis::Client::open(redis.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(120_000)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();

    strata.start(VERSION);
    let addr = strata.address(VERSION).await;
    let behind = wait_for(
        "the restarted version to read its backlog",
        Duration::from_secs(60),
        || async {
            let s = status(&client, addr).await?;
            if s["phase"] == "streaming" && s["lag"]["basis"] == "oldest_unapplied" {
                Ok(Some(s))
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    assert_eq!(behind["lag"]["caught_up"], false, "{behind}");
    assert!(behind["lag"]["bytes"].as_u64().unwrap() > 0, "{behind}");
    let truth = (now_ms() - written) as f64 / 1000.0;
    let lag = lag_seconds(&behind).unwrap();
    assert!(truth >= 4.0);
    assert!(
        (lag - truth).abs() <= 1.5,
        "idle but behind: lag {lag} s, but the oldest change has waited {truth} s: {behind}"
    );
    // Still idle, still behind: lag does not fall to zero, it keeps growing.
    let later = wait_for("another second", Duration::from_secs(10), || async {
        let s = status(&client, addr).await?;
        Ok(lag_seconds(&s).filter(|l| *l >= lag + 1.0).map(|_| s))
    })
    .await;
    assert_eq!(later["lag"]["caught_up"], false, "{later}");

    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let back = wait_caught_up(&client, addr, Duration::from_secs(60)).await;
    assert_eq!(lag_seconds(&back), Some(0.0));
    for id in 1..=4 {
        let row = redis.hash(0, &format!("{}:items:{id}", source.name)).await;
        assert_eq!(
            row.get("v").map(String::as_str),
            Some(format!("v{id}").as_str()),
            "row {id}: {row:?}"
        );
    }
    source.drop_schema().await;
}
