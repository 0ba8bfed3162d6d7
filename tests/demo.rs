//! `cauce demo` at small scale through the real binary: it must send everything, lose nothing,
//! find the injected spike and the experiment's effect, and write a dashboard that renders in
//! headless Chromium. Then `cauce report`'s outputs and errors, and a cross-check of every
//! report against DuckDB SQL written independently in Python, on a lake of more than 100k rows.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;

use support::{chart_titles, python, BIN};

fn cauce(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CAUCE_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn demo(data: &Path, events: &str, seed: &str) -> (Value, String) {
    let stdout = ok(cauce(&[
        "demo",
        "--events",
        events,
        "--seed",
        seed,
        "--data",
        data.to_str().unwrap(),
    ]));
    let summary = std::fs::read_to_string(data.join("summary.json")).unwrap();
    (serde_json::from_str(&summary).unwrap(), stdout)
}

#[test]
fn the_demo_finds_the_spike_and_the_experiment_and_its_dashboard_renders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let (s, stdout) = demo(&data, "20000", "7");
    let t = &s["traffic"];
    let n = |v: &Value| v.as_u64().unwrap();

    // Everything sent was accepted or rejected with a reason; only the invalid items were rejected.
    assert!(n(&t["fresh_events"]) >= 20_000);
    assert_eq!(n(&t["accepted"]) + n(&t["rejected"]), n(&t["sent"]));
    assert_eq!(n(&t["rejected"]), n(&t["invalid"]));
    assert!(n(&t["resent"]) > 0 && n(&t["invalid"]) > 0);
    // Each valid event is in the lake exactly once: resends were absorbed.
    assert_eq!(n(&s["lake"]["events"]), n(&t["fresh_events"]));
    assert!(n(&s["lake"]["files"]) >= 3);
    // End to end can be no faster than accepting: it runs from the first request to the lake.
    let e2e = &s["end_to_end"];
    let ratio = e2e["of_accept_rate"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{e2e}");
    assert!(e2e["items_per_s"].as_f64().unwrap() > 0.0, "{e2e}");
    assert!(stdout.contains("end to end"), "{stdout}");

    // The injected spike is the spike app's strongest anomaly, at the injected hour.
    let spike = &s["findings"]["spike"];
    assert_eq!(spike["app_id"], s["injected"]["spike_app"], "{spike}");
    assert_eq!(spike["hour"], s["injected"]["spike_hour"], "{spike}");
    assert_eq!(spike["kind"], "spike");
    // The experiment's real +15% effect is reported, and significant.
    let e = &s["findings"]["experiment"];
    let lift = e["lift"].as_f64().unwrap();
    assert!((0.05..0.30).contains(&lift), "lift {lift}");
    assert!(e["p_value"].as_f64().unwrap() < 0.01, "{e}");
    assert!(e["ci95_low"].as_f64().unwrap() > 0.0, "{e}");
    assert!(s["findings"]["top_path"]["path"]
        .as_str()
        .unwrap()
        .contains(" > "));

    // The summary names the findings and ends with the dashboard.
    assert!(
        stdout.contains("spike") && stdout.contains("experiment") && stdout.contains("top path")
    );
    let last = stdout.trim_end().lines().last().unwrap();
    let dashboard = s["dashboard"].as_str().unwrap();
    assert!(last.contains(dashboard), "{last}");
    assert!(Path::new(dashboard).exists());

    // The spike app's page opens in Chromium without errors, and its charts rendered.
    let app = s["injected"]["spike_app"].as_str().unwrap();
    let page = Path::new(dashboard).with_file_name(format!("{app}.html"));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let checked = python(
        "dashboard_check.py",
        &[page.to_str().unwrap(), shot.to_str().unwrap()],
    );
    let titles = chart_titles(&checked);
    assert!(
        titles.iter().any(|t| t.starts_with("Events per hour")),
        "{titles:?}"
    );
    assert!(titles.iter().any(|t| t.starts_with("Funnel")), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.starts_with("Weekly retention")),
        "{titles:?}"
    );
    let ab_page = Path::new(dashboard).with_file_name(format!(
        "{}.html",
        s["injected"]["experiment_app"].as_str().unwrap()
    ));
    let checked = python(
        "dashboard_check.py",
        &[ab_page.to_str().unwrap(), shot.to_str().unwrap()],
    );
    assert!(chart_titles(&checked)
        .iter()
        .any(|t| t == "Experiment: one_tap_checkout"));

    // `cauce report` on the same data: one JSON object keyed by report name, --only, formats.
    let d = data.to_str().unwrap();
    let all: Value = serde_json::from_str(&ok(cauce(&["report", "--data", d]))).unwrap();
    let keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    let some: Value = serde_json::from_str(&ok(cauce(&[
        "report",
        "--data",
        d,
        "--only",
        "volume,paths",
        "--app",
        app,
    ])))
    .unwrap();
    assert_eq!(some.as_object().unwrap().len(), 2);
    assert!(some["paths"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["app_id"] == app));
    let md = ok(cauce(&[
        "report", "--data", d, "--format", "md", "--only", "stories",
    ]));
    assert!(
        md.contains("## stories") && md.contains("| story |"),
        "{md}"
    );
    let out = dir.path().join("pages");
    ok(cauce(&[
        "report",
        "--data",
        d,
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(out.join("index.html").exists() && out.join(format!("{app}.html")).exists());

    // The same lake in S3 (moto): `--lake s3://…` gives the same reports, in a build with AWS;
    // without it, a clear error says how to get one.
    #[cfg(feature = "aws")]
    if let Some(from_s3) = reports_from_s3(&data.join("lake")) {
        assert_eq!(from_s3, all, "the reports of the S3 copy of the lake");
    }
    #[cfg(not(feature = "aws"))]
    {
        let bad = cauce(&["report", "--lake", "s3://bucket/lake"]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            !bad.status.success() && err.contains("--features aws"),
            "{err}"
        );
    }

    // Bad requests: a clear error naming the problem.
    let bad = cauce(&["report", "--data", d, "--only", "volume,nope"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("nope") && err.contains("funnels"),
        "{err}"
    );
    let bad = cauce(&[
        "report",
        "--data",
        d,
        "--from",
        "2026-12-01",
        "--to",
        "2026-11-01",
    ]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("after"));
    let bad = cauce(&["demo", "--data", d, "--days", "45"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--days"));
}

/// Copies a folder lake's Parquet into a moto bucket and runs `cauce report --lake s3://…`;
/// `None` when no emulator runs.
#[cfg(feature = "aws")]
fn reports_from_s3(lake_dir: &Path) -> Option<Value> {
    use cauce_store::lake::local::LocalLake;
    use cauce_store::lake::s3::S3Lake;
    use cauce_store::lake::Lake;
    if !cauce_store::aws::emulator("reports_from_s3") {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bucket = format!("demo-{}", std::process::id());
    rt.block_on(async {
        let aws = cauce_store::aws::sdk_config().await;
        let lake = S3Lake::new(cauce_store::lake::s3::client(&aws), &bucket, "lake");
        lake.create_bucket().await.unwrap();
        let folder = LocalLake::new(lake_dir);
        for object in folder.list("").await.unwrap() {
            if object.key.ends_with(".parquet") {
                let bytes = folder.get(&object.key).await.unwrap();
                lake.put(&object.key, bytes).await.unwrap();
            }
        }
    });
    let url = format!("s3://{bucket}/lake");
    Some(serde_json::from_str(&ok(cauce(&["report", "--lake", &url]))).unwrap())
}

#[test]
fn every_report_equals_duckdb_sql_on_a_lake_of_over_100k_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    demo(&data, "70000", "11");
    let d = data.to_str().unwrap();
    let reports = dir.path().join("reports.json");
    std::fs::write(
        &reports,
        ok(cauce(&["report", "--data", d, "--format", "json"])),
    )
    .unwrap();
    let lake = data.join("lake");
    let checked = python(
        "crosscheck_duckdb.py",
        &[lake.to_str().unwrap(), reports.to_str().unwrap()],
    );
    assert!(
        checked["lake_rows"].as_u64().unwrap() >= 100_000,
        "{checked}"
    );
    for (table, rows) in checked["rows_checked"].as_object().unwrap() {
        assert!(
            rows.as_u64().unwrap() > 0,
            "{table} has no rows to compare: {checked}"
        );
    }
}
