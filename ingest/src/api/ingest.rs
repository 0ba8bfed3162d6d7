//! `POST /v1/{events,stories,tests}` and `GET /v1/users/{user_id}/timeline`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use cauce_store::{BadRow, Kind};

use super::error::ErrorBody;
use super::openapi::{BatchAnswers, EventBatch, StoryBatch, TestBatch};
use super::tenant::{Caller, Read, Write};
use super::{ApiConfig, ApiError, ApiState};
use crate::archive::lines;
use crate::queue::{pack, OutMessage};
use crate::validate::{parse_batch, BodyError, Rejection, Warning};

/// The response body of a batch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// How many items were accepted (durable in the queue).
    pub accepted: usize,
    /// The rejected items, with their reasons.
    pub rejected: Vec<Rejection>,
    /// `no_valid_items` when nothing was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Notes on accepted items (unknown fields kept in `extra`, server fields ignored); absent
    /// when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// How many warnings were left out of `warnings` (past the `max_warnings` limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings_omitted: usize,
}

/// What the three batch routes say of their answers, in the OpenAPI document.
const BATCH_NOTES: &str = "A 2xx means every accepted item is durable in the queue; each rejected \
    item is listed with its index, id and a stable code, and kept in the bad-rows archive. The \
    body may be gzip (`Content-Encoding: gzip`): the limits apply to the inflated bytes.";

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Send a batch of events.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    description = BATCH_NOTES,
    request_body(content = EventBatch, content_type = "application/json"),
    responses(BatchAnswers),
    security(("api_key" = []), ("basic" = []))
)]
pub(super) async fn post_events(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Write>,
    headers: HeaderMap,
    id: Option<Extension<RequestId>>,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(&api, Kind::Event, caller, (&headers, id), body).await
}

/// Send a batch of stories (upserted: the newest `updated_at` of a `story_id` wins).
#[utoipa::path(
    post,
    path = "/v1/stories",
    tag = "ingest",
    description = BATCH_NOTES,
    request_body(content = StoryBatch, content_type = "application/json"),
    responses(BatchAnswers),
    security(("api_key" = []), ("basic" = []))
)]
pub(super) async fn post_stories(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Write>,
    headers: HeaderMap,
    id: Option<Extension<RequestId>>,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(&api, Kind::Story, caller, (&headers, id), body).await
}

/// Send a batch of A/B test exposures and results (upserted per experiment and user).
#[utoipa::path(
    post,
    path = "/v1/tests",
    tag = "ingest",
    description = BATCH_NOTES,
    request_body(content = TestBatch, content_type = "application/json"),
    responses(BatchAnswers),
    security(("api_key" = []), ("basic" = []))
)]
pub(super) async fn post_tests(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Write>,
    headers: HeaderMap,
    id: Option<Extension<RequestId>>,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(&api, Kind::Exposure, caller, (&headers, id), body).await
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// Reads a body of at most `max` bytes within `timeout`: 413 past the size, 408 past the time,
/// 400 when it cannot be read.
pub(super) async fn read_body(
    body: Body,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, max));
    let Ok(read) = read.await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {} s", timeout.as_secs()),
        ));
    };
    read.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if limited {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {max} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the body could not be read: {e}"),
            )
        }
    })
}

/// The gzip magic: a body that says `Content-Encoding: gzip` but does not start with it was
/// inflated on the way (API Gateway does, for an API with payload compression on), and is taken
/// as it is.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a batch body: at most `max` bytes as sent and, with `Content-Encoding: gzip`, at most
/// `max` bytes inflated. A body that inflates past the limit (a zip bomb) is refused with 413
/// as soon as the limit is passed, never inflated further; one that is not valid gzip is 400
/// `bad_gzip`; another encoding is 415. A body read while the backlog is at its bound is 429
/// ([`ApiState::admit`]): it is read first, so that the connection stays usable.
pub(super) async fn read_batch_body(
    api: &ApiState,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {other:?} is not supported: send gzip, or no encoding"),
            ))
        }
    };
    let bytes = read_body(body, max, api.config.body_timeout).await?;
    api.admit()?;
    if !gzip || !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    inflate(&bytes, max)
}

