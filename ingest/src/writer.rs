//! The writer: queue messages → record store, with per-message outcomes.
//!
//! Order holds within a message group; groups are independent, so one group's trouble never
//! holds up another's. All the decodable messages of a batch are first written in one store
//! call; when that fails, they are written one at a time, in order, to learn what failed and why:
//!
//! * **Poison**: a message that can never be stored, because it cannot be decoded or the store
//!   refuses its records for good (a constraint, an item the service rejects). It goes to the
//!   dead letters at once, with its reason, and its group goes on.
//! * **Transient**: the store is unavailable, throttled, timed out or out of disk
//!   ([`crate::IngestError::is_unavailable`]). The message and every later message of its group
//!   are `Failed`: they are delivered again after a back-off, and a transient failure never
//!   counts toward dead-lettering, however long the outage lasts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use cauce_store::{BadRow, Kind, PutOutcome, Record, RecordStore};

use crate::error::Result;
use crate::queue::{Delivery, Envelope, Queue};

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored: ack it.
    Done,
    /// Moved to the dead letters with its reason (already removed from the queue).
    DeadLettered,
    /// Not stored, for a transient reason (or an earlier message of its group was not): it
    /// must be delivered again.
    Failed,
}

/// Counts of what the store did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// First copies stored.
    pub inserted: u64,
    /// Newer versions that replaced older ones.
    pub replaced: u64,
    /// Later copies of events already stored.
    pub duplicates: u64,
    /// Versions no newer than the stored one.
    pub stale: u64,
    /// Rejected items archived.
    pub archived: u64,
}

impl Counts {
    fn add(&mut self, outcomes: &[PutOutcome]) {
        for o in outcomes {
            match o {
                PutOutcome::Inserted => self.inserted += 1,
                PutOutcome::Replaced => self.replaced += 1,
                PutOutcome::Duplicate => self.duplicates += 1,
                PutOutcome::Stale => self.stale += 1,
            }
        }
    }
}

/// The result of one batch: a status per message, in order, and the store's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One status per delivery, in the order given.
    pub statuses: Vec<Status>,
    /// What the store did.
    pub counts: Counts,
    /// Why the first failed message failed (a transient reason).
    pub error: Option<String>,
}

struct Decoded {
    kind: Kind,
    app_id: String,
    records: Vec<Record>,
    rejected: Vec<BadRow>,
}

fn decode(d: &Delivery) -> Result<Decoded> {
    let env = Envelope::decode(&d.body)?;
    Ok(Decoded {
        kind: env.kind,
        app_id: env.app_id.clone(),
        records: env.records(&d.sequence)?,
        rejected: env.rejected,
    })
}

/// Counts the items stored and deduplicated per kind and app: `outcomes` are the store's, in
/// the order of the messages' records (`sources`: each message's kind, app and record count).
fn count_outcomes(sources: &[(Kind, String, usize)], outcomes: &[PutOutcome]) {
    use cauce_store::metrics::{app_label, ITEMS_DEDUPLICATED, ITEMS_STORED};
    let mut rest = outcomes;
    for (kind, app_id, n) in sources {
        let (mine, after) = rest.split_at((*n).min(rest.len()));
        rest = after;
        let stored = mine
            .iter()
            .filter(|o| matches!(o, PutOutcome::Inserted | PutOutcome::Replaced))
            .count();
        let duplicates = mine
            .iter()
            .filter(|o| matches!(o, PutOutcome::Duplicate))
            .count();
        let (kind, app) = (kind.plural(), app_label(app_id));
        if stored > 0 {
            metrics::counter!(ITEMS_STORED, "kind" => kind, "app" => app.clone())
                .increment(stored as u64);
        }
        if duplicates > 0 {
            metrics::counter!(ITEMS_DEDUPLICATED, "kind" => kind, "app" => app)
                .increment(duplicates as u64);
        }
    }
}

