//! What the load and soak benchmarks share: settings, request bodies, timeline readers and
//! percentiles.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
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
