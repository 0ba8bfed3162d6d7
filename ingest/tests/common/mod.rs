//! Shared helpers of the ingest tests: a real embedded deployment in a temporary folder.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use cauce_ingest::api::{router, ApiConfig, ApiState, Tenancy};
use cauce_ingest::auth::{AppAdmin, CachedKeys, Credentials, Role, SqliteKeys};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::Queue;
use cauce_ingest::writer::{write_batch, Status};
use cauce_store::sqlite::SqliteStore;

/// An embedded deployment: SQLite queue, store and keys, and the router over them.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub queue: Arc<SqliteQueue>,
    pub store: Arc<SqliteStore>,
    pub keys: Arc<SqliteKeys>,
    pub router: Router,
}

impl Harness {
    pub fn new(config: ApiConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(
            SqliteQueue::open(dir.path().join("queue.db"), SqliteQueueConfig::default()).unwrap(),
        );
        let store = Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap());
        let keys = Arc::new(SqliteKeys::open(dir.path().join("apps.db")).unwrap());
        let tenancy = Tenancy::Keys(Arc::new(CachedKeys::new(keys.clone(), Duration::ZERO)));
        let state = ApiState::new(
            queue.clone(),
            store.clone(),
            tenancy,
            Some(keys.clone()),
            config,
        );
        Harness {
            router: router(Arc::new(state)),
            dir,
            queue,
            store,
            keys,
        }
    }

    pub async fn app(&self, name: &str, rate_limit: Option<u32>, role: Role) -> Credentials {
        self.keys.create_app(name, rate_limit, role).await.unwrap()
    }

    /// Runs the writer until the queue is empty.
    pub async fn drain(&self) {
        for _ in 0..100 {
            let batch = self.queue.receive(256).await.unwrap();
            if batch.is_empty() {
                return;
            }
            let report = write_batch(&batch, self.store.as_ref(), self.queue.as_ref()).await;
            assert!(
                report.statuses.iter().all(|s| *s == Status::Done),
                "{report:?}"
            );
            self.queue.ack(&batch).await.unwrap();
        }
        panic!("the queue did not drain");
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
    }
}

pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    send(router, req.body(body.into()).unwrap()).await
}

pub async fn post(router: &Router, path: &str, key: &str, body: String) -> Reply {
    call(
        router,
        Method::POST,
        path,
        Some(key),
        Some("application/json"),
        body,
    )
    .await
}

pub fn now() -> i64 {
    cauce_store::time::now_ms()
}

/// A valid event JSON object.
pub fn event(id: &str, user: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","name":"screen_view","timestamp":{},"user_id":"{user}","properties":{{"screen":"home"}}}}"#,
        now() - 1_000
    )
}

pub fn batch(items: &[String]) -> String {
    format!(r#"{{"batch":[{}]}}"#, items.join(","))
}
