//! Cauce's exporter: changes become partitioned Parquet in the lake.
//!
//! * [`transform`]: pure functions, records → sorted Arrow batches per partition.
//! * [`encode`]: Parquet with zstd, bounded row groups and statistics.
//! * [`layout`]: `{kind}/dt=YYYY-MM-DD/hour=HH/{shard}-{first sequence}.parquet`.
//! * [`lake::Lake`]: the object-store port, with a folder and an S3 adapter.
#![warn(missing_docs)]

pub mod compact;
pub mod config;
pub mod embedded;
pub mod encode;
pub mod error;
pub mod lake;
pub mod layout;
pub mod read;
pub mod reader;
pub mod schema;
pub mod stream;
pub mod transform;
pub mod writer;

pub use error::{ExportError, Result};
