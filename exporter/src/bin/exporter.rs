//! The `exporter` Lambda: DynamoDB Streams batches into Parquet in the S3 lake (`CAUCE_LAKE`,
//! `s3://bucket/prefix`), with `ReportBatchItemFailures`.

use cauce_exporter::{config::ExporterSettings, stream::handle};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = ExporterSettings::from_env()?;
    let lake = cauce_store::lake::open(&settings.lake).await?;
    let lake = lake.as_ref();
    run(service_fn(|e: LambdaEvent<Box<RawValue>>| async move {
        Ok::<_, Error>(handle(e.payload.get(), lake).await.0)
    }))
    .await
}
