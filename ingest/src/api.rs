//! The HTTP API: one axum `Router`, served by hyper locally and by `lambda_http` in AWS.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use cauce_store::{BadRow, Kind, RecordStore};

use crate::auth::{hash_key, AppAdmin, CachedKeys, KeyLookup, Role};
use crate::queue::{pack, Packing, Queue};
use crate::ratelimit::RateLimits;
use crate::validate::{parse_batch, BodyError, Limits, Rejection};

/// The header that carries the API key (API Gateway's own).
pub const API_KEY_HEADER: &str = "x-api-key";

/// Where the tenant of a request comes from.
pub enum Tenancy {
    /// The `x-api-key` header, looked up in a key store (embedded mode).
    Keys(Arc<CachedKeys>),
    /// The API Gateway authorizer's context (`app_id`, `role`), which `lambda_http` puts in the
    /// request's extensions. A request without it is refused.
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            limits: Limits::default(),
            packing: Packing::default(),
            default_rate_limit: 2_000,
            max_timeline: 1_000,
        }
    }
}

/// Work accepted but not yet done downstream of the queue (the exporter's lag, say), which
/// `GET /healthz` adds to the queue's own `pending`.
#[async_trait::async_trait]
pub trait Backlog: Send + Sync {
    /// How many items wait.
    async fn backlog(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
}

/// An error from a port that the API only reports.
pub type PortError = Box<dyn std::error::Error + Send + Sync>;

/// The latest published reports of each app: what `GET /v1/reports` serves.
#[async_trait::async_trait]
pub trait ReportShelf: Send + Sync {
    /// The names of the app's published reports, sorted.
    async fn names(&self, app_id: &str) -> Result<Vec<String>, PortError>;
    /// One report as JSON, or `None` when the app has no such report yet.
    async fn report(&self, app_id: &str, name: &str) -> Result<Option<Bytes>, PortError>;
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
    rate: RateLimits,
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
            queue,
            store,
            tenancy,
            admin,
            config,
            backlogs: Vec::new(),
            reports: None,
        }
    }

    /// Serves `GET /v1/reports` from `shelf`.
    pub fn with_reports(mut self, shelf: Arc<dyn ReportShelf>) -> Self {
        self.reports = Some(shelf);
        self
    }

    /// Adds downstream work to what `GET /healthz` reports as `pending`.
    pub fn with_backlog(mut self, backlog: Arc<dyn Backlog>) -> Self {
        self.backlogs.push(backlog);
        self
    }

    async fn pending(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        let mut total = self.queue.pending().await?;
        for b in &self.backlogs {
            total += b.backlog().await?;
        }
        Ok(total)
    }
}

/// An error response: a status, a stable code and a message, as `{"error", "message"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "Request failed.");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backend is unavailable; retry later",
        )
        .retry_after(1)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// The caller, as resolved from its key or the authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant.
    pub app_id: String,
    /// What the key may do.
    pub role: Role,
}

impl ApiState {
    async fn tenant(&self, parts: &Parts) -> Result<Tenant, ApiError> {
        match &self.tenancy {
            Tenancy::Keys(keys) => {
                let key = parts
                    .headers
                    .get(API_KEY_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "missing_api_key",
                            "the x-api-key header is required",
                        )
                    })?;
                let hash = hash_key(key);
                let info = keys
                    .lookup(&hash)
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "invalid_api_key",
                            "the API key is not valid",
                        )
                    })?;
                if info.disabled {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "disabled_key",
                        "the API key is disabled",
                    ));
                }
                if let Err(wait) = self.rate.check(&hash, info.rate_limit) {
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "too many requests for this key; retry after the Retry-After delay",
                    )
                    .retry_after(wait.as_secs_f64().ceil() as u64));
                }
                Ok(Tenant {
                    app_id: info.app_id,
                    role: info.role,
                })
            }
            Tenancy::Authorizer => authorizer_tenant(parts).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_authorizer_context",
                    "the request carries no authorizer context with an app_id",
                )
            }),
        }
    }

    async fn tenant_with(
        &self,
        parts: &Parts,
        allowed: fn(Role) -> bool,
    ) -> Result<Tenant, ApiError> {
        let tenant = self.tenant(parts).await?;
        if !allowed(tenant.role) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a key with role `{}` may not do this", tenant.role.as_str()),
            ));
        }
        Ok(tenant)
    }
}

