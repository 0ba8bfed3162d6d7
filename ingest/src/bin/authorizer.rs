//! The `authorizer` Lambda: an API Gateway REQUEST authorizer over the hashed-key clients table.

use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::authorize;
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("authorizer");
    let (cfg, aws) = AwsSettings::load(Needs::CLIENTS).await?;
    let keys = &cfg.keys(&aws);
    run(service_fn(move |e: LambdaEvent<_>| async move {
        Ok::<_, Error>(emf.flushing(authorize(&e.payload, keys)).await?)
    }))
    .await
}
