//! A soak of `cauce serve`: an open-loop load at a fixed rate for a long time (10 minutes by
//! default), with reads mixed in (user timelines, reports, health), checking what must hold
//! however long it runs: no 5xx, nothing lost, resident memory flat.
//!
//! Open loop: each request has its planned send time, and its latency is counted from then, so
//! a server that falls behind shows it (a closed loop would just send less). Requests are
//! planned at the rate whatever happens; a sender that is behind sends at once.
//!
//! Run with `cargo bench --bench soak`. Settings: `CAUCE_SOAK_SECS` (600), `CAUCE_SOAK_RATE`
//! (events a second, default 300,000: twice the API's 150,000 accept target; past the server's
//! `--max-backlog`, what the pipeline cannot take is answered 429 and counted so),
//! `CAUCE_SOAK_CONNS` (32), `CAUCE_SOAK_READERS` (timeline readers, 2).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::{get_json, open_loop, percentile, read_timelines, setting, Counts, BATCH};

/// The resident memory of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Bytes under `path` (a file, or a folder and everything in it).
fn disk_use(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_use(&e.path())).sum())
        .unwrap_or(0)
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}

fn main() {
    let secs = setting("CAUCE_SOAK_SECS", 600);
    let rate = setting("CAUCE_SOAK_RATE", 300_000) as f64;
    let conns = setting("CAUCE_SOAK_CONNS", 32) as usize;
    let readers = setting("CAUCE_SOAK_READERS", 2) as usize;
    println!("cauce serve soak: {secs} s at {rate:.0} events/s planned (open loop), {conns} connections, {readers} timeline readers, reports and health read every second");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (server, key, app_id) = common::start(data, "soak");
    let (base, pid) = (server.base.clone(), server.pid());

    let counts = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let senders = open_loop(&base, &key, conns, rate, until, &counts);
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reading: Vec<_> = (0..readers)
        .map(|t| {
            let (stop, base, key) = (stop_reading.clone(), base.clone(), key.clone());
            std::thread::spawn(move || {
                read_timelines(&base, &key, &stop, t + 1, Duration::from_millis(10))
            })
        })
        .collect();

    // Once a second: health (queue depth), the reports, and memory.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let (mut rss_samples, mut max_pending, mut read_errors) = (Vec::new(), 0u64, 0u64);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(1));
        let (status, health) = get_json(&agent, &format!("{base}/healthz"), None);
        if status == 200 {
            max_pending = max_pending.max(health["pending"].as_u64().unwrap_or(0));
        } else {
            read_errors += 1;
        }
        let (status, _) = get_json(&agent, &format!("{base}/v1/reports"), Some(&key));
        if status != 200 && status != 404 {
            read_errors += 1;
        }
        rss_samples.push(rss(pid));
        let t = started.elapsed().as_secs();
        if t % 60 == 0 {
            println!(
                "{t:>4} s: accepted {} requests, pending {max_pending} at most, RSS {:.0} MiB",
                counts.accepted.load(Ordering::Relaxed),
                *rss_samples.last().unwrap() as f64 / 1048576.0
            );
        }
    }
    let mut lat: Vec<Duration> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let load_secs = started.elapsed().as_secs_f64();
    lat.sort();

    // Drain, reads still going: everything accepted reaches the store and the lake.
    let drain = Instant::now();
    loop {
        let (status, health) = get_json(&agent, &format!("{base}/healthz"), None);
        if status == 200 && health["pending"] == 0 {
            break;
        }
        if drain.elapsed() > Duration::from_secs(1800) {
            println!("drain: still pending after 30 minutes: {health}");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain_secs = drain.elapsed().as_secs_f64();
    stop_reading.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    for r in reading {
        let (l, e) = r.join().unwrap();
        reads.extend(l);
        read_errors += e;
    }
    reads.sort();
    let mut server = server;
    let peak = server.interrupt_peak_rss();
    let accepted = counts.accepted.load(Ordering::Relaxed) * BATCH as u64;
    let stored = common::stored_events(data, &app_id);

    let per_million = |bytes: u64| bytes as f64 / 1048576.0 / (stored.max(1) as f64 / 1e6);
    let files = |names: &[&str]| names.iter().map(|n| disk_use(&data.join(n))).sum::<u64>();
    let (store_bytes, queue_bytes, lake_bytes) = (
        files(&["store.db", "store.db-wal"]),
        files(&["queue.db", "queue.db-wal"]),
        files(&["lake"]),
    );
    println!(
        "disk per million events stored: store.db {:.0} MiB, queue.db {:.0} MiB (drained; SQLite keeps its pages), lake {:.0} MiB",
        per_million(store_bytes),
        per_million(queue_bytes),
        per_million(lake_bytes)
    );
    let minute = rss_samples.len().min(60);
    let (first, last) = (
        mean(&rss_samples[..minute]),
        mean(&rss_samples[rss_samples.len() - minute..]),
    );
    let mib = |b: f64| b / 1048576.0;
    println!(
        "accepted {:.0} events/s of {rate:.0} planned ({:.2}x); request p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms (from planned times)",
        accepted as f64 / load_secs,
        accepted as f64 / load_secs / rate,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
    );
    println!(
        "5xx {}, 429 {}, other {}, connection errors {}, read errors {read_errors}; timelines {} (p99 {:.1} ms)",
        counts.server_errors.load(Ordering::Relaxed),
        counts.throttled.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        counts.io_errors.load(Ordering::Relaxed),
        reads.len(),
        percentile(&reads, 0.99),
    );
    println!(
        "queue: {max_pending} items pending at most; drained in {drain_secs:.0} s after the load; accepted {accepted}, stored {stored}, lost {}",
        accepted as i64 - stored as i64
    );
    println!(
        "RSS: first minute {:.0} MiB, last minute {:.0} MiB ({:.2}x), peak {:.0} MiB",
        mib(first),
        mib(last),
        last / first.max(1.0),
        mib(peak as f64)
    );
    // Flat means level once warm: each minute's mean, and the second half's spread.
    let by_minute: Vec<f64> = rss_samples.chunks(60).map(|m| mib(mean(m))).collect();
    let series: Vec<String> = by_minute.iter().map(|m| format!("{m:.0}")).collect();
    let half = &by_minute[by_minute.len() / 2..];
    let (low, high) = half
        .iter()
        .fold((f64::MAX, 0f64), |(l, h), &m| (l.min(m), h.max(m)));
    println!(
        "RSS by minute, MiB: {}; second half {low:.0}-{high:.0} ({:.2}x)",
        series.join(", "),
        high / low.max(1.0)
    );
}
