//! Sends the simulated traffic over HTTP with several connections, and counts what the API
//! answered. Throttled or unavailable answers (429, 503) are retried after their `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use cauce_ingest::auth::Credentials;
use cauce_store::Kind;

use super::simulate::{AppSim, Batch, Plan};

/// What was sent and what the API answered.
#[derive(Debug, Default)]
pub struct Totals {
    sent: [AtomicU64; 3],
    fresh_events: AtomicU64,
    resent: AtomicU64,
    invalid: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    seconds: Mutex<f64>,
}

impl Totals {
    fn add(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The totals, for the summary.
    pub fn traffic(&self) -> Traffic {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let seconds = *self.seconds.lock().expect("not poisoned");
        Traffic {
            sent: self.sent.iter().map(get).sum(),
            events_sent: get(&self.sent[Kind::Event.index()]),
            stories_sent: get(&self.sent[Kind::Story.index()]),
            tests_sent: get(&self.sent[Kind::Exposure.index()]),
            fresh_events: get(&self.fresh_events),
            resent: get(&self.resent),
            invalid: get(&self.invalid),
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            seconds,
            items_per_s: get(&self.accepted) as f64 / seconds.max(1e-9),
        }
    }
}

/// What was sent and what the API answered, as the summary shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Traffic {
    /// Items sent, of every kind, resends and invalid ones included.
    pub sent: u64,
    /// Events sent.
    pub events_sent: u64,
    /// Stories sent.
    pub stories_sent: u64,
    /// Tests sent.
    pub tests_sent: u64,
    /// Distinct valid events sent.
    pub fresh_events: u64,
    /// Events sent a second time.
    pub resent: u64,
    /// Invalid items sent.
    pub invalid: u64,
    /// Items the API accepted.
    pub accepted: u64,
    /// Items the API rejected.
    pub rejected: u64,
    /// How long sending took.
    pub seconds: f64,
    /// Accepted items per second.
    pub items_per_s: f64,
}

/// An HTTP client of the demo's server.
pub struct Sender {
    base: String,
    apps: Vec<Credentials>,
    agent: ureq::Agent,
}

impl Sender {
    /// A client of the server at `base`, sending as `apps`.
    pub fn new(base: String, apps: Vec<Credentials>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Sender { base, apps, agent }
    }

    /// `pending` from `GET /healthz`.
    pub fn pending(&self) -> anyhow::Result<u64> {
        let mut res = self.agent.get(format!("{}/healthz", self.base)).call()?;
        let body: Value = serde_json::from_str(&res.body_mut().read_to_string()?)?;
        body["pending"]
            .as_u64()
            .with_context(|| format!("GET /healthz answered {body}"))
    }

    /// POSTs one batch until the API takes it; checks that every item is either accepted or
    /// rejected with a reason.
    fn post(&self, batch: &Batch, totals: &Totals) -> anyhow::Result<()> {
        let url = format!("{}/v1/{}", self.base, batch.kind.plural());
        let key = &self.apps[batch.app].api_key;
        for attempt in 0..20 {
            let mut res = self
                .agent
                .post(&url)
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .send(&batch.body)?;
            let status = res.status().as_u16();
            let body: Value = serde_json::from_str(&res.body_mut().read_to_string()?)?;
            match status {
                202 | 207 | 400 if body.get("accepted").is_some() => {
                    let accepted = body["accepted"].as_u64().unwrap_or(0) as usize;
                    let rejected = body["rejected"].as_array().map_or(0, Vec::len);
                    if accepted + rejected != batch.items {
                        bail!(
                            "{url}: {accepted} accepted + {rejected} rejected of {} items",
                            batch.items
                        );
                    }
                    totals.add(&totals.accepted, accepted);
                    totals.add(&totals.rejected, rejected);
                    return Ok(());
                }
                429 | 503 => std::thread::sleep(Duration::from_millis(100 * (attempt + 1))),
                _ => bail!("{url} answered {status}: {body}"),
            }
        }
        bail!("{url}: still throttled after 20 attempts")
    }

    /// Simulates `plan` and sends it over `connections` connections. `progress` hears of each
    /// batch's fresh events.
    pub fn send_all(
        &self,
        plan: &Plan,
        connections: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<Totals> {
        let totals = Totals::default();
        let (tx, rx) = sync_channel::<Batch>(connections * 4);
        let rx = Mutex::new(rx);
        let start = Instant::now();
        let result = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..connections)
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        loop {
                            let next = rx.lock().expect("not poisoned").recv();
                            let Ok(batch) = next else { return Ok(()) };
                            self.post(&batch, &totals)?;
                            progress(batch.fresh_events as u64);
                        }
                    })
                })
                .collect();
            for app in 0..plan.apps {
                let mut emit = |batch: Batch| {
                    totals.add(&totals.sent[batch.kind.index()], batch.items);
                    totals.add(&totals.fresh_events, batch.fresh_events);
                    totals.add(&totals.resent, batch.resent);
                    totals.add(&totals.invalid, batch.invalid);
                    let _ = tx.send(batch);
                };
                AppSim::run(plan, app, &mut emit);
            }
            drop(tx);
            workers
                .into_iter()
                .map(|w| w.join().expect("a sender thread panicked"))
                .collect::<anyhow::Result<Vec<()>>>()
        });
        *totals.seconds.lock().expect("not poisoned") = start.elapsed().as_secs_f64();
        result?;
        Ok(totals)
    }
}
