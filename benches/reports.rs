//! Each report on a 1M-event lake (the demo's simulated traffic, one compacted file per hour),
//! against DuckDB SQL answering the same question on the same files; both on one thread, in the
//! same run. Prints milliseconds (medians) and the ratios ours/DuckDB (target ≤ 1.0).
//!
//! Run with `cargo bench --workspace` (or `cargo bench --bench reports`). Settings:
//! `CAUCE_BENCH_EVENTS` (default 1,000,000), `CAUCE_BENCH_RUNS` (5), `CAUCE_BENCH_LAKE` (a folder
//! to build the lake in once and reuse in later runs), `CAUCE_BENCH_ONLY` (report names). DuckDB
//! runs in the Python of `CAUCE_PYTHON` (the test command's virtualenv).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use cauce_analytics::{report, LakeSource, Scope, Settings, ALL};
use cauce_exporter::compact::{compact, CompactConfig};
use cauce_exporter::writer::LakeWriter;
use cauce_store::lake::local::LocalLake;
use cauce_store::{Change, Kind, Op, Record, Stamp};

#[allow(dead_code)]
#[path = "../src/cli/demo/simulate.rs"]
mod simulate;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The demo's traffic as changes, each received two seconds after its client time, so that the
/// lake's hours are the event hours; invalid items are left out.
fn changes(events: u64) -> Vec<Change> {
    let plan = simulate::Plan {
        apps: 8,
        events,
        days: 28,
        seed: 42,
        now_ms: 1_795_773_600_000,
    };
    let mut out = Vec::new();
    for app in 0..plan.apps {
        let mut emit = |batch: simulate::Batch| {
            let body: serde_json::Value = serde_json::from_str(&batch.body).unwrap();
            for item in body["batch"].as_array().unwrap() {
                let Ok(mut r) = Record::from_json(batch.kind, &item.to_string()) else {
                    continue;
                };
                let client = match &r {
                    Record::Event(e) => e.timestamp,
                    Record::Story(s) => s.updated_at,
                    Record::Exposure(t) => t.updated_at,
                };
                r.stamp(&Stamp {
                    app_id: format!("app_{app}"),
                    received_at: client + 2_000,
                    skew_ms: 0,
                });
                r.set_ingest_seq(format!("{:020}{:05}", out.len() / 100, out.len() % 100));
                out.push(Change {
                    kind: batch.kind,
                    op: if batch.kind == Kind::Event {
                        Op::Insert
                    } else {
                        Op::Modify
                    },
                    shard: "bench".into(),
                    sequence: format!("{:012}", out.len()),
                    ttl_expired: false,
                    new_image: Some(r),
                    old_image: None,
                });
            }
        };
        simulate::AppSim::run(&plan, app, &mut emit);
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // One thread for Polars, set before its pool starts; DuckDB is set to one thread too.
    std::env::set_var("POLARS_MAX_THREADS", "1");
    let events = setting("CAUCE_BENCH_EVENTS", 1_000_000);
    let runs = setting("CAUCE_BENCH_RUNS", 5) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let root =
        std::env::var("CAUCE_BENCH_LAKE").map_or_else(|_| temp.path().to_owned(), Into::into);
    let lake = LocalLake::new(&root);
    let start = Instant::now();
    let reuse = root.join("events").exists();
    let changes = if reuse { Vec::new() } else { changes(events) };
    let rows = changes.len();
    rt.block_on(async {
        if reuse {
            return;
        }
        let mut w = LakeWriter::new(64 << 20);
        for c in changes {
            w.write(c, 600);
            if w.should_flush() {
                w.flush(&lake).await.unwrap();
            }
        }
        w.flush(&lake).await.unwrap();
        let config = CompactConfig {
            include_open: true,
            ..CompactConfig::default()
        };
        compact(&lake, &config, &|_, _| {}).await.unwrap();
    });
    let files = walk(&root);
    println!(
        "reports: {events} events ({rows} rows of every kind{}) in {files} compacted files (one per kind and hour); built in {:.0} s; one thread each; medians of {runs}",
        if reuse { ", reused" } else { "" },
        start.elapsed().as_secs_f64()
    );
    let only = std::env::var("CAUCE_BENCH_ONLY").unwrap_or_default();
    let names: Vec<&str> = ALL
        .into_iter()
        .filter(|n| only.is_empty() || only.split(',').any(|o| o == *n))
        .collect();

    let source = LakeSource::folder(&root);
    let (scope, settings) = (Scope::default(), Settings::default());
    let python = std::env::var("CAUCE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/reports_duckdb.py");
    let mut duckdb = Command::new(&python)
        .args([script, root.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the Python of CAUCE_PYTHON runs (./test.sh makes .venv)");
    let mut to_duckdb = duckdb.stdin.take().unwrap();
    let mut from_duckdb = BufReader::new(duckdb.stdout.take().unwrap()).lines();
    let mut duckdb_once = |name: &str| -> f64 {
        writeln!(to_duckdb, "{name}").unwrap();
        from_duckdb
            .next()
            .expect("DuckDB answers")
            .unwrap()
            .parse()
            .unwrap()
    };
    // Runs alternate, ours then DuckDB's, so that both see the same moments of the machine.
    println!(
        "  {:<12} {:>10} {:>10} {:>8}",
        "report", "ours ms", "DuckDB ms", "ratio"
    );
    for name in names {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            report::one(name, &source, &scope, &settings).unwrap();
            ours.push(t.elapsed().as_secs_f64() * 1000.0);
            theirs.push(duckdb_once(name));
        }
        let (ms, d) = (median(ours), median(theirs));
        let verdict = if ms <= d { "" } else { "  (above 1.0)" };
        println!("  {name:<12} {ms:>10.1} {d:>10.1} {:>8.2}{verdict}", ms / d);
    }
    drop(to_duckdb);
    duckdb.wait().unwrap();
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                usize::from(e.path().extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}
