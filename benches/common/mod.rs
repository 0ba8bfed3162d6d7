//! What the load and soak benchmarks share: settings, request bodies, timeline readers and
//! percentiles.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cauce_ingest::client::{Answer, Body, Client};
use cauce_ingest::IngestError;
use cauce_store::Kind;

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

/// A batch of `BATCH` items as JSON: item `i` written by `item(i, user, session)`, with the user
/// and session it falls to in request `n`, the array closed by `tail` (`]}`, or more fields).
fn batch_of(n: u64, tail: &str, item: impl Fn(usize, usize, usize) -> String) -> String {
    let mut s = String::with_capacity(BATCH * 400);
    s.push_str(r#"{"batch":["#);
    for i in 0..BATCH {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&item(
            i,
            (n as usize * 7 + i) % 5000,
            (n as usize + i) % 900,
        ));
    }
    s.push_str(tail);
    s
}

/// The id of item `i` of request `n` of sender `thread`: `t{thread}-{n}-{i}`, or, with
/// `CAUCE_BENCH_IDS=random`, 32 hex digits that look random, as the analytics SDKs' UUIDs do
/// (the store's key index then takes each one at a random place, which costs more).
fn event_id(thread: usize, n: u64, i: usize) -> String {
    static RANDOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *RANDOM.get_or_init(|| std::env::var("CAUCE_BENCH_IDS").is_ok_and(|v| v == "random")) {
        let k = ((thread as u64) << 48) ^ (n << 8) ^ i as u64;
        // A bijection of `k` (an odd multiplier, a rotation): the ids stay unique.
        let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        format!("{:016x}{:016x}", mix(k), mix(!k))
    } else {
        format!("t{thread}-{n}-{i}")
    }
}

/// A batch of `BATCH` events with ids unique to (`thread`, `n`), as JSON.
pub fn body(thread: usize, n: u64, now: i64) -> String {
    batch_of(n, "]}", |i, user, session| {
        let id = event_id(thread, n, i);
        format!(
            r#"{{"event_id":"{id}","name":"screen_view","timestamp":{now},"user_id":"user-{user}","session_id":"s-{session}","properties":{{"screen":"checkout","step":{i}}},"context":{{"app_version":"3.2.1","os":"ios"}}}}"#
        )
    })
}

/// The same events as [`body`], as a batch of the Segment protocol: `track` messages with their
/// `messageId`, `userId`, `properties` and `context`, and the batch's `sentAt`.
pub fn sdk_body(thread: usize, n: u64, now: i64) -> String {
    let at = cauce_store::time::format_rfc3339(now);
    batch_of(n, &format!(r#"],"sentAt":"{at}"}}"#), |i, user, session| {
        format!(
            r#"{{"type":"track","messageId":"t{thread}-{n}-{i}","event":"screen_view","timestamp":"{at}","userId":"user-{user}","properties":{{"screen":"checkout","step":{i},"session_id":"s-{session}"}},"context":{{"app":{{"version":"3.2.1"}},"os":{{"name":"iOS"}}}}}}"#
        )
    })
}

/// The CPU time process `pid` has used so far (user + system), seconds: `/proc/PID/stat`'s
/// `utime` and `stime`, in Linux's fixed 100 ticks a second.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    ticks.iter().sum::<u64>() as f64 / 100.0
}

