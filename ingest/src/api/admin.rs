//! The admin routes (embedded mode): apps and their keys, for callers with the `admin` role.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::ingest::read_body;
use super::tenant::{Caller, Manage};
use super::{ApiError, ApiState, Tenancy};
use crate::auth::{AppAdmin, Role};

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

pub(super) async fn list_apps(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
) -> Result<Response, ApiError> {
    let apps = admin_of(&api)?.list_apps().await?;
    Ok(Json(json!({ "apps": apps })).into_response())
}

pub(super) async fn disable_app(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    Path(app_id): Path<String>,
) -> Result<Response, ApiError> {
    set_disabled(&api, app_id, true).await
}

pub(super) async fn enable_app(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    Path(app_id): Path<String>,
) -> Result<Response, ApiError> {
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
    Ok(Json(json!({ "app_id": app_id, "disabled": disabled })).into_response())
}

pub(super) async fn rotate_key(
    State(api): State<Arc<ApiState>>,
    _: Caller<Manage>,
    Path(app_id): Path<String>,
) -> Result<Response, ApiError> {
    let creds = admin_of(&api)?
        .rotate_key(&app_id)
        .await?
        .ok_or_else(|| no_app(&app_id))?;
    forget_cached_keys(&api);
    Ok(Json(creds).into_response())
}
