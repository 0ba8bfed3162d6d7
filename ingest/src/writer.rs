//! The writer: queue messages → record store, with per-message outcomes.
//!
//! Messages are handled in order. Consecutive good messages are written in one store call; when
//! that fails, they are written one by one to find the culprit. A message that cannot be decoded
//! is poison: it goes to the dead letters at once, with its reason. A message whose write fails
//! is retried (its status is `Failed`, and so is every message after it, because FIFO order must
//! hold) until it has been received `max_receives` times; then it is dead-lettered with the
//! store's error, so that it never blocks its group forever.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use cauce_store::{BadRow, PutOutcome, Record, RecordStore};

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
    /// Not stored: it must be delivered again.
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
    /// Why the first failed message failed.
    pub error: Option<String>,
}

struct Decoded {
    records: Vec<Record>,
    rejected: Vec<BadRow>,
}

fn decode(d: &Delivery) -> Result<Decoded> {
    let env = Envelope::decode(&d.body)?;
    Ok(Decoded {
        records: env.records(&d.sequence)?,
        rejected: env.rejected,
    })
}

async fn store_all(
    store: &dyn RecordStore,
    items: impl IntoIterator<Item = Decoded>,
    counts: &mut Counts,
) -> Result<()> {
    let (mut records, mut rejected) = (Vec::new(), Vec::new());
    for d in items {
        records.extend(d.records);
        rejected.extend(d.rejected);
    }
    let archived = rejected.len() as u64;
    if !records.is_empty() {
        let outcomes = store.put(records).await?;
        counts.add(&outcomes);
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
    max_receives: u32,
) -> Report {
    let mut report = Report {
        statuses: vec![Status::Failed; deliveries.len()],
        counts: Counts::default(),
        error: None,
    };
    let mut decoded: Vec<Option<Result<Decoded>>> =
        deliveries.iter().map(|d| Some(decode(d))).collect();
    let mut i = 0;
    while i < deliveries.len() {
        if let Some(Err(e)) = &decoded[i] {
            // A poison message: it can never be decoded.
            let reason = format!("undecodable message: {e}");
            if !dead_letter(queue, &deliveries[i], &reason).await {
                report.error = Some(reason);
                return report;
            }
            report.statuses[i] = Status::DeadLettered;
            i += 1;
            continue;
        }
        // The run of decodable messages starting at i, written in one store call.
        let end = (i..deliveries.len())
            .find(|&j| matches!(decoded[j], Some(Err(_))))
            .unwrap_or(deliveries.len());
        let run = decoded[i..end].iter_mut().filter_map(|d| match d.take() {
            Some(Ok(d)) => Some(d),
            _ => None,
        });
        if store_all(store, run, &mut report.counts).await.is_ok() {
            report.statuses[i..end].fill(Status::Done);
            i = end;
            continue;
        }
        // Find the failing message: decode again and write one at a time.
        for (j, msg) in deliveries.iter().enumerate().take(end).skip(i) {
            let one = decode(msg).into_iter();
            let Err(e) = store_all(store, one, &mut report.counts).await else {
                report.statuses[j] = Status::Done;
                continue;
            };
            let reason = format!("store write failed: {e}");
            if msg.receive_count >= max_receives && dead_letter(queue, msg, &reason).await {
                report.statuses[j] = Status::DeadLettered;
                continue;
            }
            tracing::warn!(message_id = %msg.id, receive_count = msg.receive_count, error = %e, "Write failed; the message will be retried.");
            report.error = Some(reason);
            return report;
        }
        i = end;
    }
    report
}

async fn dead_letter(queue: &dyn Queue, d: &Delivery, reason: &str) -> bool {
    match queue.dead_letter(d, reason).await {
        Ok(()) => {
            tracing::warn!(message_id = %d.id, group = %d.group, reason, "Message dead-lettered.");
            true
        }
        Err(e) => {
            tracing::error!(message_id = %d.id, error = %e, "Dead-lettering failed.");
            false
        }
    }
}

/// Settings of the polling writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// Messages taken per receive.
    pub batch: usize,
    /// Sleep when the queue is empty.
    pub idle: Duration,
    /// Dead-letter a failing message after this many receives.
    pub max_receives: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            batch: 256,
            idle: Duration::from_millis(20),
            max_receives: 5,
        }
    }
}

/// Polls the queue and writes to the store until the task is dropped: the embedded writer, and
/// the long-running worker for containers.
pub async fn poll(queue: Arc<dyn Queue>, store: Arc<dyn RecordStore>, config: PollConfig) {
    loop {
        let deliveries = match queue.receive(config.batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "Queue receive failed.");
                tokio::time::sleep(config.idle * 10).await;
                continue;
            }
        };
        if deliveries.is_empty() {
            tokio::time::sleep(config.idle).await;
            continue;
        }
        let report = write_batch(
            &deliveries,
            store.as_ref(),
            queue.as_ref(),
            config.max_receives,
        )
        .await;
        let pick = |s: Status| -> Vec<Delivery> {
            deliveries
                .iter()
                .zip(&report.statuses)
                .filter(|(_, st)| **st == s)
                .map(|(d, _)| d.clone())
                .collect()
        };
        if let Err(e) = queue.ack(&pick(Status::Done)).await {
            tracing::error!(error = %e, "Queue ack failed; the messages will be delivered again.");
        }
        let failed = pick(Status::Failed);
        if !failed.is_empty() {
            let reason = report.error.as_deref().unwrap_or("not processed");
            if let Err(e) = queue.release(&failed, reason).await {
                tracing::error!(error = %e, "Queue release failed.");
            }
            tokio::time::sleep(config.idle * 10).await;
        }
    }
}
