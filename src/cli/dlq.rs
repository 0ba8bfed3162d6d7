//! `cauce dlq …`: the dead letters, listed with their reasons, and replayed back into the queue.
//! The embedded queue (`DATA/queue.db`) by default; the SQS DLQ with `--queue-url` (a build with
//! the `aws` feature, reading `CAUCE_DLQ_URL` too). Every command prints JSON lines.

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::{DeadLetter, Queue};

use super::DataArgs;

/// The most dead letters one command reads.
const MOST: usize = 100_000;

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The SQS FIFO queue instead of the embedded one (its DLQ from CAUCE_DLQ_URL).
    #[arg(long, env = "CAUCE_QUEUE_URL")]
    queue_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print each dead letter: `{"id", "app_id", "group", "reason", "bytes"}`.
    List {
        #[command(flatten)]
        queue: QueueArgs,
        /// Only this app's.
        #[arg(long)]
        app: Option<String>,
        /// Print each body too.
        #[arg(long)]
        bodies: bool,
    },
    /// Move dead letters back into the queue, at the end of their message groups; prints
    /// `{"replayed": N}`. Replaying twice moves nothing more.
    Replay {
        #[command(flatten)]
        queue: QueueArgs,
        /// Every dead letter.
        #[arg(long, conflicts_with_all = ["app", "id"])]
        all: bool,
        /// Every dead letter of this app.
        #[arg(long, conflicts_with = "id")]
        app: Option<String>,
        /// These dead letters (repeat the flag, or separate with commas).
        #[arg(long, value_delimiter = ',')]
        id: Vec<String>,
    },
}

async fn open(args: &QueueArgs) -> anyhow::Result<Arc<dyn Queue>> {
    match &args.queue_url {
        Some(url) => sqs(url).await,
        None => {
            let path = args.data.data.join("queue.db");
            if !path.exists() {
                bail!("no queue at {}: give --data DIR", path.display());
            }
            Ok(Arc::new(SqliteQueue::open(
                path,
                SqliteQueueConfig::default(),
            )?))
        }
    }
}

#[cfg(feature = "aws")]
async fn sqs(url: &str) -> anyhow::Result<Arc<dyn Queue>> {
    use cauce_ingest::config::{AwsSettings, Needs};
    let nothing = Needs {
        queue: false,
        tables: false,
        clients: false,
        lake: false,
    };
    let (mut settings, aws) = AwsSettings::load(nothing).await?;
    settings.queue_url = url.to_owned();
    settings.dlq_url = cauce_store::env::required("CAUCE_DLQ_URL")?;
    Ok(Arc::new(settings.queue(&aws)))
}

#[cfg(not(feature = "aws"))]
async fn sqs(url: &str) -> anyhow::Result<Arc<dyn Queue>> {
    bail!(
        "the queue {url} is in SQS, and this cauce was built without AWS support: build it with \
         `cargo build --release --features aws`"
    )
}

fn of_app<'a>(
    dead: &'a [DeadLetter],
    app: Option<&'a str>,
) -> impl Iterator<Item = &'a DeadLetter> {
    dead.iter()
        .filter(move |d| app.is_none_or(|a| d.app_id() == a))
}

pub async fn run(cmd: DlqCommand) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { queue, app, bodies } => {
            let dead = open(&queue).await?.dead_letters(MOST).await?;
            for d in of_app(&dead, app.as_deref()) {
                let mut line = json!({
                    "id": d.id, "app_id": d.app_id(), "group": d.group,
                    "reason": d.reason, "bytes": d.body.len(),
                });
                if bodies {
                    line["body"] = json!(d.body);
                }
                println!("{line}");
            }
        }
        DlqCommand::Replay {
            queue,
            all,
            app,
            id,
        } => {
            if !all && app.is_none() && id.is_empty() {
                bail!("say which dead letters to replay: --all, --app APP or --id ID");
            }
            let q = open(&queue).await?;
            let ids: Vec<String> = if id.is_empty() {
                let dead = q.dead_letters(MOST).await?;
                of_app(&dead, app.as_deref())
                    .map(|d| d.id.clone())
                    .collect()
            } else {
                id
            };
            let replayed = q.replay(&ids).await?;
            println!("{}", json!({ "replayed": replayed }));
        }
    }
    Ok(())
}
