//! Sends the simulated traffic over HTTP with several connections, through the typed client,
//! and counts what the API answered. Throttled or unavailable answers (429, 503) are retried after their `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use cauce_ingest::auth::Credentials;
use cauce_ingest::client::{Answer, Body, Client};
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

/// The demo's clients of its server: one typed client per app.
pub struct Sender {
    clients: Vec<Client>,
}

impl Sender {
    /// Clients of the server at `base`, sending as `apps`.
    pub fn new(base: String, apps: Vec<Credentials>) -> Self {
        let clients = apps
            .iter()
            .map(|app| Client::new(&base, &app.api_key))
            .collect();
        Sender { clients }
    }

    /// `pending` from `GET /healthz`.
    pub fn pending(&self) -> anyhow::Result<u64> {
        let health = self.clients[0].health()?;
        health
            .pending
            .with_context(|| format!("GET /healthz answered {health:?}"))
    }

    /// POSTs one batch until the API takes it; checks that every item is either accepted or
    /// rejected with a reason.
    fn post(&self, batch: &Batch, totals: &Totals) -> anyhow::Result<()> {
        let route = format!("/v1/{}", batch.kind.plural());
        let body = Body::json(batch.body.as_bytes());
        for attempt in 0..20 {
            let answer = match self.clients[batch.app].send(batch.kind, &body)? {
                Answer::Done(answer) => answer,
                Answer::RetryAfter(_) => {
                    // The demo's own pace: shorter than the server's second, growing.
                    std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
                    continue;
                }
            };
            let (accepted, rejected) = (answer.accepted, answer.rejected.len());
            if accepted + rejected != batch.items {
                bail!(
                    "{route}: {accepted} accepted + {rejected} rejected of {} items",
                    batch.items
                );
            }
            totals.add(&totals.accepted, accepted);
            totals.add(&totals.rejected, rejected);
            return Ok(());
        }
        bail!("{route}: still throttled after 20 attempts")
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
