//! The `api` Lambda: the axum Router behind API Gateway, tenant from the authorizer context.
//! Deploy it with `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` so that stage prefixes do not
//! break the routes.

use std::sync::Arc;

use cauce_ingest::api::{router, ApiConfig, ApiState, Tenancy};
use cauce_ingest::config::{AwsSettings, Needs};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (cfg, aws) = AwsSettings::load(Needs::QUEUE_AND_TABLES).await?;
    let (queue, store) = (Arc::new(cfg.queue(&aws)), Arc::new(cfg.store(&aws)));
    let state = ApiState::new(
        queue,
        store,
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    );
    lambda_http::run(router(Arc::new(state))).await
}
