//! The API's error responses: a status, a stable code and a message, as `{"error", "message"}`.
//! A backend that is unavailable is a 503 with `Retry-After`; anything else that fails on the
//! server's side is a bug, and a 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::IngestError;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The stable error code, such as `invalid_api_key` or `rate_limited`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with its status, stable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Asks the client to wait `seconds` (at least 1) before retrying.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The response to a failed backend call: 503 with `Retry-After` when the backend is
    /// unavailable (the client may retry), 500 otherwise. Either way the error is logged.
    pub fn backend(err: &IngestError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "A backend is unavailable.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a backend is unavailable; retry later",
            )
            .retry_after(1)
        } else {
            tracing::error!(error = %err, "Request failed.");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed on the server's side",
            )
        }
    }

    /// 400 `bad_parameter`: a path or query parameter that could not be read.
    pub fn bad_parameter(rejection: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            rejection.to_string(),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        ApiError::backend(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(ErrorBody {
                error: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
