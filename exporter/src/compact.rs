//! Compaction: each closed hour of each kind is rewritten into as few files as the target size
//! allows, rows deduplicated by key and sorted by `app_id`, then `ts`; the inputs are deleted
//! only after every output is written whole.
//!
//! Deduplication: events keep their first copy (earliest `received_at`, then `ingest_seq`);
//! stories and tests keep one row per version (key, `updated_at`, `op`), so readers still take
//! the latest `updated_at` per key.
//!
//! Safe to re-run after a crash at any step, and idempotent:
//! * outputs are named from a hash of the input names, so a re-run over the same inputs
//!   overwrites them instead of adding new ones;
//! * a crash after the outputs are written and before the inputs are deleted leaves both; the
//!   re-run compacts them all together, and deduplication removes the copies;
//! * an hour that is already one compacted file (or fewer than the target allows) is left alone.

use std::collections::{BTreeMap, HashSet};

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_ord::sort::{lexsort_to_indices, SortColumn};
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use bytes::Bytes;
use cauce_store::keys::stable_hash;
use cauce_store::Kind;
use serde::Serialize;

use crate::encode::encode;
use crate::error::{ExportError, Result};
use crate::lake::{Lake, Object};
use crate::layout::Partition;
use crate::read::read_file;
use crate::schema::{key_columns, schema};

/// The prefix of compacted files' names.
pub const COMPACTED: &str = "compacted-";

/// Settings of a compaction run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactConfig {
    /// The size each output file aims for, bytes (default 128 MiB).
    pub target_bytes: u64,
    /// Also compact hours that are not closed yet (for a stopped system, or a test).
    pub include_open: bool,
    /// The time that decides which hours are closed, epoch ms.
    pub now_ms: i64,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            target_bytes: 128 * 1024 * 1024,
            include_open: false,
            now_ms: cauce_store::time::now_ms(),
        }
    }
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Hours rewritten.
    pub hours: usize,
    /// Hours left alone (open, or already compact).
    pub skipped: usize,
    /// Files read (and then deleted).
    pub inputs: usize,
    /// Files written.
    pub outputs: usize,
    /// Rows read.
    pub rows_in: usize,
    /// Rows written.
    pub rows_out: usize,
}

/// The lake's Parquet files, grouped by partition.
pub async fn partitions(lake: &dyn Lake) -> Result<BTreeMap<Partition, Vec<Object>>> {
    let mut out: BTreeMap<Partition, Vec<Object>> = BTreeMap::new();
    for kind in Kind::ALL {
        for o in lake.list(&format!("{}/", kind.plural())).await? {
            if !o.key.ends_with(".parquet") {
                continue;
            }
            if let Some(p) = Partition::parse_key(&o.key) {
                out.entry(p).or_default().push(o);
            }
        }
    }
    Ok(out)
}

fn is_compacted(o: &Object) -> bool {
    o.key
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(COMPACTED))
}

/// Whether an hour needs work: any file not written by compaction, or more compacted files
/// than the target size needs.
fn needs_work(files: &[Object], target: u64) -> bool {
    let total: u64 = files.iter().map(|o| o.size).sum();
    let needed = total.div_ceil(target.max(1)).max(1) as usize;
    files.iter().any(|o| !is_compacted(o)) || files.len() > needed
}

