//! Cauce's data model and record store.
//!
//! * [`model`]: the three kinds (events, stories, tests), their keys and server-set fields.
//! * [`port::RecordStore`]: conditional put/upsert and the user timeline, with two adapters:
//!   [`sqlite::SqliteStore`] (embedded, with its change log) and [`dynamo::DynamoStore`] (AWS).
//! * [`change`]: the change feed, and [`stream`] to decode DynamoDB Streams events into it.
#![warn(missing_docs)]

pub mod aws;
pub mod change;
pub mod dynamo;
pub mod error;
pub mod keys;
pub mod model;
pub mod port;
pub mod sqlite;
pub mod stream;
pub mod time;

pub use change::{Change, Op};
pub use error::{Result, StoreError};
pub use model::{Event, Kind, Outcome, Record, RecordRef, Stamp, Step, Story, Test, Text};
pub use port::{BadRow, PutOutcome, RecordStore};
