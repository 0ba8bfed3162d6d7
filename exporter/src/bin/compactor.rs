//! The `compactor` Lambda: on a schedule (EventBridge), compacts every closed hour of the S3
//! lake (`CAUCE_LAKE`, `s3://bucket/prefix`; `CAUCE_COMPACT_TARGET_MB`, default 128), then
//! registers the recent partitions in the Glue database `CAUCE_GLUE_DATABASE` when it is set.

use cauce_exporter::catalog::{glue, Catalog};
use cauce_exporter::{compact::scheduled, config::CompactorSettings};
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("compactor");
    let settings = CompactorSettings::from_env()?;
    let lake = cauce_store::lake::open(&settings.lake).await?;
    let catalog = glue(settings.glue_database.as_deref()).await;
    let (lake, catalog) = (lake.as_ref(), catalog.as_ref().map(|c| c as &dyn Catalog));
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(
            emf.flushing(scheduled(lake, settings.target_mb, catalog))
                .await?,
        )
    }))
    .await
}
