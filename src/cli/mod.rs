//! The CLI: argument parsing and dispatch.

mod apps;
mod catalog;
mod compact;
mod cost;
mod demo;
mod dlq;
mod features;
mod http;
mod metrics;
mod ops;
mod replay;
mod report;
mod serve;
mod tls;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Cauce: analytics-first event ingestion with streaming export to a Parquet data lake.
#[derive(Debug, Parser)]
#[command(name = "cauce", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines (on stderr) as text, or as one JSON object a line whose fields are keys (the
    /// access log's method, route, status, app_id, items and latency_ms among them).
    #[arg(long, global = true, env = "CAUCE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Waits for a request to stop: Ctrl-C (SIGINT), or SIGTERM, which service managers and
/// container runtimes (systemd, Docker, ECS, Kubernetes) send; either stops the process in order.
pub async fn stop_signal() -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped.context("cannot watch for Ctrl-C")?,
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping."),
    }
    Ok(())
}

/// Where the embedded deployment keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The data folder (SQLite databases, and later the lake).
    #[arg(long, env = "CAUCE_DATA", default_value = "./cauce-data")]
    pub data: PathBuf,
}

/// Which lake a command reads: `DATA/lake`, or another folder or S3 lake.
#[derive(Debug, Clone, clap::Args)]
pub struct LakeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A lake elsewhere, such as `s3://bucket/prefix` (instead of DATA/lake).
    #[arg(long, env = "CAUCE_LAKE")]
    pub lake: Option<String>,
}

impl LakeArgs {
    /// The lake's location: `--lake`, or the embedded `DATA/lake`.
    pub fn location(&self) -> String {
        match &self.lake {
            Some(l) => l.clone(),
            None => self.data.data.join("lake").display().to_string(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole system on this machine: simulated apps send traffic to the embedded system,
    /// then the lake is compacted, every report runs and an HTML dashboard is written.
    Demo(demo::DemoArgs),
    /// Run the API and the writer in one process on the embedded adapters (SQLite, a folder).
    Serve(serve::ServeArgs),
    /// Poll the SQS queue and write to DynamoDB: the writer outside Lambda (reads the same
    /// CAUCE_* and AWS_* settings as the `writer` Lambda).
    Worker(worker::WorkerArgs),
    /// Compact the lake: each closed hour into few large files, deduplicated and sorted.
    Compact(compact::CompactArgs),
    /// Compute the pattern reports over the lake: JSON, Markdown or HTML pages per app.
    Report(report::ReportArgs),
    /// Manage apps and their API keys.
    #[command(subcommand)]
    Apps(apps::AppsCommand),
    /// List the dead letters with their reasons, and replay them into the queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Replay the raw archive (every request body the API took, by day) into DATA's queue:
    /// `cauce serve` then rebuilds the store and the lake from it.
    Replay(replay::ReplayArgs),
    /// Estimate the monthly AWS cost of a load, service by service, and its quota headroom.
    Cost(cost::CostArgs),
    /// Print the lake's tables for SQL engines: Athena or Redshift DDL, Glue's table input, or
    /// DuckDB views.
    Catalog(catalog::CatalogArgs),
    /// Write the per-user feature table for ML as of a day (point in time), with its labels
    /// and its Feature Store definitions, into the lake.
    Features(features::FeaturesArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo talks to a person through its progress bars and summary: only warnings log.
    let default_log = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAUCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => worker::run(args).await,
            Command::Compact(args) => compact::run(args).await,
            Command::Report(args) => report::run(args).await,
            Command::Apps(cmd) => apps::run(cmd).await,
            Command::Dlq(cmd) => dlq::run(cmd).await,
            Command::Cost(args) => cost::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Catalog(args) => catalog::run(args).await,
            Command::Features(args) => features::run(args).await,
        }
    })
}
