//! The analyst notebooks (`notebooks/`), run top to bottom with nbclient on a lake that
//! `cauce demo --events 50000` makes, with the feature tables of two as-of days: any error, or
//! any assertion of a notebook (the two ways of counting agree, the report agrees, the churn
//! model's AUC), fails the test.

mod support;

use std::path::Path;

use chrono::{Days, Utc};
use support::{cli, cli_text, python};

#[test]
fn every_notebook_runs_on_a_demo_lake() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    cli_text(&data, &["demo", "--events", "50000", "--seed", "3"]);
    let today = Utc::now().date_naive();
    let day = |back: u64| today.checked_sub_days(Days::new(back)).unwrap().to_string();
    let (train, test) = (day(14), day(7));
    for as_of in [&train, &test] {
        let written = cli(&data, &["features", "--as-of", as_of]);
        assert!(written["rows"].as_u64().unwrap() > 100, "{written}");
        assert_eq!(written["labels_complete"], true, "{written}");
    }
    let lake = data.join("lake");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let notebooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks");
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(&notebooks).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ipynb") {
            continue;
        }
        let params = [
            format!("LAKE={}", lake.display()),
            format!("TRAIN_DAY={train}"),
            format!("TEST_DAY={test}"),
            format!("OUT={}", work.join("churn-model").display()),
            format!("CAUCE={}", support::bin()),
        ];
        let mut args = vec![path.to_str().unwrap(), work.to_str().unwrap()];
        args.extend(params.iter().map(String::as_str));
        let run = python("run_notebook.py", &args);
        assert!(
            run["outputs"].as_u64().unwrap() > 0,
            "{}: {run}",
            path.display()
        );
        ran.push(path.file_stem().unwrap().to_string_lossy().into_owned());
    }
    ran.sort();
    assert_eq!(ran, ["churn_model", "experiment", "explore", "warehouse"]);
    // The churn notebook wrote its model and metrics.
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("churn-model/metrics.json")).unwrap(),
    )
    .unwrap();
    assert!(metrics["auc"].as_f64().unwrap() > 0.75, "{metrics}");
    assert!(work.join("churn-model/model.pkl").exists());
}
