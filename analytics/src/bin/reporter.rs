//! The `reporter` Lambda: on an EventBridge schedule, computes every report over the S3 lake
//! (`CAUCE_LAKE`, `s3://bucket/prefix`) and writes each app's reports under `reports/`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use cauce_analytics::reporter::handle;
use cauce_analytics::Settings;
use cauce_exporter::config::open_lake;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

fn main() -> Result<(), Error> {
    cauce_analytics::configure_polars();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let location = std::env::var("CAUCE_LAKE").map_err(|_| "the setting CAUCE_LAKE is missing")?;
    let lake = open_lake(&location).await?;
    let lake = lake.as_ref();
    run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            tracing::info!(source = %event.payload.source, "Scheduled report run.");
            let published = handle(lake, &Settings::default(), &event.payload).await?;
            tracing::info!(
                apps = published.apps.len(),
                objects = published.objects,
                "Reports written."
            );
            Ok::<_, Error>(serde_json::to_value(published)?)
        },
    ))
    .await
}
