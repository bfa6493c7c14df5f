//! Crash safety: `strata run` is killed with SIGKILL at random moments (0.2–2 s apart)
//! while a writer commits multi-statement transactions of inserts, updates and deletes,
//! and restarted each time, six times. After the workload ends and strata catches up,
//! every target equals the source: nothing lost (a checkpoint only covers changes every
//! target holds), nothing stale (changes replayed after a restart are older than or
//! equal to what the targets hold, and are ignored).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::config::{config_toml, VersionSpec};
use support::source::Source;
use support::targets::{Namespace, Targets};
use support::workload::{RandomWriter, ITEMS};
use support::{env_url, unique, Strata};

const KILLS: u32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing() {
    let targets = Targets::connect().await;
    let url = env_url("STRATA_TEST_MARIADB_URL");
    let mut source = Source::connect(&url).await;
    let schema = unique("e2e_crash");
    source.create_schema(&schema, &[ITEMS]).await;
    let ns = Namespace::new("e2e_crash", 5);
    // Small batches, so a kill often lands between a batch and the next checkpoint.
    let mut spec = VersionSpec::new("crash", &[&schema], ns.clone());
    spec.extra = "batch_max_rows = 50\n".into();
    let mut strata = Strata::with_config("crash", &config_toml(&url, &[spec]));
    strata.spawn(&["--version", "crash"]);
    // The first start must record its start position, or a restart would begin later.
    strata.wait_started(&["crash"]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU32::new(0));
    let writer = {
        let (stop, written, schema, url) =
            (stop.clone(), written.clone(), schema.clone(), url.clone());
        tokio::spawn(async move {
            let mut source = Source::connect(&url).await;
            let mut w = RandomWriter::new(&schema, u64::from(std::process::id()));
            while !stop.load(Ordering::Relaxed) {
                w.write(&mut source).await;
                written.fetch_add(1, Ordering::Relaxed);
                // Keeps the workload modest on two shared cores.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(u64::from(std::process::id()));
    for kill in 0..KILLS {
        // A random moment: not a wait for anything.
        tokio::time::sleep(Duration::from_millis(rng.u64(200..=2000))).await;
        strata.assert_running();
        strata.kill();
        eprintln!(
            "kill {}: {:.1?} in, {} transactions written, checkpoint {:?}",
            kill + 1,
            started.elapsed(),
            written.load(Ordering::Relaxed),
            strata.checkpoint("crash").map(|p| p.to_string())
        );
        strata.spawn(&["--version", "crash"]);
    }
    tokio::time::sleep(Duration::from_millis(rng.u64(200..=2000))).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        written.load(Ordering::Relaxed) > 50,
        "the writer kept writing"
    );

    strata.wait_caught_up(&["crash"], &mut source).await;
    let want = source.tables(&schema, &["items"]).await;
    assert!(!want["items"].is_empty());
    targets.assert_equal(&ns, &want).await;

    assert_eq!(strata.terminate(), Some(0), "SIGTERM stops cleanly");
    targets.cleanup(&ns).await;
    source.drop_schema(&schema).await;
}
