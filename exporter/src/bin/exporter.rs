//! The `exporter` Lambda: DynamoDB Streams batches into Parquet in the S3 lake (`CAUCE_LAKE`,
//! `s3://bucket/prefix`), with `ReportBatchItemFailures`; new partitions go to the Glue
//! database `CAUCE_GLUE_DATABASE` when it is set.

use cauce_exporter::catalog::{glue, Catalog};
use cauce_exporter::{config::ExporterSettings, stream::handle};
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("exporter");
    let settings = ExporterSettings::from_env()?;
    let lake = cauce_store::lake::open(&settings.lake).await?;
    let catalog = glue(settings.glue_database.as_deref()).await;
    let (lake, catalog) = (lake.as_ref(), catalog.as_ref().map(|c| c as &dyn Catalog));
    run(service_fn(|e: LambdaEvent<Box<RawValue>>| async move {
        Ok::<_, Error>(emf.flushing(handle(e.payload.get(), lake, catalog)).await.0)
    }))
    .await
}
