//! The `api` Lambda: the axum Router behind API Gateway, tenant from the authorizer context.
//! Deploy it with `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` so that stage prefixes do not
//! break the routes.

use std::sync::Arc;

use cauce_ingest::api::{router, ApiConfig, ApiState, Tenancy};
use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::queue::sqs::SqsQueue;
use cauce_store::dynamo::{DynamoStore, Tables};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let needs = Needs {
        queue: true,
        tables: true,
        clients: false,
    };
    let cfg = AwsSettings::from_env(needs)?;
    let aws = cauce_store::aws::sdk_config().await;
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        cfg.queue_url,
        cfg.dlq_url,
        Default::default(),
    );
    let tables = Tables::with_prefix(&cfg.table_prefix);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), tables, cfg.ttl_days);
    let state = ApiState::new(
        Arc::new(queue),
        Arc::new(store),
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    );
    lambda_http::run(router(Arc::new(state))).await
}
