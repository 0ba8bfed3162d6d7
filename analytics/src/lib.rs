//! Cauce's analytics: pattern reports over the Parquet lake.
//!
//! * [`reader`]: a lazy Polars scan of one kind of a folder lake, copies and versions resolved.
//! * [`source::LakeSource`]: the lake's three kinds as lazy frames through the [`reader`],
//!   limited to a [`Scope`]; an S3 lake is copied to a temporary folder first.
//! * [`report`]: one function per report, lake → `DataFrame`; the rows are the JSON contract.
//! * [`output`]: JSON for machines, Markdown and a self-contained HTML page per app for people,
//!   with SVG charts drawn by plotters.
//! * [`catalog`]: the lake's tables for Athena, Redshift, Glue and DuckDB.
//! * [`features`]: the per-user feature table for ML, point in time.
//! * [`reporter`]: the scheduled job (Lambda `reporter` with the `aws` feature, and
//!   `cauce serve`'s interval job).
#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod exprs;
pub mod features;
pub mod output;
#[cfg(feature = "aws")]
pub mod pipeline;
pub mod reader;
pub mod report;
pub mod reporter;
pub mod source;
pub mod stats;

pub use error::{AnalyticsError, Result};
pub use report::{run, Report, Reports, Settings, ALL};
pub use reporter::ReporterSettings;
pub use source::{LakeSource, Scope};
