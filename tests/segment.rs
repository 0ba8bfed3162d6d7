//! The analytics SDKs' tracking protocol (Segment's) against the real `cauce serve`: the real
//! SDKs from PyPI (Segment's with gzip, RudderStack's), and the request shapes of the mobile and
//! browser SDKs (analytics-kotlin and analytics-swift: `/v1/b`, `text/plain`, HTTP Basic;
//! analytics.js: `/v1/t`, `text/plain`, the write key in the body), retries with the same
//! `messageId` included. Each ends with the rows in the lake, read back with pyarrow.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::{basic, create_app, python_with, serve, Client};

fn iso(ms_ago: i64) -> String {
    cauce_store::time::format_rfc3339(support::now() - ms_ago)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The lake's rows of `table`, by `key`.
fn rows(data: &Path, table: &str, key: &str) -> BTreeMap<String, Vec<Value>> {
    let lake = data.join("lake");
    let got = python_with("lake_rows.py", &[lake.to_str().unwrap(), table], &[]);
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in got.as_array().unwrap() {
        let k = row[key].as_str().unwrap().to_owned();
        out.entry(k).or_default().push(row.clone());
    }
    out
}

fn json_field(row: &Value, column: &str) -> Value {
    row[column]
        .as_str()
        .map_or(Value::Null, |s| serde_json::from_str(s).unwrap())
}

#[test]
fn the_real_sdks_send_to_cauce() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app_id, key) = create_app(&data, "mobile", "developer");
    let server = serve(&data);
    let sent = python_with("segment_sdks.py", &[&server.base, &key], &[]);
    let c = Client::new(&server.base);
    c.drain(Duration::from_secs(60), Duration::from_millis(50));

    let events = rows(&data, "events", "event_id");
    for sdk in ["segment", "rudderstack"] {
        let id = |call: &str| format!("{sdk}-{call}");
        for m in sent.as_array().unwrap().iter().filter(|m| m["sdk"] == sdk) {
            let id = m["message_id"].as_str().unwrap();
            let copies = events.get(id).map_or(0, Vec::len);
            assert_eq!(
                copies, 1,
                "{id}: once in the lake, the SDK's retry absorbed"
            );
        }
        let one = |call: &str| events[&id(call)][0].clone();
        let track = one("track");
        assert_eq!(track["app_id"], app_id.as_str());
        assert_eq!(
            (track["type"].as_str(), track["name"].as_str()),
            (Some("track"), Some("Song Played"))
        );
        assert_eq!(track["user_id"], format!("{sdk}-user"));
        assert_eq!(json_field(&track, "properties")["title"], "Hey");
        let context = json_field(&track, "context");
        assert_eq!(context["app"]["version"], "1.2.3");
        assert!(
            context["library"]["name"]
                .as_str()
                .unwrap()
                .contains("python"),
            "{context}"
        );
        let identify = one("identify");
        assert_eq!(identify["type"], "identify");
        assert_eq!(
            json_field(&identify, "properties")["plan"],
            "pro",
            "{identify}"
        );
        assert_eq!(one("page")["name"], "Pricing");
        assert_eq!(one("screen")["name"], "Home");
        assert_eq!(
            json_field(&one("group"), "properties")["group_id"],
            format!("{sdk}-acme")
        );
        assert_eq!(
            json_field(&one("alias"), "properties")["previous_id"],
            format!("{sdk}-anon")
        );
        let exposure = one("exposure");
        assert_eq!(exposure["anonymous_id"], format!("{sdk}-anon"));
        assert!(exposure["user_id"].is_null());
    }
    let tests = rows(&data, "tests", "experiment");
    for sdk in ["segment", "rudderstack"] {
        let x = &tests[&format!("{sdk}-checkout")];
        assert_eq!(x.len(), 1);
        assert_eq!(
            (x[0]["user_id"].as_str(), x[0]["variant"].as_str()),
            (Some(&*format!("{sdk}-anon")), Some("b"))
        );
    }
}

