//! The one error type of the `cauce-store` crate.

use aws_sdk_dynamodb::error::SdkError;

/// Everything that can go wrong in the record store, its adapters and the change feed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded SQLite database failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A record or change could not be encoded or decoded as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A DynamoDB API call failed; the SDK error is kept whole.
    #[error("DynamoDB {operation}: {source}")]
    Dynamo {
        /// The API operation that failed, such as `PutItem`.
        operation: &'static str,
        /// The SDK's error, with its service code and request id.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An SDK request could not be built (a required field was missing).
    #[error("DynamoDB request: {0}")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    /// A change-feed record was not what Cauce writes.
    #[error("bad change record: {0}")]
    BadChange(String),
    /// A blocking task that ran a SQLite call was cancelled or panicked.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StoreError {
    /// Wraps a DynamoDB SDK error with the name of the operation that failed.
    pub fn dynamo<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        StoreError::Dynamo {
            operation,
            source: Box::new(err),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