/// Inflates a gzip body (all its members) up to `max` bytes.
fn inflate(gz: &[u8], max: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(gz.len().saturating_mul(4).min(max));
    flate2::read::MultiGzDecoder::new(gz)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_gzip",
                format!("the body says gzip but could not be inflated: {e}"),
            )
        })?;
    if out.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body inflates to more than {max} bytes"),
        ));
    }
    Ok(out.into())
}

pub(super) fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::Malformed(m) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("the body must be {{\"sent_at\"?, \"batch\": [...]}}: {m}"),
        ),
        BodyError::BadSentAt(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_timestamp", m),
        BodyError::EmptyBatch => ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_batch",
            "`batch` has no items",
        ),
        BodyError::TooManyItems { items, max } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("`batch` has {items} items; the limit is {max}"),
        ),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A request body validated and packed into queue messages: what the API sends, and what a
/// replay of the raw archive sends again.
#[derive(Debug)]
pub struct Accepted {
    /// The queue messages: accepted items, and the bad rows of rejected ones.
    pub messages: Vec<OutMessage>,
    /// How many items were accepted.
    pub accepted: usize,
    /// The rejected items, with their reasons.
    pub rejected: Vec<Rejection>,
    /// Notes on accepted items.
    pub warnings: Vec<Warning>,
    /// Warnings left out past the limit.
    pub warnings_omitted: usize,
}

/// The bad rows of rejected items (each with the item as sent, cut at the item limit).
pub(super) fn bad_rows<R: AsRef<str>>(
    kind: Kind,
    app_id: &str,
    received_at: i64,
    rejected: &[(Rejection, R)],
    limits: &crate::validate::Limits,
) -> Vec<BadRow> {
    rejected
        .iter()
        .map(|(r, raw)| BadRow {
            app_id: app_id.to_owned(),
            kind,
            received_at,
            index: r.index,
            id: r.id.clone(),
            error: r.error.as_str().to_owned(),
            message: r.message.clone(),
            raw: truncate(raw.as_ref(), limits.max_item_bytes),
        })
        .collect()
}

/// Validates a body of `kind` for `app_id`, received at `received_at` (epoch ms), against the
/// limits, and packs it into queue messages. Pure: the same arguments give the same messages.
pub fn accept(
    kind: Kind,
    app_id: &str,
    body: &[u8],
    received_at: i64,
    config: &ApiConfig,
) -> Result<Accepted, ApiError> {
    let limits = &config.limits;
    let parsed = parse_batch(kind, body, app_id, received_at, limits).map_err(body_error)?;
    let bad_rows = bad_rows(kind, app_id, received_at, &parsed.rejected, limits);
    let messages = pack(kind, app_id, &parsed.accepted, &bad_rows, &config.packing)?;
    Ok(Accepted {
        messages,
        accepted: parsed.accepted.len(),
        rejected: parsed.rejected.into_iter().map(|(r, _)| r).collect(),
        warnings: parsed.warnings,
        warnings_omitted: parsed.warnings_omitted,
    })
}

/// The id of a request: API Gateway's, which the `api` Lambda's layer puts in the request's
/// extensions; in embedded mode, one made up here.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub(super) fn or_new(id: Option<Extension<RequestId>>) -> String {
        match id {
            Some(Extension(RequestId(id))) => id,
            None => format!("{:016x}", rand::random::<u64>()),
        }
    }
}

/// Hands the body's lines to the raw archive (`protocol`: the body is another protocol's, see
/// [`crate::archive::RawLine::protocol`]); a failure is logged, and the request stands.
pub(super) async fn archive(
    api: &ApiState,
    kind: Kind,
    protocol: Option<&str>,
    app_id: &str,
    request_id: &str,
    at: i64,
    body: &[u8],
) {
    let Some(raw) = &api.archive else { return };
    let put = match lines(app_id, kind, protocol, request_id, at, body) {
        Ok(lines) => raw.put(at, lines).await,
        Err(e) => Err(e),
    };
    if let Err(e) = put {
        tracing::error!(error = %e, app_id, request_id, "A body was not archived.");
    }
}

