//! The HTTP API: one axum `Router`, served by hyper locally and by `lambda_http` in AWS.
//!
//! * [`tenant`]: the [`Caller`] extractor: who calls, and whether the role may.
//! * [`ingest`]: the batch routes and the user timeline.
//! * [`reports`]: the published reports, through the [`ReportShelf`] port.
//! * `admin`: apps and keys (embedded mode; in AWS, the `admin` function).
//! * [`dashboard`]: the pages for people: an app's dashboard, the operations page.
//! * `segment`: the routes of the analytics SDKs' tracking protocol (Segment's).
//! * [`error`]: the error responses.
//! * [`openapi`]: the OpenAPI document, generated from the routes.
//! * [`access`]: the access log.

pub mod access;
mod admin;
pub mod dashboard;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod reports;
mod segment;
pub mod tenant;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use cauce_store::sqlite::SqliteStore;
use cauce_store::RecordStore;

use crate::archive::RawArchive;
use crate::auth::{AppAdmin, CachedKeys};
use crate::error::Result;
use crate::queue::{Packing, Queue};
use crate::ratelimit::{AuthFailures, RateLimits};
use crate::validate::Limits;

pub use dashboard::OpsPage;
pub use error::{ApiError, ErrorBody};
pub use ingest::{accept, Accepted, BatchResponse, RequestId, Timeline};
pub use openapi::{document, document_json};
pub use reports::{LakeShelf, ReportList, ReportShelf};
pub use segment::{accept_read, accept_sdk, SdkAccepted, SegmentAnswer};
pub use tenant::{Authorized, Caller, API_KEY_HEADER, APP_HEADER};

/// Where the tenant of a request comes from.
pub enum Tenancy {
    /// The `x-api-key` header, looked up in a key store (embedded mode).
    Keys(Arc<CachedKeys>),
    /// API Gateway's authorizer, as the `api` Lambda's layer puts it in the request
    /// ([`Authorized`]). A request without it is refused.
    Authorizer,
}

/// Settings of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Body, batch, item and timestamp limits.
    pub limits: Limits,
    /// How records are packed into queue messages.
    pub packing: Packing,
    /// Requests a second per key when the app sets no rate of its own.
    pub default_rate_limit: u32,
    /// The most records one timeline request returns.
    pub max_timeline: usize,
    /// How long a client may take to send a request's body (408 after it).
    pub body_timeout: std::time::Duration,
    /// Failed authentications a minute (and at once) per client address before that address
    /// gets 429 for keys that are not already known (embedded mode, where the peer address is
    /// the client's).
    pub auth_failures_per_minute: u32,
    /// Admission control: once this many items are pending (accepted, not yet in the lake, as
    /// `GET /healthz` counts them), the write routes answer 429 `backlog_full` with
    /// `Retry-After` until the pipeline catches up, so that a load above what it sustains
    /// fills neither the disk nor the lake's lag without bound. 0: no bound (the `api` Lambda,
    /// whose queue is SQS).
    pub max_backlog: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            limits: Limits::default(),
            packing: Packing::default(),
            default_rate_limit: 2_000,
            max_timeline: 1_000,
            body_timeout: std::time::Duration::from_secs(30),
            auth_failures_per_minute: 30,
            max_backlog: 0,
        }
    }
}

/// Work accepted but not yet done downstream of the queue (the exporter's lag, say), which
/// `GET /healthz` adds to the queue's own `pending`.
#[async_trait]
pub trait Backlog: Send + Sync {
    /// How many items wait.
    async fn backlog(&self) -> Result<u64>;
}

/// How far a consumer of the embedded change log (the lake exporter, in `cauce serve`) is
/// behind it: a [`Backlog`].
pub struct FeedLag {
    store: SqliteStore,
    cursor: String,
}

impl FeedLag {
    /// The lag of the consumer whose cursor is named `cursor`.
    pub fn new(store: SqliteStore, cursor: impl Into<String>) -> Self {
        FeedLag {
            store,
            cursor: cursor.into(),
        }
    }
}

#[async_trait]
impl Backlog for FeedLag {
    async fn backlog(&self) -> Result<u64> {
        Ok(self.store.lag(&self.cursor).await?)
    }
}

/// The Prometheus page of `GET /metrics`, where a deployment serves one (`cauce serve`).
#[async_trait]
pub trait MetricsPage: Send + Sync {
    /// The page, in Prometheus' text format.
    async fn render(&self) -> Result<String>;
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone who can reach the address (as most exporters do; put it behind the network).
    Open,
    /// Callers with an admin key only.
    Admin,
}

