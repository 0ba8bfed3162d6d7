//! The routes of the Segment tracking protocol, for the analytics SDKs: `POST /v1/batch` and
//! `/v1/b`, the single calls (`/v1/track` … `/v1/alias`, and `/v1/t` … `/v1/a`), and
//! `GET /v1/projects/{writeKey}/settings`. Bodies are translated ([`crate::segment`]) into
//! Cauce's own batches, then validated, archived and queued exactly as those are.
//!
//! What the SDKs expect of the answers: 200 for a batch that was read, with per-message errors
//! in the body (they drop a batch on any other 4xx but 408 and 429, so one bad message must not
//! cost the good ones); 400 only for a body that is not JSON; 413 past the size limits; 429 with
//! `Retry-After`; 503 when the queue is down (they retry).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Extension, Json};
use serde_json::{json, Value};

use cauce_store::{BadRow, Kind};

use super::ingest::{
    accept, archive, count_items, is_json, read_batch_body, send_failed, RequestId,
};
use super::tenant::{Caller, Write, API_KEY_HEADER};
use super::{ApiError, ApiState};
use crate::queue::pack;
use crate::segment::{translate, Call, Refused, Shape};
use crate::validate::{Code, Rejection, Warning};

/// The route of a shape: a POST handler that reads it.
pub(super) fn route(shape: Shape) -> MethodRouter<Arc<ApiState>> {
    post(
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
    )
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

fn bad_row(app_id: &str, received_at: i64, r: &Refused) -> BadRow {
    BadRow {
        app_id: app_id.to_owned(),
        kind: Kind::Event,
        received_at,
        index: r.index,
        id: r.id.clone(),
        error: refusal_code(r).as_str().to_owned(),
        message: r.message.clone(),
        raw: r.raw.clone(),
    }
}

fn refusal_code(r: &Refused) -> Code {
    match r.field {
        "userId" | "event" => Code::MissingField,
        "batch" => Code::BadType,
        _ => Code::BadValue,
    }
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
    let bytes = read_batch_body(&headers, body, max, api.config.body_timeout).await?;
    let received_at = cauce_store::time::now_ms();
    let sdk = translate(&bytes, shape, received_at)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.0))?;
    let caller = match (caller, &sdk.write_key) {
        (Ok(c), _) => c,
        (Err(_), Some(key)) => by_write_key(&api, key).await?,
        (Err(e), None) => return Err(e),
    };
    let app_id = caller.app_id;
    let request_id = RequestId::or_new(request_id);
    let mut messages = Vec::new();
    let mut rejected: Vec<Rejection> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    let mut counts = Vec::new();
    let (mut accepted, mut exposures) = (0, 0);
    for (kind, body, index) in [
        (Kind::Event, &sdk.events, &sdk.event_index),
        (Kind::Exposure, &sdk.exposures, &sdk.exposure_index),
    ] {
        let Some(body) = body else { continue };
        let text = body.to_string();
        let a = accept(kind, &app_id, text.as_bytes(), received_at, &api.config)?;
        archive(
            &api,
            kind,
            &app_id,
            &request_id,
            received_at,
            text.as_bytes(),
        )
        .await;
        messages.extend(a.messages);
        counts.push((kind, a.accepted, a.rejected.clone()));
        if kind == Kind::Event {
            accepted = a.accepted;
            rejected.extend(a.rejected.into_iter().map(|mut r| {
                r.index = index[r.index];
                r
            }));
            warnings.extend(a.warnings.into_iter().map(|mut w| {
                w.index = index[w.index];
                w
            }));
        } else {
            exposures = a.accepted;
        }
    }
    if !sdk.refused.is_empty() {
        let rows: Vec<BadRow> = sdk
            .refused
            .iter()
            .map(|r| bad_row(&app_id, received_at, r))
            .collect();
        messages.extend(pack(Kind::Event, &app_id, &[], &rows, &api.config.packing)?);
        let refused: Vec<Rejection> = sdk
            .refused
            .iter()
            .map(|r| Rejection {
                index: r.index,
                id: r.id.clone(),
                error: refusal_code(r),
                field: r.field.to_owned(),
                message: r.message.clone(),
            })
            .collect();
        counts.push((Kind::Event, 0, refused.clone()));
        rejected.extend(refused);
    }
    rejected.sort_by_key(|r| r.index);
    if let Err(e) = api.queue.send(messages).await {
        if accepted + exposures > 0 {
            return Err(send_failed(&e, &app_id));
        }
        tracing::error!(error = %e, app_id = %app_id, "Queue send failed (bad rows only).");
    }
    for (kind, n, refused) in &counts {
        count_items(*kind, &app_id, *n, refused);
    }
    let items = super::access::Items {
        accepted,
        rejected: rejected.len(),
    };
    let mut answer = json!({ "success": true, "accepted": accepted, "rejected": rejected });
    if exposures > 0 {
        answer["exposures"] = json!(exposures);
    }
    if !warnings.is_empty() {
        answer["warnings"] = json!(warnings);
    }
    Ok((StatusCode::OK, Extension(items), Json(answer)).into_response())
}

/// `GET /v1/projects/{writeKey}/settings`: what a mobile SDK fetches at start. Its
/// `integrations["Segment.io"].apiHost` makes the SDK send to this host (the SDKs add
/// `https://`: serve HTTPS, directly or behind a proxy). An unknown key is 404.
pub(super) async fn settings(
    State(api): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(write_key): Path<String>,
) -> Result<Response, ApiError> {
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
