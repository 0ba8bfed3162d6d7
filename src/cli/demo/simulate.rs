//! The demo's traffic: a deterministic simulation (one seed) of apps whose users come back over
//! the days, browse in sessions that follow a Markov chain of screens, go through onboarding and
//! checkout stories with drop-off, and take part in an A/B test. One app gets a traffic spike.
//! About 1% of events are sent twice and 1% of items are invalid.
//!
//! The output is request bodies, ready to POST; nothing here does I/O.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use cauce_store::Kind;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Items per request.
pub const BATCH: usize = 500;
/// The app that runs the A/B test, and the one that gets the spike.
pub const EXPERIMENT_APP: usize = 0;
/// See [`EXPERIMENT_APP`].
pub const SPIKE_APP: usize = 1;
/// The experiment: its name, the control's conversion rate and the treatment's (+15%).
pub const EXPERIMENT: &str = "one_tap_checkout";
const CONTROL_RATE: f64 = 0.20;
const TREATMENT_RATE: f64 = 0.23;
/// The experiment's true lift: the treatment's rate over the control's, minus one.
pub const TRUE_LIFT: f64 = TREATMENT_RATE / CONTROL_RATE - 1.0;
/// Users exposed to the experiment at least, so that the effect shows at any demo size.
const MIN_EXPOSED: usize = 20_000;

/// Relative traffic by hour of day (UTC): quiet nights, busy evenings.
const DIURNAL: [f64; 24] = [
    2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 5.0, 7.0, 8.0, 8.0, 8.0, 9.0, 9.0, 8.0, 8.0, 8.0, 9.0, 10.0,
    11.0, 11.0, 9.0, 6.0, 4.0,
];

/// The screens of the Markov chain, with their next-screen probabilities (the rest: the
/// session ends).
const SCREENS: [(&str, &[(usize, f64)]); 7] = [
    ("home", &[(1, 0.35), (2, 0.25), (5, 0.10), (6, 0.05)]),
    ("search", &[(2, 0.60), (1, 0.15), (0, 0.10)]),
    (
        "product_view",
        &[(3, 0.30), (2, 0.25), (1, 0.20), (0, 0.10)],
    ),
    ("add_to_cart", &[(4, 0.55), (2, 0.20)]),
    ("checkout", &[(0, 0.50)]),
    ("profile", &[(6, 0.30), (0, 0.40)]),
    ("settings", &[(0, 0.50)]),
];
const CART: usize = 3;

/// A story's steps with the chance of going on to each next step.
const ONBOARDING: (&str, &[(&str, f64)]) = (
    "onboarding",
    &[
        ("welcome", 1.0),
        ("signup", 0.85),
        ("profile_setup", 0.70),
        ("tutorial", 0.80),
    ],
);
const CHECKOUT: (&str, &[(&str, f64)]) = (
    "checkout",
    &[
        ("cart", 1.0),
        ("address", 0.70),
        ("payment", 0.80),
        ("confirm", 0.85),
    ],
);

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How many apps.
    pub apps: usize,
    /// Valid events to send in all (resends and invalid items come on top).
    pub events: u64,
    /// Days of history, ending now.
    pub days: u32,
    /// The seed: the same seed gives the same traffic, relative to `now_ms`.
    pub seed: u64,
    /// The end of the simulated time, epoch ms.
    pub now_ms: i64,
}

impl Plan {
    /// The app's share of the events: app 0 (the experiment) gets a quarter, the rest share the
    /// remainder with a gentle decline.
    pub fn budget(&self, app: usize) -> u64 {
        if self.apps == 1 {
            return self.events;
        }
        if app == EXPERIMENT_APP {
            return self.events / 4;
        }
        let weight = |i: usize| 1.0 / (i as f64).sqrt();
        let total: f64 = (1..self.apps).map(weight).sum();
        (self.events as f64 * 0.75 * weight(app) / total).round() as u64
    }

    /// The first simulated instant.
    pub fn start_ms(&self) -> i64 {
        let hour = self.now_ms - self.now_ms.rem_euclid(HOUR_MS);
        hour - i64::from(self.days) * DAY_MS
    }

