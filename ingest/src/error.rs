//! The one error type of the `cauce-ingest` crate.

use cauce_store::StoreError;

/// Everything that can go wrong in the API, the queue adapters, auth and the writer.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The record store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedded SQLite queue or key store failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// JSON could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An AWS API call failed; the SDK error is kept whole.
    #[error("{service} {operation}: {source}")]
    Aws {
        /// `SQS` or `DynamoDB`.
        service: &'static str,
        /// The API operation, such as `SendMessageBatch`.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// SQS accepted only part of a batch, even after retries.
    #[error("SQS {operation}: {failed} entries failed after retries: {reason}")]
    Partial {
        /// The API operation.
        operation: &'static str,
        /// How many entries failed.
        failed: usize,
        /// The first failure's code and message.
        reason: String,
    },
    /// An AWS request could not be built (a required field was missing).
    #[cfg(feature = "aws")]
    #[error("AWS request: {0}")]
    Build(#[from] aws_sdk_sqs::error::BuildError),
    /// The API key is missing or unknown (the authorizer's 401).
    #[error("Unauthorized")]
    Unauthorized,
    /// A bearer token is not valid: the reason (expired, another issuer or client, a key the
    /// pool does not have, a bad signature, no group).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The user pool's key set could not be fetched.
    #[error("JWKS: {0}")]
    Jwks(String),
    /// A request of the typed client did not get an answer (a connection refused or cut, a
    /// timeout).
    #[error("HTTP: {0}")]
    Http(String),
    /// The API refused a request of the typed client: its status, stable code and message.
    #[error("the API answered {status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// What the API said.
        message: String,
    },
    /// The embedded queue's transaction failed, and with it every command batched in it.
    #[error("queue transaction failed: {message}")]
    QueueTransaction {
        /// What SQLite said.
        message: String,
        /// Whether a retry may succeed (busy, locked, disk full, an I/O error).
        transient: bool,
    },
    /// The queue was shut down and takes no more work.
    #[error("the queue is closed")]
    QueueClosed,
    /// A queue message is not what the API writes (a poison message).
    #[error("bad queue message: {0}")]
    BadMessage(String),
    /// The raw archive could not take or write a request's lines.
    #[error("raw archive: {0}")]
    Archive(String),
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A blocking task failed.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl IngestError {
    /// A delivery without the sequence number that a FIFO queue gives every message.
    pub fn no_sequence(message_id: &str) -> Self {
        IngestError::BadMessage(format!(
            "message {message_id:?} has no SequenceNumber: the queue must be a FIFO queue"
        ))
    }

    /// Whether a backend was unavailable (and a retry may succeed), rather than a bug or bad
    /// data: a busy, locked, full or failing database, an AWS call that failed, a closed queue.
    pub fn is_unavailable(&self) -> bool {
        match self {
            IngestError::Store(e) => e.is_unavailable(),
            IngestError::Sqlite(e) => cauce_store::error::sqlite_unavailable(e),
            IngestError::Aws { .. }
            | IngestError::Partial { .. }
            | IngestError::QueueClosed
            | IngestError::Jwks(_) => true,
            IngestError::QueueTransaction { transient, .. } => *transient,
            _ => false,
        }
    }

    /// Wraps an AWS SDK error with its service and operation.
    pub fn aws<E>(service: &'static str, operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        IngestError::Aws {
            service,
            operation,
            source: Box::new(err),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