async fn store_all(
    store: &dyn RecordStore,
    items: impl IntoIterator<Item = Decoded>,
    counts: &mut Counts,
) -> Result<()> {
    let (mut records, mut rejected, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    for d in items {
        sources.push((d.kind, d.app_id, d.records.len()));
        records.extend(d.records);
        rejected.extend(d.rejected);
    }
    let archived = rejected.len() as u64;
    if !records.is_empty() {
        let outcomes = store.put(records).await?;
        counts.add(&outcomes);
        count_outcomes(&sources, &outcomes);
    }
    if archived > 0 {
        store.archive_rejected(rejected).await?;
        counts.archived += archived;
    }
    Ok(())
}

/// Writes a batch of deliveries to the store. See the module docs for the rules.
pub async fn write_batch(
    deliveries: &[Delivery],
    store: &dyn RecordStore,
    queue: &dyn Queue,
) -> Report {
    let mut batch = Batch {
        queue,
        deliveries,
        report: Report {
            statuses: vec![Status::Failed; deliveries.len()],
            counts: Counts::default(),
            error: None,
        },
        held: HashSet::new(),
    };
    metrics::histogram!(cauce_store::metrics::WRITER_BATCH).record(deliveries.len() as f64);
    let mut decoded: Vec<Option<Decoded>> = Vec::with_capacity(deliveries.len());
    for (i, d) in deliveries.iter().enumerate() {
        match decode(d) {
            Ok(x) => decoded.push(Some(x)),
            Err(e) => {
                decoded.push(None);
                batch.poison(i, format!("undecodable message: {e}")).await;
            }
        }
    }
    // Every decodable message whose group goes on, in one store call.
    let run: Vec<usize> = (0..deliveries.len())
        .filter(|&i| decoded[i].is_some() && !batch.is_held(i))
        .collect();
    let all = run.iter().filter_map(|&i| decoded[i].take());
    if store_all(store, all, &mut batch.report.counts)
        .await
        .is_ok()
    {
        for &i in &run {
            batch.report.statuses[i] = Status::Done;
        }
        return batch.report;
    }
    // One at a time, to learn which failed and why (a message written twice is harmless:
    // events keep their first copy, versions must be newer).
    for &i in &run {
        if batch.is_held(i) {
            continue;
        }
        let one = decode(&deliveries[i]).into_iter();
        match store_all(store, one, &mut batch.report.counts).await {
            Ok(()) => batch.report.statuses[i] = Status::Done,
            Err(e) if e.is_unavailable() => batch.hold(i, format!("store unavailable: {e}")),
            Err(e) => batch.poison(i, format!("the store refuses it: {e}")).await,
        }
    }
    batch.report
}

/// A batch being written: its report, and the groups held back by a transient failure.
struct Batch<'a> {
    queue: &'a dyn Queue,
    deliveries: &'a [Delivery],
    report: Report,
    held: HashSet<&'a str>,
}

impl<'a> Batch<'a> {
    /// Whether an earlier message of this message's group failed: then it waits too.
    fn is_held(&self, i: usize) -> bool {
        self.held.contains(self.deliveries[i].group.as_str())
    }

    /// Message `i` failed for a transient reason: it and the rest of its group are retried.
    fn hold(&mut self, i: usize, reason: String) {
        let d = &self.deliveries[i];
        tracing::warn!(message_id = %d.id, group = %d.group, error = %reason, "Write failed; the message will be retried.");
        metrics::counter!(cauce_store::metrics::WRITER_FAILURES, "reason" => "transient")
            .increment(1);
        self.held.insert(&self.deliveries[i].group);
        self.report.error.get_or_insert(reason);
    }

    /// Message `i` can never be stored: to the dead letters, unless its group already waits.
    async fn poison(&mut self, i: usize, reason: String) {
        if self.is_held(i) {
            return;
        }
        metrics::counter!(cauce_store::metrics::WRITER_FAILURES, "reason" => "poison").increment(1);
        if dead_letter(self.queue, &self.deliveries[i], &reason).await {
            self.report.statuses[i] = Status::DeadLettered;
        } else {
            self.hold(i, reason);
        }
    }
}

async fn dead_letter(queue: &dyn Queue, d: &Delivery, reason: &str) -> bool {
    match queue.dead_letter(d, reason).await {
        Ok(()) => {
            metrics::counter!(cauce_store::metrics::DEAD_LETTERED).increment(1);
            tracing::warn!(message_id = %d.id, group = %d.group, reason, "Message dead-lettered.");
            true
        }
        Err(e) => {
            tracing::error!(message_id = %d.id, error = %e, "Dead-lettering failed.");
            false
        }
    }
}

