//! Cauce's exporter: changes become partitioned Parquet in the lake.
//!
//! * [`transform`]: pure functions, records → sorted Arrow batches per partition.
//! * [`file`](mod@file): one lake file: Parquet with zstd, bounded row groups and statistics, and back.
//! * [`writer`]: the lake writer (write, flush, then the caller commits its feed position).
//! * [`stream`]: the `exporter` Lambda's handler, DynamoDB Streams events into the lake (with
//!   the `aws` feature); [`embedded`]: the same for `cauce serve`'s SQLite change log.
//! * [`catalog`]: each new partition registered in the table catalog (Glue in AWS).
//! * [`compact`]: each closed hour rewritten into few large files, by [`merge`]: a streaming
//!   k-way merge of sorted files in a fixed memory budget.
//!
//! The lake itself (the `Lake` port, its layout and its columns) is
//! [`cauce_store::lake`]; the Polars reader is in `cauce-analytics`.
#![warn(missing_docs)]

pub mod catalog;
pub mod compact;
pub mod config;
pub mod embedded;
pub mod error;
pub mod file;
pub mod merge;
pub mod schema;
#[cfg(feature = "aws")]
pub mod stream;
pub mod transform;
pub mod writer;

pub use error::{ExportError, Result};