    /// The hour (epoch ms) of the spike: 14:00 UTC two thirds into the range.
    pub fn spike_hour_ms(&self) -> i64 {
        let day = self.start_ms() - self.start_ms().rem_euclid(DAY_MS)
            + i64::from(self.days * 2 / 3) * DAY_MS;
        day + 14 * HOUR_MS
    }
}

/// One request: where it goes and what it holds.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The app (index).
    pub app: usize,
    /// The kind, which picks the route.
    pub kind: Kind,
    /// The JSON body.
    pub body: String,
    /// Items in the body.
    pub items: usize,
    /// Of which valid events sent for the first time.
    pub fresh_events: usize,
    /// Of which resent copies.
    pub resent: usize,
    /// Of which invalid on purpose.
    pub invalid: usize,
}

/// Items waiting to fill a batch, per kind.
#[derive(Default)]
struct Pending {
    items: Vec<Value>,
    fresh_events: usize,
    resent: usize,
    invalid: usize,
}

/// The simulation of one app.
pub struct AppSim<'a> {
    plan: &'a Plan,
    app: usize,
    rng: StdRng,
    pending: [Pending; 3],
    resend: Vec<Value>,
    events: u64,
    sent_at: i64,
    emit: &'a mut dyn FnMut(Batch),
}

