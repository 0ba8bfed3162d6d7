//! The raw archive, black box: `cauce serve` keeps every body it takes in DATA/raw, and
//! `cauce replay` of that archive into an empty data folder, drained there by `cauce serve`,
//! makes the same lake: every row of every kind (bar `ingest_seq`, the new queue's arrival
//! order) and the same bad rows. The traffic has resent batches, rejected items, a body that
//! is all bad, stories and tests updated out of order, a pretty-printed body, and the analytics
//! SDKs' protocol (archived as sent, translated again by the replay).

mod support;

use std::path::Path;
use std::time::Duration;

use cauce_analytics::reader::{scan_rows, Days};
use cauce_store::Kind;
use polars::prelude::*;
use serde_json::{json, Value};
use support::{basic, cli, now, serve, Client};

/// Items rejected: one in each of 20 batches and in the 5 resent ones, the 2 of a body with
/// nothing valid, and one SDK message without a user.
const REJECTED: usize = 20 + 5 + 2 + 1;

/// Events sent through the SDKs' routes and accepted.
const SDK_EVENTS: usize = 4;

/// How long a drain may take, and how often it is checked.
const WITHIN: Duration = Duration::from_secs(120);
const EVERY: Duration = Duration::from_millis(100);

/// Sends the traffic; returns how many items were accepted.
fn traffic(base: &str, c: &Client, key: &str) -> usize {
    let t = now();
    let mut accepted = 0;
    let mut post = |path: &str, items: &[Value]| {
        let (status, body) = c.post(path, key, items);
        assert!([202, 207, 400].contains(&status), "{status} {body}");
        accepted += body["accepted"].as_u64().unwrap_or(0) as usize;
    };
    for b in 0..20 {
        let batch: Vec<Value> = (0..50)
            .map(|i| {
                let mut e = json!({"event_id": format!("e{b}-{i}"), "name": (["open", "tap", "buy"][i % 3]),
                    "timestamp": t - i as i64, "user_id": format!("u{}", (b + i) % 17), "properties": {"i": i}});
                if i == 7 {
                    e.as_object_mut().unwrap().remove("name"); // rejected: no name
                }
                e
            })
            .collect();
        post("/v1/events", &batch);
        if b % 4 == 0 {
            post("/v1/events", &batch); // a resend: duplicates, absorbed
        }
    }
    // Nothing valid: a 400, and its items still go to the bad rows.
    post(
        "/v1/events",
        &[
            json!({"event_id": "x1"}),
            json!({"name": "no id", "timestamp": t}),
        ],
    );
    // Stories: the newer version first, then an older one that must not win.
    let story = |id: usize, v: i64, outcome: &str| {
        json!({"story_id": format!("s{id}"), "name": "checkout", "user_id": format!("u{id}"),
               "started_at": t - 60_000, "updated_at": t - 30_000 + v, "outcome": outcome,
               "steps": [{"name": "cart", "at": t - 60_000}, {"name": "pay", "at": t - 40_000 + v}]})
    };
    let newer: Vec<Value> = (0..10).map(|i| story(i, 2, "completed")).collect();
    let older: Vec<Value> = (0..10).map(|i| story(i, 1, "in_progress")).collect();
    post("/v1/stories", &newer);
    post("/v1/stories", &older);
    // Tests: exposures, then conversions.
    let exposure = |u: usize, v: i64, converted: bool| {
        json!({"experiment": "paywall", "user_id": format!("u{u}"), "variant": (["a", "b"][u % 2]),
               "exposed_at": t - 50_000, "updated_at": t - 50_000 + v, "converted": converted})
    };
    post(
        "/v1/tests",
        &(0..12).map(|u| exposure(u, 0, false)).collect::<Vec<_>>(),
    );
    post(
        "/v1/tests",
        &(0..12)
            .step_by(3)
            .map(|u| exposure(u, 5, true))
            .collect::<Vec<_>>(),
    );
    // A pretty-printed body, with newlines between its tokens.
    let pretty = serde_json::to_string_pretty(&json!({"batch": [
        {"event_id": "pretty-1", "name": "caf\u{e9}", "timestamp": t, "properties": {"note": "line\nbreak"}}
    ]}))
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let res = agent
        .post(format!("{base}/v1/events"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .send(pretty)
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    // The SDKs' protocol: a batch with a message without an id, one without a user (refused)
    // and an `Experiment Viewed` (also a test); a browser's call with the key in its body.
    let at = cauce_store::time::format_rfc3339(t);
    let sdk = json!({"sentAt": at, "context": {"library": {"name": "analytics-kotlin"}}, "batch": [
        {"type": "track", "messageId": "sdk-1", "userId": "u1", "event": "Song Played",
         "properties": {"n": 1.50}, "timestamp": at},
        {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}, "timestamp": at},
        {"type": "track", "messageId": "sdk-bad", "event": "Nobody"},
        {"type": "track", "messageId": "sdk-x", "userId": "u3", "event": "Experiment Viewed",
         "timestamp": at, "properties": {"experiment_id": "paywall", "variation_id": "b"}},
    ]});
    let auth = basic(key);
    let (status, answer) = c.post_raw(
        "/v1/batch",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        sdk.to_string().as_bytes(),
    );
    assert_eq!(
        (status, &answer["accepted"], &answer["exposures"]),
        (200, &json!(3), &json!(1)),
        "{answer}"
    );
    let page = json!({"type": "page", "name": "Pricing", "messageId": "sdk-3", "anonymousId": "b-1",
                      "writeKey": key, "timestamp": at});
    let (status, answer) = c.post_raw(
        "/v1/p",
        &[("content-type", "text/plain")],
        page.to_string().as_bytes(),
    );
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    accepted += SDK_EVENTS + 1;
    // Not JSON: refused, and neither queued nor archived.
    let res = agent
        .post(format!("{base}/v1/events"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .send("{\"batch\": [")
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    accepted + 1
}

/// Every row of a kind, without `ingest_seq`, in a fixed order.
fn rows(data: &Path, kind: Kind) -> DataFrame {
    let lake = data.join("lake");
    let frame = scan_rows(&lake, kind, Days::default())
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} rows in {}", lake.display()));
    let df = frame.drop(cols(["ingest_seq"])).collect().unwrap();
    let by: Vec<String> = df
        .schema()
        .iter()
        .filter(|(_, dtype)| !matches!(dtype, DataType::List(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    df.sort(by, SortMultipleOptions::default()).unwrap()
}

/// Every bad row of the app in the store, sorted.
async fn bad_rows(data: &Path, app_id: &str) -> Vec<String> {
    let store = cauce_store::sqlite::SqliteStore::open(data.join("store.db")).unwrap();
    let mut rows: Vec<String> = store
        .bad_rows(app_id)
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_raw_archive_into_an_empty_system_makes_the_same_lake() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));

    let mut server = serve(&first);
    let app = cli(
        &first,
        &["apps", "create", "--name", "shop", "--rate-limit", "100000"],
    );
    let key = app["api_key"].as_str().unwrap();
    let c = Client::new(&server.base);
    let accepted = traffic(&server.base, &c, key);
    c.drain(WITHIN, EVERY);
    server.interrupt();
    assert!(first.join("raw").is_dir());

    let report = cli(
        &second,
        &["replay", "--raw", first.join("raw").to_str().unwrap()],
    );
    assert_eq!(report["accepted"], accepted as u64, "{report}");
    assert_eq!(report["skipped_lines"], 0, "{report}");
    assert_eq!(report["rejected"], REJECTED as u64, "{report}");
    let mut again = serve(&second);
    Client::new(&again.base).drain(WITHIN, EVERY);
    again.interrupt();

    for kind in Kind::ALL {
        let (a, b) = (rows(&first, kind), rows(&second, kind));
        assert!(a.height() > 0);
        let differ: Vec<String> = a
            .get_column_names()
            .iter()
            .filter(|n| !a.column(n).unwrap().equals_missing(b.column(n).unwrap()))
            .map(|n| n.to_string())
            .collect();
        assert!(
            differ.is_empty(),
            "{kind}: columns {differ:?} differ:\n{a}\n{b}"
        );
    }
    let events = rows(&first, Kind::Event);
    // 20 batches of 50, 1 rejected in each, plus the pretty one and the SDKs' events:
    // duplicates never stored.
    assert_eq!(events.height(), 20 * 49 + 1 + SDK_EVENTS);
    let app_id = app["app_id"].as_str().unwrap();
    let bad = bad_rows(&first, app_id).await;
    assert_eq!(bad.len(), REJECTED, "rejected items, the resends' included");
    assert_eq!(bad, bad_rows(&second, app_id).await);
}
