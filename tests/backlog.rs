//! Admission control (black box: the real `cauce serve --max-backlog`). While the writer cannot
//! store (another process holds `store.db`'s write lock), the backlog grows to its bound; past
//! it, the write routes, Cauce's own and the analytics SDKs', answer 429 `backlog_full` with
//! `Retry-After`, and accept nothing. Once the lock goes, the backlog drains, the refused
//! batches sent again are accepted, and the lake holds every accepted event exactly once and
//! nothing else.

mod support;

use std::time::{Duration, Instant};

use cauce_store::sqlite::SqliteStore;
use cauce_store::Kind;
use serde_json::{json, Value};
use support::{basic, create_unlimited_app, lake_column, now, serve_with, Client};

const BOUND: u64 = 1_000;
const BATCH: usize = 100;

fn batch(b: usize) -> Vec<Value> {
    (0..BATCH)
        .map(|i| {
            json!({"event_id": format!("e{b}-{i}"), "name": "tap", "timestamp": now(),
                   "user_id": format!("u{}", i % 13)})
        })
        .collect()
}

fn ids(b: usize) -> impl Iterator<Item = String> {
    (0..BATCH).map(move |i| format!("e{b}-{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_answers_429_and_what_it_accepted_reaches_the_lake_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (app_id, key) = create_unlimited_app(data, "shop");
    let (app_id, key) = (app_id.as_str(), key.as_str());
    let server = serve_with(data, &["--max-backlog", &BOUND.to_string()]);
    let c = Client::new(&server.base);

    // The writer stalls: another connection holds the store's write lock.
    let lock = rusqlite::Connection::open(data.join("store.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    let mut shed = None;
    for b in 0..200 {
        let (status, body, retry_after) = c.post_retry_after("/v1/events", key, &batch(b));
        match status {
            202 => accepted.push(b),
            429 => {
                refused.push(b);
                shed.get_or_insert((body, retry_after));
                if refused.len() == 5 {
                    break;
                }
            }
            other => panic!("a write answered {other}: {body}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (body, retry_after) = shed.expect("the bound was reached and writes were refused");
    assert_eq!(body["error"], "backlog_full", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("behind") && message.contains(&BOUND.to_string()),
        "the answer says why: {message}"
    );
    assert!(
        retry_after.unwrap_or(0) >= 1,
        "Retry-After: {retry_after:?}"
    );
    let taken = (accepted.len() * BATCH) as u64;
    assert!(
        taken >= BOUND,
        "nothing is refused below the bound: {taken} accepted"
    );
    let (status, health) = c.get("/healthz", None);
    assert_eq!(status, 200, "{health}");
    assert!(health["pending"].as_u64().unwrap() >= BOUND, "{health}");

    // The analytics SDKs' route is bounded too (they retry a 429).
    let sdk = json!({"batch": [{"type": "track", "event": "tap", "messageId": "sdk-1",
                                "userId": "u1", "timestamp": "2026-12-02T10:00:00Z"}]});
    let (status, answer) = c.post_raw(
        "/v1/batch",
        &[
            ("authorization", &basic(key)),
            ("content-type", "application/json"),
        ],
        sdk.to_string().as_bytes(),
    );
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"], "backlog_full", "{answer}");

    // The lock goes; refused batches are sent again as a client would, after Retry-After.
    drop(lock);
    let resent = Instant::now();
    for &b in &refused {
        loop {
            let (status, body, retry_after) = c.post_retry_after("/v1/events", key, &batch(b));
            match status {
                202 => break,
                429 => std::thread::sleep(Duration::from_secs(retry_after.unwrap_or(1))),
                other => panic!("a resend answered {other}: {body}"),
            }
            assert!(
                resent.elapsed() < Duration::from_secs(120),
                "still refused 120 s after the lock went"
            );
        }
    }
    c.drain(Duration::from_secs(120), Duration::from_millis(200));
    drop(server);

    let mut sent: Vec<String> = accepted
        .iter()
        .chain(&refused)
        .flat_map(|&b| ids(b))
        .collect();
    sent.sort_unstable();
    let store = SqliteStore::open(data.join("store.db")).unwrap();
    assert_eq!(
        store.count(Kind::Event, app_id).await.unwrap(),
        sent.len() as u64
    );
    let mut lake = lake_column(data, "events", app_id, "event_id").await;
    lake.sort_unstable();
    assert_eq!(
        lake, sent,
        "every accepted event once in the lake, nothing else"
    );
}
