//! Compaction: each closed hour of each kind is rewritten into as few files as the target size
//! allows, rows deduplicated by key and sorted by `app_id`, then `ts`; the inputs are deleted
//! only after every output is written whole.
//!
//! Deduplication: copies (rows equal on [`copy_columns`], see [`cauce_store::lake::schema`])
//! are byte-identical, and the first one in file order is kept; every version of a story or test
//! stays, so readers still take the latest `updated_at` per key.
//!
//! Safe to re-run after a crash at any step, and idempotent:
//! * outputs are named from a hash of the input names, so a re-run over the same inputs
//!   overwrites them instead of adding new ones;
//! * a crash after the outputs are written and before the inputs are deleted leaves both; the
//!   re-run compacts them all together, and deduplication removes the copies;
//! * an hour that is already one compacted file (or fewer than the target allows) is left alone.

use std::collections::{BTreeMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::DataType;
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use bytes::Bytes;
use cauce_store::keys::stable_hash;
use cauce_store::lake::layout::{kind_prefix, Partition};
use cauce_store::lake::schema::copy_columns;
use cauce_store::lake::{Lake, Object};
use cauce_store::Kind;
use serde::Serialize;

use crate::error::{ExportError, Result};
use crate::file::{decode, encode};
use crate::schema::schema;
use crate::transform::sorted;

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
        for o in lake.list(&kind_prefix(kind)).await? {
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

/// The `compactor` Lambda's handler: compacts every closed hour, aiming at `target_mb` per file.
pub async fn scheduled(lake: &dyn Lake, target_mb: u64) -> Result<CompactReport> {
    let config = CompactConfig {
        target_bytes: target_mb * 1024 * 1024,
        ..CompactConfig::default()
    };
    let report = compact(lake, &config, &|_, _| {}).await?;
    tracing::info!(
        hours = report.hours,
        inputs = report.inputs,
        outputs = report.outputs,
        "Lake compacted."
    );
    Ok(report)
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
        batches.extend(decode(lake.get(&f.key).await?)?);
    }
    let all = concat_batches(&schema(kind), &batches)?;
    drop(batches);
    let rows_in = all.num_rows();
    let unique = take_record_batch(&all, &without_copies(kind, &all)?)?;
    drop(all);
    let sorted = sorted(unique)?;
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

/// The rows to keep: the first of each set of copies, in file order (copies are identical).
fn without_copies(kind: Kind, batch: &RecordBatch) -> Result<UInt32Array> {
    let columns = copy_columns(kind)
        .into_iter()
        .map(|name| {
            let column = batch.column_by_name(name).ok_or_else(|| {
                ExportError::BadFile(format!("lake file without a `{name}` column"))
            })?;
            Ok(match column.data_type() {
                DataType::Utf8 => CopyColumn::Text(column.as_string::<i32>()),
                DataType::Timestamp(..) => {
                    CopyColumn::Time(column.as_primitive::<TimestampMillisecondType>())
                }
                other => {
                    return Err(ExportError::BadFile(format!(
                        "lake column `{name}` has the type {other}"
                    )))
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut seen = HashSet::with_capacity(batch.num_rows());
    let mut keep = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut key = String::new();
        for c in &columns {
            match c {
                CopyColumn::Text(a) => key.push_str(a.value(i)),
                CopyColumn::Time(a) => key.push_str(&a.value(i).to_string()),
            }
            key.push('\u{1f}');
        }
        if seen.insert(key) {
            keep.push(i as u32);
        }
    }
    Ok(UInt32Array::from(keep))
}

/// A column of the copy key.
enum CopyColumn<'a> {
    Text(&'a arrow_array::StringArray),
    Time(&'a arrow_array::TimestampMillisecondArray),
}
