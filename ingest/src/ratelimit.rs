//! Per-key rate limits: a token bucket per API key (GCRA, from `governor`), whose rate is the
//! app's own setting or the default.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}
