//! The `writer` Lambda: SQS FIFO batches into the DynamoDB tables, with partial-batch failures.

use cauce_ingest::config::{AwsSettings, Needs};
use cauce_ingest::lambda::handle_sqs;
use cauce_ingest::queue::sqs::SqsQueue;
use cauce_store::dynamo::{DynamoStore, Tables};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
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
    let (store, queue, max) = (&store, &queue, cfg.max_receives);
    run(service_fn(move |e: LambdaEvent<_>| async move {
        Ok::<_, Error>(handle_sqs(e.payload, store, queue, max).await)
    }))
    .await
}
