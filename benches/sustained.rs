//! The sustained end-to-end rate of `cauce serve`: what goes in a second, for a long time, with
//! the lake only a few seconds behind the API (issue 12).
//!
//! One run measures, on the same machine and in the same sitting:
//! 1. the burst: the API's accept rate under a closed loop (each connection sends its next
//!    request as soon as the last is answered) for a short time, on a fresh data folder;
//! 2. for each planned rate, on a fresh data folder: an open-loop load at that rate (each
//!    request has its planned send time and its latency counts from then, so queueing shows)
//!    while a sampler reads `/healthz` four times a second; then the drain, and the count of
//!    events in the lake's Parquet files against the events acknowledged;
//! 3. the anchor: DuckDB converting the same events from NDJSON to zstd Parquet (all cores),
//!    the single-node job a user would otherwise script.
//!
//! A rate holds when the API takes at least 98% of it, the request p99 is at most 50 ms, the
//! lake's lag p99 is at most 5 s, the queue stays bounded (at most 5 s of the rate waits at the
//! end of the load) and nothing is lost. The lag of a moment is how long it takes until the
//! lake holds every event acknowledged by then: `accepted − pending` (both read together) is
//! what has reached the lake.
//!
//! Run with `cargo bench --bench sustained`. Settings: `CAUCE_SUSTAINED_RATES` (events a
//! second, comma-separated, tried in order; default 150000), `CAUCE_SUSTAINED_SECS` (600),
//! `CAUCE_SUSTAINED_CONNS` (32), `CAUCE_SUSTAINED_BURST_SECS` (15), `CAUCE_SUSTAINED_ANCHOR_EVENTS`
//! (1,000,000; 0 skips DuckDB), `CAUCE_PYTHON` (a Python with duckdb, default `.venv/bin/python`),
//! `CAUCE_SUSTAINED_PROFILE` (seconds of a perf profile of the server halfway through the first
//! rate, split by stage with `benches/stage_cpu.py`; 0, the default, skips it),
//! `CAUCE_BENCH_IDS` (`sequential`, the default, or `random`: event ids like the SDKs' UUIDs).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::{body, closed_loop, get_json, open_loop, percentile, setting, Counts, Route, BATCH};

/// How often the sampler reads `/healthz`.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// The API's accept rate under a closed loop of `conns` connections for `secs`: events/s.
fn burst(secs: u64, conns: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, key, _) = common::start(dir.path(), "burst");
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let senders: Vec<_> = (0..conns)
        .map(|t| {
            let (stop, base, key) = (stop.clone(), server.base.clone(), key.clone());
            std::thread::spawn(move || closed_loop(&base, &key, t, &stop, Route::Events, &[]))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let accepted: u64 = senders.into_iter().map(|s| s.join().unwrap().1).sum();
    let rate = accepted as f64 / start.elapsed().as_secs_f64();
    server.interrupt_peak_rss();
    rate
}

/// One reading of the sampler: seconds since the load began, events acknowledged to the
/// clients by then, and what `/healthz` says is pending (queue and exporter).
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    accepted: u64,
    pending: u64,
}

/// For each sample taken during the load, how long until the lake held everything
/// acknowledged at it, sorted. A moment whose events never reached the lake among the samples
/// counts as the time to the last sample.
fn lags(samples: &[Sample], load_secs: f64) -> Vec<Duration> {
    let mut out: Vec<Duration> = samples
        .iter()
        .enumerate()
        .filter(|(_, s)| s.at <= load_secs)
        .map(|(i, s)| {
            let reached = samples[i..]
                .iter()
                .find(|later| later.accepted.saturating_sub(later.pending) >= s.accepted);
            Duration::from_secs_f64(reached.unwrap_or(samples.last().unwrap()).at - s.at)
        })
        .collect();
    out.sort();
    out
}

/// Rows in the Parquet files under `dir`, from their footers.
fn parquet_rows(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                parquet_rows(&path)
            } else if path.extension().is_some_and(|x| x == "parquet") {
                let file = std::fs::File::open(&path).unwrap();
                let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
                use parquet::file::reader::FileReader;
                reader.metadata().file_metadata().num_rows() as u64
            } else {
                0
            }
        })
        .sum()
}

/// What one planned rate gave.
struct Outcome {
    rate: f64,
    accepted_per_s: f64,
    p99_ms: f64,
    lag_p99_s: f64,
    lag_max_s: f64,
    max_pending: u64,
    pending_at_end: u64,
    drain_s: f64,
    errors: u64,
    accepted: u64,
    stored: u64,
    in_lake: u64,
    /// The store's files (database and log) per million events stored, MiB.
    store_mib_per_million: f64,
}

