//! `GET /metrics` of `cauce serve`: the Prometheus text counts what the pipeline did (items
//! accepted, rejected by code, stored, deduplicated; requests by route and status; files and
//! rows in the lake; the queue's and exporter's levels), and `--metrics` guards it.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{create_app, now, serve, serve_with, Client};

/// A page's samples: (name, sorted labels) → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Parses Prometheus' text format (the subset the exporter writes).
fn parse(page: &str) -> Samples {
    let mut samples = Samples::new();
    for line in page
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label=\"value\"");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        samples.insert((name.to_owned(), labels), value);
    }
    samples
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples.get(&(name.to_owned(), labels)).copied()
}

fn event(id: &str) -> Value {
    json!({ "event_id": id, "name": "open", "timestamp": now(), "user_id": "u1" })
}

#[test]
fn the_prometheus_page_counts_what_the_pipeline_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app_id, key) = create_app(&data, "shop", "developer");
    let (app_id, key) = (app_id.as_str(), key.as_str());
    let server = serve(&data);
    let c = Client::new(&server.base);
    let bad = json!({ "event_id": "e3", "timestamp": now() });
    let (status, first) = c.post("/v1/events", key, &[event("e1"), event("e2"), bad]);
    assert_eq!(status, 207, "{first}");
    let code = first["rejected"][0]["error"].as_str().unwrap();
    // A resend of the two good ones: accepted again, stored once.
    assert_eq!(
        c.post("/v1/events", key, &[event("e1"), event("e2")]).0,
        202
    );
    c.drain(Duration::from_secs(60), Duration::from_millis(50));

    let (status, page) = c.get_text("/metrics", None);
    assert_eq!(status, 200);
    for name in [
        "cauce_items_accepted_total",
        "cauce_request_duration_seconds",
    ] {
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "no help for {name}:\n{page}"
        );
    }
    assert!(
        page.contains("# TYPE cauce_items_accepted_total counter"),
        "{page}"
    );
    let s = parse(&page);
    let mine = [("kind", "events"), ("app", app_id)];
    assert_eq!(
        sample(&s, "cauce_items_accepted_total", &mine),
        Some(4.0),
        "{page}"
    );
    let rejected = [("kind", "events"), ("code", code), ("app", app_id)];
    assert_eq!(
        sample(&s, "cauce_items_rejected_total", &rejected),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&s, "cauce_items_stored_total", &mine),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        sample(&s, "cauce_items_deduplicated_total", &mine),
        Some(2.0),
        "{page}"
    );
    let requests = |status| {
        let labels = [("route", "/v1/events"), ("status", status)];
        sample(&s, "cauce_request_duration_seconds_count", &labels)
    };
    assert_eq!(
        (requests("207"), requests("202")),
        (Some(1.0), Some(1.0)),
        "{page}"
    );
    let events = [("kind", "events")];
    assert_eq!(
        sample(&s, "cauce_export_rows_total", &events),
        Some(2.0),
        "{page}"
    );
    assert!(sample(&s, "cauce_export_files_total", &events).unwrap() >= 1.0);
    assert!(sample(&s, "cauce_export_bytes_total", &events).unwrap() > 0.0);
    for level in [
        "cauce_queue_depth",
        "cauce_queue_oldest_age_seconds",
        "cauce_export_lag_records",
        "cauce_export_lag_seconds",
        "cauce_dead_letters",
    ] {
        assert_eq!(
            sample(&s, level, &[]),
            Some(0.0),
            "{level} after the drain:\n{page}"
        );
    }
}

#[test]
fn metrics_admin_needs_an_admin_key_and_off_has_no_route() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = |role: &str| create_app(&data, role, role).1;
    let (admin, developer) = (key("admin"), key("developer"));
    let server = serve_with(&data, &["--metrics", "admin"]);
    let c = Client::new(&server.base);
    assert_eq!(c.get_text("/metrics", None).0, 401);
    assert_eq!(c.get_text("/metrics", Some(&developer)).0, 403);
    let (status, page) = c.get_text("/metrics", Some(&admin));
    assert_eq!(status, 200);
    assert!(page.contains("cauce_queue_depth 0"), "{page}");
    drop(server);

    let server = serve_with(&data, &["--metrics", "off"]);
    let (status, body) = Client::new(&server.base).get("/metrics", None);
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
}

/// The README's metric table names every metric the code records, with its unit and labels.
#[test]
fn the_readme_documents_every_metric() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for m in cauce_store::metrics::CATALOG {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", m.name)))
            .unwrap_or_else(|| panic!("{} is not in the README's metric table", m.name));
        for label in m.labels {
            assert!(
                row.contains(&format!("`{label}`")),
                "{}: label {label} missing: {row}",
                m.name
            );
        }
    }
}
