//! Where reports read from: the lake's three kinds as lazy frames, limited to a [`Scope`].
//!
//! A folder lake is scanned in place. Of an S3 lake, only the partitions the scope can need are
//! copied into a temporary folder, streamed and [`FETCH_CONCURRENCY`] objects at a time, and
//! only up to a byte budget (a Lambda has up to 10 GB of `/tmp`); both are then read by the
//! [`reader`], so copies and versions are resolved the same way everywhere.

use std::path::{Path, PathBuf};

use chrono::{Days as ChronoDays, NaiveDate};
use polars::prelude::*;
use tempfile::TempDir;

use cauce_store::lake::layout::{kind_prefix, Partition};
use cauce_store::lake::schema::{columns, ColumnType, STEP_COLUMNS};
use cauce_store::lake::Lake;
use cauce_store::Kind;

use crate::error::{AnalyticsError, Result};
use crate::reader::{self, Days};

/// What a report covers: one app or all, and a range of event days (`ts`, UTC), both ends
/// included. `None` is open-ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this app; `None` for every app.
    pub app: Option<String>,
    /// The first event day.
    pub from: Option<NaiveDate>,
    /// The last event day.
    pub to: Option<NaiveDate>,
}

fn day_start_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis()
}

impl Scope {
    /// The last `days` event days up to `today` (both included), every app; `days` 0 is the
    /// whole lake.
    pub fn last_days(days: u32, today: NaiveDate) -> Scope {
        let from = (days > 0)
            .then(|| today.checked_sub_days(ChronoDays::new(u64::from(days) - 1)))
            .flatten();
        Scope {
            from,
            ..Scope::default()
        }
    }

    /// The ingest days that can hold events of this scope. An event arrives after it happened
    /// (`ts` is corrected for the client's clock), so only the lower end prunes; one day of
    /// slack covers clock corrections across midnight.
    fn ingest_days(&self) -> Days {
        Days {
            from: self
                .from
                .and_then(|d| d.checked_sub_days(ChronoDays::new(1))),
            to: None,
        }
    }

    /// The row filter: app and event time.
    fn filter(&self) -> Expr {
        let ts = || col("ts").cast(DataType::Int64);
        let mut keep = lit(true);
        if let Some(app) = &self.app {
            keep = keep.and(col("app_id").eq(lit(app.as_str())));
        }
        if let Some(from) = self.from {
            keep = keep.and(ts().gt_eq(lit(day_start_ms(from))));
        }
        if let Some(to) = self.to.and_then(|d| d.succ_opt()) {
            keep = keep.and(ts().lt(lit(day_start_ms(to))));
        }
        keep
    }
}

/// How many lake objects a fetch downloads at once.
pub const FETCH_CONCURRENCY: usize = 16;

/// A lake that reports read: a folder, possibly a temporary copy of an S3 lake.
#[derive(Debug)]
pub struct LakeSource {
    root: PathBuf,
    _copy: Option<TempDir>,
}

impl LakeSource {
    /// A lake in a local folder (`DATA/lake` in embedded mode).
    pub fn folder(root: impl Into<PathBuf>) -> Self {
        LakeSource {
            root: root.into(),
            _copy: None,
        }
    }

