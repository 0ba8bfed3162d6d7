//! Fault injection, for tests and failure drills: a [`RecordStore`] that wraps a real one and
//! fails on command, as a store does when its disk is full or its service throttles: fast, and
//! with an error the writer must treat as transient.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Result, StoreError};
use crate::model::{Kind, Record};
use crate::port::{BadRow, PutOutcome, RecordStore};

/// Which writes fail: every write, or those that carry records of some apps.
#[derive(Debug, Default)]
enum Failing {
    #[default]
    Nothing,
    Everything,
    Apps(HashSet<String>),
}

/// A store that fails its writes on command; reads always go through.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    failing: Mutex<Failing>,
    failed: AtomicU64,
}

impl<S: RecordStore> FaultyStore<S> {
    /// Wraps `inner`; nothing fails until told to.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            failing: Mutex::new(Failing::Nothing),
            failed: AtomicU64::new(0),
        }
    }

    /// Every write fails from now on.
    pub fn fail_everything(&self) {
        *self.lock() = Failing::Everything;
    }

    /// Writes that carry a record (or rejected row) of `app_id` fail from now on.
    pub fn fail_app(&self, app_id: &str) {
        let mut failing = self.lock();
        match &mut *failing {
            Failing::Apps(apps) => {
                apps.insert(app_id.to_owned());
            }
            other => *other = Failing::Apps(HashSet::from([app_id.to_owned()])),
        }
    }

    /// Writes work again.
    pub fn heal(&self) {
        *self.lock() = Failing::Nothing;
    }

    /// How many writes have failed so far.
    pub fn failed_writes(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failing> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails a write that touches `apps`, as a full disk would.
    fn check<'a>(&self, mut apps: impl Iterator<Item = &'a str>) -> Result<()> {
        let fails = match &*self.lock() {
            Failing::Nothing => false,
            Failing::Everything => true,
            Failing::Apps(failing) => apps.any(|a| failing.contains(a)),
        };
        if !fails {
            return Ok(());
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::Io {
            path: "(injected fault)".into(),
            source: std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"),
        })
    }
}

#[async_trait]
impl<S: RecordStore> RecordStore for FaultyStore<S> {
    async fn put(&self, records: Vec<Record>) -> Result<Vec<PutOutcome>> {
        self.check(records.iter().map(Record::app_id))?;
        self.inner.put(records).await
    }

    async fn get(&self, kind: Kind, app_id: &str, key: &str) -> Result<Option<Record>> {
        self.inner.get(kind, app_id, key).await
    }

    async fn timeline(&self, app_id: &str, user_id: &str, limit: usize) -> Result<Vec<Record>> {
        self.inner.timeline(app_id, user_id, limit).await
    }

    async fn archive_rejected(&self, rows: Vec<BadRow>) -> Result<()> {
        self.check(rows.iter().map(|r| r.app_id.as_str()))?;
        self.inner.archive_rejected(rows).await
    }
}
