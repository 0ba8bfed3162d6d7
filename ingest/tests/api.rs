//! The HTTP API's status codes, tenancy and durability, through the real Router on the real
//! embedded adapters.

mod common;

use axum::http::{Method, StatusCode};
use cauce_ingest::api::ApiConfig;
use cauce_ingest::auth::Role;
use cauce_store::{Kind, RecordStore};
use common::*;

#[tokio::test]
async fn status_codes() {
    let h = Harness::new(ApiConfig::default());
    let dev = h.app("dev", None, Role::Developer).await;
    let key = dev.api_key.as_str();
    let r = &h.router;

    // 202: all accepted.
    let res = post(
        r,
        "/v1/events",
        key,
        batch(&[event("a", "u"), event("b", "u")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    assert_eq!(res.json["accepted"], 2);
    assert_eq!(res.json["rejected"], serde_json::json!([]));

    // 207: some rejected, each with index, id, code, field and message.
    let bad = r#"{"event_id":"c","timestamp":1}"#.to_owned();
    let res = post(r, "/v1/events", key, batch(&[event("d", "u"), bad])).await;
    assert_eq!(res.status, StatusCode::MULTI_STATUS);
    assert_eq!(res.json["accepted"], 1);
    let rej = &res.json["rejected"][0];
    assert_eq!(
        (&rej["index"], &rej["id"], &rej["error"], &rej["field"]),
        (
            &serde_json::json!(1),
            &serde_json::json!("c"),
            &serde_json::json!("missing_field"),
            &serde_json::json!("name")
        )
    );

    // 400: malformed body, empty batch, bad sent_at, no valid item.
    for (body, code) in [
        ("{".to_owned(), "malformed_body"),
        (r#"{"batch":[]}"#.to_owned(), "empty_batch"),
        (
            r#"{"sent_at":"x","batch":[{}]}"#.to_owned(),
            "bad_timestamp",
        ),
        (batch(&["{}".to_owned()]), "no_valid_items"),
    ] {
        let res = post(r, "/v1/events", key, body).await;
        assert_eq!(
            (res.status, res.json["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }

    // 401: missing and invalid keys.
    let res = call(
        r,
        Method::POST,
        "/v1/events",
        None,
        Some("application/json"),
        batch(&[event("e", "u")]),
    )
    .await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_api_key"))
    );
    let res = post(r, "/v1/events", "ck_wrong", batch(&[event("e", "u")])).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );

    // 403: a disabled key, and a role that may not write.
    let gone = h.app("gone", None, Role::Developer).await;
    cauce_ingest::auth::AppAdmin::disable_app(h.keys.as_ref(), &gone.app_id)
        .await
        .unwrap();
    let res = post(r, "/v1/events", &gone.api_key, batch(&[event("e", "u")])).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("disabled_key"))
    );
    let analyst = h.app("analyst", None, Role::Analyst).await;
    let res = post(r, "/v1/events", &analyst.api_key, batch(&[event("e", "u")])).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    // 413: too large a body, too many items.
    let huge = format!(r#"{{"batch":["{}"]}}"#, "x".repeat(1024 * 1024 + 10));
    let res = post(r, "/v1/events", key, huge).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let many = batch(&vec!["{}".to_owned(); 501]);
    let res = post(r, "/v1/events", key, many).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_many_items"))
    );

    // 415: not JSON.
    let res = call(
        r,
        Method::POST,
        "/v1/events",
        Some(key),
        Some("text/plain"),
        batch(&[event("e", "u")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = call(
        r,
        Method::POST,
        "/v1/events",
        Some(key),
        None,
        batch(&[event("e", "u")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 429 with Retry-After: an app limited to 2 requests a second.
    let slow = h.app("slow", Some(2), Role::Developer).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = post(
            r,
            "/v1/events",
            &slow.api_key,
            batch(&[event(&format!("r{i}"), "u")]),
        )
        .await;
        statuses.push(res.status);
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = res.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1, "Retry-After is at least one second");
            assert_eq!(res.json["error"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..2], [StatusCode::ACCEPTED; 2]);
    assert!(
        statuses[2..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );

    // 404 for an unknown route.
    let res = call(r, Method::GET, "/v2/nothing", Some(key), None, "").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // 503: the queue is down; nothing is accepted.
    h.queue.close().await.unwrap();
    let res = post(r, "/v1/events", key, batch(&[event("late", "u")])).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("queue_unavailable"))
    );
    assert!(res.headers.contains_key("retry-after"));
    let res = call(r, Method::GET, "/healthz", None, None, "").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn accepted_items_are_stored_and_rejected_ones_archived() {
    let h = Harness::new(ApiConfig::default());
    let app = h.app("a", None, Role::Developer).await;
    let items = vec![
        event("e1", "u1"),
        r#"{"event_id":"e2","name":"x","timestamp":"not a time"}"#.to_owned(),
        event("e3", "u2"),
        event("e1", "u1"), // a resend inside the batch
    ];
    let res = post(&h.router, "/v1/events", &app.api_key, batch(&items)).await;
    assert_eq!(res.status, StatusCode::MULTI_STATUS);
    assert_eq!(res.json["accepted"], 3);

    let res = call(&h.router, Method::GET, "/healthz", None, None, "").await;
    assert_eq!(
        res.json,
        serde_json::json!({"status": "ok", "pending": 4, "dead_letters": 0}),
        "3 accepted + 1 bad row wait"
    );
    h.drain().await;
    let res = call(&h.router, Method::GET, "/healthz", None, None, "").await;
    assert_eq!(res.json["pending"], 0);

    let stored = h.store.scan(Kind::Event, &app.app_id).await.unwrap();
    let keys: Vec<_> = stored.iter().map(|r| r.key()).collect();
    assert_eq!(keys, ["e1", "e3"]);
    let bad = h.store.bad_rows(&app.app_id).await.unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].index, bad[0].error.as_str()), (1, "bad_timestamp"));
    assert_eq!(
        bad[0].raw, items[1],
        "the rejected item is archived as sent"
    );
}

#[tokio::test]
async fn the_tenant_comes_from_the_key_alone() {
    let h = Harness::new(ApiConfig::default());
    let a = h.app("a", None, Role::Developer).await;
    let b = h.app("b", None, Role::Developer).await;
    post(
        &h.router,
        "/v1/events",
        &a.api_key,
        batch(&[event("a1", "shared-user")]),
    )
    .await;
    // B claims to be A in the body.
    let claim = format!(
        r#"{{"event_id":"b1","name":"n","timestamp":{},"user_id":"shared-user","app_id":"{}"}}"#,
        now(),
        a.app_id
    );
    let res = post(&h.router, "/v1/events", &b.api_key, batch(&[claim])).await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    h.drain().await;
    let of = |app: &str| {
        let store = h.store.clone();
        let app = app.to_owned();
        async move { store.timeline(&app, "shared-user", 10).await.unwrap() }
    };
    assert_eq!(
        of(&a.app_id)
            .await
            .iter()
            .map(|r| r.key())
            .collect::<Vec<_>>(),
        ["a1"]
    );
    assert_eq!(
        of(&b.app_id)
            .await
            .iter()
            .map(|r| r.key())
            .collect::<Vec<_>>(),
        ["b1"]
    );

    // Reading: each key sees its own app's timeline only.
    let path = "/v1/users/shared-user/timeline";
    let res = call(&h.router, Method::GET, path, Some(&b.api_key), None, "").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json["app_id"], b.app_id.as_str());
    let ids: Vec<_> = res.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].clone())
        .collect();
    assert_eq!(ids, [serde_json::json!("b1")]);
    assert_eq!(res.json["records"][0]["kind"], "event");
    // An ingest-only key may not read.
    let ingest = h.app("ingest", None, Role::Ingest).await;
    let res = call(
        &h.router,
        Method::GET,
        path,
        Some(&ingest.api_key),
        None,
        "",
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admin_routes_manage_apps_and_keys() {
    let h = Harness::new(ApiConfig::default());
    let admin = h.app("ops", None, Role::Admin).await;
    let dev = h.app("dev", None, Role::Developer).await;
    let r = &h.router;
    let res = call(
        r,
        Method::POST,
        "/v1/admin/apps",
        Some(&dev.api_key),
        Some("application/json"),
        r#"{"name":"x"}"#,
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "only admins manage apps");

    let res = call(
        r,
        Method::POST,
        "/v1/admin/apps",
        Some(&admin.api_key),
        Some("application/json"),
        r#"{"name":"shop","rate_limit":50}"#,
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let (shop_id, shop_key) = (
        res.json["app_id"].as_str().unwrap().to_owned(),
        res.json["api_key"].as_str().unwrap().to_owned(),
    );
    assert!(shop_key.len() >= 3 + 32, "at least 128 bits of key");
    assert_eq!(
        post(r, "/v1/events", &shop_key, batch(&[event("s1", "u")]))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    let res = call(
        r,
        Method::GET,
        "/v1/admin/apps",
        Some(&admin.api_key),
        None,
        "",
    )
    .await;
    let names: Vec<_> = res.json["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ops", "dev", "shop"]);
    assert!(
        !res.json.to_string().contains(&shop_key),
        "keys are never listed"
    );

    let res = call(
        r,
        Method::POST,
        &format!("/v1/admin/apps/{shop_id}/rotate-key"),
        Some(&admin.api_key),
        None,
        "",
    )
    .await;
    let new_key = res.json["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        post(r, "/v1/events", &shop_key, batch(&[event("s2", "u")]))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(r, "/v1/events", &new_key, batch(&[event("s3", "u")]))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    let res = call(
        r,
        Method::POST,
        &format!("/v1/admin/apps/{shop_id}/disable"),
        Some(&admin.api_key),
        None,
        "",
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        post(r, "/v1/events", &new_key, batch(&[event("s4", "u")]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A disabled app can be enabled again, and its key works again.
    let res = call(
        r,
        Method::POST,
        &format!("/v1/admin/apps/{shop_id}/enable"),
        Some(&admin.api_key),
        None,
        "",
    )
    .await;
    assert_eq!(
        (res.status, &res.json["disabled"]),
        (StatusCode::OK, &serde_json::json!(false))
    );
    assert_eq!(
        post(r, "/v1/events", &new_key, batch(&[event("s5", "u")]))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    for action in ["disable", "enable"] {
        let res = call(
            r,
            Method::POST,
            &format!("/v1/admin/apps/app_nope/{action}"),
            Some(&admin.api_key),
            None,
            "",
        )
        .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{action}");
    }
}

#[tokio::test]
async fn a_record_the_store_cannot_read_is_a_500_not_a_503() {
    let h = Harness::new(ApiConfig::default());
    let app = h.app("shop", None, Role::Analyst).await;
    // A stored row that is not a record: a bug or corruption, which no retry mends.
    let conn = rusqlite::Connection::open(h.dir.path().join("store.db")).unwrap();
    conn.execute(
        "INSERT INTO events (app_id, key, user_id, ts, doc) VALUES (?1, 'e1', 'u1', 1, '{not json')",
        [&app.app_id],
    )
    .unwrap();
    // With its timeline entry, as the store's flush would make it.
    conn.execute(
        "INSERT INTO timeline (app_id, user_id, ts, seq) VALUES (?1, 'u1', 1, last_insert_rowid())",
        [&app.app_id],
    )
    .unwrap();
    let path = "/v1/users/u1/timeline";
    let res = call(&h.router, Method::GET, path, Some(&app.api_key), None, "").await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal"))
    );
    assert!(!res.headers.contains_key("retry-after"));
    // Once the row is mended, the same request works.
    conn.execute("DELETE FROM events", []).unwrap();
    let res = call(&h.router, Method::GET, path, Some(&app.api_key), None, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.json);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

async fn post_encoded(h: &Harness, key: &str, encoding: &str, body: Vec<u8>) -> Reply {
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(axum::body::Body::from(body))
        .unwrap();
    send(&h.router, req).await
}

#[tokio::test]
async fn gzip_bodies_are_inflated_within_the_limits() {
    let h = Harness::new(ApiConfig::default());
    let app = h.app("a", None, Role::Developer).await;
    let key = &app.api_key;

    // A gzip batch: accepted and stored as if it were sent plain; its items' limits and
    // rejections as usual.
    let items = [
        event("g1", "u1"),
        event("g2", "u2"),
        r#"{"event_id":"g3"}"#.to_owned(),
    ];
    let res = post_encoded(&h, key, "gzip", gzip(batch(&items).as_bytes())).await;
    assert_eq!(res.status, StatusCode::MULTI_STATUS, "{}", res.json);
    assert_eq!(res.json["accepted"], 2);
    assert_eq!(res.json["rejected"][0]["error"], "missing_field");
    h.drain().await;
    let stored = h.store.scan(Kind::Event, &app.app_id).await.unwrap();
    let keys: Vec<_> = stored.iter().map(|r| r.key()).collect();
    assert_eq!(keys, ["g1", "g2"]);
    let bad = h.store.bad_rows(&app.app_id).await.unwrap();
    assert_eq!(bad[0].raw, items[2], "the bad row is archived inflated");

    // A zip bomb: 64 MiB of spaces around a batch, 65 KB on the wire. Refused when the inflated
    // bytes pass the 1 MiB limit, before the rest is inflated; nothing accepted.
    let mut bomb = vec![b' '; 64 << 20];
    bomb.extend(batch(&[event("bomb", "u1")]).as_bytes());
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let res = post_encoded(&h, key, "gzip", bomb).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    assert!(res.json["message"]
        .as_str()
        .unwrap()
        .contains("inflates to more than 1048576 bytes"));

    // Not gzip after all, cut short, or another encoding: a clear error, nothing accepted.
    let mut cut = gzip(batch(&[event("cut", "u1")]).as_bytes());
    cut.truncate(cut.len() / 2);
    let res = post_encoded(&h, key, "gzip", cut).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_gzip"))
    );
    let mut corrupt = gzip(batch(&[event("corrupt", "u1")]).as_bytes());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let res = post_encoded(&h, key, "gzip", corrupt).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_gzip"))
    );
    let res = post_encoded(&h, key, "br", batch(&[event("br", "u1")]).into_bytes()).await;
    assert_eq!(
        (res.status, res.json["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_encoding")
        )
    );
    // Said gzip, sent plain (API Gateway inflates bodies itself): taken as sent.
    let res = post_encoded(&h, key, "gzip", batch(&[event("plain", "u1")]).into_bytes()).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.json);
    h.drain().await;
    let stored = h.store.scan(Kind::Event, &app.app_id).await.unwrap();
    let keys: Vec<_> = stored.iter().map(|r| r.key()).collect();
    assert_eq!(
        keys,
        ["g1", "g2", "plain"],
        "nothing of the refused bodies was stored"
    );
}
