//! How far the lake is complete: `cauce serve` writes the watermark as it exports (every record
//! received before it is in the lake), every report says it, and `cauce report --to DAY` refuses,
//! with a message that says why, a day the lake does not hold whole yet, unless told otherwise.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use serde_json::{json, Value};
use support::{create_app, now, serve_with, Client};

fn watermark(lake: &std::path::Path) -> Option<Value> {
    let text = std::fs::read_to_string(lake.join("state/watermark.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn report(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(support::bin())
        .args(["report", "--format", "json", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reports_say_how_far_the_lake_is_complete_and_refuse_a_day_it_does_not_hold_yet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A lake without a watermark: its completeness is unknown, so a day cannot be checked.
    std::fs::create_dir_all(data.join("lake")).unwrap();
    let yesterday = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap()
        .to_string();
    let (ok, _, err) = report(data, &["--to", &yesterday]);
    assert!(!ok && err.contains("no watermark"), "{err}");
    let (ok, out, err) = report(data, &["--to", &yesterday, "--allow-incomplete"]);
    assert!(ok, "{out}");
    assert!(err.contains("completeness is unknown"), "{err}");

    let (_, key) = create_app(data, "shop", "developer");
    let server = serve_with(data, &["--report-every", "1"]);
    let client = Client::new(&server.base);
    let sent_at = now();
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"event_id": format!("e{i}"), "name": "open", "timestamp": sent_at, "user_id": "u1"}))
        .collect();
    assert_eq!(client.post("/v1/events", &key, &items).0, 202);
    client.drain(Duration::from_secs(30), Duration::from_millis(100));

    // Within a few seconds the watermark passes the request: every event is in the lake then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mark = loop {
        if let Some(w) = watermark(&data.join("lake")) {
            if w["complete_before_ms"].as_i64().unwrap() > sent_at {
                break w;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the watermark did not pass the request"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(mark["complete_before_ms"].as_i64().unwrap() <= now());

    // The published reports say it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, volume) = client.get("/v1/reports/volume", Some(&key));
        if status == 200 && volume["complete_before"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no report says how complete the lake is: {volume}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The report job also wrote the feature table for ML, as of a week ago.
    let week_ago = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(7))
        .unwrap();
    let features = data.join(format!("lake/features/user/dt={week_ago}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !features.join("feature_definitions.json").exists() {
        assert!(
            Instant::now() < deadline,
            "no feature table in {}",
            features.display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(features.join("features.parquet").exists());
    drop(server);

    // Yesterday is whole; today is not over, so it cannot be whole yet.
    let (ok, _, err) = report(data, &["--to", &yesterday]);
    assert!(ok, "{err}");
    assert!(err.contains("; the lake is complete before 20"), "{err}");
    let today = Utc::now().date_naive().to_string();
    let (ok, _, err) = report(data, &["--to", &today]);
    assert!(!ok, "a day not over was reported as whole");
    assert!(
        err.contains("the lake is complete only before") && err.contains("--allow-incomplete"),
        "{err}"
    );
    let (ok, out, err) = report(data, &["--to", &today, "--allow-incomplete"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["volume"]["daily"][0]["events"],
        20
    );
}
