//! The one error type of the `cauce-store` crate.

/// Everything that can go wrong in the record store, the lake, their adapters and the change
/// feed.
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
        /// Whether a retry may succeed: throttling, a timeout, a service-side failure; not a
        /// request the service refuses (a validation error, an item too large).
        transient: bool,
        /// The SDK's error, with its service code and request id.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An SDK request could not be built (a required field was missing).
    #[cfg(feature = "aws")]
    #[error("DynamoDB request: {0}")]
    Build(#[from] aws_sdk_dynamodb::error::BuildError),
    /// A change-feed record was not what Cauce writes.
    #[error("bad change record: {0}")]
    BadChange(String),
    /// A blocking task that ran a SQLite call or a file operation was cancelled or panicked.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A lake file could not be read or written.
    #[error("lake file {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An S3 call failed; the SDK error is kept whole.
    #[error("S3 {operation} {key}: {source}")]
    S3 {
        /// The API operation, such as `PutObject`.
        operation: &'static str,
        /// The object key.
        key: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The lake has no object with this key.
    #[error("no lake object {0}")]
    NotFound(String),
    /// A location or setting is not valid.
    #[error("configuration: {0}")]
    Config(String),
    /// This build cannot do what was asked (an S3 lake without the `aws` feature).
    #[error("{0}")]
    Unsupported(String),
}

/// Whether a SQLite error says the database is unavailable for now (busy, locked, full, an I/O
/// failure, cannot be opened), rather than that a statement or the data is wrong.
pub fn sqlite_unavailable(err: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        err.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | SystemIoFailure
                | DiskFull
                | CannotOpen
                | ReadOnly
                | OutOfMemory
                | FileLockingProtocolFailed
        )
    )
}

impl StoreError {
    /// Whether the store or the lake was unavailable (and a retry may succeed), rather than a
    /// bug or data that no retry mends: the split between backing off and dead-lettering.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => sqlite_unavailable(e),
            StoreError::Dynamo { transient, .. } => *transient,
            StoreError::S3 { .. } | StoreError::Io { .. } | StoreError::Task(_) => true,
            _ => false,
        }
    }

    /// Wraps a DynamoDB SDK error with the name of the operation that failed, and tells a
    /// transient failure (throttled, timed out, unreachable, the service's own error) from a
    /// request that no retry mends.
    #[cfg(feature = "aws")]
    pub fn dynamo<E, R>(
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> Self
    where
        E: std::error::Error
            + aws_sdk_dynamodb::error::ProvideErrorMetadata
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_sdk_dynamodb::error::SdkError;
        let transient = match &err {
            SdkError::ServiceError(e) => matches!(
                e.err().code(),
                Some(
                    "ThrottlingException"
                        | "ProvisionedThroughputExceededException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "TransactionConflictException"
                        | "LimitExceededException"
                )
            ),
            SdkError::ConstructionFailure(_) => false,
            // Timeouts, connections that failed, responses that could not be read.
            _ => true,
        };
        StoreError::Dynamo {
            operation,
            transient,
            source: Box::new(err),
        }
    }

    /// Wraps an S3 SDK error with its operation and key.
    pub fn s3<E>(operation: &'static str, key: &str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::S3 {
            operation,
            key: key.to_owned(),
            source: Box::new(err),
        }
    }

    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_database_is_unavailable_and_bad_data_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = other.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert!(StoreError::from(busy).is_unavailable());

        let bad = serde_json::from_str::<serde_json::Value>("{not json").unwrap_err();
        assert!(!StoreError::from(bad).is_unavailable());
        let wrong = holder
            .execute("INSERT INTO nowhere VALUES (1)", [])
            .unwrap_err();
        assert!(!StoreError::from(wrong).is_unavailable());
        assert!(!StoreError::NotFound("k".into()).is_unavailable());
    }
}
