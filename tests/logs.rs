//! `cauce serve --log-format json`: every log line is a JSON object, and each HTTP request
//! has one access line with its route pattern, status, app, items and latency, and never the
//! key or a path's user id.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::{create_app, now, serve_logging, Client};

#[test]
fn json_logs_have_one_access_line_per_request_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app_id, key) = create_app(&data, "shop", "developer");
    let (app_id, key) = (app_id.as_str(), key.as_str());
    let log = dir.path().join("stderr.log");
    let server = serve_logging(
        &data,
        &["--log-format", "json"],
        "info",
        std::fs::File::create(&log).unwrap().into(),
    );
    let c = Client::new(&server.base);
    let items = [
        json!({ "event_id": "e1", "name": "open", "timestamp": now(), "user_id": "u1" }),
        json!({ "event_id": "e2", "name": "buy", "timestamp": now(), "user_id": "u1" }),
        json!({ "event_id": "e3", "timestamp": now() }),
    ];
    assert_eq!(c.post("/v1/events", key, &items).0, 207);
    assert_eq!(c.get("/v1/users/u1/timeline", Some(key)).0, 200);
    assert_eq!(c.get("/no/such/route", None).0, 404);
    assert_eq!(c.post("/v1/events", "not-a-key", &items).0, 401);
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(key), "a key in the log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "cauce::access")
        .collect();
    let seen: Vec<(String, u64, String)> = access
        .iter()
        .map(|l| {
            (
                format!(
                    "{} {}",
                    l["method"].as_str().unwrap(),
                    l["route"].as_str().unwrap()
                ),
                l["status"].as_u64().unwrap(),
                l["app_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("POST /v1/events".to_owned(), 207, app_id.to_owned()),
        (
            "GET /v1/users/{user_id}/timeline".to_owned(),
            200,
            app_id.to_owned(),
        ),
        ("GET -".to_owned(), 404, "-".to_owned()),
        ("POST /v1/events".to_owned(), 401, "-".to_owned()),
    ];
    assert_eq!(seen, want, "{text}");
    assert_eq!(access[0]["accepted"], 2);
    assert_eq!(access[0]["rejected"], 1);
    assert!(access[1]["accepted"].is_null(), "not a batch route");
    assert!(access
        .iter()
        .all(|l| l["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0)));
    assert!(
        lines
            .iter()
            .any(|l| l["fields"].is_null() && l["message"] == "Cauce is serving."),
        "every line is flat JSON, the start line too"
    );
}
