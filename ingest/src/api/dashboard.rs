//! Pages for people, behind the same keys as the API:
//!
//! * `GET /dashboard`: the caller's app's dashboard, as the report job published it (an admin
//!   key names another app with `?app=`);
//! * `GET /dashboard/ops`: the operations page of this deployment (admin keys), through the
//!   [`OpsPage`] port.
//!
//! A browser sends the key as HTTP Basic credentials (the key as the user name, or as the
//! password): a 401 here carries the `WWW-Authenticate` challenge that makes it ask. The pages
//! run no script and load nothing; the headers say so (a Content-Security-Policy that allows
//! inline styles and nothing else), and nothing is cached.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::tenant::{Caller, Manage, Read};
use super::{ApiError, ApiState, ErrorBody};
use crate::error::Result;

/// The operations page: what `GET /dashboard/ops` shows admins.
#[async_trait]
pub trait OpsPage: Send + Sync {
    /// The page, as HTML.
    async fn render(&self) -> Result<String>;
}

const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                      frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// An HTML page with the headers every page here carries.
fn page(body: impl Into<axum::body::Body>) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    let set = |v: &'static str| HeaderValue::from_static(v);
    h.insert(header::CONTENT_TYPE, set("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, set(POLICY));
    h.insert(header::CACHE_CONTROL, set("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    h.insert(header::REFERRER_POLICY, set("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, set("DENY"));
    res
}

/// A refusal; a 401 also asks a browser for the key.
fn refused(e: ApiError) -> Response {
    let challenge = e.status() == StatusCode::UNAUTHORIZED;
    let mut res = e.into_response();
    if challenge {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"cauce\", charset=\"UTF-8\""),
        );
    }
    res
}

/// The app's dashboard page.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "read",
    description = "The app's dashboard, as the report job last published it. A browser asks for \
                   the key (HTTP Basic: the key as the user name); an admin key names another \
                   app with `?app=`.",
    params(("app" = Option<String>, Query, description = "Another app (admin keys).")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 401, description = "No key, or a key that is not valid; `WWW-Authenticate: Basic`.",
         body = ErrorBody, headers(("www-authenticate" = String))),
        (status = 404, description = "No dashboard published yet (`dashboard_not_found`), or none \
                                      here (`not_found`).", body = ErrorBody),
    ),
    security(("basic" = []), ("api_key" = []), ("team" = []))
)]
pub(super) async fn app_dashboard(
    State(api): State<Arc<ApiState>>,
    caller: Result<Caller<Read>, ApiError>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let Some(shelf) = &api.reports else {
        return refused(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this deployment publishes no dashboards",
        ));
    };
    match shelf.dashboard(&caller.app_id).await {
        Ok(Some(html)) => page(html),
        Ok(None) => refused(ApiError::new(
            StatusCode::NOT_FOUND,
            "dashboard_not_found",
            format!(
                "no dashboard published for app {:?} yet: the report job publishes one at its next run",
                caller.app_id
            ),
        )),
        Err(e) => refused(ApiError::backend(&e)),
    }
}

/// The operations page.
#[utoipa::path(
    get,
    path = "/dashboard/ops",
    tag = "operations",
    description = "For admins: what needs a person now (dead letters, queue age, lake lag, \
                   rejections, 5xx), the last hour, and the totals since start.",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 401, description = "No key, or a key that is not valid; `WWW-Authenticate: Basic`.",
         body = ErrorBody, headers(("www-authenticate" = String))),
        (status = 404, description = "Metrics are off (`not_found`).", body = ErrorBody),
    ),
    security(("basic" = []), ("api_key" = []), ("team" = []))
)]
pub(super) async fn ops_dashboard(
    State(api): State<Arc<ApiState>>,
    caller: Result<Caller<Manage>, ApiError>,
) -> Response {
    if let Err(e) = caller {
        return refused(e);
    }
    let Some(ops) = &api.ops else {
        return refused(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no operations page: metrics are off (--metrics off)",
        ));
    };
    match ops.render().await {
        Ok(html) => page(html),
        Err(e) => {
            tracing::error!(error = %e, "The operations page failed.");
            refused(ApiError::backend(&e))
        }
    }
}
