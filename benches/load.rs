//! Sustained throughput of `cauce serve` under a closed-loop load generator on loopback:
//! batches of 100 events, many connections, several runs; medians are printed. Each run is
//! made three times, side by side: ingestion alone through `/v1/events`; the same while
//! analysts read user timelines in a loop (the reads have their own SQLite connections; this
//! shows what they cost ingestion); and the same events as the analytics SDKs send them, a
//! gzip batch of the Segment protocol through `/v1/batch` (the ratio to `/v1/events` is
//! printed). Requests go through the typed client (`cauce_ingest::client`).
//!
//! Run with `cargo bench --workspace` (or `cargo bench --bench load`). Settings:
//! `CAUCE_BENCH_SECS` (default 15), `CAUCE_BENCH_CONNS` (32), `CAUCE_BENCH_RUNS` (3),
//! `CAUCE_BENCH_READERS` (timeline readers in the second run of each triple, 4; 0 skips it),
//! `CAUCE_BENCH_SDK` (1; 0 skips the `/v1/batch` runs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use cauce_ingest::client::Body;
use common::{closed_loop, percentile, read_timelines, setting, Route, BATCH};

struct Run {
    accepted_per_s: f64,
    stored_per_s: f64,
    writer_alone_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    lost: i64,
    /// The server's CPU (every thread: API, queue, writer) per event accepted, during the load.
    server_cpu_us: f64,
    reads_per_s: f64,
    read_p99_ms: f64,
}