impl Outcome {
    fn holds(&self) -> bool {
        self.accepted_per_s >= 0.98 * self.rate
            && self.p99_ms <= 50.0
            && self.lag_p99_s <= 5.0
            && (self.pending_at_end as f64) <= 5.0 * self.rate
            && self.errors == 0
            && self.in_lake == self.accepted
            && self.stored == self.accepted
    }
}

/// `benches/stage_cpu.py` on the server `pid` for `secs`, at the steady `rate`: what it prints.
fn profile(pid: u32, secs: u64, rate: f64) -> std::thread::JoinHandle<String> {
    let python = std::env::var("CAUCE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    std::thread::spawn(move || {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/stage_cpu.py");
        let args = [
            script.to_owned(),
            pid.to_string(),
            secs.to_string(),
            rate.to_string(),
        ];
        match std::process::Command::new(python).args(args).output() {
            Ok(o) => {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            }
            Err(e) => format!("stage profile not run: {e}"),
        }
    })
}

fn sustained(rate: f64, secs: u64, conns: usize, profile_secs: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (mut server, key, app_id) = common::start(data, "sustained");
    let base = server.base.clone();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let senders = open_loop(&base, &key, conns, rate, until, &counts);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut samples = Vec::new();
    let sample = |samples: &mut Vec<Sample>| -> Option<u64> {
        let (status, health) = get_json(&agent, &format!("{base}/healthz"), None);
        let pending = health["pending"].as_u64().filter(|_| status == 200)?;
        samples.push(Sample {
            at: started.elapsed().as_secs_f64(),
            accepted: counts.accepted.load(Ordering::Relaxed) * BATCH as u64,
            pending,
        });
        Some(pending)
    };
    let mut last_report = 0;
    let mut profiling = None;
    while Instant::now() < until {
        if profile_secs > 0 && profiling.is_none() && started.elapsed().as_secs() >= secs / 2 {
            profiling = Some(profile(server.pid(), profile_secs.min(secs / 3), rate));
        }
        std::thread::sleep(SAMPLE_EVERY);
        sample(&mut samples);
        let t = started.elapsed().as_secs();
        if t >= last_report + 60 {
            last_report = t;
            let s = samples.last().copied();
            println!(
                "  {t:>4} s: acknowledged {} events, pending {}",
                s.map_or(0, |s| s.accepted),
                s.map_or(0, |s| s.pending)
            );
        }
    }
    // Sender `t`'s `k`-th request was planned at (k × conns + t) / rps seconds into the load.
    let rps = rate / BATCH as f64;
    let mut timed: Vec<(f64, Duration)> = senders
        .into_iter()
        .enumerate()
        .flat_map(|(t, s)| {
            let lat = s.join().unwrap();
            lat.into_iter()
                .enumerate()
                .map(move |(k, d)| ((k * conns + t) as f64 / rps, d))
        })
        .collect();
    let load_secs = started.elapsed().as_secs_f64();
    timed.sort_by_key(|(_, d)| *d);
    let lat: Vec<Duration> = timed.iter().map(|(_, d)| *d).collect();
    println!("{}", tail(&timed, &lat));
    if let Some(p) = profiling {
        print!("{}", p.join().unwrap());
    }
    let pending_at_end = sample(&mut samples).unwrap_or(0);
    let drain = Instant::now();
    while sample(&mut samples) != Some(0) && drain.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(SAMPLE_EVERY);
    }
    let drain_s = drain.elapsed().as_secs_f64();
    server.interrupt_peak_rss();
    let lags = lags(&samples, load_secs);
    let accepted = counts.accepted.load(Ordering::Relaxed) * BATCH as u64;
    // Measured before the count below opens the store (with this build's code).
    let store_bytes: u64 = ["store.db", "store.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let stored = common::stored_events(data, &app_id);
    Outcome {
        store_mib_per_million: store_bytes as f64 / (1 << 20) as f64 / (stored.max(1) as f64 / 1e6),
        rate,
        accepted_per_s: accepted as f64 / load_secs,
        p99_ms: percentile(&lat, 0.99),
        lag_p99_s: percentile(&lags, 0.99) / 1e3,
        lag_max_s: lags.last().map_or(0.0, Duration::as_secs_f64),
        max_pending: samples.iter().map(|s| s.pending).max().unwrap_or(0),
        pending_at_end,
        drain_s,
        errors: [
            &counts.server_errors,
            &counts.throttled,
            &counts.other,
            &counts.io_errors,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum(),
        accepted,
        stored,
        in_lake: parquet_rows(&data.join("lake").join("events")),
    }
}

/// Where a run's slow requests (over 50 ms, the p99 the issue allows) were: how many, the
/// latency percentiles past p99, and the five seconds of the load with most of them, so that a
/// tail of a few stalls tells itself from one spread over the run. `timed`: (planned second,
/// latency) of each request; `lat`: the same latencies, sorted.
fn tail(timed: &[(f64, Duration)], lat: &[Duration]) -> String {
    let limit = Duration::from_millis(50);
    let mut by_second = std::collections::BTreeMap::<u64, (u64, Duration)>::new();
    for &(at, d) in timed.iter().filter(|(_, d)| *d > limit) {
        let e = by_second.entry(at as u64).or_default();
        e.0 += 1;
        e.1 = e.1.max(d);
    }
    let slow: u64 = by_second.values().map(|(n, _)| n).sum();
    let mut worst: Vec<_> = by_second.into_iter().collect();
    worst.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
    let worst = worst
        .iter()
        .take(5)
        .map(|(s, (n, max))| format!("{s} s: {n} (max {} ms)", max.as_millis()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "  requests over 50 ms: {slow} of {} ({:.2}%); p50 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; the seconds with most: {worst}",
        lat.len(),
        100.0 * slow as f64 / lat.len().max(1) as f64,
        percentile(lat, 0.5),
        percentile(lat, 0.999),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    )
}

/// DuckDB converting `events` of the benchmark's events from NDJSON to zstd Parquet with all
/// cores: events/s, or `None` without a Python that has duckdb.
fn duckdb_anchor(events: u64) -> Option<f64> {
    let python = std::env::var("CAUCE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("events.ndjson");
    let mut ndjson = String::new();
    let now = cauce_store::time::now_ms();
    for n in 0..events.div_ceil(BATCH as u64) {
        let batch: serde_json::Value = serde_json::from_str(&body(0, n, now)).unwrap();
        for item in batch["batch"].as_array().unwrap() {
            ndjson.push_str(&item.to_string());
            ndjson.push('\n');
        }
    }
    std::fs::write(&src, ndjson).unwrap();
    let script = format!(
        "import time, duckdb\ncon = duckdb.connect()\nt = time.perf_counter()\ncon.execute(\"COPY (SELECT * FROM read_ndjson_auto('{src}')) TO '{src}.parquet' (FORMAT parquet, COMPRESSION zstd)\")\nprint(time.perf_counter() - t)",
        src = src.display()
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(events as f64 / secs)
}

fn main() {
    let rates: Vec<f64> = std::env::var("CAUCE_SUSTAINED_RATES")
        .unwrap_or_else(|_| "150000".into())
        .split(',')
        .map(|r| {
            r.trim()
                .parse()
                .expect("CAUCE_SUSTAINED_RATES: events a second, comma-separated")
        })
        .collect();
    let secs = setting("CAUCE_SUSTAINED_SECS", 600);
    let conns = setting("CAUCE_SUSTAINED_CONNS", 32) as usize;
    let burst_secs = setting("CAUCE_SUSTAINED_BURST_SECS", 15);
    let anchor_events = setting("CAUCE_SUSTAINED_ANCHOR_EVENTS", 1_000_000);
    let profile_secs = setting("CAUCE_SUSTAINED_PROFILE", 0);
    println!(
        "cauce serve, sustained: rates {rates:?} events/s for {secs} s each (open loop), {conns} connections, batches of {BATCH}; burst {burst_secs} s closed loop"
    );
    let burst = burst(burst_secs, conns);
    println!("burst (closed loop): {burst:.0} events/s accepted");
    let mut best = None;
    for (i, &rate) in rates.iter().enumerate() {
        let o = sustained(rate, secs, conns, if i == 0 { profile_secs } else { 0 });
        println!(
            "rate {:.0}: accepted {:.0}/s ({:.3}x planned), p99 {:.1} ms, lake lag p99 {:.1} s (max {:.1} s), pending max {} / at end {}, drain {:.1} s, errors {}, acknowledged {}, stored {}, in the lake {}, store {:.0} MiB per million: {}",
            o.rate,
            o.accepted_per_s,
            o.accepted_per_s / o.rate,
            o.p99_ms,
            o.lag_p99_s,
            o.lag_max_s,
            o.max_pending,
            o.pending_at_end,
            o.drain_s,
            o.errors,
            o.accepted,
            o.stored,
            o.in_lake,
            o.store_mib_per_million,
            if o.holds() { "HOLDS" } else { "does not hold" }
        );
        if o.holds() {
            best = Some(o.rate.max(best.unwrap_or(0.0)));
        }
    }
    let anchor = (anchor_events > 0)
        .then(|| duckdb_anchor(anchor_events))
        .flatten();
    match best {
        Some(b) => println!(
            "highest rate that holds: {b:.0} events/s = {:.2}x the burst ({burst:.0}/s){}",
            b / burst,
            anchor.map_or(String::new(), |a| format!(
                ", {:.2}x DuckDB's NDJSON -> Parquet ({a:.0} events/s)",
                b / a
            ))
        ),
        None => println!("no planned rate held"),
    }
    if let Some(a) = anchor {
        println!(
            "anchor: DuckDB NDJSON -> Parquet zstd, all cores: {a:.0} events/s; burst/DuckDB {:.2}",
            burst / a
        );
    }
}
