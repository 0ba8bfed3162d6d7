//! The routes of the Segment tracking protocol, for the analytics SDKs: `POST /v1/batch` and
//! `/v1/b`, the single calls (`/v1/track` … `/v1/alias`, and `/v1/t` … `/v1/a`), and
//! `GET /v1/projects/{writeKey}/settings`. Bodies are translated ([`crate::segment`]) into
//! Cauce's own records, validated as those of `/v1/events` are, and queued; the raw archive
//! keeps them as received (less any write key), which a replay translates again.
//!
//! What the SDKs expect of the answers: 200 for a batch that was read, with per-message errors
//! in the body (they drop a batch on any other 4xx but 408 and 429, so one bad message must not
//! cost the good ones); 400 only for a body that is not JSON; 413 past the size limits; 429 with
//! `Retry-After`; 503 when the queue is down (they retry).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, PathsBuilder, Ref, Required, ResponseBuilder};
use utoipa::ToSchema;
use utoipa_axum::router::UtoipaMethodRouter;

use cauce_store::Kind;

use super::ingest::{
    accept, archive, bad_rows, body_error, count_items, is_json, read_batch_body, send_failed,
    Accepted, RequestId,
};
use super::openapi::error_response;
use super::tenant::{Caller, Write, API_KEY_HEADER};
use super::{ApiConfig, ApiError, ApiState, ErrorBody};
use crate::queue::pack;
use crate::segment::{read, without_write_key, Call, Read, Shape};
use crate::validate::{Rejection, Warning};

/// A batch of the tracking protocol (`/v1/batch`, `/v1/b`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct SegmentBatch {
    /// The messages.
    batch: Vec<SegmentMessage>,
    /// Context shared by every message (each message's own `context` wins, key by key).
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// When the SDK sent the batch, by the device's clock: corrects the messages' times.
    #[serde(rename = "sentAt")]
    sent_at: Option<String>,
    /// The write key, where the SDK sends it in the body (analytics.js).
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

/// One message of the tracking protocol (the body of `/v1/track` and the other calls). Any
/// other field is kept in the event's `extra`, with a warning.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub(super) struct SegmentMessage {
    /// `track`, `identify`, `page`, `screen`, `group` or `alias` (on a single call's route, the
    /// route's call when absent).
    #[serde(rename = "type")]
    call: Option<String>,
    /// The message's id: the event's `event_id`, so that an SDK's retry is stored once.
    message_id: Option<String>,
    /// The user; this or `anonymousId` is required.
    user_id: Option<String>,
    /// The device's anonymous id.
    anonymous_id: Option<String>,
    /// What happened (`track`): the event's name.
    event: Option<String>,
    /// The page's or screen's name.
    name: Option<String>,
    /// The event's properties.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
    /// Who the user or group is (`identify`, `group`).
    #[schema(value_type = Option<Object>)]
    traits: Option<Value>,
    /// The device, app, library, locale…
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// The group (`group`).
    group_id: Option<String>,
    /// The user's former id (`alias`).
    previous_id: Option<String>,
    /// When it happened, by the device's clock (RFC 3339).
    timestamp: Option<String>,
    /// When it happened, before any correction (RFC 3339; preferred over `timestamp`).
    original_timestamp: Option<String>,
    /// When the SDK sent it (RFC 3339).
    sent_at: Option<String>,
    /// The write key, where the SDK sends it in the body.
    write_key: Option<String>,
}

/// The answer to a body of the tracking protocol that was read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SegmentAnswer {
    /// Always `true`: the body was read (what the SDKs look for).
    pub success: bool,
    /// How many messages were accepted as events (durable in the queue).
    pub accepted: usize,
    /// The messages refused, with their index, `messageId` and a stable code; they are in the
    /// bad-rows archive.
    pub rejected: Vec<Rejection>,
    /// How many `Experiment Viewed` messages were also accepted as tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposures: Option<usize>,
    /// Notes on accepted messages (fields kept in `extra`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// The route of a shape at `path`: a POST handler that reads it, and its description.
pub(super) fn route(path: &str, shape: Shape) -> UtoipaMethodRouter<Arc<ApiState>> {
    let handler = post(
        move |state: State<Arc<ApiState>>,
              caller: Result<Caller<Write>, ApiError>,
              headers: HeaderMap,
              id: Option<Extension<RequestId>>,
              body: Body| async move {
            match receive(shape, state, caller, headers, id, body).await {
                Ok(res) => res,
                Err(e) => e.into_response(),
            }
        },
    );
    let paths = PathsBuilder::new()
        .path(
            path,
            PathItem::new(HttpMethod::Post, operation(path, shape)),
        )
        .build();
    (Vec::new(), paths, handler)
}