/// The events of [`sdk_body`] as a `/v1/events` body: the records stored are the same (`type`,
/// the nested `context`, `session_id` in `properties`), so that the two routes are compared on
/// equal events.
pub fn sdk_events_body(thread: usize, n: u64, now: i64) -> String {
    batch_of(n, "]}", |i, user, session| {
        format!(
            r#"{{"event_id":"t{thread}-{n}-{i}","name":"screen_view","type":"track","timestamp":{now},"user_id":"user-{user}","properties":{{"screen":"checkout","step":{i},"session_id":"s-{session}"}},"context":{{"app":{{"version":"3.2.1"}},"os":{{"name":"iOS"}}}}}}"#
        )
    })
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
    let client = Client::new(base, key);
    let (mut lat, mut errors) = (Vec::new(), 0);
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let user = format!("user-{}", (n >> 33) % 5000);
        let t0 = Instant::now();
        if client.timeline(&user, 50).is_err() {
            errors += 1;
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
    let client = Client::new(base, key);
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
        let res = Route::Events.send(&client, t, k);
        lat.push(planned.elapsed());
        let counter = match res {
            Sent::Accepted(_) => &counts.accepted,
            Sent::Throttled => &counts.throttled,
            Sent::Refused(500..=599) => &counts.server_errors,
            Sent::Refused(_) => &counts.other,
            Sent::Failed => &counts.io_errors,
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

/// A route the benchmarks send to, with request bodies of [`BATCH`] events each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/events`, JSON: Cauce's own route.
    Events,
    /// `POST /v1/batch`, gzip: the Segment protocol, as the analytics SDKs send it.
    SdkBatch,
    /// `POST /v1/events`, JSON, with the events of [`Route::SdkBatch`] ([`sdk_events_body`]).
    EventsOfSdk,
}

/// What became of one request.
pub enum Sent {
    /// Answered; this many events accepted (every one, or the request counts as refused).
    Accepted(u64),
    /// 429 or 503.
    Throttled,
    /// Another status, or items rejected (status 207).
    Refused(u16),
    /// No answer.
    Failed,
}

impl Route {
    /// The body of request `n` of thread `t`, its events stamped `now`.
    pub fn body(self, t: usize, n: u64, now: i64) -> Body {
        match self {
            Route::Events => Body::json(body(t, n, now)),
            Route::SdkBatch => Body::json(sdk_body(t, n, now)).gzip(),
            Route::EventsOfSdk => Body::json(sdk_events_body(t, n, now)),
        }
    }

    /// Sends request `n` of thread `t` through `client`, its body made now.
    pub fn send(self, client: &Client, t: usize, n: u64) -> Sent {
        let now = cauce_store::time::now_ms();
        self.post(client, &self.body(t, n, now))
    }

    /// Sends `body` through `client`.
    pub fn post(self, client: &Client, body: &Body) -> Sent {
        let answer = match self {
            Route::Events | Route::EventsOfSdk => client
                .send(Kind::Event, body)
                .map(|a| a.map(|r| (r.accepted, r.rejected.len()))),
            Route::SdkBatch => client
                .send_sdk_batch(body)
                .map(|a| a.map(|r| (r.accepted, r.rejected.len()))),
        };
        match answer {
            Ok(Answer::Done((accepted, 0))) => Sent::Accepted(accepted as u64),
            Ok(Answer::Done(_)) => Sent::Refused(207),
            Ok(Answer::RetryAfter(_)) => Sent::Throttled,
            Err(IngestError::Refused { status, .. }) => Sent::Refused(status),
            Err(_) => Sent::Failed,
        }
    }
}

/// A closed-loop sender (each request as soon as the last one is answered) to `route` until
/// `stop`, as thread `t`: each request's latency, the events accepted and the requests that
/// failed. The first `ready.len()` requests send those bodies (made before the clock started,
/// so that the load generator's own JSON and gzip do not take the server's cores); later ones
/// are made as they are sent.
pub fn closed_loop(
    base: &str,
    key: &str,
    t: usize,
    stop: &AtomicBool,
    route: Route,
    ready: &[Body],
) -> (Vec<Duration>, u64, u64) {
    let client = Client::new(base, key);
    let (mut lat, mut accepted, mut errors) = (Vec::new(), 0u64, 0u64);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let res = match ready.get(n as usize) {
            Some(body) => route.post(&client, body),
            None => route.send(&client, t, n),
        };
        n += 1;
        lat.push(t0.elapsed());
        match res {
            Sent::Accepted(a) => accepted += a,
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
