//! The `compactor` Lambda: on a schedule (EventBridge), compacts every closed hour of the S3
//! lake (`CAUCE_LAKE`, `s3://bucket/prefix`; `CAUCE_COMPACT_TARGET_MB`, default 128).

use cauce_exporter::compact::{compact, CompactConfig};
use cauce_exporter::config::open_lake;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let location = std::env::var("CAUCE_LAKE").map_err(|_| "the setting CAUCE_LAKE is missing")?;
    let target_mb: u64 = std::env::var("CAUCE_COMPACT_TARGET_MB").map_or(Ok(128), |v| v.parse())?;
    let lake = open_lake(&location).await?;
    let lake = lake.as_ref();
    run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let config = CompactConfig {
                target_bytes: target_mb * 1024 * 1024,
                ..CompactConfig::default()
            };
            let report = compact(lake, &config, &|_, _| {}).await?;
            tracing::info!(
                hours = report.hours,
                inputs = report.inputs,
                outputs = report.outputs,
                "Lake compacted."
            );
            Ok::<_, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