    /// Copies the Parquet files of every kind that `scope` may need from `lake` into a
    /// temporary folder, removed when the source is dropped: streamed to disk, several at
    /// once. When they hold more than `max_bytes`, nothing is copied and the error says how much
    /// the scope holds.
    pub async fn fetch(lake: &dyn Lake, scope: &Scope, max_bytes: u64) -> Result<Self> {
        use futures::{StreamExt, TryStreamExt};
        let copy = tempfile::tempdir().map_err(|e| AnalyticsError::io("temporary folder", e))?;
        let days = scope.ingest_days();
        let mut wanted = Vec::new();
        for kind in Kind::ALL {
            wanted.extend(
                lake.list(&kind_prefix(kind))
                    .await?
                    .into_iter()
                    .filter(|o| {
                        Partition::parse_key(&o.key).is_some_and(|p| days.contains(p.day()))
                    }),
            );
        }
        let bytes: u64 = wanted.iter().map(|o| o.size).sum();
        if bytes > max_bytes {
            return Err(AnalyticsError::Invalid(format!(
                "the reports' scope ({}) holds {:.1} GB of Parquet in {}, more than the {:.1} GB a run may copy to local disk: report fewer days (CAUCE_REPORT_DAYS) or allow more (CAUCE_REPORT_MAX_GB)",
                crate::reporter::describe(scope),
                bytes as f64 / 1e9,
                lake.location(),
                max_bytes as f64 / 1e9,
            )));
        }
        let root = copy.path();
        futures::stream::iter(wanted)
            .map(|object| async move {
                let path = root.join(&object.key);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| AnalyticsError::io(dir, e))?;
                }
                lake.download(&object.key, &path).await?;
                Ok::<_, AnalyticsError>(())
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(LakeSource {
            root: root.to_owned(),
            _copy: Some(copy),
        })
    }

    /// Opens `location`: a folder path, or `s3://bucket/prefix` (fetched, see
    /// [`LakeSource::fetch`]; local disk is the only bound).
    pub async fn open(location: &str, scope: &Scope) -> Result<Self> {
        if location.starts_with("s3://") {
            let lake = cauce_store::lake::open(location).await?;
            Self::fetch(lake.as_ref(), scope, u64::MAX).await
        } else {
            Ok(Self::folder(location))
        }
    }

    /// The folder read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest version of every record of `kind` in `scope`, lazily. A lake without files of
    /// this kind gives an empty frame with the lake's columns. A query that uses the frame twice
    /// still reads the lake once (Polars' common-subplan elimination).
    pub fn frame(&self, kind: Kind, scope: &Scope) -> Result<LazyFrame> {
        let rows = match reader::scan(&self.root, kind, scope.ingest_days())? {
            Some(rows) => rows,
            None => DataFrame::empty_with_schema(&empty_schema(kind)).lazy(),
        };
        Ok(rows.filter(scope.filter()))
    }
}

impl LakeSource {
    /// Every record of `kind` as it stood at `before_ms` (epoch ms), lazily: events whose `ts`
    /// is before it, and of stories and tests the latest version whose `updated_at` is. Every
    /// app, the whole lake.
    pub fn frame_as_of(&self, kind: Kind, before_ms: i64) -> Result<LazyFrame> {
        let version = if kind.is_upsert() { "updated_at" } else { "ts" };
        let keep = col(version).cast(DataType::Int64).lt(lit(before_ms));
        Ok(
            match reader::scan_where(&self.root, kind, Days::default(), keep)? {
                Some(rows) => rows,
                None => DataFrame::empty_with_schema(&empty_schema(kind)).lazy(),
            },
        )
    }

    /// How many records of `kind` are in `scope`, copies and old versions not counted.
    pub fn count(&self, kind: Kind, scope: &Scope) -> Result<u64> {
        let df = self
            .frame(kind, scope)?
            .select([len().alias("n")])
            .collect()?;
        Ok(df.column("n")?.get(0)?.extract::<u64>().unwrap_or(0))
    }
}

fn polars_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::String,
        ColumnType::Time => DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Float => DataType::Float64,
        ColumnType::Steps => DataType::List(Box::new(DataType::Struct(
            STEP_COLUMNS
                .iter()
                .map(|c| Field::new(c.name.into(), polars_type(c.ty)))
                .collect(),
        ))),
    }
}

/// The Polars schema of one kind's files, built from the lake's column list: what a scan of a
/// kind that has no file yet returns.
pub fn empty_schema(kind: Kind) -> Schema {
    columns(kind)
        .iter()
        .map(|c| Field::new(c.name.into(), polars_type(c.ty)))
        .collect()
}