/// Everything a request handler needs.
pub struct ApiState {
    /// Where accepted items go.
    pub queue: Arc<dyn Queue>,
    /// Where the timeline is read.
    pub store: Arc<dyn RecordStore>,
    /// How the tenant is found.
    pub tenancy: Tenancy,
    /// App and key management, where this deployment offers it.
    pub admin: Option<Arc<dyn AppAdmin>>,
    /// Settings.
    pub config: ApiConfig,
    /// Downstream work that `pending` also counts.
    pub backlogs: Vec<Arc<dyn Backlog>>,
    /// Published reports, where this deployment has them.
    pub reports: Option<Arc<dyn ReportShelf>>,
    /// The raw archive of request bodies, where this deployment keeps one.
    pub archive: Option<Arc<dyn RawArchive>>,
    /// `GET /metrics`, where this deployment serves it.
    pub metrics: Option<(Arc<dyn MetricsPage>, MetricsAccess)>,
    /// `GET /dashboard/ops`, where this deployment serves it.
    pub ops: Option<Arc<dyn OpsPage>>,
    /// With [`Tenancy::Authorizer`]: the keys of requests that no authorizer saw (the analytics
    /// SDKs' routes, whose key analytics.js sends in the body), looked up here.
    pub unguarded_keys: Option<Arc<CachedKeys>>,
    rate: RateLimits,
    auth_failures: AuthFailures,
    /// Items pending at the last reading ([`ApiState::watch_backlog`]).
    pending: AtomicU64,
}

impl ApiState {
    /// Builds the state.
    pub fn new(
        queue: Arc<dyn Queue>,
        store: Arc<dyn RecordStore>,
        tenancy: Tenancy,
        admin: Option<Arc<dyn AppAdmin>>,
        config: ApiConfig,
    ) -> Self {
        ApiState {
            rate: RateLimits::new(config.default_rate_limit),
            auth_failures: AuthFailures::new(config.auth_failures_per_minute),
            queue,
            store,
            tenancy,
            admin,
            config,
            backlogs: Vec::new(),
            reports: None,
            archive: None,
            metrics: None,
            ops: None,
            unguarded_keys: None,
            pending: AtomicU64::new(0),
        }
    }

    /// Archives every request body that reaches the queue in `archive`.
    pub fn with_archive(mut self, archive: Arc<dyn RawArchive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// Serves `GET /v1/reports` from `shelf`.
    pub fn with_reports(mut self, shelf: Arc<dyn ReportShelf>) -> Self {
        self.reports = Some(shelf);
        self
    }

    /// Serves `GET /metrics` from `page`, to the callers `access` lets in.
    pub fn with_metrics(mut self, page: Arc<dyn MetricsPage>, access: MetricsAccess) -> Self {
        self.metrics = Some((page, access));
        self
    }

    /// Looks up, in `keys`, the key of a request that reached the API without an authorizer's
    /// context (with [`Tenancy::Authorizer`]: the routes API Gateway leaves to the API).
    pub fn with_unguarded_keys(mut self, keys: Arc<CachedKeys>) -> Self {
        self.unguarded_keys = Some(keys);
        self
    }

    /// Serves `GET /dashboard/ops` (admin keys) from `page`.
    pub fn with_ops(mut self, page: Arc<dyn OpsPage>) -> Self {
        self.ops = Some(page);
        self
    }

    /// Adds downstream work to what `GET /healthz` reports as `pending`.
    pub fn with_backlog(mut self, backlog: Arc<dyn Backlog>) -> Self {
        self.backlogs.push(backlog);
        self
    }

    /// Accepted items not yet in the lake, and messages in the dead letters.
    async fn health(&self) -> Result<(u64, u64)> {
        let pending = self.pending_items().await?;
        self.pending.store(pending, Ordering::Relaxed);
        Ok((pending, self.queue.dead_lettered().await?))
    }

    /// Reads the items pending every `every`, for admission control
    /// ([`ApiConfig::max_backlog`]); runs until dropped. A reading that fails keeps the last
    /// one (the write routes then answer as the queue does).
    pub async fn watch_backlog(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.pending_items().await {
                Ok(n) => self.pending.store(n, Ordering::Relaxed),
                Err(e) => tracing::warn!(error = %e, "The backlog could not be read."),
            }
        }
    }

