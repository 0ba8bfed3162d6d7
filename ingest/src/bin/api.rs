//! The `api` Lambda: the axum Router behind API Gateway, tenant from the authorizer context.
//! Deploy it with `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` so that stage prefixes do not
//! break the routes. The same code is the `admin` function, behind `/v1/admin/…` only, when
//! `CAUCE_ADMIN_TIER` is set (with the rights to manage apps, which `api` does not have).

use std::sync::Arc;

use axum::middleware::map_response;
use axum::response::Response;
use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::api_router;
use cauce_store::metrics::emf::Emf;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("api");
    let (settings, aws) = AwsSettings::load(Needs::API).await?;
    let mut state = settings.api_state(&aws).await?;
    if let Some(apps) = AwsSettings::app_admin().await? {
        state.admin = Some(Arc::new(apps));
    }
    let flush = move |res: Response| async move {
        emf.flush();
        res
    };
    lambda_http::run(api_router(Arc::new(state)).layer(map_response(flush))).await
}
