//! The reader helper, for the analytics crate and for tests: a lazy Polars scan of one kind of
//! a folder lake over a range of ingest days, with duplicates and versions resolved.
//!
//! * events: one copy of each (`app_id`, `event_id`). The store keeps the first copy and sends no
//!   change for a resend, so the only copies in the lake come from a stream batch written twice,
//!   and they are byte-identical: any copy is the first.
//! * stories and tests: the latest version of each key by `updated_at`. The store accepts only a
//!   strictly newer `updated_at`, so versions of a key never tie, except a user's removal, which
//!   carries the version it removed and wins the tie; keys whose latest row is a removal are
//!   dropped. Copies of a version (a retried batch) are dropped like copies of events.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use cauce_store::Kind;

use crate::error::{ExportError, Result};
use crate::schema::key_columns;

/// Ingest days to read, both ends included; `None` is open-ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Days {
    /// The first day.
    pub from: Option<NaiveDate>,
    /// The last day.
    pub to: Option<NaiveDate>,
}

impl Days {
    fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| ExportError::io(dir, e))?;
            out.sort();
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ExportError::io(dir, e)),
    }
}

/// The Parquet files of one kind whose ingest day is in range, by ingest hour, in key order.
fn hours(root: &Path, kind: Kind, days: Days) -> Result<Vec<Vec<PathBuf>>> {
    let mut out = Vec::new();
    for day_dir in read_dir(&root.join(kind.plural()))? {
        let name = day_dir.file_name().unwrap_or_default().to_string_lossy();
        let Some(day) = name
            .strip_prefix("dt=")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        if !days.contains(day) {
            continue;
        }
        for hour_dir in read_dir(&day_dir)? {
            let files: Vec<PathBuf> = read_dir(&hour_dir)?
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            if !files.is_empty() {
                out.push(files);
            }
        }
    }
    Ok(out)
}

/// The Parquet files of one kind whose ingest day is in range, in key order.
pub fn files(root: &Path, kind: Kind, days: Days) -> Result<Vec<PathBuf>> {
    Ok(hours(root, kind, days)?.concat())
}

fn scan_files(paths: Vec<PathBuf>) -> Result<Option<LazyFrame>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let paths = paths
        .into_iter()
        .map(PlRefPath::try_from_pathbuf)
        .collect::<PolarsResult<_>>()?;
    // The partition folders are in the columns already (`received_at`): no hive columns.
    let args = ScanArgsParquet {
        glob: false,
        hive_options: HiveOptions::new_disabled(),
        ..ScanArgsParquet::default()
    };
    Ok(Some(LazyFrame::scan_parquet_files(paths, args)?))
}

/// Every row of one kind in range, as written (copies and versions included). `None` when the
/// range holds no file.
pub fn scan_rows(root: &Path, kind: Kind, days: Days) -> Result<Option<LazyFrame>> {
    scan_files(files(root, kind, days)?)
}

fn keys(kind: Kind) -> Vec<Expr> {
    key_columns(kind).iter().map(|c| col(*c)).collect()
}

/// A version as one integer: `updated_at`, with a removal winning the tie with the version it
/// removed.
fn version() -> Expr {
    let is_remove = col("op").eq(lit("remove")).cast(DataType::Int64);
    col("updated_at").cast(DataType::Int64) * lit(2i64) + is_remove
}

/// Drops copies: rows written twice by a retried stream batch. They are byte-identical, so
/// the key (and for stories and tests, the version) tells them apart from real versions.
fn without_copies(kind: Kind, rows: LazyFrame) -> LazyFrame {
    let mut copy_key = keys(kind);
    if kind != Kind::Event {
        copy_key.extend([col("updated_at"), col("op")]);
    }
    rows.unique_generic(Some(copy_key), UniqueKeepStrategy::Any)
}

/// Keeps the newest version of each key and drops keys whose newest row is a removal. Events
/// have one version.
fn newest(kind: Kind, rows: LazyFrame) -> PolarsResult<LazyFrame> {
    Ok(match kind {
        Kind::Event => rows,
        Kind::Story | Kind::Test => rows
            .filter(version().eq(version().max().over(keys(kind))?))
            .filter(col("op").neq(lit("remove"))),
    })
}

/// Resolves copies and versions of any scan of one kind (see the module docs).
pub fn latest(kind: Kind, rows: LazyFrame) -> Result<LazyFrame> {
    Ok(newest(kind, without_copies(kind, rows))?)
}

/// The latest version of every record of one kind in range: what analysts count.
///
/// Copies share their `received_at`, so they are in the same ingest hour; an hour held in one
/// file (a compacted hour, or one stream batch) has none. Only hours with several files are
/// searched for copies, so a compacted lake is read without that work. Versions of a key are
/// resolved across every hour, with a window: no sort, and the wide rows (a story's steps) are
/// filtered once.
pub fn scan(root: &Path, kind: Kind, days: Days) -> Result<Option<LazyFrame>> {
    let (single, several): (Vec<_>, Vec<_>) = hours(root, kind, days)?
        .into_iter()
        .partition(|h| h.len() == 1);
    let clean = scan_files(single.concat())?;
    let mixed = scan_files(several.concat())?.map(|rows| without_copies(kind, rows));
    let rows = match (clean, mixed) {
        (Some(a), Some(b)) => Some(concat([a, b], UnionArgs::default())?),
        (a, b) => a.or(b),
    };
    Ok(rows.map(|rows| newest(kind, rows)).transpose()?)
}
