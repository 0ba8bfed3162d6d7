//! Compaction: each closed hour of each kind is rewritten into as few files as the target size
//! allows, rows deduplicated by key and sorted by `app_id`, then `ts`; the inputs are deleted
//! only after every output is written whole, and only if they did not change meanwhile.
//!
//! Memory is fixed by configuration, not by the data: the hour's files are downloaded to a
//! local work folder and merged a batch at a time ([`crate::merge`]), in passes when there are
//! more than the merge's fan-in; outputs are streamed back to the lake. Disk: about twice the
//! hour's size, in the work folder (`/tmp` in Lambda, whose 10 GB bound the largest hour).
//!
//! Deduplication: copies (rows equal on `copy_columns`, see [`cauce_store::lake::schema`])
//! are byte-identical, and one is kept; every version of a story or test stays, so readers
//! still take the latest `updated_at` per key.
//!
//! An hour is compacted once it has been closed for a grace period, so that the exporter's
//! late files of that hour (a retried batch, a lagging shard) have arrived. A retried export
//! rewrites its own file under the same key; if that happens between the read and the delete,
//! the rewritten file differs in size or version from the one read and is kept, and the next
//! run merges it again (copies are dropped then).
//!
//! One bad file fails its hour only: every other hour is compacted, and the report lists the
//! failed ones (`cauce compact` then exits non-zero, the `compactor` Lambda returns an error).
//!
//! Safe to re-run after a crash at any step, and idempotent:
//! * outputs are named from a hash of the input names, so a re-run over the same inputs
//!   overwrites them instead of adding new ones;
//! * a crash after the outputs are written and before the inputs are deleted leaves both; the
//!   re-run compacts them all together, and deduplication removes the copies;
//! * an hour that is already one compacted file (or fewer than the target allows) is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use cauce_store::keys::stable_hash;
use cauce_store::lake::layout::{kind_prefix, Partition};
use cauce_store::lake::{Lake, Object};
use cauce_store::Kind;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{ExportError, Result};
use crate::merge::{merge_all, Budget};

/// The prefix of compacted files' names.
pub const COMPACTED: &str = "compacted-";

/// How long an hour must have been closed before it is compacted, by default: 15 minutes.
pub const GRACE_MS: i64 = 15 * 60 * 1000;

/// Settings of a compaction run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactConfig {
    /// The size each output file aims for, bytes (default 128 MiB).
    pub target_bytes: u64,
    /// Also compact hours that are not closed yet (for a stopped system, or a test).
    pub include_open: bool,
    /// The time that decides which hours are closed, epoch ms.
    pub now_ms: i64,
    /// How long an hour must have been closed to be compacted, ms (default [`GRACE_MS`]).
    pub grace_ms: i64,
    /// The merge's memory budget.
    pub budget: Budget,
    /// Where the work folder goes (default: the system's temp folder).
    pub work_dir: Option<PathBuf>,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            target_bytes: 128 * 1024 * 1024,
            include_open: false,
            now_ms: cauce_store::time::now_ms(),
            grace_ms: GRACE_MS,
            budget: Budget::default(),
            work_dir: None,
        }
    }
}

/// An hour that could not be compacted, and why. Its files are left as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedHour {
    /// The hour's folder, such as `events/dt=2026-11-27/hour=09`.
    pub partition: String,
    /// What went wrong.
    pub error: String,
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Hours rewritten.
    pub hours: usize,
    /// Hours left alone (open, in their grace period, or already compact).
    pub skipped: usize,
    /// Files read.
    pub inputs: usize,
    /// Files written.
    pub outputs: usize,
    /// Rows read.
    pub rows_in: usize,
    /// Rows written.
    pub rows_out: usize,
    /// Inputs kept because they were rewritten while the run read them (the next run takes
    /// them).
    pub changed: usize,
    /// Hours that failed; every other hour was compacted.
    pub failed: Vec<FailedHour>,
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

/// The `compactor` Lambda's handler: compacts every closed hour, aiming at `target_mb` per file,
/// then registers the recent partitions in the `catalog` ([`reconcile`]). An error when any hour failed (after every other hour is done), so that the invocation counts
/// as failed and alarms.
pub async fn scheduled(
    lake: &dyn Lake,
    target_mb: u64,
    catalog: Option<&dyn Catalog>,
) -> Result<CompactReport> {
    let config = CompactConfig {
        target_bytes: target_mb * 1024 * 1024,
        ..CompactConfig::default()
    };
    let report = compact(lake, &config, &|_, _| {}).await?;
    if let Some(catalog) = catalog {
        reconcile(lake, catalog, config.now_ms).await?;
    }
    tracing::info!(
        hours = report.hours,
        inputs = report.inputs,
        outputs = report.outputs,
        changed = report.changed,
        failed = report.failed.len(),
        "Lake compacted."
    );
    match report.failed.first() {
        None => Ok(report),
        Some(first) => Err(ExportError::Incomplete {
            failed: report.failed.len(),
            first: format!("{}: {}", first.partition, first.error),
        }),
    }
}

/// How far back the compactor registers the lake's partitions in the catalog, hours: the
/// exporter registers each new one as it writes it, and this catches what it could not.
pub const RECONCILE_HOURS: i64 = 48;

