//! Fuzzing the API from its own OpenAPI document: schemathesis (from the test command's
//! virtualenv) reads `/openapi.json` from a running `cauce serve`, generates requests for every
//! operation (examples, then the schema's boundaries and negative cases, then random ones) and
//! checks every answer: no server error, a status the document lists for the operation, its
//! content type and its body schema. Afterwards, everything the fuzz got accepted reached the
//! store: nothing pending, nothing dead-lettered.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{create_app, serve_with, Client};

/// Examples per operation and phase: enough to reach every documented answer, bounded for CI.
const EXAMPLES: &str = "25";

#[test]
fn every_answer_to_generated_requests_is_one_the_document_describes() {
    let python = std::env::var("CAUCE_PYTHON").expect("CAUCE_PYTHON: run ./test.sh");
    let st = std::path::Path::new(&python).with_file_name("schemathesis");
    assert!(
        st.exists(),
        "{}: ./test.sh installs schemathesis",
        st.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let (_, key) = create_app(dir.path(), "fuzz", "admin");
    let server = serve_with(dir.path(), &["--metrics", "admin"]);
    // The routes that change the fuzz's own credentials (it finds its app's id in answers and
    // disables it, or rotates its key) run last, in a pass of their own.
    let own_credentials = "/(disable|rotate-key)$";
    let mut selected = 0;
    for filter in ["--exclude-path-regex", "--include-path-regex"] {
        let report = fuzz(&st, &server.base, &key, &[filter, own_credentials]);
        selected += operations_selected(&report);
    }
    // Between them, the two passes ran every operation of the document but the one that
    // serves the document itself, which schemathesis leaves out.
    let doc: serde_json::Value = serde_json::from_str(cauce_ingest::api::document_json()).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(selected, operations - 1);

    // Whatever it got accepted is stored: the pipeline drains, and nothing is dead-lettered.
    let client = Client::new(&server.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let (status, health) = client.get("/healthz", None);
        assert_eq!(status, 200, "{health}");
        if health["pending"] == 0 || Instant::now() > deadline {
            break health;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(health["pending"], 0, "{health}");
    assert_eq!(health["dead_letters"], 0, "{health}");
}

/// Runs schemathesis against the server at `base` with `key`; panics with its report when it
/// finds a failure, else returns the report.
fn fuzz(st: &std::path::Path, base: &str, key: &str, filter: &[&str]) -> String {
    // schemathesis and Hypothesis keep caches in the working folder: not the repository's.
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(st)
        .current_dir(work.path())
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            EXAMPLES,
            "--workers",
            "2",
            "--seed",
            "20261201",
            "--no-color",
            "--header",
        ])
        .arg(format!("x-api-key: {key}"))
        .args(filter)
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );
    report
}

/// The number of operations a report says it selected ("Operations: 27 selected / 30 total").
fn operations_selected(report: &str) -> usize {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Operations:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no operation count in the report:\n{report}"))
}
