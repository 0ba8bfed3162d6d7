//! A store outage while clients send: nothing accepted is lost, doubled or dead-lettered. The
//! embedded pipeline (the SQLite queue, the writer's poll loop, the change-log exporter into a
//! folder lake) runs in this process over the real SQLite store, wrapped so that every write
//! fails fast for a while, as it does when the store's disk is full.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, StringArray};
use axum::body::Body;
use axum::http::Request;
use cauce_exporter::embedded::{backlog, Embedded, EmbeddedConfig};
use cauce_exporter::file::decode_prefix;
use cauce_ingest::api::{router, ApiConfig, ApiState, Tenancy};
use cauce_ingest::auth::{AppAdmin, CachedKeys, Role, SqliteKeys};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::Queue;
use cauce_ingest::writer::{poll, Backoff, PollConfig};
use cauce_store::faults::FaultyStore;
use cauce_store::lake::local::LocalLake;
use cauce_store::sqlite::SqliteStore;
use cauce_store::time::{format_rfc3339, now_ms};
use cauce_store::Kind;
use serde_json::json;
use tower::ServiceExt;

const EVENTS: usize = 10_000;
const BATCH: usize = 100;
/// How long the store refuses every write.
const OUTAGE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_loses_nothing_and_dead_letters_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let queue =
        Arc::new(SqliteQueue::open(data.join("queue.db"), SqliteQueueConfig::default()).unwrap());
    let store = SqliteStore::open(data.join("store.db")).unwrap();
    let faulty = Arc::new(FaultyStore::new(store.clone()));
    let keys = Arc::new(SqliteKeys::open(data.join("apps.db")).unwrap());
    let app = keys.create_app("shop", None, Role::Ingest).await.unwrap();
    let config = ApiConfig {
        default_rate_limit: 1_000_000,
        ..ApiConfig::default()
    };
    let tenancy = Tenancy::Keys(Arc::new(CachedKeys::new(keys.clone(), Duration::ZERO)));
    let state = ApiState::new(queue.clone(), faulty.clone(), tenancy, None, config);
    let api = router(Arc::new(state));

    // The outage starts before the first event and lasts OUTAGE.
    faulty.faults().fail_everything();
    let started = Instant::now();
    let backoff = Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_secs(2),
    };
    let writer = tokio::spawn(poll(
        queue.clone(),
        faulty.clone(),
        PollConfig {
            backoff,
            ..PollConfig::default()
        },
    ));
    let lake = Arc::new(LocalLake::new(data.join("lake")));
    let exporter = Embedded::new(store.clone(), lake.clone(), EmbeddedConfig::default())
        .await
        .unwrap();
    let exporter = tokio::spawn(exporter.run());

    // Clients send every event during the outage, and each batch is accepted: it is durable in
    // the queue.
    for b in 0..EVENTS / BATCH {
        let now = now_ms();
        let items: Vec<_> = (0..BATCH)
            .map(|i| {
                json!({"event_id": format!("e-{b}-{i}"), "name": "tap",
                    "timestamp": format_rfc3339(now), "user_id": format!("u-{}", i % 40)})
            })
            .collect();
        let body = json!({"sent_at": format_rfc3339(now), "batch": items}).to_string();
        let req = Request::post("/v1/events")
            .header("x-api-key", &app.api_key)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let res = api.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 202, "batch {b}");
    }
    tokio::time::sleep(OUTAGE.saturating_sub(started.elapsed())).await;
    assert!(faulty.faults().injected() > 0, "the writer met the outage");
    assert_eq!(store.count(Kind::Event, &app.app_id).await.unwrap(), 0);
    assert_eq!(
        queue.dead_lettered().await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    assert_eq!(queue.pending().await.unwrap(), EVENTS as u64);

    // The store comes back: everything drains, into the store and the lake.
    faulty.faults().heal();
    let deadline = Instant::now() + Duration::from_secs(120);
    while queue.pending().await.unwrap() > 0 || backlog(&store).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.abort();
    exporter.abort();
    assert_eq!(
        queue.dead_lettered().await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    assert_eq!(
        store.count(Kind::Event, &app.app_id).await.unwrap(),
        EVENTS as u64
    );
    let mut ids = Vec::with_capacity(EVENTS);
    for batch in decode_prefix(lake.as_ref(), "events/").await.unwrap() {
        let column = batch.column_by_name("event_id").unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        ids.extend((0..column.len()).map(|i| column.value(i).to_owned()));
    }
    assert_eq!(
        ids.len(),
        EVENTS,
        "every accepted event is in the lake once"
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), EVENTS);
}
