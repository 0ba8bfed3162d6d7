//! The lake reader: a lazy Polars scan of one kind of a folder lake over a range of ingest days,
//! with copies and versions resolved as [`cauce_store::lake::schema`] defines them:
//!
//! * copies (rows equal on [`copy_columns`]) are byte-identical, and any one is kept;
//! * stories and tests keep the latest version of each key by `updated_at`; a removal wins the
//!   tie with the version it removed, and a key whose latest row is a removal is dropped.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use polars_core::runtime::RAYON;
use polars_core::utils::accumulate_dataframes_vertical_unchecked;
use rayon::prelude::*;

use cauce_store::lake::layout::{kind_prefix, Partition};
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::schema::{copy_columns, key_columns};
use cauce_store::Kind;

use crate::error::Result;
use crate::source::empty_schema;

/// Ingest days to read, both ends included; `None` is open-ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Days {
    /// The first day.
    pub from: Option<NaiveDate>,
    /// The last day.
    pub to: Option<NaiveDate>,
}

impl Days {
    /// Whether `day` is in range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }
}

/// The Parquet files of one kind whose ingest day is in range, by ingest hour, in key order.
fn hours(root: &Path, kind: Kind, days: Days) -> Result<Vec<Vec<PathBuf>>> {
    let lake = LocalLake::new(root);
    let mut out: Vec<(Partition, Vec<PathBuf>)> = Vec::new();
    for object in lake.list_blocking(&kind_prefix(kind))? {
        let Some(partition) = Partition::parse_key(&object.key) else {
            continue;
        };
        if !days.contains(partition.day()) {
            continue;
        }
        let path = lake.path(&object.key);
        match out.last_mut() {
            Some((p, files)) if *p == partition => files.push(path),
            _ => out.push((partition, vec![path])),
        }
    }
    Ok(out.into_iter().map(|(_, files)| files).collect())
}

/// The Parquet files of one kind whose ingest day is in range, in key order.
pub fn files(root: &Path, kind: Kind, days: Days) -> Result<Vec<PathBuf>> {
    Ok(hours(root, kind, days)?.concat())
}

/// One kind's files, read by the lazy plan in place of Polars' multi-file Parquet scan: in
/// Polars 0.55 that scan runs on the streaming engine, whose build (with its object-store and
/// HTTP clients) was a seventh of `cauce`'s. The plan pushes its projection down: only the
/// columns a query uses are read, each file by the eager Parquet reader, the files in parallel
/// on Polars' thread pool. The partition folders are in the columns already (`received_at`):
/// no hive columns. Columns come in the lake's schema, so that a file written before a nullable
/// column existed (`extra`) reads that column as null.
struct LakeFiles {
    paths: Vec<PathBuf>,
    schema: SchemaRef,
}

