//! The lake writer, with an explicit lifecycle: `write` buffers changes, `flush` turns them into
//! one Parquet file per partition, puts them whole and returns what it wrote; committing the
//! feed position is the caller's own step, after the flush.

use bytes::Bytes;
use cauce_store::Change;
use serde::Serialize;

use cauce_store::lake::layout::{bad_rows_key, file_name};
use cauce_store::lake::Lake;

use crate::error::Result;
use crate::file::encode;
use crate::transform::{partition_changes, PartitionBatch};

/// A file the writer put in the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The object key.
    pub key: String,
    /// Rows in the file.
    pub rows: usize,
    /// Bytes of the file.
    pub bytes: usize,
}

/// Buffers changes up to a byte budget; memory is bounded by the budget, not by the input.
#[derive(Debug)]
pub struct LakeWriter {
    budget: usize,
    changes: Vec<Change>,
    bytes: usize,
}

impl LakeWriter {
    /// A writer that asks to be flushed once `budget` bytes of changes are buffered.
    pub fn new(budget: usize) -> Self {
        LakeWriter {
            budget,
            changes: Vec::new(),
            bytes: 0,
        }
    }

    /// Buffers one change of about `size` bytes (its JSON size is a good estimate).
    pub fn write(&mut self, change: Change, size: usize) {
        self.bytes += size;
        self.changes.push(change);
    }

    /// Whether the buffer has reached the byte budget.
    pub fn should_flush(&self) -> bool {
        self.bytes >= self.budget
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Writes the buffer as one file per partition. The buffer is emptied only when every
    /// file is written; on an error it stays for a retry (which writes the same names).
    pub async fn flush(&mut self, lake: &dyn Lake) -> Result<Vec<Written>> {
        let written = put_batches(lake, &partition_changes(&self.changes)?).await?;
        self.changes.clear();
        self.bytes = 0;
        Ok(written)
    }
}

/// Writes each partition's batch as one whole Parquet file, named by its feed position.
pub async fn put_batches(lake: &dyn Lake, batches: &[PartitionBatch]) -> Result<Vec<Written>> {
    let mut written = Vec::with_capacity(batches.len());
    for pb in batches {
        let bytes = encode(std::slice::from_ref(&pb.batch))?;
        let key = pb.partition.key(&file_name(&pb.shard, &pb.first_sequence));
        let len = bytes.len();
        lake.put(&key, Bytes::from(bytes)).await?;
        count_file(pb.partition.kind, pb.batch.num_rows(), len);
        written.push(Written {
            key,
            rows: pb.batch.num_rows(),
            bytes: len,
        });
    }
    Ok(written)
}

/// Counts a file written to the lake.
fn count_file(kind: cauce_store::Kind, rows: usize, bytes: usize) {
    use cauce_store::metrics::{EXPORT_BYTES, EXPORT_FILES, EXPORT_ROWS};
    let kind = kind.plural();
    metrics::counter!(EXPORT_FILES, "kind" => kind).increment(1);
    metrics::counter!(EXPORT_ROWS, "kind" => kind).increment(rows as u64);
    metrics::counter!(EXPORT_BYTES, "kind" => kind).increment(bytes as u64);
}

/// A change that could not be exported, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadChange {
    /// The feed.
    pub shard: String,
    /// The position in the feed, when it could be read.
    pub sequence: Option<String>,
    /// Why it could not be exported.
    pub reason: String,
    /// The change as received.
    pub raw: String,
}

/// Archives changes that could not be exported as one NDJSON object under `bad_rows/`,
/// partitioned by the hour `at_ms` (the batch's time in the feed) and named by the feed
/// position, so that a retried batch overwrites its own object.
pub async fn archive_bad_changes(
    lake: &dyn Lake,
    bad: &[BadChange],
    at_ms: i64,
) -> Result<Option<Written>> {
    let Some(first) = bad.first() else {
        return Ok(None);
    };
    let mut body = String::new();
    for b in bad {
        body.push_str(&serde_json::to_string(b)?);
        body.push('\n');
    }
    let sequence = first.sequence.as_deref().unwrap_or("unknown");
    let key = bad_rows_key(at_ms, &first.shard, sequence);
    let bytes = body.len();
    lake.put(&key, Bytes::from(body)).await?;
    metrics::counter!(cauce_store::metrics::EXPORT_BAD_ROWS).increment(bad.len() as u64);
    Ok(Some(Written {
        key,
        rows: bad.len(),
        bytes,
    }))
}