/// What a route of the protocol reads and answers, for the OpenAPI document.
fn operation(path: &str, shape: Shape) -> Operation {
    let (schema, summary) = match shape {
        Shape::Batch => ("SegmentBatch", "A batch of messages.".to_owned()),
        Shape::Single(call) => (
            "SegmentMessage",
            format!("One `{}` message.", call.as_str()),
        ),
    };
    let json = |schema: &str| {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(schema)))
            .build()
    };
    let body = RequestBodyBuilder::new()
        .content("application/json", json(schema))
        .required(Some(Required::True))
        .build();
    let answered = ResponseBuilder::new()
        .description(
            "The body was read: every message is accepted or listed in `rejected` (the SDKs \
             drop a batch on a 4xx, so one bad message never costs the good ones).",
        )
        .content("application/json", json("SegmentAnswer"));
    OperationBuilder::new()
        .tag("sdk")
        .operation_id(Some(format!("sdk_{}", path.trim_start_matches("/v1/"))))
        .summary(Some(summary))
        .description(Some(
            "The Segment tracking protocol (<https://segment.com/docs/connections/spec/>). The \
             write key comes as HTTP Basic, in `x-api-key`, or as `writeKey` in the body. Bodies \
             are JSON, also sent as `text/plain`, and may be gzip; 32 KB a message, 500 KB a \
             batch (settings). Each message becomes an event; `Experiment Viewed` also a test.",
        ))
        .request_body(Some(body))
        .response("200", answered)
        .response(
            "400",
            error_response("The body is not JSON (`malformed_body`, `bad_gzip`)."),
        )
        .response(
            "408",
            error_response("The body did not arrive in time (`body_timeout`)."),
        )
        .response(
            "413",
            error_response("Over the size limits (`body_too_large`)."),
        )
        .response(
            "415",
            error_response("Neither JSON nor text (`unsupported_media_type`)."),
        )
        .securities(Some([
            SecurityRequirement::new("basic", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
            SecurityRequirement::default(),
        ]))
        .build()
}

/// Every route of the protocol: its path and shape.
pub(super) fn routes() -> Vec<(&'static str, Shape)> {
    let mut out = vec![("/v1/batch", Shape::Batch), ("/v1/b", Shape::Batch)];
    for call in Call::ALL {
        let (long, short) = match call {
            Call::Track => ("/v1/track", "/v1/t"),
            Call::Identify => ("/v1/identify", "/v1/i"),
            Call::Page => ("/v1/page", "/v1/p"),
            Call::Screen => ("/v1/screen", "/v1/s"),
            Call::Group => ("/v1/group", "/v1/g"),
            Call::Alias => ("/v1/alias", "/v1/a"),
        };
        out.push((long, Shape::Single(call)));
        out.push((short, Shape::Single(call)));
    }
    out
}

/// JSON, or `text/plain` (analytics-kotlin and analytics.js send JSON as text, which spares the
/// browser a CORS preflight), or no type at all.
fn readable(headers: &HeaderMap) -> bool {
    let Some(mime) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    is_json(headers)
        || mime.to_str().is_ok_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.is_empty() || mime.eq_ignore_ascii_case("text/plain")
        })
}

/// The caller of a request whose key came in the body (`writeKey`), as if it had come in
/// `x-api-key`: the same lookup, rate limits and refusals.
async fn by_write_key(api: &Arc<ApiState>, key: &str) -> Result<Caller<Write>, ApiError> {
    let value = HeaderValue::from_str(key).map_err(|_| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is not valid",
        )
    })?;
    let (mut parts, ()) = Request::builder()
        .header(API_KEY_HEADER, value)
        .body(())
        .expect("a request with one valid header")
        .into_parts();
    Caller::<Write>::from_request_parts(&mut parts, api).await
}

/// A body of the tracking protocol translated, validated and packed: its events, and its
/// `Experiment Viewed` exposures as tests. What the SDKs' routes queue, and what a replay of
/// the raw archive queues again. Pure: the same arguments give the same messages.
#[derive(Debug)]
pub struct SdkAccepted {
    /// The events; rejections and warnings by the message's index in the body.
    pub events: Accepted,
    /// The exposures, when some messages were `Experiment Viewed`.
    pub exposures: Option<Accepted>,
}

impl SdkAccepted {
    /// Both kinds together (for a replay's counts).
    pub fn merged(self) -> Accepted {
        let mut all = self.events;
        if let Some(x) = self.exposures {
            all.messages.extend(x.messages);
            all.accepted += x.accepted;
            all.rejected.extend(x.rejected);
        }
        all
    }
}

/// Translates, validates and packs the messages of a body already read, for `app_id`,
/// received at `received_at` (epoch ms).
pub fn accept_read(
    read: Read<'_>,
    app_id: &str,
    received_at: i64,
    config: &ApiConfig,
) -> Result<SdkAccepted, ApiError> {
    let limits = &config.limits;
    let t = read
        .translate(app_id, received_at, limits)
        .map_err(body_error)?;
    let bad_rows = bad_rows(Kind::Event, app_id, received_at, &t.rejected, limits);
    let events = Accepted {
        messages: pack(Kind::Event, app_id, &t.events, &bad_rows, &config.packing)?,
        accepted: t.events.len(),
        rejected: t.rejected.into_iter().map(|(r, _)| r).collect(),
        warnings: t.warnings,
        warnings_omitted: t.warnings_omitted,
    };
    let exposures = t
        .exposures
        .map(|body| accept(Kind::Exposure, app_id, body.as_bytes(), received_at, config))
        .transpose()?;
    Ok(SdkAccepted { events, exposures })
}