async fn ingest(
    api: &ApiState,
    kind: Kind,
    caller: Caller<Write>,
    request: (&HeaderMap, Option<Extension<RequestId>>),
    body: Body,
) -> Result<Response, ApiError> {
    let (headers, request_id) = request;
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the content-type must be application/json",
        ));
    }
    let app_id = caller.app_id;
    let limits = &api.config.limits;
    let bytes = read_batch_body(api, headers, body, limits.max_body_bytes).await?;
    let received_at = cauce_store::time::now_ms();
    let parsed = accept(kind, &app_id, &bytes, received_at, &api.config)?;
    let accepted = parsed.accepted;
    let request_id = RequestId::or_new(request_id);
    let archived = archive(api, kind, None, &app_id, &request_id, received_at, &bytes);
    let (sent, ()) = tokio::join!(api.queue.send(parsed.messages), archived);
    if let Err(e) = sent {
        if accepted > 0 {
            return Err(send_failed(&e, &app_id));
        }
        tracing::error!(error = %e, app_id = %app_id, "Queue send failed (bad rows only).");
    }
    let rejected = parsed.rejected;
    count_items(kind, &app_id, accepted, &rejected);
    let (status, error) = match (accepted, rejected.len()) {
        (_, 0) => (StatusCode::ACCEPTED, None),
        (0, _) => (StatusCode::BAD_REQUEST, Some("no_valid_items".to_owned())),
        _ => (StatusCode::MULTI_STATUS, None),
    };
    let items = super::access::Items {
        accepted,
        rejected: rejected.len(),
    };
    Ok((
        status,
        Extension(items),
        Json(BatchResponse {
            accepted,
            rejected,
            error,
            warnings: parsed.warnings,
            warnings_omitted: parsed.warnings_omitted,
        }),
    )
        .into_response())
}

/// The answer when the queue did not take accepted items: 503 with `Retry-After` when it is
/// unavailable (a retry may succeed), 500 otherwise.
pub(super) fn send_failed(e: &crate::error::IngestError, app_id: &str) -> ApiError {
    tracing::error!(error = %e, app_id = %app_id, "Queue send failed.");
    if !e.is_unavailable() {
        return ApiError::backend(e);
    }
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        "the queue is unavailable; nothing was accepted; retry later",
    )
    .retry_after(1)
}

/// Counts a batch's accepted items, and its rejected ones by error code.
pub(super) fn count_items(kind: Kind, app_id: &str, accepted: usize, rejected: &[Rejection]) {
    use cauce_store::metrics::{app_label, ITEMS_ACCEPTED, ITEMS_REJECTED};
    let (kind, app) = (kind.plural(), app_label(app_id));
    if accepted > 0 {
        metrics::counter!(ITEMS_ACCEPTED, "kind" => kind, "app" => app.clone())
            .increment(accepted as u64);
    }
    let mut codes: Vec<&str> = rejected.iter().map(|r| r.error.as_str()).collect();
    codes.sort_unstable();
    for run in codes.chunk_by(|a, b| a == b) {
        let code = run[0].to_owned();
        metrics::counter!(ITEMS_REJECTED, "kind" => kind, "code" => code, "app" => app.clone())
            .increment(run.len() as u64);
    }
}

/// The response body of a timeline request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// The caller's app.
    pub app_id: String,
    /// The user.
    pub user_id: String,
    /// The user's records, newest `ts` first, each with its `kind`.
    #[schema(schema_with = super::openapi::timeline_records)]
    pub records: Vec<cauce_store::Record>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TimelineQuery {
    /// The most records to return: 1 to 1,000 (a setting); 100 when absent.
    limit: Option<usize>,
}

/// Read a user's timeline.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/timeline",
    tag = "read",
    description = "A user's recent records in the caller's app, newest first, read from the store.",
    params(("user_id" = String, Path, description = "The user."), TimelineQuery),
    responses(
        (status = 200, description = "The user's records.", body = Timeline),
        (status = 400, description = "A parameter could not be read (`bad_parameter`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn timeline(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Read>,
    user_id: Result<Path<String>, PathRejection>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Json<Timeline>, ApiError> {
    let Path(user_id) = user_id.map_err(ApiError::bad_parameter)?;
    let Query(q) = query.map_err(ApiError::bad_parameter)?;
    let limit = q.limit.unwrap_or(100).clamp(1, api.config.max_timeline);
    let records = api
        .store
        .timeline(&caller.app_id, &user_id, limit)
        .await
        .map_err(crate::IngestError::from)?;
    Ok(Json(Timeline {
        app_id: caller.app_id,
        user_id,
        records,
    }))
}
