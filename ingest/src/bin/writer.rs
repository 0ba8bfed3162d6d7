//! The `writer` Lambda: SQS FIFO batches into the DynamoDB tables, with partial-batch failures;
//! its metrics go out as EMF after each batch.

use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::handle_sqs;
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("writer");
    let (settings, aws) = AwsSettings::load(Needs::QUEUE_AND_TABLES).await?;
    let (queue, store) = (&settings.queue(&aws), &settings.store(&aws));
    run(service_fn(|e: LambdaEvent<_>| async move {
        Ok::<_, Error>(emf.flushing(handle_sqs(e.payload, store, queue)).await?)
    }))
    .await
}
