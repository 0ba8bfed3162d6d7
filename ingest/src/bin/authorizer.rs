//! The `authorizer` Lambda: an API Gateway REQUEST authorizer over the hashed-key clients table.

use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::authorize;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let needs = Needs {
        queue: false,
        tables: false,
        clients: true,
    };
    let cfg = AwsSettings::from_env(needs)?;
    let aws = cauce_store::aws::sdk_config().await;
    let keys = &cfg.keys(&aws);
    run(service_fn(move |e: LambdaEvent<_>| async move {
        Ok::<_, Error>(authorize(&e.payload, keys).await?)
    }))
    .await
}
