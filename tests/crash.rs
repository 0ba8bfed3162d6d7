//! `kill -9` at 20 random moments during a 200,000-event load: `cauce serve` is killed and
//! restarted each time on the same data folder, while clients keep sending and resend what got
//! no answer (as an SDK does). At the end the lake holds every acknowledged event exactly once.
//!
//! The moments are random points of the load's progress (so every kill falls inside it), drawn
//! from a seed that the test prints; `CAUCE_CRASH_SEED=N` replays one.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cauce_store::sqlite::SqliteStore;
use cauce_store::Kind;
use support::{create_unlimited_app, lake_column, now, serve, Client};

const EVENTS: usize = 200_000;
const BATCH: usize = 100;
const CLIENTS: usize = 4;
const KILLS: usize = 20;

/// What the clients and the killer share.
struct Load {
    base: RwLock<String>,
    key: String,
    /// Events acknowledged with a 202.
    acked: AtomicUsize,
    /// Requests that got no answer (the server died under them, or was down) and were resent.
    resent: AtomicUsize,
    done: AtomicBool,
}

fn batch_body(b: usize) -> String {
    let items: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            serde_json::json!({
                "event_id": format!("e{b}-{i}"), "name": "screen_view", "timestamp": now(),
                "user_id": format!("u{}", (b * 7 + i) % 3000), "properties": {"i": i},
            })
        })
        .collect();
    serde_json::json!({ "batch": items }).to_string()
}

/// Sends batches `first`, `first + CLIENTS`, … each until it is acknowledged.
fn client(load: &Load, first: usize) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    for b in (first..EVENTS / BATCH).step_by(CLIENTS) {
        let body = batch_body(b);
        loop {
            let base = load.base.read().unwrap().clone();
            let res = agent
                .post(format!("{base}/v1/events"))
                .header("x-api-key", &load.key)
                .header("content-type", "application/json")
                .send(&body);
            match res {
                Ok(mut r) if r.status() == 202 => {
                    let _ = r.body_mut().read_to_string();
                    load.acked.fetch_add(BATCH, Ordering::Relaxed);
                    break;
                }
                Ok(r) if r.status() == 503 => {}
                Ok(mut r) => panic!("{}: {:?}", r.status(), r.body_mut().read_to_string()),
                // Killed mid-request or down: the answer is lost, so send it again.
                Err(_) => {}
            }
            load.resent.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A small deterministic generator for the kill moments.
fn draws(seed: u64, n: usize, below: u64) -> Vec<u64> {
    let mut x = seed | 1;
    let mut out: Vec<u64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        })
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_twenty_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (app_id, key) = create_unlimited_app(data, "crash");
    let seed = std::env::var("CAUCE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now() as u64);
    println!("kill moments from CAUCE_CRASH_SEED={seed}");
    // Kill points, by events acknowledged so far: inside the load, never at its very end.
    let moments = draws(seed, KILLS, (EVENTS - 10 * BATCH) as u64);

    let mut server = serve(data);
    let load = Arc::new(Load {
        base: RwLock::new(server.base.clone()),
        key,
        acked: AtomicUsize::new(0),
        resent: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let load = load.clone();
            std::thread::spawn(move || client(&load, i))
        })
        .collect();
    let started = Instant::now();
    for (k, &at) in moments.iter().enumerate() {
        while (load.acked.load(Ordering::Relaxed) as u64) < at {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "the load stalled"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill_9();
        assert!(
            !load.done.load(Ordering::Relaxed),
            "kill {k} fell inside the load"
        );
        server = serve(data);
        *load.base.write().unwrap() = server.base.clone();
    }
    for c in clients {
        c.join().unwrap();
    }
    load.done.store(true, Ordering::Relaxed);
    assert_eq!(load.acked.load(Ordering::Relaxed), EVENTS);
    println!(
        "{KILLS} kills in {:.1} s of load; {} requests resent",
        started.elapsed().as_secs_f64(),
        load.resent.load(Ordering::Relaxed)
    );

    // Everything drains into the lake after the last restart.
    let c = Client::new(&server.base);
    let health = c.drain(Duration::from_secs(600), Duration::from_millis(200));
    assert_eq!(health["dead_letters"], 0, "{health}");
    server.interrupt();

    let store = SqliteStore::open(data.join("store.db")).unwrap();
    assert_eq!(
        store.count(Kind::Event, &app_id).await.unwrap(),
        EVENTS as u64
    );
    let mut ids = lake_column(data, "events", &app_id, "event_id").await;
    let rows = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        (rows, ids.len()),
        (EVENTS, EVENTS),
        "every acknowledged event once in the lake (rows, distinct ids)"
    );
}
