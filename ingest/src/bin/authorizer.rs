//! The `authorizer` Lambda: an API Gateway REQUEST authorizer over the hashed-key clients table
//! and, where a Cognito user pool is set, people's bearer tokens.

use cauce_ingest::auth::jwt::JwtVerifier;
use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::authorize_with;
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("authorizer");
    let (cfg, aws) = AwsSettings::load(Needs::CLIENTS).await?;
    let keys = &cfg.keys(&aws);
    let people = &AwsSettings::user_pool()?
        .map(JwtVerifier::for_pool)
        .transpose()?;
    run(service_fn(move |e: LambdaEvent<_>| async move {
        let decision = authorize_with(&e.payload, keys, people.as_ref());
        Ok::<_, Error>(emf.flushing(decision).await?)
    }))
    .await
}
