//! `GET /v1/reports` and `GET /v1/reports/{name}`: the caller's app's published reports, read
//! through the [`ReportShelf`] port. [`LakeShelf`] serves them from any [`Lake`], where the
//! reporter (the `reporter` Lambda, or `cauce serve`'s job) writes them.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use cauce_store::lake::layout::{dashboard_key, report_dir, report_key, report_name};
use cauce_store::lake::{get_if_present, Lake};

use super::tenant::{Caller, Read};
use super::{ApiError, ApiState, ErrorBody};
use crate::error::Result;

/// The latest published reports of each app: what `GET /v1/reports` serves.
#[async_trait]
pub trait ReportShelf: Send + Sync {
    /// The names of the app's published reports, sorted.
    async fn names(&self, app_id: &str) -> Result<Vec<String>>;
    /// One report as JSON, or `None` when the app has no such report yet.
    async fn report(&self, app_id: &str, name: &str) -> Result<Option<Bytes>>;
    /// The app's dashboard page, or `None` before the report job's first run.
    async fn dashboard(&self, app_id: &str) -> Result<Option<Bytes>>;
}

/// The reports published in a lake, under the keys of [`cauce_store::lake::layout`].
pub struct LakeShelf {
    lake: Arc<dyn Lake>,
}

impl LakeShelf {
    /// A shelf over `lake`.
    pub fn new(lake: Arc<dyn Lake>) -> Self {
        LakeShelf { lake }
    }
}

#[async_trait]
impl ReportShelf for LakeShelf {
    async fn names(&self, app_id: &str) -> Result<Vec<String>> {
        let objects = self.lake.list(&report_dir(app_id)).await?;
        let mut names: Vec<String> = objects
            .iter()
            .filter_map(|o| report_name(app_id, &o.key))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn report(&self, app_id: &str, name: &str) -> Result<Option<Bytes>> {
        Ok(get_if_present(self.lake.as_ref(), &report_key(app_id, name)).await?)
    }

    async fn dashboard(&self, app_id: &str) -> Result<Option<Bytes>> {
        Ok(get_if_present(self.lake.as_ref(), &dashboard_key(app_id)).await?)
    }
}

fn shelf(api: &ApiState) -> Result<&Arc<dyn ReportShelf>, ApiError> {
    api.reports.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this deployment publishes no reports",
        )
    })
}

/// The app's published reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportList {
    /// The caller's app.
    pub app_id: String,
    /// The reports' names, sorted: each is `GET /v1/reports/{name}`.
    pub reports: Vec<String>,
}

/// List the app's published reports.
#[utoipa::path(
    get,
    path = "/v1/reports",
    tag = "read",
    responses(
        (status = 200, description = "The names of the app's published reports.", body = ReportList),
        (status = 404, description = "This deployment publishes no reports (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn list_reports(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Read>,
) -> Result<Json<ReportList>, ApiError> {
    let reports = shelf(&api)?.names(&caller.app_id).await?;
    Ok(Json(ReportList {
        app_id: caller.app_id,
        reports,
    }))
}

/// Read one published report.
#[utoipa::path(
    get,
    path = "/v1/reports/{name}",
    tag = "read",
    description = "One published report as JSON: its table, its chart's data and how it was made \
                   (the report job's output; see the README's reports).",
    params(("name" = String, Path, description = "The report, as `GET /v1/reports` names it.")),
    responses(
        (status = 200, description = "The report.", body = Object),
        (status = 400, description = "The name could not be read (`bad_parameter`).", body = ErrorBody),
        (status = 404, description = "No such report for this app yet (`report_not_found`), or no \
                                      reports here (`not_found`).", body = ErrorBody),
    ),
    security(("api_key" = []), ("basic" = []), ("team" = []))
)]
pub(super) async fn get_report(
    State(api): State<Arc<ApiState>>,
    caller: Caller<Read>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(ApiError::bad_parameter)?;
    match shelf(&api)?.report(&caller.app_id, &name).await? {
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
