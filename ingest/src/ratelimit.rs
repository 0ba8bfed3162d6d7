//! Per-key rate limits: a token bucket per API key (GCRA, from `governor`), whose rate is the
//! app's own setting or the default; and [`AuthFailures`], a leaky bucket per client address that
//! only failed authentications fill.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The token buckets of every key seen.
pub struct RateLimits {
    default_per_second: NonZeroU32,
    buckets: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("default_per_second", &self.default_per_second)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Limits with a default of `per_second` requests a second (and as large a burst).
    pub fn new(default_per_second: u32) -> Self {
        RateLimits {
            default_per_second: NonZeroU32::new(default_per_second).unwrap_or(NonZeroU32::MIN),
            buckets: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `key`. `Err(wait)` tells how long until the next one.
    pub fn check(&self, key: &str, per_second: Option<u32>) -> Result<(), Duration> {
        let rate = per_second
            .and_then(NonZeroU32::new)
            .unwrap_or(self.default_per_second);
        let limiter = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            match buckets.get(key) {
                Some((r, l)) if *r == rate.get() => Arc::clone(l),
                _ => {
                    let l = Arc::new(RateLimiter::direct(Quota::per_second(rate)));
                    buckets.insert(key.to_owned(), (rate.get(), Arc::clone(&l)));
                    l
                }
            }
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The most client addresses whose failures are remembered; past it, addresses whose debt has
/// drained are forgotten (and, if every one still owes, the least indebted half).
const MAX_CLIENTS: usize = 100_000;

/// Failed authentications per client address, as a leaky bucket: each failure adds one, the
/// level drains at `per_minute`, and an address whose level reaches `per_minute` is refused
/// until it drains below. Only failures count, so a busy client with a good key is never held
/// back by it.
pub struct AuthFailures {
    per_minute: u32,
    clients: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl std::fmt::Debug for AuthFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailures")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl AuthFailures {
    /// Allows `per_minute` failed authentications a minute per address (and as many at once).
    pub fn new(per_minute: u32) -> Self {
        AuthFailures {
            per_minute: per_minute.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn drained(&self, (level, at): (f64, Instant), now: Instant) -> f64 {
        let rate = f64::from(self.per_minute) / 60.0;
        (level - now.duration_since(at).as_secs_f64() * rate).max(0.0)
    }

    /// `Err(wait)` when `addr` has failed too often: how long until it may try again.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let Some(&entry) = clients.get(&addr) else {
            return Ok(());
        };
        // Room for one more failure, or wait until the level drains to make some.
        let level = self.drained(entry, now);
        let cap = f64::from(self.per_minute);
        if level + 1.0 <= cap {
            return Ok(());
        }
        let rate = cap / 60.0;
        Err(Duration::from_secs_f64((level + 1.0 - cap) / rate))
    }

    /// Counts one failed authentication from `addr`.
    pub fn failed(&self, addr: IpAddr) {
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let level = clients
            .get(&addr)
            .map_or(0.0, |&entry| self.drained(entry, now));
        clients.insert(addr, (level + 1.0, now));
        if clients.len() > MAX_CLIENTS {
            clients.retain(|_, entry| self.drained(*entry, now) > 0.0);
        }
        if clients.len() > MAX_CLIENTS {
            let mut levels: Vec<f64> = clients.values().map(|e| self.drained(*e, now)).collect();
            let mid = levels.len() / 2;
            let (_, median, _) = levels.select_nth_unstable_by(mid, f64::total_cmp);
            let median = *median;
            clients.retain(|_, entry| self.drained(*entry, now) > median);
        }
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let limits = RateLimits::new(1000);
        for _ in 0..3 {
            assert!(limits.check("k", Some(3)).is_ok());
        }
        let wait = limits.check("k", Some(3)).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334));
        assert!(limits.check("other", Some(3)).is_ok());
    }

    #[test]
    fn only_failures_fill_an_address_bucket_and_it_drains() {
        let failures = AuthFailures::new(3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(failures.check(a).is_ok());
            failures.failed(a);
        }
        let wait = failures.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            failures.check(b).is_ok(),
            "another address is not held back"
        );
    }

    #[test]
    fn remembered_addresses_stay_bounded() {
        // One a minute: no address drains during the test, so the least indebted half goes.
        let failures = AuthFailures::new(1);
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            failures.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(failures.len() <= MAX_CLIENTS, "{}", failures.len());
        assert!(failures.len() >= MAX_CLIENTS / 2 - 1);
    }
}
