//! `cauce features`: the per-user feature table for ML, as of a day, written into the lake
//! (`features/user/dt=DAY/`) with its `feature_definitions.json`.

use cauce_analytics::features::{publish, AsOf};
use cauce_analytics::{LakeSource, Scope};
use chrono::NaiveDate;

use super::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// The as-of day, YYYY-MM-DD: every feature reads data before its midnight (UTC).
    #[arg(long)]
    as_of: NaiveDate,
    /// The days after the as-of time that the labels read.
    #[arg(long, default_value_t = 7)]
    horizon_days: u32,
}

pub async fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    let location = args.lake.location();
    let as_of = AsOf {
        day: args.as_of,
        horizon_days: args.horizon_days,
    };
    let source = LakeSource::open(&location, &Scope::default()).await?;
    let lake = cauce_store::lake::open(&location).await?;
    let published = publish(&source, lake.as_ref(), &as_of, cauce_store::time::now_ms()).await?;
    if !published.labels_complete {
        eprintln!(
            "warning: the {} days from {} have not all passed: the labels count only what has happened so far",
            as_of.horizon_days, as_of.day
        );
    }
    println!("{}", serde_json::to_string(&published)?);
    Ok(())
}
