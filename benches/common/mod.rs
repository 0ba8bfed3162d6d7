//! What the load and soak benchmarks share: settings, request bodies, timeline readers and
//! percentiles.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events in one request.
pub const BATCH: usize = 100;

/// Starts `cauce serve` on `data` with one app named `name` (no practical rate limit, a key
/// that may write and read): the server, the key and the app id.
pub fn start(data: &std::path::Path, name: &str) -> (crate::support::Server, String, String) {
    let creds = crate::support::cli(
        data,
        &[
            "apps",
            "create",
            "--name",
            name,
            "--rate-limit",
            "100000000",
            "--role",
            "developer",
        ],
    );
    let key = creds["api_key"].as_str().unwrap().to_owned();
    let app_id = creds["app_id"].as_str().unwrap().to_owned();
    (crate::support::serve(data), key, app_id)
}

/// A numeric setting from the environment.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A batch of `BATCH` events with ids unique to (`thread`, `n`), as JSON.
pub fn body(thread: usize, n: u64, now: i64) -> String {
    let mut s = String::with_capacity(BATCH * 330);
    s.push_str(r#"{"batch":["#);
    for i in 0..BATCH {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"event_id":"t{thread}-{n}-{i}","name":"screen_view","timestamp":{now},"user_id":"user-{}","session_id":"s-{}","properties":{{"screen":"checkout","step":{i}}},"context":{{"app_version":"3.2.1","os":"ios"}}}}"#,
            (n as usize * 7 + i) % 5000,
            (n as usize + i) % 900
        ));
    }
    s.push_str("]}");
    s
}

/// Latencies' percentile `p`, ms (`lat` sorted).
pub fn percentile(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3
}

/// Reads random users' timelines until `stop`, pausing `pause` between reads; returns each
/// read's latency and the failures.
pub fn read_timelines(
    base: &str,
    key: &str,
    stop: &AtomicBool,
    seed: usize,
    pause: Duration,
) -> (Vec<Duration>, u64) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (mut lat, mut errors) = (Vec::new(), 0);
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let url = format!(
            "{base}/v1/users/user-{}/timeline?limit=50",
            (n >> 33) % 5000
        );
        let t0 = Instant::now();
        match agent.get(&url).header("x-api-key", key).call() {
            Ok(mut r) if r.status() == 200 => {
                let _ = r.body_mut().read_to_string();
            }
            _ => errors += 1,
        }
        lat.push(t0.elapsed());
        std::thread::sleep(pause);
    }
    (lat, errors)
}

/// What the senders count.
#[derive(Default)]
pub struct Counts {
    pub accepted: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub other: AtomicU64,
    pub io_errors: AtomicU64,
}

/// Sends request `k` of thread `t` at `start + (k * conns + t) / rps`; returns the latencies
/// from each planned time.
pub fn sender(
    base: &str,
    key: &str,
    t: usize,
    conns: usize,
    rps: f64,
    until: Instant,
    counts: &Counts,
) -> Vec<Duration> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{base}/v1/events");
    let start = Instant::now();
    let mut lat = Vec::new();
    for k in 0u64.. {
        let planned = start + Duration::from_secs_f64((k as f64 * conns as f64 + t as f64) / rps);
        if planned >= until {
            break;
        }
        if let Some(wait) = planned.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let res = agent
            .post(&url)
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .send(body(t, k, cauce_store::time::now_ms()));
        lat.push(planned.elapsed());
        let counter = match res {
            Ok(mut r) => {
                let _ = r.body_mut().read_to_string();
                match r.status().as_u16() {
                    202 => &counts.accepted,
                    429 => &counts.throttled,
                    500..=599 => &counts.server_errors,
                    _ => &counts.other,
                }
            }
            Err(_) => &counts.io_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    lat
}

/// A GET of JSON (with an API key when given): the status (0 when the request failed) and the
/// body.
pub fn get_json(agent: &ureq::Agent, url: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = agent.get(url);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    match req.call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body = r.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&body).unwrap_or_default())
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// A closed-loop sender (each request as soon as the last one is answered) until `stop`, as
/// thread `t`: each request's latency, the events accepted and the requests that failed.
pub fn closed_loop(
    base: &str,
    key: &str,
    t: usize,
    stop: &AtomicBool,
) -> (Vec<Duration>, u64, u64) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{base}/v1/events");
    let (mut lat, mut accepted, mut errors) = (Vec::new(), 0u64, 0u64);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let b = body(t, n, cauce_store::time::now_ms());
        n += 1;
        let t0 = Instant::now();
        let res = agent
            .post(&url)
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .send(b);
        lat.push(t0.elapsed());
        match res {
            Ok(mut r) if r.status() == 202 => {
                let _ = r.body_mut().read_to_string();
                accepted += BATCH as u64;
            }
            _ => errors += 1,
        }
    }
    (lat, accepted, errors)
}

/// `conns` open-loop senders ([`sender`]) that together plan `rate` events a second until
/// `until`; each thread returns its latencies.
pub fn open_loop(
    base: &str,
    key: &str,
    conns: usize,
    rate: f64,
    until: Instant,
    counts: &std::sync::Arc<Counts>,
) -> Vec<std::thread::JoinHandle<Vec<Duration>>> {
    let rps = rate / BATCH as f64;
    (0..conns)
        .map(|t| {
            let (base, key, counts) = (base.to_owned(), key.to_owned(), counts.clone());
            std::thread::spawn(move || sender(&base, &key, t, conns, rps, until, &counts))
        })
        .collect()
}

/// Events of `app_id` in the store of the data folder `data` (the server stopped).
pub fn stored_events(data: &std::path::Path, app_id: &str) -> u64 {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let store = cauce_store::sqlite::SqliteStore::open(data.join("store.db")).unwrap();
            store.count(cauce_store::Kind::Event, app_id).await.unwrap()
        })
}