impl LakeFiles {
    /// The `wanted` columns of one file, in that order, with nulls for any it lacks.
    fn read(&self, path: &Path, wanted: &[PlSmallStr]) -> PolarsResult<DataFrame> {
        let file = std::fs::File::open(path)
            .map_err(|e| polars_err!(ComputeError: "{}: {e}", path.display()))?;
        let mut reader = ParquetReader::new(file);
        let in_file = reader.schema()?;
        let present: Vec<String> = wanted
            .iter()
            .filter(|c| in_file.contains(c))
            .map(|c| c.to_string())
            .collect();
        // From the footer already read: the height even when no column is read.
        let height = reader.num_rows()?;
        let df = reader
            .with_columns(Some(present))
            .read_parallel(ParallelStrategy::None)
            .finish()?;
        let columns = wanted
            .iter()
            .map(|c| match df.column(c) {
                Ok(column) => Ok(column.clone()),
                Err(_) => Ok(Column::full_null(
                    c.clone(),
                    height,
                    self.schema.try_get(c)?,
                )),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(height, columns)
    }
}

impl AnonymousScan for LakeFiles {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> PolarsResult<SchemaRef> {
        Ok(self.schema.clone())
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }

    fn scan(&self, args: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        let wanted: Vec<PlSmallStr> = match &args.with_columns {
            Some(columns) => columns.to_vec(),
            None => self.schema.iter_names().cloned().collect(),
        };
        let frames = RAYON.install(|| {
            self.paths
                .par_iter()
                .map(|path| self.read(path, &wanted))
                .collect::<PolarsResult<Vec<_>>>()
        })?;
        let mut df = accumulate_dataframes_vertical_unchecked(frames);
        if let Some(n) = args.n_rows {
            df = df.head(Some(n));
        }
        Ok(df)
    }
}

fn scan_files(kind: Kind, paths: Vec<PathBuf>) -> Result<Option<LazyFrame>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let schema: SchemaRef = Arc::new(empty_schema(kind));
    let files = LakeFiles {
        paths,
        schema: schema.clone(),
    };
    let args = ScanArgsAnonymous {
        schema: Some(schema),
        name: "lake",
        ..ScanArgsAnonymous::default()
    };
    Ok(Some(LazyFrame::anonymous_scan(Arc::new(files), args)?))
}

/// Every row of one kind in range, as written (copies and versions included). `None` when the
/// range holds no file.
pub fn scan_rows(root: &Path, kind: Kind, days: Days) -> Result<Option<LazyFrame>> {
    scan_files(kind, files(root, kind, days)?)
}

fn columns(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|c| col(*c)).collect()
}

/// A version as one integer: `updated_at`, with a removal winning the tie with the version it
/// removed.
fn version() -> Expr {
    let is_remove = col("op").eq(lit("remove")).cast(DataType::Int64);
    col("updated_at").cast(DataType::Int64) * lit(2i64) + is_remove
}

/// Drops copies: rows written twice by a retried stream batch.
fn without_copies(kind: Kind, rows: LazyFrame) -> LazyFrame {
    let copy_key = columns(&copy_columns(kind));
    rows.unique_generic(Some(copy_key), UniqueKeepStrategy::Any)
}

/// Keeps the newest version of each key and drops keys whose newest row is a removal. Events
/// have one version.
fn newest(kind: Kind, rows: LazyFrame) -> PolarsResult<LazyFrame> {
    Ok(match kind {
        Kind::Event => rows,
        Kind::Story | Kind::Exposure => rows
            .filter(version().eq(version().max().over(columns(key_columns(kind)))?))
            .filter(col("op").neq(lit("remove"))),
    })
}

/// The latest version of every record of one kind in range: what analysts count.
///
/// Copies share their `received_at`, so they are in the same ingest hour; an hour held in one
/// file (a compacted hour, or one stream batch) has none. Only hours with several files are
/// searched for copies, so a compacted lake is read without that work. Versions of a key are
/// resolved across every hour, with a window: no sort, and the wide rows (a story's steps) are
/// filtered once.
pub fn scan(root: &Path, kind: Kind, days: Days) -> Result<Option<LazyFrame>> {
    scan_where(root, kind, days, lit(true))
}

/// [`scan`] of the rows that `keep` keeps: versions are resolved among them only, so that
/// keeping the versions written before a time gives the records as they stood then.
pub fn scan_where(root: &Path, kind: Kind, days: Days, keep: Expr) -> Result<Option<LazyFrame>> {
    let (single, several): (Vec<_>, Vec<_>) = hours(root, kind, days)?
        .into_iter()
        .partition(|h| h.len() == 1);
    let clean = scan_files(kind, single.concat())?;
    let mixed = scan_files(kind, several.concat())?.map(|rows| without_copies(kind, rows));
    let rows = match (clean, mixed) {
        (Some(a), Some(b)) => Some(concat([a, b], UnionArgs::default())?),
        (a, b) => a.or(b),
    };
    Ok(rows
        .map(|rows| newest(kind, rows.filter(keep)))
        .transpose()?)
}
