//! The `RecordStore` port: what the writer and the API need from a table store.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::model::{Kind, Record};

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PutOutcome {
    /// The first copy of the key: stored.
    Inserted,
    /// A newer version of a story or test: it replaced the older one.
    Replaced,
    /// A later copy of an event that is already stored: counted, not stored.
    Duplicate,
    /// A story or test version no newer than the stored one: counted, not stored.
    Stale,
}

/// An item the API rejected, archived with its reason (Cauce's "bad rows").
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BadRow {
    /// The tenant that sent it.
    pub app_id: String,
    /// The kind the item was sent as.
    pub kind: Kind,
    /// When it arrived, epoch ms.
    pub received_at: i64,
    /// Its index in the batch.
    pub index: usize,
    /// Its id, when one could be read.
    pub id: Option<String>,
    /// The stable error code, such as `missing_field`.
    pub error: String,
    /// The human-readable reason, naming the field.
    pub message: String,
    /// The item as sent (truncated to the item size limit).
    pub raw: String,
}

/// A table store with conditional writes: events insert-only, stories and tests upserted by
/// `updated_at`. Every successful write also lands in the store's change feed.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes the records in order and returns one outcome per record. Writes of one key happen
    /// in the order given.
    async fn put(&self, records: Vec<Record>) -> Result<Vec<PutOutcome>>;

    /// Reads the stored version of one record.
    async fn get(&self, kind: Kind, app_id: &str, key: &str) -> Result<Option<Record>>;

    /// The most recent records (all kinds) of one user of one app, newest `ts` first.
    async fn timeline(&self, app_id: &str, user_id: &str, limit: usize) -> Result<Vec<Record>>;

    /// Archives rejected items with their reasons.
    async fn archive_rejected(&self, rows: Vec<BadRow>) -> Result<()>;
}
