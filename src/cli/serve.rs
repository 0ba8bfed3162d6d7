//! `cauce serve`: the API and the writer in one process, on SQLite and a local folder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use cauce_exporter::embedded::{backlog, Embedded, EmbeddedConfig};
use cauce_exporter::lake::local::LocalLake;
use cauce_ingest::api::{router, ApiConfig, ApiState, Backlog, Tenancy};
use cauce_ingest::auth::CachedKeys;
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::writer::{poll, PollConfig};
use cauce_store::sqlite::SqliteStore;

use super::apps::open_keys;
use super::DataArgs;

/// How long a key lookup is cached: a disabled or rotated key stops working within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The address to listen on.
    #[arg(long, env = "CAUCE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Requests a second per key for apps that set no rate of their own.
    #[arg(long, env = "CAUCE_RATE_LIMIT", default_value_t = 2_000)]
    rate_limit: u32,
    /// Message groups per app in the queue: one user's order always holds; more groups let
    /// more writers run in parallel, fewer put more items in each message.
    #[arg(long, env = "CAUCE_GROUP_BUCKETS", default_value_t = 1)]
    group_buckets: u64,
}

/// The exporter's lag behind the change log, for `pending`.
struct LakeBacklog(SqliteStore);

#[async_trait::async_trait]
impl Backlog for LakeBacklog {
    async fn backlog(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(backlog(&self.0).await?)
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let keys = Arc::new(open_keys(&args.data)?);
    let dir = &args.data.data;
    let store = Arc::new(SqliteStore::open(dir.join("store.db"))?);
    let queue_config = SqliteQueueConfig::default();
    let queue = Arc::new(SqliteQueue::open(dir.join("queue.db"), queue_config)?);
    let writer = tokio::spawn(poll(
        queue.clone(),
        store.clone(),
        PollConfig {
            max_receives: queue_config.max_receives,
            ..PollConfig::default()
        },
    ));
    let lake = Arc::new(LocalLake::new(dir.join("lake")));
    let exporter = Embedded::new((*store).clone(), lake, EmbeddedConfig::default()).await?;
    let exporter = tokio::spawn(exporter.run());
    let mut config = ApiConfig {
        default_rate_limit: args.rate_limit,
        ..ApiConfig::default()
    };
    config.packing.group_buckets = args.group_buckets.max(1);
    let tenancy = Tenancy::Keys(Arc::new(CachedKeys::new(keys.clone(), KEY_CACHE_TTL)));
    let state = ApiState::new(queue, store.clone(), tenancy, Some(keys), config)
        .with_backlog(Arc::new(LakeBacklog((*store).clone())));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %dir.display(), "Cauce is serving.");
    println!("cauce listening on http://{addr}");
    axum::serve(listener, router(Arc::new(state)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    writer.abort();
    exporter.abort();
    tracing::info!("Cauce stopped.");
    Ok(())
}
