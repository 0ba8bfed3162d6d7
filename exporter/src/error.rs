//! The one error type of the `cauce-exporter` crate.

use cauce_store::{Kind, StoreError};

/// Everything that can go wrong while exporting to the lake or compacting it.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Building Arrow arrays failed.
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Encoding or decoding Parquet failed.
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A row of one kind was given to the columns of another.
    #[error("a {row} row cannot go into the columns of a {columns}")]
    KindMismatch {
        /// The kind of the columns.
        columns: Kind,
        /// The kind of the row.
        row: Kind,
    },
    /// The record store (the embedded change log) or the lake failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// JSON could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A lake file or batch does not have the lake's columns.
    #[error("not a lake file: {0}")]
    BadFile(String),
    /// A local work file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A blocking task (a merge) panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A compaction run left some hours uncompacted (every other hour was done).
    #[error("compaction left {failed} hour(s) uncompacted; the first: {first}")]
    Incomplete {
        /// How many hours failed.
        failed: usize,
        /// The first of them, and why.
        first: String,
    },
    /// A call to the table catalog (Glue) failed.
    #[error("Glue {operation}: {source}")]
    Catalog {
        /// The API operation, such as `BatchCreatePartition`.
        operation: &'static str,
        /// Whether a retry may succeed (throttled, timed out, the service's own failure).
        transient: bool,
        /// The SDK's error, or what the service said of a partition it refused.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl ExportError {
    /// Whether the error only says that the runtime is stopping: a blocking task (a store
    /// call, a merge) was cancelled, which tokio does only at shutdown.
    pub fn is_shutdown(&self) -> bool {
        match self {
            ExportError::Task(e) | ExportError::Store(StoreError::Task(e)) => e.is_cancelled(),
            _ => false,
        }
    }

    /// An I/O error on a local file.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_cancelled_task_is_a_shutdown() {
        let pending = tokio::spawn(std::future::pending::<()>());
        pending.abort();
        let cancelled = pending.await.unwrap_err();
        assert!(ExportError::Store(StoreError::Task(cancelled)).is_shutdown());
        let panicked = tokio::spawn(async { panic!("a bug") }).await.unwrap_err();
        assert!(!ExportError::Task(panicked).is_shutdown());
        assert!(!ExportError::Config("x".into()).is_shutdown());
    }
}
