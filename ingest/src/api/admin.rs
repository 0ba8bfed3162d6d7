//! The admin routes (embedded mode): apps and their keys, for callers with the `admin` role.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ingest::read_body;
use super::tenant::{Caller, Manage};
use super::{ApiError, ApiState, ErrorBody, Tenancy};
use crate::auth::{App, AppAdmin, Credentials, Role};

/// A new app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateApp {
    /// A human name.
    name: String,
    /// Requests per second for its key (the server's default when absent).
    rate_limit: Option<u32>,
    /// Its key's role: `developer` when absent.
    role: Option<Role>,
}

/// The apps.
#[derive(Serialize, ToSchema)]
pub(super) struct AppList {
    /// Every app, its key not shown.
    apps: Vec<App>,
}

/// Whether an app's key is refused.
#[derive(Serialize, ToSchema)]
pub(super) struct AppState {
    /// The app.
    app_id: String,
    /// Whether its key gets 403.
    disabled: bool,
}

fn admin_of(api: &ApiState) -> Result<&Arc<dyn AppAdmin>, ApiError> {
    api.admin
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no admin here"))
}

/// After an admin change, forgets the cached keys of this process.
fn forget_cached_keys(api: &ApiState) {
    if let Tenancy::Keys(keys) = &api.tenancy {
        keys.clear();
    }
}

fn no_app(app_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_app",
        format!("no app {app_id:?}"),
    )
}

/// Create an app and its key.
#[utoipa::path(
    post,
    path = "/v1/admin/apps",
    tag = "admin",
    request_body(content = CreateApp, content_type = "application/json"),
    responses(
        (status = 201, description = "The app, with its key: the only time the key is shown.", body = Credentials),
        (status = 400, description = "The body is not a new app (`malformed_body`).", body = ErrorBody),
        (status = 404, description = "No admin here (`not_found`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`).", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB (`body_too_large`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn create_app(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, 64 * 1024, api.config.body_timeout).await?;
    let spec: CreateApp = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", e.to_string()))?;
    let role = spec.role.unwrap_or(Role::Developer);
    let creds = admin_of(&api)?
        .create_app(&spec.name, spec.rate_limit, role)
        .await?;
    Ok((StatusCode::CREATED, Json(creds)).into_response())
}

/// List the apps.
#[utoipa::path(
    get,
    path = "/v1/admin/apps",
    tag = "admin",
    responses(
        (status = 200, description = "Every app.", body = AppList),
        (status = 404, description = "No admin here (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn list_apps(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
) -> Result<Response, ApiError> {
    let apps = admin_of(&api)?.list_apps().await?;
    Ok(Json(AppList { apps }).into_response())
}

/// Disable an app: its key gets 403 from now on.
#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app_id}/disable",
    tag = "admin",
    params(("app_id" = String, Path, description = "The app.")),
    responses(
        (status = 200, description = "The app, disabled.", body = AppState),
        (status = 400, description = "The app id could not be read (`bad_parameter`).", body = ErrorBody),
        (status = 404, description = "No such app (`no_such_app`), or no admin here (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn disable_app(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    app_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(app_id) = app_id.map_err(ApiError::bad_parameter)?;
    set_disabled(&api, app_id, true).await
}

/// Enable an app again.
#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app_id}/enable",
    tag = "admin",
    params(("app_id" = String, Path, description = "The app.")),
    responses(
        (status = 200, description = "The app, enabled.", body = AppState),
        (status = 400, description = "The app id could not be read (`bad_parameter`).", body = ErrorBody),
        (status = 404, description = "No such app (`no_such_app`), or no admin here (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn enable_app(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    app_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(app_id) = app_id.map_err(ApiError::bad_parameter)?;
    set_disabled(&api, app_id, false).await
}

async fn set_disabled(
    api: &ApiState,
    app_id: String,
    disabled: bool,
) -> Result<Response, ApiError> {
    if !admin_of(api)?.set_disabled(&app_id, disabled).await? {
        return Err(no_app(&app_id));
    }
    forget_cached_keys(api);
    Ok(Json(AppState { app_id, disabled }).into_response())
}

/// Give an app a new key; the old one is refused from now on.
#[utoipa::path(
    post,
    path = "/v1/admin/apps/{app_id}/rotate-key",
    tag = "admin",
    params(("app_id" = String, Path, description = "The app.")),
    responses(
        (status = 200, description = "The app's new key: the only time it is shown.", body = Credentials),
        (status = 400, description = "The app id could not be read (`bad_parameter`).", body = ErrorBody),
        (status = 404, description = "No such app (`no_such_app`), or no admin here (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn rotate_key(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    app_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(app_id) = app_id.map_err(ApiError::bad_parameter)?;
    let creds = admin_of(&api)?
        .rotate_key(&app_id)
        .await?
        .ok_or_else(|| no_app(&app_id))?;
    forget_cached_keys(&api);
    Ok(Json(creds).into_response())
}
