//! The one error type of the `cauce-analytics` crate.

use cauce_store::StoreError;

/// Everything that can go wrong while reading the lake, computing a report or writing it out.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// A Polars query failed.
    #[error("Polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// Reading the lake or writing a report object failed, or a setting is bad.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Drawing a chart failed.
    #[error("chart {chart}: {reason}")]
    Chart {
        /// The chart.
        chart: &'static str,
        /// What the drawing backend said.
        reason: String,
    },
    /// A request for a report that does not exist, or a bad setting.
    #[error("{0}")]
    Invalid(String),
    /// A call to an AWS service failed.
    #[error("{operation}: {message}")]
    Aws {
        /// The service's action, such as `sqs:GetQueueAttributes`.
        operation: &'static str,
        /// What the service or the SDK said.
        message: String,
    },
}

impl AnalyticsError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        AnalyticsError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// A failed call to an AWS service's `operation`, with what it said.
    pub fn aws(operation: &'static str, said: impl std::fmt::Display) -> Self {
        AnalyticsError::Aws {
            operation,
            message: said.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;
