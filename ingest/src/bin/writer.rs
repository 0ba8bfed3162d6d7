//! The `writer` Lambda: SQS FIFO batches into the DynamoDB tables, with partial-batch failures.

use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::handle_sqs;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (settings, aws) = AwsSettings::load(Needs::QUEUE_AND_TABLES).await?;
    let (queue, store) = (&settings.queue(&aws), &settings.store(&aws));
    run(service_fn(|e: LambdaEvent<_>| async move {
        Ok::<_, Error>(handle_sqs(e.payload, store, queue).await?)
    }))
    .await
}