fn authorizer_tenant(parts: &Parts) -> Option<Tenant> {
    use lambda_http::request::RequestContext;
    let Some(RequestContext::ApiGatewayV1(ctx)) = parts.extensions.get::<RequestContext>() else {
        return None;
    };
    let field = |name: &str| ctx.authorizer.fields.get(name).and_then(|v| v.as_str());
    let app_id = field("app_id").filter(|a| !a.is_empty())?;
    Some(Tenant {
        app_id: app_id.to_owned(),
        role: field("role").and_then(Role::parse).unwrap_or(Role::Ingest),
    })
}

/// The router over a state.
pub fn router(state: Arc<ApiState>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/events", post(post_events))
        .route("/v1/stories", post(post_stories))
        .route("/v1/tests", post(post_tests))
        .route("/v1/users/{user_id}/timeline", get(timeline))
        .route("/v1/reports", get(list_reports))
        .route("/v1/reports/{name}", get(get_report));
    if state.admin.is_some() {
        router = router
            .route("/v1/admin/apps", post(create_app).get(list_apps))
            .route("/v1/admin/apps/{app_id}/disable", post(disable_app))
            .route("/v1/admin/apps/{app_id}/rotate-key", post(rotate_key));
    }
    router.fallback(not_found).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn healthz(State(api): State<Arc<ApiState>>) -> Response {
    match api.pending().await {
        Ok(pending) => Json(json!({ "status": "ok", "pending": pending })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Health check failed.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": e.to_string() })),
            )
                .into_response()
        }
    }
}

async fn post_events(State(api): State<Arc<ApiState>>, req: Request) -> Result<Response, ApiError> {
    ingest(&api, Kind::Event, req).await
}

async fn post_stories(
    State(api): State<Arc<ApiState>>,
    req: Request,
) -> Result<Response, ApiError> {
    ingest(&api, Kind::Story, req).await
}

async fn post_tests(State(api): State<Arc<ApiState>>, req: Request) -> Result<Response, ApiError> {
    ingest(&api, Kind::Test, req).await
}

fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes"),
        )
    };
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if limited {
            too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the body could not be read: {e}"),
            )
        }
    })
}

/// The response body of a batch.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    /// How many items were accepted (durable in the queue).
    pub accepted: usize,
    /// The rejected items, with their reasons.
    pub rejected: Vec<Rejection>,
    /// `no_valid_items` when nothing was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn body_error(e: BodyError) -> ApiError {
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

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

async fn ingest(api: &ApiState, kind: Kind, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let tenant = api.tenant_with(&parts, Role::can_write).await?;
    if !is_json(&parts) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the content-type must be application/json",
        ));
    }
    let limits = &api.config.limits;
    let bytes = read_body(body, limits.max_body_bytes).await?;
    let received_at = cauce_store::time::now_ms();
    let parsed =
        parse_batch(kind, &bytes, &tenant.app_id, received_at, limits).map_err(body_error)?;
    let bad_rows: Vec<BadRow> = parsed
        .rejected
        .iter()
        .map(|(r, raw)| BadRow {
            app_id: tenant.app_id.clone(),
            kind,
            received_at,
            index: r.index,
            id: r.id.clone(),
            error: r.error.as_str().to_owned(),
            message: r.message.clone(),
            raw: truncate(raw, limits.max_item_bytes),
        })
        .collect();
    let accepted = parsed.accepted.len();
    let messages = pack(
        kind,
        &tenant.app_id,
        &parsed.accepted,
        &bad_rows,
        &api.config.packing,
    )
    .map_err(ApiError::internal)?;
    if let Err(e) = api.queue.send(messages).await {
        tracing::error!(error = %e, app_id = %tenant.app_id, "Queue send failed.");
        if accepted > 0 {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "the queue is unavailable; nothing was accepted; retry later",
            )
            .retry_after(1));
        }
    }
    let rejected: Vec<Rejection> = parsed.rejected.into_iter().map(|(r, _)| r).collect();
    let (status, error) = match (accepted, rejected.len()) {
        (_, 0) => (StatusCode::ACCEPTED, None),
        (0, _) => (StatusCode::BAD_REQUEST, Some("no_valid_items".to_owned())),
        _ => (StatusCode::MULTI_STATUS, None),
    };
    tracing::debug!(app_id = %tenant.app_id, kind = %kind, accepted, rejected = rejected.len(), "Batch taken.");
    Ok((
        status,
        Json(BatchResponse {
            accepted,
            rejected,
            error,
        }),
    )
        .into_response())
}

