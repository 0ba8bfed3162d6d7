//! `cauce worker`: the writer as a long-running SQS poller, for containers (ECS, EKS) once
//! Lambda is outgrown. Same handler, same settings as the `writer` Lambda. It needs a build with
//! the `aws` feature.

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Messages taken per receive (SQS returns at most 10).
    #[arg(long, env = "CAUCE_WORKER_BATCH", default_value_t = 10)]
    batch: usize,
}

#[cfg(feature = "aws")]
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::time::Duration;

    use cauce_ingest::config::{AwsSettings, Needs};
    use cauce_ingest::writer::{poll_until, PollConfig};

    let (cfg, aws) = AwsSettings::load(Needs::QUEUE_AND_TABLES).await?;
    let config = PollConfig {
        batch: args.batch,
        idle: Duration::from_millis(100),
        ..PollConfig::default()
    };
    tracing::info!(queue = %cfg.queue_url, tables = %cfg.table_prefix, "Cauce worker is polling.");
    // On Ctrl-C or SIGTERM (a container's stop) the batch in hand is written and acknowledged.
    let stop = async {
        if let Err(e) = super::stop_signal().await {
            tracing::error!(error = %e, "Stopping: signals cannot be watched.");
        }
    };
    poll_until(
        Arc::new(cfg.queue(&aws)),
        Arc::new(cfg.store(&aws)),
        config,
        stop,
    )
    .await;
    tracing::info!("Cauce worker stopped.");
    Ok(())
}

#[cfg(not(feature = "aws"))]
pub async fn run(_: WorkerArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "`cauce worker` polls SQS and writes to DynamoDB, and this cauce was built without AWS \
         support: build it with `cargo build --release --features aws`"
    )
}
