//! A short-lived cache of key lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{KeyInfo, KeyLookup};
use crate::error::Result;

/// A short-lived cache in front of a [`KeyLookup`], so that the hot path reads the key store
/// about once per key and TTL, and a disabled or rotated key stops working within the TTL.
pub struct CachedKeys {
    inner: Arc<dyn KeyLookup>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<KeyInfo>)>>,
}

impl CachedKeys {
    /// Caches lookups of `inner` for `ttl`.
    pub fn new(inner: Arc<dyn KeyLookup>, ttl: Duration) -> Self {
        CachedKeys {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached entry (after an admin change in this process).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[async_trait]
impl KeyLookup for CachedKeys {
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
        if let Some((at, info)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_hash)
        {
            if at.elapsed() < self.ttl {
                return Ok(info.clone());
            }
        }
        let info = self.inner.lookup(key_hash).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(key_hash.to_owned(), (Instant::now(), info.clone()));
        Ok(info)
    }
}
