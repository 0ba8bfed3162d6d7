//! `cauce compact`: rewrite closed hours of the lake into few large, deduplicated files.

use std::io::IsTerminal;

use cauce_exporter::compact::{compact, CompactConfig};
use cauce_exporter::merge::Budget;
use indicatif::{ProgressBar, ProgressStyle};

use super::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// Also compact the current hour (for a stopped system, or a test).
    #[arg(long)]
    all: bool,
    /// The size each output file aims for, MiB.
    #[arg(long, default_value_t = 128)]
    target_mb: u64,
    /// How long an hour must have been closed before it is compacted, minutes (the exporter's
    /// late files of the hour arrive meanwhile).
    #[arg(long, default_value_t = 15)]
    grace_min: i64,
    /// The work folder for the hour being merged (about twice the hour's size); default: the
    /// system's temp folder.
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// The most files merged at once; an hour with more is merged in passes.
    #[arg(long, default_value_t = Budget::default().fan_in)]
    fan_in: usize,
    /// Decoded rows held per merged file, MiB: memory is about twice fan-in × this, plus the
    /// output's 32 MiB row group, whatever the size of the hour.
    #[arg(long, default_value_t = Budget::default().batch_bytes / (1024 * 1024))]
    batch_mb: usize,
}

pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let lake = cauce_store::lake::open(&args.lake.location()).await?;
    let config = CompactConfig {
        target_bytes: args.target_mb.max(1) * 1024 * 1024,
        include_open: args.all,
        grace_ms: args.grace_min.max(0) * 60_000,
        work_dir: args.work_dir,
        budget: Budget {
            fan_in: args.fan_in.max(2),
            batch_bytes: args.batch_mb.max(1) * 1024 * 1024,
        },
        ..CompactConfig::default()
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} hours")
                .expect("a valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("compacting");
    let report = compact(lake.as_ref(), &config, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&report)?);
    if let Some(first) = report.failed.first() {
        anyhow::bail!(
            "{} hour(s) could not be compacted and were left as they were (every other hour was); \
             the first, {}: {}",
            report.failed.len(),
            first.partition,
            first.error
        );
    }
    Ok(())
}
