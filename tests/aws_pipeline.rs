//! The AWS path end to end on the moto server: the API Router sends to SQS FIFO, the real
//! `cauce worker` binary polls it and writes DynamoDB, and the records read back as sent.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cauce_ingest::api::{router, ApiConfig, ApiState, Tenancy};
use cauce_ingest::auth::{AppAdmin, CachedKeys, Role, SqliteKeys};
use cauce_ingest::queue::sqs::SqsQueue;
use cauce_ingest::queue::Queue;
use cauce_store::dynamo::{DynamoStore, Tables};
use cauce_store::{Kind, RecordStore};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_to_sqs_to_worker_to_dynamodb() {
    if !cauce_store::aws::emulator("api_to_sqs_to_worker_to_dynamodb") {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("checked above");
    let aws = cauce_store::aws::sdk_config().await;
    let name = format!("pipeline-{}", std::process::id());
    let queue = SqsQueue::create(
        aws_sdk_sqs::Client::new(&aws),
        &name,
        5,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        Tables::with_prefix(&name),
        30,
    );
    store.create_tables().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(SqliteKeys::open(dir.path().join("apps.db")).unwrap());
    let app = keys
        .create_app("mobile", None, Role::Developer)
        .await
        .unwrap();
    let tenancy = Tenancy::Keys(Arc::new(CachedKeys::new(keys.clone(), Duration::ZERO)));
    let state = ApiState::new(
        Arc::new(queue.clone()),
        Arc::new(store.clone()),
        tenancy,
        None,
        ApiConfig::default(),
    );
    let api = router(Arc::new(state));
    let now = cauce_store::time::now_ms();
    let batch: Vec<_> = (0..30)
        .map(|i| json!({"event_id": format!("e{i}"), "name": "open", "timestamp": now - i, "user_id": format!("u{}", i % 4)}))
        .collect();
    let req = Request::post("/v1/events")
        .header("x-api-key", &app.api_key)
        .header("content-type", "application/json")
        .body(Body::from(json!({ "batch": batch }).to_string()))
        .unwrap();
    assert_eq!(
        api.oneshot(req).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert!(queue.pending().await.unwrap() > 0);

    let urls = aws_sdk_sqs::Client::new(&aws);
    let url = |q: String| {
        let urls = urls.clone();
        async move {
            let out = urls.get_queue_url().queue_name(q).send().await.unwrap();
            out.queue_url().unwrap().to_owned()
        }
    };
    let mut worker = Command::new(support::BIN)
        .arg("worker")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("CAUCE_QUEUE_URL", url(format!("{name}.fifo")).await)
        .env("CAUCE_DLQ_URL", url(format!("{name}-dlq.fifo")).await)
        .env("CAUCE_TABLE_PREFIX", &name)
        .env("CAUCE_RECEIVE_WAIT_SECS", "1")
        .env("CAUCE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while queue.pending().await.unwrap() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the worker did not drain the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();

    for i in 0..30 {
        let got = store
            .get(Kind::Event, &app.app_id, &format!("e{i}"))
            .await
            .unwrap();
        let got = got.unwrap_or_else(|| panic!("e{i} is in DynamoDB"));
        assert_eq!(got.app_id(), app.app_id);
        assert_eq!(
            got.ingest_seq().len(),
            25,
            "ingest_seq from the SQS sequence number"
        );
    }
    let timeline = store.timeline(&app.app_id, "u1", 100).await.unwrap();
    assert_eq!(timeline.len(), 8, "e1, e5, … e29 belong to u1");
}
