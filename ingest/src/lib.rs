//! Cauce ingestion: the HTTP API, validation, auth, rate limits, the `Queue` port with its SQLite
//! and SQS adapters, and the writer that moves queue messages into the record store.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod lambda;
pub mod queue;
pub mod ratelimit;
pub mod validate;
pub mod writer;

pub use error::{IngestError, Result};
