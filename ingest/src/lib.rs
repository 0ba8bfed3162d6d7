//! Cauce ingestion: the HTTP API, validation, auth, rate limits, the `Queue` port with its SQLite
//! and SQS adapters, and the writer that moves queue messages into the record store.
//!
//! The AWS adapters (SQS, the DynamoDB key table), the Lambda glue ([`lambda`]) and the Lambda
//! binaries' settings ([`config`]) are behind the `aws` feature, on by default.
#![warn(missing_docs)]

pub mod api;
pub mod archive;
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "aws")]
pub mod config;
pub mod error;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod queue;
pub mod ratelimit;
pub mod segment;
pub mod validate;
pub mod writer;

pub use error::{IngestError, Result};
