//! The OpenAPI document of the HTTP API (`GET /openapi.json`, committed as
//! `ingest/openapi.json`). It is generated from the handlers' `#[utoipa::path]` annotations and
//! the types they read and write, through the router itself ([`utoipa_axum`]), so that a route
//! cannot exist without being described. This module holds what no handler says alone: the
//! document's header, the security schemes, the errors every route may answer, and the shapes of
//! bodies the API reads as raw bytes.

use std::sync::{Arc, OnceLock};

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ArrayBuilder, ContentBuilder, OneOfBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use cauce_store::model::{Event, Exposure, Story, Timestamp};

use super::error::ErrorBody;
use super::ingest::BatchResponse;
use super::segment::{SegmentAnswer, SegmentBatch, SegmentMessage};
use super::ApiState;

/// The document's header, schemes and shared parts; the routes add their paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cauce",
        description = "Analytics event ingestion: events, stories and A/B tests in, a Parquet \
                       lake and reports out. Beside its own routes, Cauce speaks the Segment \
                       tracking protocol, so the analytics SDKs send to it unchanged. Every \
                       error is `{\"error\": code, \"message\": text}` with a stable code.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody, Timestamp, BatchResponse, BatchRefused, SegmentBatch, SegmentMessage, SegmentAnswer)),
    modifiers(&Schemes),
    tags(
        (name = "ingest", description = "Records in: batches of events, stories and tests."),
        (name = "sdk", description = "The Segment tracking protocol, for the analytics SDKs."),
        (name = "read", description = "The app's data out: timelines, reports, dashboards."),
        (name = "admin", description = "Apps and keys (admin keys)."),
        (name = "operations", description = "Health, metrics and this document."),
    )
)]
pub(super) struct ApiDoc;

/// The body of `POST /v1/events`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct EventBatch {
    /// When the client sent the batch, by its own clock: the server corrects every item's
    /// time by the difference (clock skew).
    sent_at: Option<Timestamp>,
    /// The events, 1 to 500 (the limit is a setting); each at most 32 KiB.
    batch: Vec<Event>,
}

/// The body of `POST /v1/stories`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct StoryBatch {
    /// When the client sent the batch, by its own clock.
    sent_at: Option<Timestamp>,
    /// The stories, 1 to 500.
    batch: Vec<Story>,
}

/// The body of `POST /v1/tests`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct TestBatch {
    /// When the client sent the batch, by its own clock.
    sent_at: Option<Timestamp>,
    /// The A/B test exposures and results, 1 to 500.
    batch: Vec<Exposure>,
}

/// A 400 for a batch: the body could not be read, or no item was valid.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum BatchRefused {
    /// No item was valid: every one is listed, with `error: no_valid_items`.
    NoValidItems(BatchResponse),
    /// The body is not a batch (`malformed_body`, `empty_batch`, `bad_timestamp`, `bad_gzip`).
    Unreadable(ErrorBody),
}

/// The answers of the batch routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum BatchAnswers {
    /// Every item was accepted: durable in the queue.
    #[response(status = 202)]
    Accepted(BatchResponse),
    /// Some items were accepted (durable in the queue), the others rejected.
    #[response(status = 207)]
    Partly(BatchResponse),
    /// Nothing was accepted: the body could not be read, or no item was valid.
    #[response(status = 400)]
    Refused(BatchRefused),
    /// The body did not arrive in time (`body_timeout`).
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// The body, inflated, or the batch is over the limits (`body_too_large`, `too_many_items`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Not JSON, or an encoding other than gzip (`unsupported_media_type`,
    /// `unsupported_encoding`).
    #[response(status = 415)]
    Unsupported(ErrorBody),
}

/// The records of a timeline: events, stories and tests, each with its `kind`.
pub(super) fn timeline_records() -> ArrayBuilder {
    let mut kinds = OneOfBuilder::new();
    for name in ["Event", "Story", "Exposure"] {
        kinds = kinds.item(Ref::from_schema_name(name));
    }
    ArrayBuilder::new().items(kinds.description(Some(
        "A record with its `kind` (`event`, `story` or `test`) beside its fields.",
    )))
}

/// The security schemes: an app's key in `x-api-key` or as HTTP Basic (the key as the user
/// name, as the analytics SDKs send their write key), and a person's token from the team's
/// user pool (deployments on AWS).
struct Schemes;

impl Modify for Schemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                super::API_KEY_HEADER,
                "The app's key.",
            ))),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The app's key as the user name, with or without a password \
                         (an SDK's write key).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "team",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "On AWS: a person's Cognito id or access token; the app read is named \
                         in `x-cauce-app` or `?app=`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The errors any route may answer, added where a route does not describe them itself: the
/// refusals of a caller (where the route needs a key), and a backend that is unavailable.
struct Errors;

impl Errors {
    const GUARDED: [(&'static str, &'static str); 3] = [
        (
            "401",
            "No key, or a key that is not valid (`missing_api_key`, `invalid_api_key`).",
        ),
        (
            "403",
            "The key is disabled, or its role may not do this (`disabled_key`, `forbidden`).",
        ),
        (
            "429",
            "Too many requests for the key, or too many failed keys from this address \
             (`rate_limited`, `too_many_auth_failures`), or, on a write, a backlog at its \
             bound (`backlog_full`: nothing was accepted); `Retry-After` says when to retry.",
        ),
    ];
    const ALL: [(&'static str, &'static str); 1] = [(
        "503",
        "A backend is unavailable (`unavailable`, `queue_unavailable`): nothing was accepted; \
         retry after `Retry-After`.",
    )];

    fn add(op: &mut Operation) {
        let guarded = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let extra = Errors::ALL
            .iter()
            .chain(Errors::GUARDED.iter().filter(|_| guarded));
        for (status, description) in extra {
            op.responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| error_response(description));
        }
    }
}

impl Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                Errors::add(op);
            }
        }
    }
}

/// A response with an [`ErrorBody`].
pub(super) fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// The whole document: every route, whether or not this deployment serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = super::routes(true, true).into_openapi();
    Errors.modify(&mut doc);
    doc
}

/// The document as pretty JSON, ending in a newline: what `ingest/openapi.json` holds.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut json = document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        json.push('\n');
        json
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1).", body = Object))
)]
pub(super) async fn serve(_: axum::extract::State<Arc<ApiState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}