/// Compacts every hour that needs it; `progress(done, total)` is called after each hour.
pub async fn compact(
    lake: &dyn Lake,
    config: &CompactConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<CompactReport> {
    let parts = partitions(lake).await?;
    let mut report = CompactReport::default();
    let total = parts.len();
    for (done, (partition, files)) in parts.into_iter().enumerate() {
        let open = !partition.is_closed(config.now_ms);
        if (open && !config.include_open) || !needs_work(&files, config.target_bytes) {
            report.skipped += 1;
        } else {
            let (rows_in, rows_out, outputs) =
                compact_hour(lake, partition, &files, config).await?;
            report.hours += 1;
            report.inputs += files.len();
            report.outputs += outputs;
            report.rows_in += rows_in;
            report.rows_out += rows_out;
        }
        progress(done + 1, total);
    }
    Ok(report)
}

async fn compact_hour(
    lake: &dyn Lake,
    partition: Partition,
    files: &[Object],
    config: &CompactConfig,
) -> Result<(usize, usize, usize)> {
    let kind = partition.kind;
    let mut batches = Vec::new();
    for f in files {
        batches.extend(read_file(lake.get(&f.key).await?)?);
    }
    let all = concat_batches(&schema(kind), &batches)?;
    drop(batches);
    let rows_in = all.num_rows();
    let unique = take_record_batch(&all, &dedup_indices(kind, &all)?)?;
    drop(all);
    let sorted = take_record_batch(&unique, &sort_indices(&unique)?)?;
    let rows_out = sorted.num_rows();

    // Split so that each output is about the target size.
    let in_bytes: u64 = files.iter().map(|o| o.size).sum();
    let bytes_per_row = (in_bytes as f64 / rows_in.max(1) as f64).max(1.0);
    let rows_per_file = ((config.target_bytes as f64 / bytes_per_row) as usize).max(1);
    let mut names: Vec<&str> = files.iter().map(|o| o.key.as_str()).collect();
    names.sort_unstable();
    let id = stable_hash(&names.join("\n"));
    let mut written = Vec::new();
    let mut start = 0;
    while start < rows_out {
        let len = rows_per_file.min(rows_out - start);
        let part = sorted.slice(start, len);
        let key = partition.key(&format!("{COMPACTED}{id:016x}-{:04}", written.len()));
        lake.put(&key, Bytes::from(encode(&[part])?)).await?;
        written.push(key);
        start += len;
    }
    // Only now, with every output whole, are the inputs removed.
    for f in files {
        if !written.contains(&f.key) {
            lake.delete(&f.key).await?;
        }
    }
    tracing::info!(partition = %partition, inputs = files.len(), outputs = written.len(), rows_in, rows_out, "Hour compacted.");
    Ok((rows_in, rows_out, written.len()))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| ExportError::Config(format!("lake file without a proper `{name}` column")))
}

/// The rows to keep: events by key, first copy (earliest `received_at`, then `ingest_seq`);
/// stories and tests by (key, `updated_at`, `op`).
fn dedup_indices(kind: Kind, batch: &RecordBatch) -> Result<arrow_array::UInt32Array> {
    let order = lexsort_to_indices(
        &[
            sort_col(batch, "received_at")?,
            sort_col(batch, "ingest_seq")?,
        ],
        None,
    )?;
    let keys: Vec<&StringArray> = key_columns(kind)
        .iter()
        .map(|c| column::<StringArray>(batch, c))
        .collect::<Result<_>>()?;
    let version = match kind {
        Kind::Event => None,
        _ => Some((
            column::<TimestampMillisecondArray>(batch, "updated_at")?,
            column::<StringArray>(batch, "op")?,
        )),
    };
    let mut seen = HashSet::with_capacity(batch.num_rows());
    let mut keep = Vec::with_capacity(batch.num_rows());
    for i in order.values().iter().map(|&i| i as usize) {
        let mut key = String::new();
        for k in &keys {
            key.push_str(k.value(i));
            key.push('\u{1f}');
        }
        if let Some((updated, op)) = version {
            key.push_str(&updated.value(i).to_string());
            key.push_str(op.value(i));
        }
        if seen.insert(key) {
            keep.push(i as u32);
        }
    }
    keep.sort_unstable();
    Ok(arrow_array::UInt32Array::from(keep))
}

fn sort_col(batch: &RecordBatch, name: &str) -> Result<SortColumn> {
    let values: ArrayRef = batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| ExportError::Config(format!("lake file without a `{name}` column")))?;
    Ok(SortColumn {
        values,
        options: None,
    })
}

/// The lake's order: `app_id`, then `ts` (stable for ties).
fn sort_indices(batch: &RecordBatch) -> Result<arrow_array::UInt32Array> {
    Ok(lexsort_to_indices(
        &[sort_col(batch, "app_id")?, sort_col(batch, "ts")?],
        None,
    )?)
}
