//! A stop by SIGTERM, the signal with which systemd, Docker, ECS and Kubernetes stop a service:
//! `cauce serve` under a load stops in order, as on Ctrl-C. It exits 0 with no warning, the
//! writer writes and acknowledges the batch it has in hand (no message is left hidden by a
//! receive, to be delivered again after its visibility timeout), the raw archive keeps every
//! body the API took, and after a restart the lake holds every acknowledged event once.

mod support;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{cli, create_unlimited_app, lake_column, now, serve, serve_logging, Client};

const CLIENTS: usize = 2;
const BATCH: usize = 100;
/// At most this many batches a client, so that a slow machine's drain stays short.
const MOST: usize = 300;

/// Sends batches of new events until the server stops answering (or `MOST`); returns the ids
/// of the events acknowledged with a 202.
fn client(base: &str, key: &str, c: usize, stopping: &AtomicBool) -> Vec<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut acked = Vec::new();
    for b in 0..MOST {
        let ids: Vec<String> = (0..BATCH).map(|i| format!("c{c}-{b}-{i}")).collect();
        let items: Vec<_> = ids
            .iter()
            .map(|id| json!({"event_id": id, "name": "screen_view", "timestamp": now(), "user_id": format!("u{}", b % 50)}))
            .collect();
        let sent = agent
            .post(format!("{base}/v1/events"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .send(json!({ "batch": items }).to_string());
        match sent {
            Ok(r) if r.status() == 202 => acked.extend(ids),
            Ok(r) if !stopping.load(Ordering::Relaxed) => panic!("status {}", r.status()),
            // Refused or cut off by the stop: the end of the load.
            _ => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_a_load_stops_in_order_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app_id, key) = create_unlimited_app(&data, "shop");
    let log = dir.path().join("serve.log");
    let logs = Stdio::from(std::fs::File::create(&log).unwrap());
    let mut server = serve_logging(&data, &[], "info", logs);

    let stopping = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (base, key) = (server.base.clone(), key.clone());
            let (stopping, acked) = (stopping.clone(), acked.clone());
            std::thread::spawn(move || {
                let mine = client(&base, &key, c, &stopping);
                acked.lock().unwrap().extend(mine);
            })
        })
        .collect();
    // The load runs; the writer and the exporter are at work when the stop comes.
    std::thread::sleep(Duration::from_millis(1500));
    stopping.store(true, Ordering::Relaxed);
    let code = server.terminate();
    for c in clients {
        c.join().unwrap();
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "cauce serve exits 0 on SIGTERM:\n{logs}");
    assert!(logs.contains("Cauce stopped."), "{logs}");
    let troubled: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        troubled.is_empty(),
        "a stop in order warns of nothing: {troubled:#?}"
    );
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= BATCH,
        "the load was acknowledged: {}",
        acked.len()
    );

    // The writer acknowledged what it had taken: no message waits out a visibility timeout.
    let queue = rusqlite::Connection::open(data.join("queue.db")).unwrap();
    let held: i64 = queue
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE receive_count > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        held, 0,
        "messages received and not acknowledged at the stop"
    );
    drop(queue);

    // The raw archive has every body the API took.
    let replayed = cli(
        &dir.path().join("replayed"),
        &["replay", "--raw", data.join("raw").to_str().unwrap()],
    );

    // After a restart, the lake holds every acknowledged event, once.
    let mut again = serve(&data);
    Client::new(&again.base).drain(Duration::from_secs(120), Duration::from_millis(100));
    again.interrupt();
    let ids = lake_column(&data, "events", &app_id, "event_id").await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event in the lake twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged, not in the lake: {}",
        missing.len()
    );
    assert_eq!(replayed["accepted"], ids.len() as u64, "{replayed}");
}