/// Registers in the catalog every partition of the lake from the last [`RECONCILE_HOURS`].
pub async fn reconcile(lake: &dyn Lake, catalog: &dyn Catalog, now_ms: i64) -> Result<usize> {
    let since = now_ms - RECONCILE_HOURS * 3_600_000;
    let recent: BTreeSet<Partition> = partitions(lake)
        .await?
        .into_keys()
        .filter(|p| p.hour_start_ms >= since)
        .collect();
    catalog.register(&recent).await?;
    Ok(recent.len())
}

/// Compacts every hour that needs it; `progress(done, total)` is called after each hour. An
/// hour that fails is listed in the report's `failed`, and the run goes on.
pub async fn compact(
    lake: &dyn Lake,
    config: &CompactConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<CompactReport> {
    use cauce_store::metrics::{COMPACTION_INPUTS, COMPACTION_OUTPUTS, COMPACTION_RUNS};
    let report = compact_hours(lake, config, progress).await;
    let outcome = match &report {
        Ok(r) if r.failed.is_empty() => "ok",
        _ => "error",
    };
    metrics::counter!(COMPACTION_RUNS, "outcome" => outcome).increment(1);
    if let Ok(r) = &report {
        metrics::counter!(COMPACTION_INPUTS).increment(r.inputs as u64);
        metrics::counter!(COMPACTION_OUTPUTS).increment(r.outputs as u64);
    }
    report
}

async fn compact_hours(
    lake: &dyn Lake,
    config: &CompactConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<CompactReport> {
    let parts = partitions(lake).await?;
    let mut report = CompactReport::default();
    let total = parts.len();
    for (done, (partition, files)) in parts.into_iter().enumerate() {
        let settled = partition.is_closed(config.now_ms.saturating_sub(config.grace_ms));
        if (!settled && !config.include_open) || !needs_work(&files, config.target_bytes) {
            report.skipped += 1;
        } else {
            match compact_hour(lake, partition, &files, config).await {
                Ok(hour) => {
                    report.hours += 1;
                    report.inputs += files.len();
                    report.outputs += hour.outputs;
                    report.rows_in += hour.rows_in;
                    report.rows_out += hour.rows_out;
                    report.changed += hour.changed;
                }
                Err(e) => {
                    tracing::error!(partition = %partition, error = %e, "Hour not compacted; its files are left as they were.");
                    report.failed.push(FailedHour {
                        partition: partition.dir(),
                        error: e.to_string(),
                    });
                }
            }
        }
        progress(done + 1, total);
    }
    Ok(report)
}

/// What compacting one hour did.
struct Hour {
    rows_in: usize,
    rows_out: usize,
    outputs: usize,
    changed: usize,
}

async fn compact_hour(
    lake: &dyn Lake,
    partition: Partition,
    files: &[Object],
    config: &CompactConfig,
) -> Result<Hour> {
    let kind = partition.kind;
    let mut work = tempfile::Builder::new();
    work.prefix("cauce-compact-");
    let work = match &config.work_dir {
        Some(dir) => work.tempdir_in(dir).map_err(|e| ExportError::io(dir, e))?,
        None => work
            .tempdir()
            .map_err(|e| ExportError::io(&std::env::temp_dir(), e))?,
    };
    let mut local = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        // Named after the object, so that an error names the file at fault.
        let name = f.key.rsplit('/').next().unwrap_or_default();
        let path = work.path().join(format!("{i:05}-{name}"));
        lake.download(&f.key, &path).await?;
        local.push(path);
    }
    let mut names: Vec<&str> = files.iter().map(|o| o.key.as_str()).collect();
    names.sort_unstable();
    let stem = format!("{COMPACTED}{:016x}", stable_hash(&names.join("\n")));
    let (dir, target, budget) = (work.path().to_owned(), config.target_bytes, config.budget);
    let (merged, outputs) =
        tokio::task::spawn_blocking(move || merge_all(kind, local, &dir, &stem, target, &budget))
            .await??;

    let mut written = Vec::with_capacity(outputs.len());
    for path in &outputs {
        let name = path
            .file_stem()
            .expect("outputs have names")
            .to_string_lossy();
        let key = partition.key(&name);
        lake.upload(&key, path).await?;
        written.push(key);
    }
    // Only now, with every output whole, are the inputs removed: those that are still what
    // was read. One rewritten meanwhile (a retried export) is kept for the next run.
    let now: BTreeMap<String, Object> = lake
        .list(&format!("{}/", partition.dir()))
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
    let mut changed = 0;
    for f in files {
        if written.contains(&f.key) {
            continue;
        }
        match now.get(&f.key) {
            Some(current) if current != f => {
                tracing::warn!(key = %f.key, "A compaction input changed while it was read; it is kept for the next run.");
                changed += 1;
            }
            _ => lake.delete(&f.key).await?,
        }
    }
    tracing::info!(partition = %partition, inputs = files.len(), outputs = written.len(), rows_in = merged.rows_in, rows_out = merged.rows_out, changed, "Hour compacted.");
    Ok(Hour {
        rows_in: merged.rows_in,
        rows_out: merged.rows_out,
        outputs: written.len(),
        changed,
    })
}
