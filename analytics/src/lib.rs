//! Cauce's analytics: pattern reports over the Parquet lake.
//!
//! * [`source::LakeSource`]: the lake's three kinds as lazy Polars frames, with copies and
//!   versions resolved by the exporter's reader helper, limited to a [`Scope`].
//! * [`report`]: one function per report, lake → `DataFrame`; the rows are the JSON contract.
//! * [`output`]: JSON for machines, Markdown and a self-contained HTML page per app for people,
//!   with SVG charts drawn by plotters.
//! * [`reporter`]: the scheduled job (Lambda `reporter`, and `cauce serve`'s interval job).
#![warn(missing_docs)]

pub mod error;
pub mod exprs;
pub mod output;
pub mod report;
pub mod reporter;
pub mod source;
pub mod stats;

pub use error::{AnalyticsError, Result};
pub use report::{run, Report, Reports, Settings, ALL};
pub use source::{configure_polars, LakeSource, Scope};
