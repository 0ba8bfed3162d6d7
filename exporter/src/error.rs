//! The one error type of the `cauce-exporter` crate.

use cauce_store::StoreError;

/// Everything that can go wrong while exporting to the lake or compacting it.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Building Arrow arrays failed.
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Encoding or decoding Parquet failed.
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A local lake file could not be read or written.
    #[error("lake file {path}: {source}")]
    Io {
        /// The file.
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
    /// A Polars scan of the lake failed.
    #[error("Polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// The lake has no object with this key.
    #[error("no lake object {0}")]
    NotFound(String),
    /// The record store (the embedded change log) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// JSON could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl ExportError {
    /// Wraps an S3 SDK error with its operation and key.
    pub fn s3<E>(operation: &'static str, key: &str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ExportError::S3 {
            operation,
            key: key.to_owned(),
            source: Box::new(err),
        }
    }

    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;