/// How long a message group waits after a transient failure: doubling from `first` with each
/// failure in a row, up to `max`, each wait drawn between half and all of that (jitter), so that
/// groups that failed together do not all come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (1 for the first), jitter included.
    pub fn wait(&self, failures: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled
            .min(self.max)
            .mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Settings of the polling writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// Messages taken per receive.
    pub batch: usize,
    /// Sleep when the queue is empty.
    pub idle: Duration,
    /// The least time between the starts of two receives while the queue does not fill a whole
    /// `batch`: the messages that arrive meanwhile are written in one transaction instead of
    /// several. A store whose cost is per transaction and per page it dirties (SQLite's random
    /// index inserts: a timeline index entry per event) writes an event for a fraction of the
    /// cost in a large transaction; the price is up to this much more lag. Zero for SQS, whose
    /// receive is capped at 10 messages anyway.
    pub linger: Duration,
    /// How a message group waits after a transient failure.
    pub backoff: Backoff,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            batch: 256,
            idle: Duration::from_millis(20),
            linger: Duration::ZERO,
            backoff: Backoff::default(),
        }
    }
}

/// Polls the queue and writes to the store until the task is dropped: the embedded writer, and
/// the long-running worker for containers. A group whose write failed for a transient reason
/// is released to come back after its back-off; the others go on meanwhile.
pub async fn poll(queue: Arc<dyn Queue>, store: Arc<dyn RecordStore>, config: PollConfig) {
    poll_until(queue, store, config, std::future::pending()).await;
}

/// [`poll`] until `stop` completes, then finishes the batch in hand, acknowledges what it
/// stored and returns: a stop that leaves no write half done and no stored message to be
/// delivered again.
pub async fn poll_until(
    queue: Arc<dyn Queue>,
    store: Arc<dyn RecordStore>,
    config: PollConfig,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    // Transient failures in a row, per message group.
    let mut failures: HashMap<String, u32> = HashMap::new();
    // What the last batch stored: acknowledged together with the next receive, so that the
    // embedded queue does both in one transaction (one commit, one fsync) and SQS in parallel.
    // The ack is asked first, so a group's acknowledged messages make way for its next ones.
    let mut done: Vec<Delivery> = Vec::new();
    // When the last receive started, and whether it filled a whole batch.
    let mut last: Option<(tokio::time::Instant, bool)> = None;
    loop {
        // The stop is looked at before each round, also when full batches leave no pause.
        let linger = async {
            if let Some((started, false)) = last {
                tokio::time::sleep_until(started + config.linger).await;
            }
        };
        tokio::select! {
            biased;
            () = &mut stop => break,
            () = linger => {}
        }
        let started = tokio::time::Instant::now();
        let (acked, received) =
            tokio::join!(ack(queue.as_ref(), &done), queue.receive(config.batch));
        if acked {
            done.clear();
        }
        let deliveries = match received {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "Queue receive failed.");
                tokio::time::sleep(config.idle * 10).await;
                continue;
            }
        };
        last = Some((started, deliveries.len() >= config.batch));
        if deliveries.is_empty() {
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(config.idle) => continue,
            }
        }
        let report = write_batch(&deliveries, store.as_ref(), queue.as_ref()).await;
        let mut failed: HashMap<&str, Vec<Delivery>> = HashMap::new();
        for (d, status) in deliveries.iter().zip(&report.statuses) {
            match status {
                Status::Done => {
                    failures.remove(&d.group);
                    done.push(d.clone());
                }
                Status::Failed => failed.entry(&d.group).or_default().push(d.clone()),
                Status::DeadLettered => {}
            }
        }
        let reason = report.error.as_deref().unwrap_or("not processed");
        for (group, messages) in failed {
            let n = failures.entry(group.to_owned()).or_default();
            *n += 1;
            let wait = config.backoff.wait(*n);
            tracing::info!(
                group,
                failures = *n,
                wait_ms = wait.as_millis() as u64,
                "Group backs off."
            );
            if let Err(e) = queue.release(&messages, reason, wait).await {
                tracing::error!(error = %e, "Queue release failed.");
            }
        }
    }
    ack(queue.as_ref(), &done).await;
}

/// Acknowledges `done` (nothing to do when it is empty): whether that worked. On a failure the
/// messages are delivered again after their visibility timeout, and stored again harmlessly
/// (events keep their first copy, versions must be newer); the next round tries the ack again.
async fn ack(queue: &dyn Queue, done: &[Delivery]) -> bool {
    if done.is_empty() {
        return true;
    }
    match queue.ack(done).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "Queue ack failed; trying again with the next batch.");
            false
        }
    }
}