#[test]
fn the_mobile_and_browser_request_shapes_are_understood() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app_id, key) = create_app(&data, "shapes", "developer");
    let server = serve(&data);
    let c = Client::new(&server.base);
    let auth = basic(&key);

    // analytics-kotlin: the batch route `/b`, JSON sent as text/plain, Basic auth, the batch's
    // context and sentAt; one message with neither userId nor anonymousId.
    let kotlin = json!({
        "batch": [
            {"type": "track", "event": "Application Opened", "messageId": "k-1", "anonymousId": "dev-1",
             "originalTimestamp": iso(5_000), "properties": {"from_background": false},
             "context": {"os": {"name": "Android", "version": "14"}}, "integrations": {}},
            {"type": "screen", "name": "Checkout", "messageId": "k-2", "userId": "u-7", "anonymousId": "dev-1",
             "originalTimestamp": iso(4_000), "properties": {}},
            {"type": "track", "event": "Orphan", "messageId": "k-3", "originalTimestamp": iso(3_000)},
        ],
        "sentAt": iso(0),
        "writeKey": key,
        "context": {"library": {"name": "analytics-kotlin", "version": "1.16.0"}},
    })
    .to_string();
    let headers = [
        ("content-type", "text/plain"),
        ("authorization", auth.as_str()),
        ("user-agent", "analytics-kotlin/1.16.0"),
    ];
    let (status, answer) = c.post_raw("/v1/b", &headers, kotlin.as_bytes());
    assert_eq!(
        status, 200,
        "a batch with a bad message is still a 200: {answer}"
    );
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 2);
    assert_eq!(answer["rejected"][0]["error"], "missing_field");
    // The SDK's retry of the same batch: absorbed.
    assert_eq!(c.post_raw("/v1/b", &headers, kotlin.as_bytes()).0, 200);

    // analytics-swift: the same route, gzip.
    let swift = json!({
        "batch": [{"type": "identify", "messageId": "s-1", "userId": "u-8", "traits": {"email": "a@b.c"},
                   "timestamp": iso(2_000)}],
        "sentAt": iso(0), "writeKey": key,
    })
    .to_string();
    let gz = gzip(swift.as_bytes());
    let headers = [
        ("content-type", "text/plain"),
        ("content-encoding", "gzip"),
        ("authorization", auth.as_str()),
    ];
    let (status, answer) = c.post_raw("/v1/b", &headers, &gz);
    assert_eq!(
        (status, answer["accepted"].as_i64()),
        (200, Some(1)),
        "{answer}"
    );

    // analytics.js: a single call on its short route, the write key in the body only.
    let browser = json!({
        "type": "page", "name": "Home", "messageId": "ajs-next-1", "anonymousId": "b-1",
        "properties": {"path": "/", "url": "https://shop.example/"}, "timestamp": iso(1_000),
        "sentAt": iso(0), "writeKey": key, "context": {"userAgent": "Mozilla/5.0"},
        "_metadata": {"bundled": ["Segment.io"]}, "integrations": {},
    })
    .to_string();
    let (status, answer) = c.post_raw(
        "/v1/p",
        &[("content-type", "text/plain")],
        browser.as_bytes(),
    );
    assert_eq!(
        (status, answer["accepted"].as_i64()),
        (200, Some(1)),
        "{answer}"
    );

    // What is refused as a whole: not JSON (400), no key (401), an unknown key (401), a type
    // that is neither JSON nor text (415), past the spec's 500 KB (413).
    let plain = [("content-type", "text/plain")];
    assert_eq!(
        c.post_raw("/v1/batch", &[("authorization", &auth)], b"{not json")
            .0,
        400
    );
    let nobody = json!({"batch": [{"type": "track", "userId": "u", "event": "e"}]}).to_string();
    assert_eq!(c.post_raw("/v1/batch", &plain, nobody.as_bytes()).0, 401);
    let stranger =
        json!({"type": "track", "userId": "u", "event": "e", "writeKey": "ck_nobody"}).to_string();
    assert_eq!(c.post_raw("/v1/t", &plain, stranger.as_bytes()).0, 401);
    let xml = [
        ("content-type", "application/xml"),
        ("authorization", auth.as_str()),
    ];
    assert_eq!(c.post_raw("/v1/batch", &xml, nobody.as_bytes()).0, 415);
    let big = json!({"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"x": "y".repeat(600_000)}}]});
    let (status, answer) = c.post_raw(
        "/v1/batch",
        &[("authorization", &auth)],
        big.to_string().as_bytes(),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("body_too_large"))
    );

    // The settings a mobile SDK fetches at start point it back here.
    let (status, settings) = c.get(&format!("/v1/projects/{key}/settings"), None);
    assert_eq!(status, 200);
    let host = server.base.trim_start_matches("http://");
    assert_eq!(
        settings["integrations"]["Segment.io"]["apiHost"],
        format!("{host}/v1")
    );
    assert_eq!(c.get("/v1/projects/ck_nobody/settings", None).0, 404);

    c.drain(Duration::from_secs(60), Duration::from_millis(50));
    let events = rows(&data, "events", "event_id");
    let ids: Vec<&String> = events.keys().collect();
    assert_eq!(
        ids,
        ["ajs-next-1", "k-1", "k-2", "s-1"],
        "each once; the orphan refused"
    );
    let k1 = &events["k-1"][0];
    assert_eq!(k1["anonymous_id"], "dev-1");
    let context = json_field(k1, "context");
    assert_eq!(
        context["library"]["name"], "analytics-kotlin",
        "the batch's context merged"
    );
    assert_eq!(context["os"]["version"], "14");
    assert_eq!(events["k-2"][0]["user_id"], "u-7");
    assert_eq!(events["s-1"][0]["type"], "identify");
    let page = &events["ajs-next-1"][0];
    assert_eq!(
        (page["type"].as_str(), page["name"].as_str()),
        (Some("page"), Some("Home"))
    );
    assert!(
        !page.to_string().contains(&key),
        "the write key is never stored"
    );
    // The orphan is archived as a bad row, as sent (less the write key), with its reason.
    let store = cauce_store::sqlite::SqliteStore::open(data.join("store.db")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bad = runtime.block_on(store.bad_rows(&app_id)).unwrap();
    let orphan = bad
        .iter()
        .find(|b| b.id.as_deref() == Some("k-3"))
        .expect("k-3 archived");
    assert_eq!(orphan.error, "missing_field");
    assert!(
        orphan.raw.contains("Orphan") && !orphan.raw.contains(&key),
        "{}",
        orphan.raw
    );
}
