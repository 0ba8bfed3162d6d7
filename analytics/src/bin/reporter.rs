//! The `reporter` Lambda: on an EventBridge schedule, computes every report over the last
//! `CAUCE_REPORT_DAYS` of the S3 lake (`CAUCE_LAKE`, `s3://bucket/prefix`) and writes each
//! app's reports under `reports/`, and the feature table for ML under `features/`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use cauce_analytics::{reporter::handle, ReporterSettings, Settings};
use cauce_store::metrics::emf::Emf;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let emf = Emf::install("reporter");
    let settings = ReporterSettings::from_env()?;
    let lake = cauce_store::lake::open(&settings.lake).await?;
    let (lake, settings) = (lake.as_ref(), &settings);
    run(service_fn(|e: LambdaEvent<EventBridgeEvent>| async move {
        let defaults = Settings::default();
        let run = handle(lake, settings, &defaults, &e.payload);
        Ok::<_, Error>(emf.flushing(run).await?)
    }))
    .await
}