    async fn pending_items(&self) -> Result<u64> {
        let mut pending = self.queue.pending().await?;
        for b in &self.backlogs {
            pending += b.backlog().await?;
        }
        Ok(pending)
    }

    /// Whether a write may go on: 429 `backlog_full` while the backlog is at its bound.
    pub(crate) fn admit(&self) -> std::result::Result<(), ApiError> {
        let limit = self.config.max_backlog;
        let pending = self.pending.load(Ordering::Relaxed);
        if limit == 0 || pending < limit {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "backlog_full",
            format!(
                "the server is behind: {pending} items wait to reach the lake (the bound is \
                 {limit}); nothing was accepted; retry after the Retry-After delay"
            ),
        )
        .retry_after(1))
    }
}

/// Every route, described: the admin routes and `GET /metrics` only when asked for (a
/// deployment without them answers 404 there, as for any unknown path).
fn routes(admin: bool, metrics: bool) -> OpenApiRouter<Arc<ApiState>> {
    let mut router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi::serve))
        .routes(routes!(ingest::post_events))
        .routes(routes!(ingest::post_stories))
        .routes(routes!(ingest::post_tests))
        .routes(routes!(ingest::timeline))
        .routes(routes!(reports::list_reports))
        .routes(routes!(reports::get_report))
        .routes(routes!(dashboard::app_dashboard))
        .routes(routes!(dashboard::ops_dashboard))
        .routes(routes!(segment::settings));
    for (path, shape) in segment::routes() {
        router = router.routes(segment::route(path, shape));
    }
    if metrics {
        router = router.routes(routes!(self::metrics));
    }
    if admin {
        router = router
            .routes(routes!(admin::create_app, admin::list_apps))
            .routes(routes!(admin::disable_app))
            .routes(routes!(admin::enable_app))
            .routes(routes!(admin::rotate_key));
    }
    router
}

/// The router over a state.
pub fn router(state: Arc<ApiState>) -> Router {
    let (router, _) = routes(state.admin.is_some(), state.metrics.is_some()).split_for_parts();
    router
        .route_layer(axum::middleware::from_fn(access::mark_route))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(access::log))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The Prometheus page.
///
/// With [`MetricsAccess::Admin`], for admin keys only.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    description = "The Prometheus page (`cauce serve --metrics`). With `--metrics admin`, for \
                   admin keys only; with `--metrics off`, 404.",
    responses(
        (status = 200, description = "Prometheus' text format.", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are off.", body = ErrorBody),
    ),
    security((), ("api_key" = []), ("basic" = []))
)]
async fn metrics(State(api): State<Arc<ApiState>>, req: Request) -> Response {
    let Some((page, access)) = &api.metrics else {
        return not_found().await.into_response();
    };
    if *access == MetricsAccess::Admin {
        let (mut parts, _) = req.into_parts();
        if let Err(e) = Caller::<tenant::Manage>::from_request_parts(&mut parts, &api).await {
            return e.into_response();
        }
    }
    match page.render().await {
        Ok(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "The metrics page failed.");
            ApiError::backend(&e).into_response()
        }
    }
}

/// The state of the pipeline, as `GET /healthz` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a backend cannot answer (503).
    pub status: HealthStatus,
    /// Items accepted and not yet in the lake (the queue, and the exporter's lag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// Messages in the dead letters, waiting for a person (`cauce dlq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<u64>,
    /// `unavailable`, with a 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the backends answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// They did.
    Ok,
    /// One did not.
    Unavailable,
}

/// The pipeline's health.
///
/// `{"status": "ok", "pending", "dead_letters"}`; when a backend cannot answer, 503 with a
/// stable code only: the details (paths, queue URLs, accounts) go to the log, not to callers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The backends answer.", body = Health),
        (status = 503, description = "A backend does not answer.", body = Health),
    )
)]
async fn healthz(State(api): State<Arc<ApiState>>) -> Response {
    let (status, health) = match api.health().await {
        Ok((pending, dead_letters)) => (
            StatusCode::OK,
            Health {
                status: HealthStatus::Ok,
                pending: Some(pending),
                dead_letters: Some(dead_letters),
                error: None,
            },
        ),
        Err(e) => {
            tracing::error!(error = %e, "Health check failed.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Health {
                    status: HealthStatus::Unavailable,
                    pending: None,
                    dead_letters: None,
                    error: Some("unavailable".to_owned()),
                },
            )
        }
    };
    (status, Json(health)).into_response()
}
