//! `cauce compact`: rewrite closed hours of the lake into few large, deduplicated files.

use std::io::IsTerminal;

use cauce_exporter::compact::{compact, CompactConfig};
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
}

pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let lake = cauce_store::lake::open(&args.lake.location()).await?;
    let config = CompactConfig {
        target_bytes: args.target_mb.max(1) * 1024 * 1024,
        include_open: args.all,
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
    Ok(())
}
