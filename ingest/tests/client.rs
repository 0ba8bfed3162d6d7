//! The typed client against a real server (the embedded deployment's router on a loopback
//! port): answers, refusals, gzip, the rate limit's retry, the SDK route, health and timelines.

mod common;

use std::time::Duration;

use serde_json::json;

use cauce_ingest::api::{ApiConfig, HealthStatus};
use cauce_ingest::auth::Role;
use cauce_ingest::client::{Answer, Body, Client};
use cauce_ingest::IngestError;
use cauce_store::Kind;
use common::{now, Harness};

/// Serves the harness's router on a loopback port: its base URL.
async fn listen(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = h.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// Runs the blocking client off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_reads_and_reports_refusals() {
    let h = Harness::new(ApiConfig::default());
    let dev = h.app("dev", None, Role::Developer).await;
    let base = listen(&h).await;
    let client = Client::new(&base, &dev.api_key);

    // A batch with a bad item: done, one accepted, one rejected with its code.
    let t = now() - 1_000;
    let items = [
        json!({"event_id": "e1", "name": "open", "timestamp": t, "user_id": "u1"}),
        json!({"event_id": "e2", "timestamp": t, "user_id": "u1"}),
    ];
    let c = client.clone();
    let answer = blocking(move || c.send(Kind::Event, &Body::batch(&items).unwrap())).await;
    let Ok(Answer::Done(answer)) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(answer.accepted, 1);
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(answer.rejected[0].id.as_deref(), Some("e2"));
    assert_eq!(answer.rejected[0].error.as_str(), "missing_field");

    // The same as gzip: smaller on the wire, and taken the same way.
    let items = [
        json!({"event_id": "e3", "name": "open", "timestamp": t, "user_id": "u1",
                        "properties": {"screen": "home".repeat(50)}}),
    ];
    let plain = Body::batch(&items).unwrap();
    let gz = plain.clone().gzip();
    assert!(gz.len() < plain.len(), "{} < {}", gz.len(), plain.len());
    let c = client.clone();
    let answer = blocking(move || c.send(Kind::Event, &gz)).await;
    assert!(
        matches!(&answer, Ok(Answer::Done(a)) if a.accepted == 1 && a.rejected.is_empty()),
        "{answer:?}"
    );

    // A batch of the Segment protocol through /v1/batch.
    let sdk = json!({"batch": [{"type": "track", "messageId": "m1", "userId": "u1",
                                "event": "Signed Up", "timestamp": "2026-12-01T12:00:00Z"},
                               {"type": "track", "messageId": "m2", "event": "No One"}]});
    let c = client.clone();
    let answer = blocking(move || c.send_sdk_batch(&Body::json(sdk.to_string()).gzip())).await;
    let Ok(Answer::Done(answer)) = answer else {
        panic!("{answer:?}")
    };
    assert!(answer.success);
    assert_eq!((answer.accepted, answer.rejected.len()), (1, 1));

    // Health before the writer ran: what was accepted is pending.
    let c = client.clone();
    let health = blocking(move || c.health()).await.unwrap();
    assert_eq!(health.status, HealthStatus::Ok);
    assert!(health.pending.unwrap() > 0, "{health:?}");

    // After the writer: the user's timeline, newest first, with every kind's tag.
    h.drain().await;
    let c = client.clone();
    let page = blocking(move || c.timeline("u1", 10)).await.unwrap();
    assert_eq!(page.user_id, "u1");
    assert_eq!(page.app_id, dev.app_id);
    let ids: Vec<&str> = page
        .records
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&"m1") && ids.contains(&"e1") && ids.contains(&"e3"));

    // A wrong key: the API's refusal, with its status and code.
    let stranger = Client::new(&base, "ck_0000");
    let refused = blocking(move || stranger.send(Kind::Event, &Body::json("{}"))).await;
    match refused {
        Err(IngestError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (401, "invalid_api_key"))
        }
        other => panic!("{other:?}"),
    }

    // A body that is not a batch: refused, not an answer.
    let c = client.clone();
    let refused = blocking(move || c.send(Kind::Story, &Body::json("[1]"))).await;
    assert!(
        matches!(&refused, Err(IngestError::Refused { status: 400, code, .. }) if code == "malformed_body"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_hears_when_to_come_back_and_when_no_one_answers() {
    let h = Harness::new(ApiConfig::default());
    let slow = h.app("slow", Some(1), Role::Developer).await;
    let base = listen(&h).await;
    let client = Client::new(&base, &slow.api_key);
    let item = [json!({"event_id": "e1", "name": "open", "timestamp": now(), "user_id": "u"})];
    let answers = blocking(move || {
        let body = Body::batch(&item).unwrap();
        (0..3)
            .map(|_| client.send(Kind::Event, &body))
            .collect::<Vec<_>>()
    })
    .await;
    let waits: Vec<Duration> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(Answer::RetryAfter(wait)) => Some(*wait),
            _ => None,
        })
        .collect();
    assert!(!waits.is_empty(), "{answers:?}");
    assert!(
        waits.iter().all(|w| *w >= Duration::from_secs(1)),
        "{waits:?}"
    );

    // A port where nothing listens: no answer at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nobody = Client::with_timeout(&format!("http://{closed}"), "ck", Duration::from_secs(5));
    let res = blocking(move || nobody.health()).await;
    assert!(matches!(res, Err(IngestError::Http(_))), "{res:?}");
}