impl<'a> AppSim<'a> {
    /// Simulates app `app` of `plan`, handing each full request to `emit`.
    pub fn run(plan: &'a Plan, app: usize, emit: &'a mut dyn FnMut(Batch)) {
        let mut sim = AppSim {
            plan,
            app,
            rng: StdRng::seed_from_u64(
                plan.seed ^ (app as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            pending: Default::default(),
            resend: Vec::new(),
            events: 0,
            sent_at: plan.now_ms,
            emit,
        };
        sim.users();
        if app == SPIKE_APP {
            sim.spike();
        }
        if app == EXPERIMENT_APP {
            sim.experiment();
        }
        sim.flush_all();
    }

    fn user_id(&self, user: usize) -> String {
        format!("u{}-{user}", self.app)
    }

    /// Users arrive on a random day and come back less and less often. Half of them are
    /// regulars, who keep coming back a day in four or so; the others soon stop (they churn):
    /// who comes back can be learned from how a user has come back so far.
    fn users(&mut self) {
        let budget = self.plan.budget(self.app);
        let days = i64::from(self.plan.days);
        let mut user = 0;
        while self.events < budget {
            let first = self.rng.random_range(0..days);
            let (floor, fade_days) = if self.rng.random::<f64>() < 0.5 {
                (0.22, 8.0)
            } else {
                (0.0, 1.5)
            };
            for day in first..days {
                let since = (day - first) as f64;
                let back = day == first
                    || self.rng.random::<f64>() < floor + 0.4 * (-since / fade_days).exp();
                if back {
                    let start = self.plan.start_ms() + day * DAY_MS + self.diurnal_offset();
                    if start < self.plan.now_ms - HOUR_MS {
                        self.session(user, start, day == first);
                    }
                }
                if self.events >= budget {
                    break;
                }
            }
            user += 1;
        }
    }

    /// A time of day drawn from [`DIURNAL`], ms after midnight.
    fn diurnal_offset(&mut self) -> i64 {
        let total: f64 = DIURNAL.iter().sum();
        let mut pick = self.rng.random::<f64>() * total;
        let mut hour = 0;
        for (h, w) in DIURNAL.iter().enumerate() {
            hour = h;
            if pick < *w {
                break;
            }
            pick -= w;
        }
        hour as i64 * HOUR_MS + self.rng.random_range(0..HOUR_MS)
    }

    /// One session: `app_open`, then screens until the chain ends (at most 30).
    fn session(&mut self, user: usize, start: i64, first_visit: bool) {
        let user_id = self.user_id(user);
        let session = format!("s{}-{user}-{start}", self.app);
        let mut at = start;
        self.event(&user_id, &session, "app_open", at);
        if first_visit {
            self.story(&user_id, &session, ONBOARDING, at);
        }
        let mut screen = 0;
        let mut in_cart = false;
        for _ in 0..30 {
            at += self.rng.random_range(3_000..60_000);
            self.event(&user_id, &session, SCREENS[screen].0, at);
            if screen == CART && !in_cart {
                in_cart = true;
                self.story(&user_id, &session, CHECKOUT, at);
            }
            match self.next_screen(screen) {
                Some(next) => screen = next,
                None => break,
            }
        }
    }

    fn next_screen(&mut self, screen: usize) -> Option<usize> {
        let mut pick = self.rng.random::<f64>();
        for &(next, p) in SCREENS[screen].1 {
            if pick < p {
                return Some(next);
            }
            pick -= p;
        }
        None
    }

    fn event(&mut self, user: &str, session: &str, name: &str, at: i64) {
        self.events += 1;
        let n = self.events;
        let os = if n % 3 == 0 { "android" } else { "ios" };
        let event = json!({
            "event_id": format!("e{}-{n}", self.app), "name": name, "timestamp": at,
            "user_id": user, "session_id": session,
            "properties": {"screen": name, "position": n % 12},
            "context": {"os": os, "app_version": "2.4.1", "locale": "es-ES"},
        });
        if self.rng.random::<f64>() < 0.01 {
            self.resend.push(event.clone());
        }
        if self.rng.random::<f64>() < 0.01 {
            let broken = self.broken(&event);
            self.add(Kind::Event, broken, 0, 0, 1);
        }
        self.add(Kind::Event, event, 1, 0, 0);
        if self.resend.len() >= 8 {
            for copy in std::mem::take(&mut self.resend) {
                self.add(Kind::Event, copy, 0, 1, 0);
            }
        }
    }

    /// An invalid copy of an event, broken in one of several ways.
    fn broken(&mut self, event: &Value) -> Value {
        let mut bad = event.clone();
        match self.rng.random_range(0..4) {
            0 => {
                bad.as_object_mut().map(|o| o.remove("name"));
            }
            1 => bad["timestamp"] = json!("yesterday"),
            2 => bad["user_id"] = json!(42),
            _ => bad["event_id"] = json!(""),
        }
        bad
    }

    /// A story, sent as a first version (in progress) and a final one; now and then the final
    /// version is sent first, and the store keeps the newest anyway.
    fn story(&mut self, user: &str, session: &str, story: (&str, &[(&str, f64)]), start: i64) {
        let (name, plan) = story;
        let mut steps = Vec::new();
        let mut at = start;
        for (step, go_on) in plan {
            if !steps.is_empty() && self.rng.random::<f64>() >= *go_on {
                break;
            }
            steps.push(json!({"name": step, "at": at}));
            at += self.rng.random_range(10_000..120_000);
        }
        let outcome = if steps.len() == plan.len() {
            "completed"
        } else if self.rng.random::<f64>() < 0.15 {
            "failed"
        } else {
            "abandoned"
        };
        let id = format!("{name}-{session}");
        let first = json!({"story_id": id, "name": name, "user_id": user, "session_id": session,
            "started_at": start, "updated_at": start, "outcome": "in_progress", "steps": [steps[0]]});
        let last = json!({"story_id": id, "name": name, "user_id": user, "session_id": session,
            "started_at": start, "updated_at": at, "ended_at": at, "outcome": outcome, "steps": steps});
        let versions = if self.rng.random::<f64>() < 0.05 {
            [last, first]
        } else {
            [first, last]
        };
        for v in versions {
            self.add(Kind::Story, v, 0, 0, 0);
        }
    }

    /// Twice the app's average hourly traffic, five times over, in one hour: a push campaign.
    fn spike(&mut self) {
        let hours = i64::from(self.plan.days) * 24;
        let extra = (5 * self.plan.budget(self.app) / hours.max(1) as u64).max(300);
        let hour = self.plan.spike_hour_ms();
        let start_events = self.events;
        let mut k = 0;
        while self.events - start_events < extra {
            let at = hour + self.rng.random_range(0..HOUR_MS - 120_000);
            let (user, session) = (format!("u{}-push{k}", self.app), format!("push-{k}"));
            self.event(&user, &session, "push_open", at);
            self.event(&user, &session, "home", at + 30_000);
            k += 1;
        }
    }

    /// Exposures of the experiment (50/50), and conversions at the variant's true rate.
    fn experiment(&mut self) {
        let users = MIN_EXPOSED;
        for user in 0..users {
            let treatment = self.rng.random::<bool>();
            let (variant, rate) = if treatment {
                ("treatment", TREATMENT_RATE)
            } else {
                ("control", CONTROL_RATE)
            };
            let exposed =
                self.plan.start_ms() + self.rng.random_range(0..i64::from(self.plan.days) * DAY_MS);
            let exposed = exposed.min(self.plan.now_ms - 1);
            let user_id = self.user_id(user);
            let exposure = json!({"experiment": EXPERIMENT, "user_id": user_id, "variant": variant,
                "exposed_at": exposed, "updated_at": exposed, "converted": false});
            self.add(Kind::Exposure, exposure, 0, 0, 0);
            if self.rng.random::<f64>() < rate {
                let converted =
                    (exposed + self.rng.random_range(60_000..DAY_MS)).min(self.plan.now_ms);
                let conversion = json!({"experiment": EXPERIMENT, "user_id": user_id, "variant": variant,
                    "exposed_at": exposed, "updated_at": converted, "converted": true, "value": 24.9});
                self.add(Kind::Exposure, conversion, 0, 0, 0);
            }
        }
    }

    fn add(&mut self, kind: Kind, item: Value, fresh_events: usize, resent: usize, invalid: usize) {
        let p = &mut self.pending[kind.index()];
        p.items.push(item);
        p.fresh_events += fresh_events;
        p.resent += resent;
        p.invalid += invalid;
        if p.items.len() >= BATCH {
            self.flush(kind);
        }
    }

    fn flush(&mut self, kind: Kind) {
        let p = std::mem::take(&mut self.pending[kind.index()]);
        if p.items.is_empty() {
            return;
        }
        let body = json!({"sent_at": self.sent_at, "batch": p.items}).to_string();
        (self.emit)(Batch {
            app: self.app,
            kind,
            body,
            items: p.items.len(),
            fresh_events: p.fresh_events,
            resent: p.resent,
            invalid: p.invalid,
        });
    }

    fn flush_all(&mut self) {
        for copy in std::mem::take(&mut self.resend) {
            self.add(Kind::Event, copy, 0, 1, 0);
        }
        for kind in Kind::ALL {
            self.flush(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(events: u64) -> Plan {
        Plan {
            apps: 4,
            events,
            days: 14,
            seed: 7,
            now_ms: 1_795_773_600_000,
        }
    }

    fn simulate(plan: &Plan) -> Vec<Batch> {
        let mut out = Vec::new();
        for app in 0..plan.apps {
            AppSim::run(plan, app, &mut |b| out.push(b));
        }
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic_and_every_budget_is_met() {
        let p = plan(20_000);
        let (a, b) = (simulate(&p), simulate(&p));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.body == y.body));
        let fresh: usize = a.iter().map(|b| b.fresh_events).sum();
        assert!(fresh as u64 >= p.events, "{fresh}");
        let resent: usize = a.iter().map(|b| b.resent).sum();
        let invalid: usize = a.iter().map(|b| b.invalid).sum();
        let share = |n: usize| n as f64 / fresh as f64;
        assert!((0.005..0.02).contains(&share(resent)), "{resent}");
        assert!((0.005..0.02).contains(&share(invalid)), "{invalid}");
        assert!(a.iter().all(|b| b.items <= BATCH));
    }

    #[test]
    fn every_timestamp_is_inside_the_simulated_days() {
        let p = plan(5_000);
        for batch in simulate(&p) {
            let body: Value = serde_json::from_str(&batch.body).unwrap();
            for item in body["batch"].as_array().unwrap() {
                for field in ["timestamp", "started_at", "exposed_at", "updated_at"] {
                    if let Some(t) = item[field].as_i64() {
                        assert!(t >= p.start_ms() && t <= p.now_ms, "{field} {t}");
                    }
                }
            }
        }
    }
}