fn run_once(secs: u64, conns: usize, readers: usize, route: Route) -> Run {
    // The last run's files, written back to the disk now rather than during this run's clock.
    let _ = std::process::Command::new("sync").status();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (server, key, app_id) = common::start(data, "bench");
    let base = server.base.clone();

    let stop = Arc::new(AtomicBool::new(false));
    // Each connection's bodies are made before the clock starts: enough for 100 requests a
    // second each (320,000 events/s on 32), then made as they are sent.
    let made = Arc::new(std::sync::Barrier::new(conns + 1));
    let ready = secs * 100;
    let workers: Vec<_> = (0..conns)
        .map(|t| {
            let (stop, base, key, made) = (stop.clone(), base.clone(), key.clone(), made.clone());
            std::thread::spawn(move || {
                let now = cauce_store::time::now_ms();
                let bodies: Vec<Body> = (0..ready).map(|n| route.body(t, n, now)).collect();
                made.wait();
                closed_loop(&base, &key, t, &stop, route, &bodies)
            })
        })
        .collect();
    made.wait();
    let cpu_before = common::cpu_seconds(server.pid());
    let start = Instant::now();
    // Timelines are read through the load and the writer's drain after it.
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reading: Vec<_> = (0..readers)
        .map(|t| {
            let (stop, base, key) = (stop_reading.clone(), base.clone(), key.clone());
            std::thread::spawn(move || read_timelines(&base, &key, &stop, t + 1, Duration::ZERO))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let (mut accepted, mut errors) = (0, 0);
    for w in workers {
        let (l, a, e) = w.join().unwrap();
        lat.extend(l);
        accepted += a;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = common::cpu_seconds(server.pid()) - cpu_before;
    // Wait for the writer to store everything: `pending` reaches 0.
    let agent: ureq::Agent = ureq::Agent::new_with_defaults();
    let pending = || -> u64 {
        let mut r = agent.get(format!("{base}/healthz")).call().unwrap();
        let h: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        h["pending"].as_u64().unwrap()
    };
    let backlog = pending();
    let drain_start = Instant::now();
    while pending() > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let drained = start.elapsed().as_secs_f64();
    stop_reading.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    for r in reading {
        let (l, e) = r.join().unwrap();
        reads.extend(l);
        assert_eq!(e, 0, "timeline reads failed");
    }
    reads.sort();
    drop(server);
    let stored = common::stored_events(data, &app_id);
    lat.sort();
    let pct = |p: f64| percentile(&lat, p);
    Run {
        accepted_per_s: accepted as f64 / elapsed,
        stored_per_s: stored as f64 / drained,
        writer_alone_per_s: backlog as f64 / drain_secs.max(1e-3),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
        lost: accepted as i64 - stored as i64,
        server_cpu_us: server_cpu * 1e6 / accepted.max(1) as f64,
        reads_per_s: reads.len() as f64 / drained,
        read_p99_ms: percentile(&reads, 0.99),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_run(label: &str, r: &Run) {
    println!(
        "{label}: accepted {:>7.0} events/s, stored {:>7.0} events/s (writer alone {:>7.0}/s), p50 {:>5.1} ms, p99 {:>5.1} ms, server CPU {:.2} us/event, errors {}, lost {}{}",
        r.accepted_per_s,
        r.stored_per_s,
        r.writer_alone_per_s,
        r.p50_ms,
        r.p99_ms,
        r.server_cpu_us,
        r.errors,
        r.lost,
        if r.reads_per_s > 0.0 {
            format!(", timelines {:.0}/s p99 {:.1} ms", r.reads_per_s, r.read_p99_ms)
        } else {
            String::new()
        }
    );
}

fn main() {
    let (secs, conns, runs, readers, sdk) = (
        setting("CAUCE_BENCH_SECS", 15),
        setting("CAUCE_BENCH_CONNS", 32) as usize,
        setting("CAUCE_BENCH_RUNS", 3),
        setting("CAUCE_BENCH_READERS", 4) as usize,
        setting("CAUCE_BENCH_SDK", 1) != 0,
    );
    println!(
        "cauce serve load: {runs} runs of {secs} s, {conns} connections, batches of {BATCH} events; each run also with {readers} timeline readers{}",
        if sdk { ", and through /v1/batch (gzip)" } else { "" }
    );
    let (mut all, mut read, mut sdks, mut twins) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 1..=runs {
        let r = run_once(secs, conns, 0, Route::Events);
        print_run(&format!("run {i}"), &r);
        all.push(r);
        if readers > 0 {
            let r = run_once(secs, conns, readers, Route::Events);
            print_run(&format!("run {i} + timelines"), &r);
            read.push(r);
        }
        if sdk {
            // The pair in turns, first one then the other, so that neither always runs last.
            let mut pair = [Route::EventsOfSdk, Route::SdkBatch];
            if i % 2 == 0 {
                pair.reverse();
            }
            for route in pair {
                let r = run_once(secs, conns, 0, route);
                if route == Route::SdkBatch {
                    print_run(&format!("run {i} /v1/batch gzip"), &r);
                    sdks.push(r);
                } else {
                    print_run(&format!("run {i} /v1/events, the SDK's events"), &r);
                    twins.push(r);
                }
            }
        }
    }
    let acc = median(all.iter().map(|r| r.accepted_per_s).collect());
    let sto = median(all.iter().map(|r| r.stored_per_s).collect());
    let p99 = median(all.iter().map(|r| r.p99_ms).collect());
    let runs_of = [&all, &read, &sdks, &twins];
    println!(
        "median: accepted {acc:.0} events/s ({:.2}x the 150,000 target), stored {sto:.0} events/s, p99 {p99:.1} ms ({:.2}x the 50 ms target), errors {}, lost {}",
        acc / 150_000.0,
        p99 / 50.0,
        runs_of.iter().flat_map(|v| v.iter()).map(|r| r.errors).sum::<u64>(),
        runs_of.iter().flat_map(|v| v.iter()).map(|r| r.lost).sum::<i64>()
    );
    if !read.is_empty() {
        let with = |f: fn(&Run) -> f64| median(read.iter().map(f).collect());
        println!(
            "with timeline reads: {:.0} reads/s (p99 {:.1} ms); ingestion accepted {:.2}x, writer alone {:.2}x, p99 {:.2}x of the runs without",
            with(|r| r.reads_per_s),
            with(|r| r.read_p99_ms),
            with(|r| r.accepted_per_s) / acc,
            with(|r| r.writer_alone_per_s) / median(all.iter().map(|r| r.writer_alone_per_s).collect()),
            with(|r| r.p99_ms) / p99,
        );
    }
    if !sdks.is_empty() {
        let with = |f: fn(&Run) -> f64| median(sdks.iter().map(f).collect());
        println!(
            "/v1/batch gzip (Segment protocol): accepted {:.0} events/s = {:.2}x /v1/events (goal >= 0.9x), stored {:.0} events/s, p99 {:.1} ms = {:.2}x, server CPU {:.2} us/event = {:.2}x",
            with(|r| r.accepted_per_s),
            with(|r| r.accepted_per_s) / acc,
            with(|r| r.stored_per_s),
            with(|r| r.p99_ms),
            with(|r| r.p99_ms) / p99,
            with(|r| r.server_cpu_us),
            with(|r| r.server_cpu_us) / median(all.iter().map(|r| r.server_cpu_us).collect()),
        );
        let twin = |f: fn(&Run) -> f64| median(twins.iter().map(f).collect());
        let pairs: Vec<String> = sdks
            .iter()
            .zip(&twins)
            .map(|(s, t)| format!("{:.2}", s.accepted_per_s / t.accepted_per_s))
            .collect();
        println!(
            "the same events through /v1/events: accepted {:.0} events/s, p99 {:.1} ms, server CPU {:.2} us/event; /v1/batch gzip = {:.2}x its events/s (runs {}), p99 {:.2}x, server CPU {:.2}x",
            twin(|r| r.accepted_per_s),
            twin(|r| r.p99_ms),
            twin(|r| r.server_cpu_us),
            with(|r| r.accepted_per_s) / twin(|r| r.accepted_per_s),
            pairs.join(", "),
            with(|r| r.p99_ms) / twin(|r| r.p99_ms),
            with(|r| r.server_cpu_us) / twin(|r| r.server_cpu_us),
        );
    }
}
