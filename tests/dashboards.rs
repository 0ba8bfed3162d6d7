//! The pages for people in `cauce serve`: `/dashboard` (the app's dashboard, as the report job
//! publishes it) and `/dashboard/ops` (the operations page, admin keys), behind the API's keys,
//! which a browser sends as HTTP Basic credentials after the server's challenge. Each is opened
//! in headless Chromium and must render.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{basic, chart_titles, create_app, now, python_with, serve_with, Client};

/// `n` events over the last four weeks, by users first seen in each of them (so that retention
/// has cohorts to draw), half of whom come back the week after.
fn events(prefix: &str, n: usize) -> Vec<Value> {
    const WEEK_MS: i64 = 7 * 86_400_000;
    (0..n)
        .map(|i| {
            let name = ["open", "view", "buy"][i % 3];
            let weeks_ago = (i % 4) as i64;
            let user = format!("u{}", i % 4 + 4 * (i / 4 % 3));
            let back = i % 8 >= 4 && weeks_ago > 0;
            let at = now() - (weeks_ago - i64::from(back)) * WEEK_MS - 60_000;
            json!({ "event_id": format!("{prefix}{i}"), "name": name, "timestamp": at, "user_id": user })
        })
        .collect()
}

#[test]
fn dashboards_open_in_a_browser_behind_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (shop, dev_key) = create_app(&data, "shop", "developer");
    let (cafe, cafe_key) = create_app(&data, "cafe", "developer");
    let (_, ingest_key) = create_app(&data, "sender", "ingest");
    let (_, admin_key) = create_app(&data, "ops", "admin");
    let server = serve_with(&data, &["--report-every", "1"]);
    let c = Client::new(&server.base);
    assert_eq!(c.post("/v1/events", &dev_key, &events("s", 60)).0, 202);
    assert_eq!(c.post("/v1/events", &cafe_key, &events("c", 30)).0, 202);
    c.drain(Duration::from_secs(60), Duration::from_millis(50));

    // The report job publishes each app's dashboard at its next run.
    let started = Instant::now();
    let page = loop {
        let (status, _, body) = c.get_raw("/dashboard", &[("authorization", &basic(&dev_key))]);
        if status == 200 {
            break body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("dashboard_not_found"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no dashboard after a minute"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        page.contains(&shop) && !page.contains(&cafe),
        "the caller's app only"
    );

    // No key: a challenge that makes a browser ask; the wrong role: 403; an admin names any app.
    let (status, headers, body) = c.get_raw("/dashboard", &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"cauce\", charset=\"UTF-8\""
    );
    let (status, _, body) = c.get_raw("/dashboard", &[("x-api-key", &ingest_key)]);
    assert_eq!(status, 403, "{body}");
    let (status, headers, body) = c.get_raw(
        &format!("/dashboard?app={cafe}"),
        &[("x-api-key", &admin_key)],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&cafe) && !body.contains(&shop));
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    // A developer naming another app still sees their own.
    let (_, _, body) = c.get_raw(
        &format!("/dashboard?app={cafe}"),
        &[("x-api-key", &dev_key)],
    );
    assert!(body.contains(&shop) && !body.contains(&cafe));

    // The operations page: admins only, and it says what the pipeline did.
    let (status, _, _) = c.get_raw("/dashboard/ops", &[("x-api-key", &dev_key)]);
    assert_eq!(status, 403);
    let (status, _, ops) = c.get_raw("/dashboard/ops", &[("authorization", &basic(&admin_key))]);
    assert_eq!(status, 200, "{ops}");
    assert!(ops.contains("all clear"), "{ops}");
    assert!(
        ops.contains("<td>events</td><td>90</td>"),
        "90 events accepted: {ops}"
    );

    // Both render in Chromium, signed in through the browser's own Basic prompt.
    for (path, key, first_chart) in [
        ("/dashboard", &dev_key, "Events per hour"),
        ("/dashboard/ops", &admin_key, "Items per second"),
    ] {
        let shot = dir.path().join("page.png");
        let url = format!("{}{path}", server.base);
        let checked = python_with(
            "dashboard_check.py",
            &[&url, shot.to_str().unwrap()],
            &[("CAUCE_DASHBOARD_KEY", key)],
        );
        let titles = chart_titles(&checked);
        assert!(
            titles.iter().any(|t| t.starts_with(first_chart)),
            "{path}: {titles:?}"
        );
    }
}

#[test]
fn without_metrics_there_is_no_operations_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, admin_key) = create_app(&data, "ops", "admin");
    let server = serve_with(&data, &["--metrics", "off"]);
    let c = Client::new(&server.base);
    let (status, _, body) = c.get_raw("/dashboard/ops", &[("x-api-key", &admin_key)]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("--metrics off"), "{body}");
}
