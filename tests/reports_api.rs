//! `cauce serve` runs the reports on an interval and serves each app its own through
//! `GET /v1/reports` and `GET /v1/reports/{name}`: never another app's.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;

use support::{cli, now, serve_with, Client};

fn app(data: &std::path::Path, name: &str, role: &str) -> (String, String) {
    let a = cli(
        data,
        &[
            "apps",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--rate-limit",
            "100000",
        ],
    );
    (
        a["app_id"].as_str().unwrap().to_owned(),
        a["api_key"].as_str().unwrap().to_owned(),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn each_app_reads_its_own_published_reports_and_nobody_elses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (a_id, a_key) = app(data, "shop", "developer");
    let (b_id, b_key) = app(data, "news", "developer");
    let (_, ingest_key) = app(data, "sensor", "ingest");
    let server = serve_with(data, &["--report-every", "1"]);
    let c = Client::new(&server.base);

    // Before the first run: no reports yet.
    let (status, listed) = c.get("/v1/reports", Some(&a_key));
    assert_eq!((status, &listed["reports"]), (200, &json!([])));

    let t = now() - 3_600_000;
    let events = |prefix: &str, n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"event_id": format!("{prefix}{i}"), "name": "open", "timestamp": t + i as i64,
                "user_id": format!("u{}", i % 4), "session_id": format!("s{}", i % 2)}))
            .collect()
    };
    assert_eq!(c.post("/v1/events", &a_key, &events("a", 30)).0, 202);
    assert_eq!(c.post("/v1/events", &b_key, &events("b", 12)).0, 202);
    wait_for("the lake", || c.get("/healthz", None).1["pending"] == 0);
    // The job publishes every second; wait for a run that saw both apps' events.
    let volume = |key: &str| c.get("/v1/reports/volume", Some(key));
    let daily_events = |v: &Value| -> i64 {
        v["data"]["daily"]
            .as_array()
            .map_or(0, |d| d.iter().map(|r| r["events"].as_i64().unwrap()).sum())
    };
    wait_for("reports with every event", || {
        let (a, b) = (volume(&a_key), volume(&b_key));
        a.0 == 200 && b.0 == 200 && daily_events(&a.1) == 30 && daily_events(&b.1) == 12
    });

    let (status, listed) = c.get("/v1/reports", Some(&a_key));
    assert_eq!(status, 200);
    assert_eq!(listed["app_id"], a_id.as_str());
    let mut every = cauce_analytics::ALL.to_vec();
    every.sort_unstable();
    assert_eq!(listed["reports"], json!(every), "every report, by name");
    for (key, id, users) in [(&a_key, &a_id, 4), (&b_key, &b_id, 4)] {
        let (status, report) = volume(key);
        assert_eq!(status, 200);
        assert_eq!(report["app_id"], id.as_str());
        for table in ["daily", "top_events", "active_users"] {
            for row in report["data"][table].as_array().unwrap() {
                assert_eq!(
                    row["app_id"],
                    id.as_str(),
                    "{table}: only the caller's rows"
                );
            }
        }
        assert_eq!(report["data"]["active_users"][0]["dau"], users);
    }
    let (status, paths) = c.get("/v1/reports/paths", Some(&b_key));
    assert_eq!(status, 200);
    assert!(paths["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["app_id"] == b_id.as_str()));

    // Bad requests get a clear error that names the problem.
    let (status, body) = c.get("/v1/reports/nonsense", Some(&a_key));
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("report_not_found"))
    );
    assert!(body["message"].as_str().unwrap().contains("nonsense"));
    let (status, body) = c.get("/v1/reports/volume", None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = c.get("/v1/reports", Some(&ingest_key));
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
}
