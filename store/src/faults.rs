//! Fault injection, for tests and failure drills. Each port has a wrapper that consults an
//! [`Injector`] before every call: [`FaultyStore`] and [`FaultyLake`] here, and the queue's in
//! `cauce_ingest::queue::faults`. Faults come on a [`Schedule`] (by call number), or on command
//! (every write, or the writes of some apps, fail until healed: a full disk, an outage). Every
//! injected error is one that adapters meet in production and that callers must treat as
//! transient: [`StoreError::is_unavailable`] holds for each.

use std::collections::HashSet;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::lake::{Lake, Object};
use crate::model::{Kind, Record};
use crate::port::{BadRow, PutOutcome, RecordStore};

/// What an injected fault does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails at once, before the call does anything, as a full disk or an unreachable
    /// service does.
    Fail,
    /// Fails at once with the service's answer to too many requests.
    Throttle,
    /// Waits this long, then makes the call.
    Delay(Duration),
    /// Makes the call, then fails as a timeout does: the caller cannot tell that it happened,
    /// and must be able to retry it safely.
    LoseAnswer,
}

/// One rule of a schedule: the calls (numbered from 0 per wrapper) it strikes.
#[derive(Debug, Clone)]
struct Rule {
    calls: Range<u64>,
    every: u64,
    fault: Fault,
}

/// When faults strike, by call number; the first rule that matches a call wins.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    rules: Vec<Rule>,
}

impl Schedule {
    /// No faults.
    pub fn new() -> Self {
        Schedule::default()
    }

    /// Every call numbered in `calls` gets `fault`.
    pub fn during(mut self, calls: Range<u64>, fault: Fault) -> Self {
        self.rules.push(Rule {
            calls,
            every: 1,
            fault,
        });
        self
    }

    /// Every `n`-th call (the `n`-th, the `2n`-th, …) gets `fault`.
    pub fn every(mut self, n: u64, fault: Fault) -> Self {
        self.rules.push(Rule {
            calls: 0..u64::MAX,
            every: n.max(1),
            fault,
        });
        self
    }

    fn fault(&self, call: u64) -> Option<Fault> {
        self.rules
            .iter()
            .find(|r| r.calls.contains(&call) && (call + 1) % r.every == 0)
            .map(|r| r.fault)
    }
}

/// Which writes fail on command: none, every write, or those that carry records of some apps.
#[derive(Debug, Default)]
enum Failing {
    #[default]
    Nothing,
    Everything,
    Apps(HashSet<String>),
}

/// What a wrapper consults before each call: the schedule, the commanded failures, and counts.
#[derive(Debug, Default)]
pub struct Injector {
    schedule: Mutex<Schedule>,
    failing: Mutex<Failing>,
    calls: AtomicU64,
    injected: AtomicU64,
}

impl Injector {
    /// Faults on `schedule`, and none on command until told.
    pub fn new(schedule: Schedule) -> Self {
        Injector {
            schedule: Mutex::new(schedule),
            ..Injector::default()
        }
    }

    /// Replaces the schedule (call numbers go on counting).
    pub fn set_schedule(&self, schedule: Schedule) {
        *lock(&self.schedule) = schedule;
    }

    /// Every write fails from now on.
    pub fn fail_everything(&self) {
        *lock(&self.failing) = Failing::Everything;
    }

    /// Writes that carry a record (or rejected row, or message) of `app_id` fail from now on.
    pub fn fail_app(&self, app_id: &str) {
        let mut failing = lock(&self.failing);
        match &mut *failing {
            Failing::Apps(apps) => {
                apps.insert(app_id.to_owned());
            }
            other => *other = Failing::Apps(HashSet::from([app_id.to_owned()])),
        }
    }

    /// Commanded failures stop (the schedule goes on).
    pub fn heal(&self) {
        *lock(&self.failing) = Failing::Nothing;
    }

    /// How many calls went through the wrapper.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many calls failed (or lost their answer) by injection.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Decides one call. `writes` names the apps a write touches (`None` for a read, which
    /// commanded failures spare). Delays are slept here.
    async fn strike(&self, writes: Option<&[String]>) -> Option<Fault> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let commanded = writes.is_some_and(|apps| match &*lock(&self.failing) {
            Failing::Nothing => false,
            Failing::Everything => true,
            Failing::Apps(failing) => apps.iter().any(|a| failing.contains(a)),
        });
        let fault = if commanded {
            Some(Fault::Fail)
        } else {
            lock(&self.schedule).fault(call)
        };
        if let Some(Fault::Delay(d)) = fault {
            tokio::time::sleep(d).await;
            return None;
        }
        if fault.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }

    /// Runs `call` under the faults: refused (with `error`'s error), delayed, or made and its
    /// answer replaced by `error`'s. `writes` as for a write (the apps it touches) or `None`.
    pub async fn run<T, E, F>(
        &self,
        writes: Option<&[String]>,
        call: F,
        error: impl FnOnce(Fault) -> E,
    ) -> std::result::Result<T, E>
    where
        F: Future<Output = std::result::Result<T, E>>,
    {
        match self.strike(writes).await {
            None => call.await,
            Some(Fault::LoseAnswer) => {
                call.await?;
                Err(error(Fault::LoseAnswer))
            }
            Some(fault) => Err(error(fault)),
        }
    }
}

