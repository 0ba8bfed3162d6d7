//! Cauce's data model and record store.
//!
//! * [`model`]: the three kinds (events, stories, tests), their keys and server-set fields.
//! * [`port::RecordStore`]: conditional put/upsert and the user timeline, with two adapters:
//!   [`sqlite::SqliteStore`] (embedded, with its change log) and [`dynamo::DynamoStore`] (AWS).
//! * [`change`]: the change feed, as the exporter consumes it.
//! * [`metrics`]: the metrics vocabulary, and the EMF recorder of the Lambdas.
//! * [`lake`]: the `Lake` port (a folder, or S3), the lake's key layout and its schema: what
//!   every stage that reads or writes the lake shares.
//!
//! The AWS adapters (DynamoDB, S3) are behind the `aws` feature, on by default.
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod change;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod env;
pub mod error;
pub mod faults;
pub mod keys;
pub mod lake;
pub mod metrics;
pub mod model;
pub mod port;
pub mod sqlite;
pub mod time;

pub use change::{Change, Op};
pub use error::{Result, StoreError};
pub use model::{Event, Exposure, Kind, Outcome, Record, RecordRef, Stamp, Step, Story, Text};
pub use port::{BadRow, PutOutcome, RecordStore};