/// Reads, translates, validates and packs a body of `shape` (a replay of the raw archive).
pub fn accept_sdk(
    shape: Shape,
    app_id: &str,
    body: &[u8],
    received_at: i64,
    config: &ApiConfig,
) -> Result<SdkAccepted, ApiError> {
    let read = read(body, shape).map_err(malformed)?;
    accept_read(read, app_id, received_at, config)
}

fn malformed(e: crate::segment::Malformed) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.0)
}

async fn receive(
    shape: Shape,
    State(api): State<Arc<ApiState>>,
    caller: Result<Caller<Write>, ApiError>,
    headers: HeaderMap,
    request_id: Option<Extension<RequestId>>,
    body: Body,
) -> Result<Response, ApiError> {
    if !readable(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the content-type must be application/json or text/plain",
        ));
    }
    let limits = &api.config.limits;
    let max = limits.max_sdk_body_bytes;
    // A caller refused for a reason other than a missing key is refused before the body.
    let caller = match caller {
        Err(e) if e.code() != "missing_api_key" => return Err(e),
        c => c,
    };
    let bytes = read_batch_body(&api, &headers, body, max).await?;
    let received_at = cauce_store::time::now_ms();
    let sdk = read(&bytes, shape).map_err(malformed)?;
    let caller = match (caller, &sdk.write_key) {
        (Ok(c), _) => c,
        (Err(_), Some(key)) => by_write_key(&api, key).await?,
        (Err(e), None) => return Err(e),
    };
    let app_id = caller.app_id;
    let request_id = RequestId::or_new(request_id);
    let SdkAccepted {
        mut events,
        mut exposures,
    } = accept_read(sdk, &app_id, received_at, &api.config)?;
    // Archived as received (but for a write key), so that a replay translates it again.
    let protocol = shape.protocol();
    let body = without_write_key(&bytes);
    archive(
        &api,
        Kind::Event,
        Some(&protocol),
        &app_id,
        &request_id,
        received_at,
        &body,
    )
    .await;
    let exposed = exposures.as_ref().map_or(0, |x| x.accepted);
    let mut messages = std::mem::take(&mut events.messages);
    if let Some(x) = exposures.as_mut() {
        messages.append(&mut x.messages);
    }
    if let Err(e) = api.queue.send(messages).await {
        if events.accepted + exposed > 0 {
            return Err(send_failed(&e, &app_id));
        }
        tracing::error!(error = %e, app_id = %app_id, "Queue send failed (bad rows only).");
    }
    count_items(Kind::Event, &app_id, events.accepted, &events.rejected);
    if let Some(x) = &exposures {
        count_items(Kind::Exposure, &app_id, x.accepted, &x.rejected);
    }
    let items = super::access::Items {
        accepted: events.accepted,
        rejected: events.rejected.len(),
    };
    let answer = SegmentAnswer {
        success: true,
        accepted: events.accepted,
        rejected: events.rejected,
        exposures: (exposed > 0).then_some(exposed),
        warnings: events.warnings,
    };
    Ok((StatusCode::OK, Extension(items), Json(answer)).into_response())
}

/// The settings a mobile SDK fetches at start.
///
/// Their `integrations["Segment.io"].apiHost` makes the SDK send to this host (the SDKs add
/// `https://`: serve HTTPS, directly or behind a proxy). An unknown key is 404.
#[utoipa::path(
    get,
    path = "/v1/projects/{write_key}/settings",
    tag = "sdk",
    params(("write_key" = String, Path, description = "The app's key, as the SDK's write key.")),
    responses(
        (status = 200, description = "The SDK's settings: `integrations[\"Segment.io\"].apiHost` \
                                      is this host.", body = Object),
        (status = 400, description = "The key could not be read (`bad_parameter`).", body = ErrorBody),
        (status = 403, description = "The key is disabled (`disabled_key`).", body = ErrorBody),
        (status = 404, description = "No app has this key (`unknown_write_key`).", body = ErrorBody),
        (status = 429, description = "Too many requests (`rate_limited`).", body = ErrorBody),
    )
)]
pub(super) async fn settings(
    State(api): State<Arc<ApiState>>,
    headers: HeaderMap,
    write_key: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(write_key) = write_key.map_err(ApiError::bad_parameter)?;
    by_write_key(&api, &write_key).await.map_err(|e| {
        if e.status() == StatusCode::UNAUTHORIZED {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_write_key",
                "no app has this write key",
            )
        } else {
            e
        }
    })?;
    let host = ["x-forwarded-host", "host"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or("localhost");
    let api_host = format!("{host}/v1");
    let all: Value = json!({ "__default": { "enabled": true, "integrations": {} } });
    let body = json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
            }
        },
        "plan": { "track": all, "identify": all, "group": all },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": { "sampleRate": 0.0 },
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    });
    Ok(Json(body).into_response())
}
