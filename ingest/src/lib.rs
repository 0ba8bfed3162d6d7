//! Cauce ingest.
pub mod error;
pub mod queue;
pub mod validate;
