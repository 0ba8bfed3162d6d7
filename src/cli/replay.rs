//! `cauce replay`: the raw archive back into the queue, to rebuild a store and a lake.

use std::collections::BTreeSet;

use anyhow::Context;
use chrono::NaiveDate;
use serde_json::json;

use cauce_ingest::api::ApiConfig;
use cauce_ingest::archive::replay::{replay_day, ReplayReport};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};

use super::DataArgs;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The archive to read: a folder, or `s3://bucket/prefix` where Firehose lands it; default
    /// DATA/raw.
    #[arg(long)]
    raw: Option<String>,
    /// A UTC day to replay (YYYY-MM-DD); repeat it for several. Default: every day in the
    /// archive.
    #[arg(long = "day")]
    days: Vec<NaiveDate>,
    /// Message groups per app, as `cauce serve --group-buckets` packs them.
    #[arg(long, env = "CAUCE_GROUP_BUCKETS", default_value_t = 1)]
    group_buckets: u64,
}

/// The days that have a folder in the archive.
async fn archived_days(raw: &dyn cauce_store::lake::Lake) -> anyhow::Result<BTreeSet<NaiveDate>> {
    Ok(raw
        .list("")
        .await?
        .iter()
        .filter_map(|o| o.key.strip_prefix("dt=")?.get(..10))
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .collect())
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let location = match &args.raw {
        Some(raw) => raw.clone(),
        None => args.data.data.join("raw").display().to_string(),
    };
    let raw = cauce_store::lake::open(&location).await?;
    let days: BTreeSet<NaiveDate> = if args.days.is_empty() {
        archived_days(raw.as_ref()).await?
    } else {
        args.days.iter().copied().collect()
    };
    std::fs::create_dir_all(&args.data.data)
        .with_context(|| format!("cannot create {}", args.data.data.display()))?;
    let queue = SqliteQueue::open(
        args.data.data.join("queue.db"),
        SqliteQueueConfig::default(),
    )?;
    let mut config = ApiConfig::default();
    config.packing.group_buckets = args.group_buckets.max(1);
    let mut total = ReplayReport::default();
    for &day in &days {
        let r = replay_day(raw.as_ref(), day, &queue, &config)
            .await
            .with_context(|| format!("replaying {day} from {location}"))?;
        tracing::info!(%day, requests = r.requests, accepted = r.accepted, "Day replayed.");
        total.absorb(r);
    }
    let mut out = serde_json::to_value(&total)?;
    out["days"] = json!(days.iter().map(|d| d.to_string()).collect::<Vec<_>>());
    println!("{out}");
    anyhow::ensure!(
        total.skipped_lines == 0,
        "{} archived line(s) could not be replayed; the first: {}",
        total.skipped_lines,
        total.skipped.first().map_or("", String::as_str)
    );
    Ok(())
}