/// Calls `f` until it succeeds, as a caller that retries does, for tests and drills: panics
/// on a failure that `transient` says no retry mends, or after 50 tries.
pub async fn until_ok<T, E, Fut>(
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut f: impl FnMut() -> Fut,
) -> T
where
    E: std::fmt::Display,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    for _ in 0..50 {
        match f().await {
            Ok(v) => return v,
            Err(e) => assert!(transient(&e), "{what}: {e} must be transient"),
        }
    }
    panic!("{what}: still failing after 50 tries")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The OS or service error an injected fault reads as.
pub fn injected(fault: Fault) -> std::io::Error {
    use std::io::{Error, ErrorKind};
    match fault {
        Fault::Throttle => Error::other("throttled: too many requests (injected)"),
        Fault::LoseAnswer => Error::new(
            ErrorKind::TimedOut,
            "timed out waiting for the answer (injected): the call may have taken effect",
        ),
        Fault::Fail | Fault::Delay(_) => {
            Error::new(ErrorKind::StorageFull, "no space left on device (injected)")
        }
    }
}

/// A record store under injected faults. Commanded failures strike writes only: a full disk
/// still reads.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    faults: Injector,
}

impl<S: RecordStore> FaultyStore<S> {
    /// Wraps `inner`; nothing fails until told to.
    pub fn new(inner: S) -> Self {
        Self::with_schedule(inner, Schedule::new())
    }

    /// Wraps `inner` with faults on `schedule`.
    pub fn with_schedule(inner: S, schedule: Schedule) -> Self {
        FaultyStore {
            inner,
            faults: Injector::new(schedule),
        }
    }

    /// The faults: schedule, commands and counts.
    pub fn faults(&self) -> &Injector {
        &self.faults
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// The distinct apps of a write, for commanded failures.
pub fn apps<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut apps: Vec<String> = Vec::new();
    for id in ids {
        if !apps.iter().any(|a| a == id) {
            apps.push(id.to_owned());
        }
    }
    apps
}

/// A store's error for an injected fault in `operation`.
fn store_error(operation: &'static str) -> impl FnOnce(Fault) -> StoreError {
    move |fault| match fault {
        Fault::Fail | Fault::Delay(_) => StoreError::Io {
            path: "(injected fault)".into(),
            source: injected(fault),
        },
        Fault::Throttle | Fault::LoseAnswer => StoreError::Dynamo {
            operation,
            transient: true,
            source: Box::new(injected(fault)),
        },
    }
}

#[async_trait]
impl<S: RecordStore> RecordStore for FaultyStore<S> {
    async fn put(&self, records: Vec<Record>) -> Result<Vec<PutOutcome>> {
        let apps = apps(records.iter().map(Record::app_id));
        let call = self.inner.put(records);
        self.faults.run(Some(&apps), call, store_error("put")).await
    }

    async fn get(&self, kind: Kind, app_id: &str, key: &str) -> Result<Option<Record>> {
        let call = self.inner.get(kind, app_id, key);
        self.faults.run(None, call, store_error("get")).await
    }

    async fn timeline(&self, app_id: &str, user_id: &str, limit: usize) -> Result<Vec<Record>> {
        let call = self.inner.timeline(app_id, user_id, limit);
        self.faults.run(None, call, store_error("timeline")).await
    }

    async fn archive_rejected(&self, rows: Vec<BadRow>) -> Result<()> {
        let apps = apps(rows.iter().map(|r| r.app_id.as_str()));
        let call = self.inner.archive_rejected(rows);
        self.faults
            .run(Some(&apps), call, store_error("archive_rejected"))
            .await
    }
}

/// A lake under injected faults. Commanded failures strike writes (put, upload, delete).
#[derive(Debug)]
pub struct FaultyLake<L> {
    inner: L,
    faults: Injector,
}

impl<L: Lake> FaultyLake<L> {
    /// Wraps `inner` with faults on `schedule`.
    pub fn new(inner: L, schedule: Schedule) -> Self {
        FaultyLake {
            inner,
            faults: Injector::new(schedule),
        }
    }

    /// The faults: schedule, commands and counts.
    pub fn faults(&self) -> &Injector {
        &self.faults
    }

    /// The wrapped lake.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

/// A lake's error for an injected fault in `operation` on `key`.
fn lake_error(operation: &'static str, key: &str) -> impl FnOnce(Fault) -> StoreError {
    let key = key.to_owned();
    move |fault| match fault {
        Fault::Fail | Fault::Delay(_) => StoreError::Io {
            path: key,
            source: injected(fault),
        },
        Fault::Throttle | Fault::LoseAnswer => StoreError::S3 {
            operation,
            key,
            source: Box::new(injected(fault)),
        },
    }
}

/// A lake write touches no app that a wrapper can tell: only "fail everything" strikes it.
const LAKE_WRITE: Option<&[String]> = Some(&[]);

#[async_trait]
impl<L: Lake> Lake for FaultyLake<L> {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let call = self.inner.put(key, bytes);
        let error = lake_error("PutObject", key);
        self.faults.run(LAKE_WRITE, call, error).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let call = self.inner.get(key);
        self.faults
            .run(None, call, lake_error("GetObject", key))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        let call = self.inner.list(prefix);
        let error = lake_error("ListObjectsV2", prefix);
        self.faults.run(None, call, error).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let call = self.inner.delete(key);
        let error = lake_error("DeleteObject", key);
        self.faults.run(LAKE_WRITE, call, error).await
    }

    async fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        let call = self.inner.download(key, dest);
        self.faults
            .run(None, call, lake_error("GetObject", key))
            .await
    }

    async fn upload(&self, key: &str, src: &Path) -> Result<()> {
        let call = self.inner.upload(key, src);
        let error = lake_error("PutObject", key);
        self.faults.run(LAKE_WRITE, call, error).await
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}
