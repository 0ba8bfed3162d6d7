//! A short-lived cache of key lookups.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{KeyInfo, KeyLookup};
use crate::error::Result;

/// How many unknown keys are remembered at most; the oldest is forgotten first.
pub const MAX_NEGATIVE: usize = 10_000;
/// How many known keys are remembered at most before expired entries are swept.
const MAX_POSITIVE: usize = 100_000;

/// A short-lived cache in front of a [`KeyLookup`], so that the hot path reads the key store
/// about once per key and TTL, and a disabled or rotated key stops working within the TTL.
///
/// Unknown keys are cached too (so that a client retrying a bad key costs no lookup each time),
/// in a separate, bounded set: random keys can only push out the oldest unknown ones, never the
/// known keys, and the cache is never cleared wholesale to make room.
pub struct CachedKeys {
    inner: Arc<dyn KeyLookup>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    known: HashMap<String, (Instant, KeyInfo)>,
    unknown: HashMap<String, Instant>,
    /// Unknown keys in the order they were cached, with the time they were cached then.
    order: VecDeque<(String, Instant)>,
}

impl Entries {
    fn remember(&mut self, hash: &str, info: Option<KeyInfo>, ttl: Duration) {
        let now = Instant::now();
        match info {
            Some(info) => {
                self.unknown.remove(hash);
                if self.known.len() >= MAX_POSITIVE {
                    self.known.retain(|_, (at, _)| at.elapsed() < ttl);
                }
                self.known.insert(hash.to_owned(), (now, info));
            }
            None => {
                self.known.remove(hash);
                self.unknown.insert(hash.to_owned(), now);
                self.order.push_back((hash.to_owned(), now));
                while self.unknown.len() > MAX_NEGATIVE {
                    let Some((old, at)) = self.order.pop_front() else {
                        break;
                    };
                    // Only the entry this queue slot was made for; a re-cached key has a newer one.
                    if self.unknown.get(&old) == Some(&at) {
                        self.unknown.remove(&old);
                    }
                }
                if self.order.len() > 2 * MAX_NEGATIVE {
                    let unknown = &self.unknown;
                    self.order.retain(|(k, at)| unknown.get(k) == Some(at));
                }
            }
        }
    }
}

impl CachedKeys {
    /// Caches lookups of `inner` for `ttl`.
    pub fn new(inner: Arc<dyn KeyLookup>, ttl: Duration) -> Self {
        CachedKeys {
            inner,
            ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every cached entry (after an admin change in this process).
    pub fn clear(&self) {
        *self.entries() = Entries::default();
    }

    /// What the cache holds for a key and is still fresh, without asking the key store:
    /// `Some(Some(info))` for a known key, `Some(None)` for an unknown one.
    fn cached(&self, key_hash: &str) -> Option<Option<KeyInfo>> {
        let entries = self.entries();
        if let Some((at, info)) = entries.known.get(key_hash) {
            return (at.elapsed() < self.ttl).then(|| Some(info.clone()));
        }
        let at = entries.unknown.get(key_hash)?;
        (at.elapsed() < self.ttl).then_some(None)
    }

    /// Whether the key was found valid by a lookup not long ago (fresh or not: until swept), so
    /// that a client whose address is held back for others' failures keeps working.
    pub fn is_known(&self, key_hash: &str) -> bool {
        self.entries().known.contains_key(key_hash)
    }

    /// How many unknown keys are cached.
    pub fn unknown_len(&self) -> usize {
        self.entries().unknown.len()
    }
}

#[async_trait]
impl KeyLookup for CachedKeys {
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
        if let Some(info) = self.cached(key_hash) {
            return Ok(info);
        }
        let info = self.inner.lookup(key_hash).await?;
        self.entries().remember(key_hash, info.clone(), self.ttl);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    /// A key store that knows one key and counts its lookups.
    struct OneKey(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl KeyLookup for OneKey {
        async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok((key_hash == "good").then(|| KeyInfo {
                app_id: "app".into(),
                role: Role::Ingest,
                disabled: false,
                rate_limit: None,
            }))
        }
    }

    #[tokio::test]
    async fn unknown_keys_are_bounded_and_never_push_out_known_ones() {
        let store = Arc::new(OneKey(Default::default()));
        let cache = CachedKeys::new(store.clone(), Duration::from_secs(60));
        assert!(cache.lookup("good").await.unwrap().is_some());
        for i in 0..MAX_NEGATIVE + 500 {
            assert!(cache.lookup(&format!("bad-{i}")).await.unwrap().is_none());
        }
        assert_eq!(cache.unknown_len(), MAX_NEGATIVE);
        let looked_up = store.0.load(std::sync::atomic::Ordering::Relaxed);
        // The known key, the newest unknown ones: still cached, no lookup.
        assert!(cache.lookup("good").await.unwrap().is_some());
        let newest = format!("bad-{}", MAX_NEGATIVE + 499);
        assert!(cache.lookup(&newest).await.unwrap().is_none());
        assert_eq!(
            store.0.load(std::sync::atomic::Ordering::Relaxed),
            looked_up
        );
        // The oldest unknown one was forgotten: asked again.
        assert!(cache.lookup("bad-0").await.unwrap().is_none());
        assert_eq!(
            store.0.load(std::sync::atomic::Ordering::Relaxed),
            looked_up + 1
        );
        assert!(cache.is_known("good") && !cache.is_known("bad-1"));
    }
}
