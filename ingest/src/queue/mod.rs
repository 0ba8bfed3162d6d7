//! The `Queue` port (send, receive, ack, dead-letter) and the packing of records into messages.
//!
//! Adapters: [`sqlite::SqliteQueue`] (embedded) and [`sqs::SqsQueue`] (SQS FIFO). Both keep FIFO
//! order within a message group, drop duplicate sends by dedup id, and dead-letter a message
//! after too many receives.

pub mod faults;
pub mod sqlite;
#[cfg(feature = "aws")]
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::value::RawValue;

use cauce_store::keys::{content_hash, stable_hash};
use cauce_store::{BadRow, Kind, Record};

use crate::error::{IngestError, Result};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// The FIFO message group: order holds within it.
    pub group: String,
    /// The deduplication id: a second send with the same id is dropped.
    pub dedup_id: String,
    /// The body, an [`Envelope`] as JSON.
    pub body: String,
    /// How many items (records and rejected rows) the body carries, for `pending`.
    pub items: u32,
}

impl OutMessage {
    /// A message whose dedup id is the hash of its group and body.
    pub fn new(group: String, body: String, items: u32) -> Self {
        let mut h = group.clone().into_bytes();
        h.push(0);
        h.extend_from_slice(body.as_bytes());
        OutMessage {
            dedup_id: content_hash(&h),
            group,
            body,
            items,
        }
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message id.
    pub id: String,
    /// The handle that acks or releases this delivery.
    pub receipt: String,
    /// The message group.
    pub group: String,
    /// The body.
    pub body: String,
    /// The queue's sequence number of the message, increasing within a group.
    pub sequence: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// A message that ended in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead letters, for [`Queue::replay`].
    pub id: String,
    /// The message group.
    pub group: String,
    /// The body.
    pub body: String,
    /// Why it was dead-lettered.
    pub reason: String,
}

/// A durable FIFO queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends messages; when this returns `Ok`, they are durable.
    async fn send(&self, messages: Vec<OutMessage>) -> Result<()>;

    /// Receives up to `max` messages, in order within each group, and hides them for the
    /// visibility timeout. A group with a message in flight delivers nothing more until it is
    /// acked or released.
    async fn receive(&self, max: usize) -> Result<Vec<Delivery>>;

    /// Deletes processed messages.
    async fn ack(&self, deliveries: &[Delivery]) -> Result<()>;

    /// Makes messages visible again after `retry_in`, for a retry after a transient failure,
    /// recording why they failed. Such a failure does not count toward dead-lettering where the
    /// adapter can tell it from a receive that ended without a word (the SQLite queue; SQS counts
    /// every receive against its redrive policy's `maxReceiveCount`).
    async fn release(
        &self,
        deliveries: &[Delivery],
        reason: &str,
        retry_in: Duration,
    ) -> Result<()>;

    /// Moves one message to the dead-letter queue with its reason.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()>;

    /// Reads up to `max` dead letters, oldest first, leaving them where they are.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>>;

    /// Moves the dead letters with these ids back into the queue, each at the end of its message
    /// group, and returns how many it moved. An id that is not (or no longer) a dead letter is
    /// skipped, so replaying twice moves nothing more.
    async fn replay(&self, ids: &[String]) -> Result<usize>;

    /// How many accepted items are still in the queue (SQS: messages, approximately).
    async fn pending(&self) -> Result<u64>;

    /// How many messages are in the dead letters (SQS: approximately).
    async fn dead_lettered(&self) -> Result<u64>;
}

/// How records are grouped and packed into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    /// Each app's records spread over this many message groups, by a hash of the user (or
    /// session, or record key), so that one user's order holds and groups run in parallel.
    pub group_buckets: u64,
    /// The largest message body, bytes (SQS: 256 KiB).
    pub max_message_bytes: usize,
}

impl Default for Packing {
    fn default() -> Self {
        Packing {
            group_buckets: 16,
            max_message_bytes: 256 * 1024,
        }
    }
}

/// A queue message's body, as the writer reads it.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// The kind of every item.
    pub kind: Kind,
    /// The tenant of every item.
    pub app_id: String,
    /// The stamped records, as JSON.
    #[serde(borrow, default)]
    pub items: Vec<&'a RawValue>,
    /// Rejected items to archive.
    #[serde(default)]
    pub rejected: Vec<BadRow>,
}