/// The response body of a timeline request.
#[derive(Debug, Serialize)]
pub struct Timeline {
    /// The caller's app.
    pub app_id: String,
    /// The user.
    pub user_id: String,
    /// The user's records, newest `ts` first, each with its `kind`.
    pub records: Vec<cauce_store::Record>,
}

#[derive(Deserialize)]
struct TimelineQuery {
    limit: Option<usize>,
}

async fn timeline(
    State(api): State<Arc<ApiState>>,
    Path(user_id): Path<String>,
    Query(q): Query<TimelineQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let tenant = api.tenant_with(&parts, Role::can_read).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, api.config.max_timeline);
    let records = api
        .store
        .timeline(&tenant.app_id, &user_id, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Timeline {
        app_id: tenant.app_id,
        user_id,
        records,
    })
    .into_response())
}

/// The shelf and the reading caller's app.
async fn shelf<'a>(
    api: &'a ApiState,
    parts: &Parts,
) -> Result<(&'a Arc<dyn ReportShelf>, String), ApiError> {
    let tenant = api.tenant_with(parts, Role::can_read).await?;
    let shelf = api.reports.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this deployment publishes no reports",
        )
    })?;
    Ok((shelf, tenant.app_id))
}

async fn list_reports(
    State(api): State<Arc<ApiState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let (shelf, app_id) = shelf(&api, &parts).await?;
    let names = shelf.names(&app_id).await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "app_id": app_id, "reports": names })).into_response())
}

async fn get_report(
    State(api): State<Arc<ApiState>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let (shelf, app_id) = shelf(&api, &parts).await?;
    match shelf
        .report(&app_id, &name)
        .await
        .map_err(ApiError::internal)?
    {
        Some(body) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "report_not_found",
            format!("no published report {name:?} for this app yet"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApp {
    name: String,
    rate_limit: Option<u32>,
    role: Option<Role>,
}

fn admin_of(api: &ApiState) -> Result<&Arc<dyn AppAdmin>, ApiError> {
    api.admin
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no admin here"))
}

/// The app admin, for a caller whose key has the admin role.
async fn admin<'a>(api: &'a ApiState, parts: &Parts) -> Result<&'a Arc<dyn AppAdmin>, ApiError> {
    api.tenant_with(parts, Role::can_admin).await?;
    admin_of(api)
}

fn forget_cached_keys(api: &ApiState) {
    if let Tenancy::Keys(keys) = &api.tenancy {
        keys.clear();
    }
}

async fn create_app(State(api): State<Arc<ApiState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let admin = admin(&api, &parts).await?;
    let bytes = read_body(body, 64 * 1024).await?;
    let spec: CreateApp = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()))?;
    let creds = admin
        .create_app(
            &spec.name,
            spec.rate_limit,
            spec.role.unwrap_or(Role::Developer),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(creds)).into_response())
}

async fn list_apps(State(api): State<Arc<ApiState>>, req: Request) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let apps = admin(&api, &parts)
        .await?
        .list_apps()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "apps": apps })).into_response())
}

fn no_app(app_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_app",
        format!("no app {app_id:?}"),
    )
}

async fn disable_app(
    State(api): State<Arc<ApiState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    if !admin(&api, &parts)
        .await?
        .disable_app(&app_id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(no_app(&app_id));
    }
    forget_cached_keys(&api);
    Ok(Json(json!({ "app_id": app_id, "disabled": true })).into_response())
}

async fn rotate_key(
    State(api): State<Arc<ApiState>>,
    Path(app_id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let creds = admin(&api, &parts)
        .await?
        .rotate_key(&app_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_app(&app_id))?;
    forget_cached_keys(&api);
    Ok(Json(creds).into_response())
}
