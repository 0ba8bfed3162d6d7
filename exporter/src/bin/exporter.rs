//! The `exporter` Lambda: DynamoDB Streams batches into Parquet in the S3 lake (`CAUCE_LAKE`,
//! `s3://bucket/prefix`), with `ReportBatchItemFailures`.

use cauce_exporter::config::open_lake;
use cauce_exporter::stream::handle;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let location = std::env::var("CAUCE_LAKE").map_err(|_| "the setting CAUCE_LAKE is missing")?;
    let lake = open_lake(&location).await?;
    let lake = lake.as_ref();
    run(service_fn(
        move |e: LambdaEvent<Box<RawValue>>| async move {
            let (response, report) = handle(e.payload.get(), lake).await;
            match report {
                Ok(r) => tracing::info!(
                    files = r.written.len(),
                    bad = r.bad,
                    ttl_expired = r.ttl_expired,
                    "Batch exported."
                ),
                Err(err) => tracing::error!(error = %err, "Batch failed; it will be retried."),
            }
            Ok::<_, Error>(response)
        },
    ))
    .await
}