impl DeadLetter {
    /// The app whose message this was: its group is `{app_id}.{bucket}` or `{app_id}.bad`.
    pub fn app_id(&self) -> &str {
        self.group
            .rsplit_once('.')
            .map_or(self.group.as_str(), |(app, _)| app)
    }
}

impl<'a> Envelope<'a> {
    /// Decodes a message body.
    pub fn decode(body: &'a str) -> Result<Self> {
        serde_json::from_str(body).map_err(|e| IngestError::BadMessage(e.to_string()))
    }

    /// Decodes the records, giving each its `ingest_seq` from the message sequence number.
    pub fn records(&self, sequence: &str) -> Result<Vec<Record>> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let mut r = Record::from_json(self.kind, raw.get())
                    .map_err(|e| IngestError::BadMessage(format!("item {i}: {e}")))?;
                if r.app_id() != self.app_id {
                    return Err(IngestError::BadMessage(format!(
                        "item {i} belongs to another app"
                    )));
                }
                r.set_ingest_seq(cauce_store::model::ingest_seq(sequence, i));
                Ok(r)
            })
            .collect()
    }
}

/// The message-group bucket of a record: a hash of its user (or session, or key).
pub fn bucket_of(record: &Record, buckets: u64) -> u64 {
    let hash = match record.user_id().or(record.session_id()) {
        Some(by) => stable_hash(by),
        None => stable_hash(&record.key()),
    };
    hash % buckets.max(1)
}

/// The message group of a bucket of one app: `{app_id}.{bucket}`.
fn group_name(app_id: &str, bucket: u64) -> String {
    format!("{app_id}.{bucket:02}")
}

/// Builds the bodies of one message group, in order, each at most `max` bytes.
struct BodyBuilder {
    group: String,
    open: String,
    body: String,
    items: u32,
    done: Vec<OutMessage>,
}

impl BodyBuilder {
    fn new(group: String, head: &str, field: &str) -> Self {
        let open = format!("{{{head},\"{field}\":[");
        BodyBuilder {
            group,
            body: open.clone(),
            open,
            items: 0,
            done: Vec::new(),
        }
    }

    fn push(&mut self, item: &str, max: usize) {
        if self.items > 0 && self.body.len() + item.len() + 3 > max {
            self.flush();
        }
        if self.items > 0 {
            self.body.push(',');
        }
        self.body.push_str(item);
        self.items += 1;
    }

    fn flush(&mut self) {
        if self.items > 0 {
            self.body.push_str("]}");
            let body = std::mem::replace(&mut self.body, self.open.clone());
            self.done
                .push(OutMessage::new(self.group.clone(), body, self.items));
            self.items = 0;
        }
    }

    fn finish(mut self) -> Vec<OutMessage> {
        self.flush();
        self.done
    }
}

/// Packs one request's accepted records and rejected rows into queue messages: records by
/// message group, in batch order, each message at most `max_message_bytes`.
pub fn pack(
    kind: Kind,
    app_id: &str,
    records: &[Record],
    rejected: &[BadRow],
    packing: &Packing,
) -> Result<Vec<OutMessage>> {
    let head = format!(
        "\"kind\":\"{}\",\"app_id\":{}",
        kind.as_str(),
        serde_json::to_string(app_id)?
    );
    let max = packing.max_message_bytes;
    let buckets = packing.group_buckets.max(1);
    let mut builders: Vec<Option<BodyBuilder>> = (0..buckets).map(|_| None).collect();
    let mut order = Vec::new();
    let mut json = String::with_capacity(1024);
    for r in records {
        let b = bucket_of(r, buckets) as usize;
        let builder = builders[b].get_or_insert_with(|| {
            order.push(b);
            BodyBuilder::new(group_name(app_id, b as u64), &head, "items")
        });
        json.clear();
        r.write_json(&mut json);
        builder.push(&json, max);
    }
    let mut out = Vec::new();
    for b in order {
        if let Some(builder) = builders[b].take() {
            out.extend(builder.finish());
        }
    }
    if !rejected.is_empty() {
        let mut builder = BodyBuilder::new(format!("{app_id}.bad"), &head, "rejected");
        for row in rejected {
            builder.push(&serde_json::to_string(row)?, max);
        }
        out.extend(builder.finish());
    }
    Ok(out)
}
