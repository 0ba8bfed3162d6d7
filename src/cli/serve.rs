//! `cauce serve`: the API, the writer, the exporter and the reporter in one process, on SQLite
//! and a local folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

use cauce_analytics::features::{self, AsOf};
use cauce_analytics::reporter;
use cauce_analytics::{LakeSource, Scope, Settings};
use cauce_exporter::embedded::{Embedded, EmbeddedConfig, CURSOR};
use cauce_ingest::api::{router, ApiConfig, ApiState, FeedLag, LakeShelf, MetricsAccess, Tenancy};
use cauce_ingest::archive::local::LocalArchive;
use cauce_ingest::auth::{CachedKeys, SqliteKeys};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::writer::{poll_until, PollConfig};
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::watermark;
use cauce_store::sqlite::SqliteStore;

use super::apps::open_keys;
use super::http::{self, Guards};
use super::metrics::{Access, Scrape};
use super::ops::Ops;
use super::tls::Tls;
use super::DataArgs;

/// How long a key lookup is cached: a disabled or rotated key stops working within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// The defaults of the client guards: header timeout (s), body timeout (s), connection cap,
/// shutdown grace (s).
pub const GUARDS: (u64, u64, usize, u64) = (10, 30, 4096, 10);

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The address to listen on.
    #[arg(long, env = "CAUCE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Requests a second per key for apps that set no rate of their own.
    #[arg(long, env = "CAUCE_RATE_LIMIT", default_value_t = 2_000)]
    pub rate_limit: u32,
    /// Message groups per app in the queue: one user's order always holds; more groups let
    /// more writers run in parallel, fewer put more items in each message.
    #[arg(long, env = "CAUCE_GROUP_BUCKETS", default_value_t = 1)]
    pub group_buckets: u64,
    /// Seconds between two runs of the reports (published under DATA/lake/reports and served by
    /// `GET /v1/reports`); 0 turns the job off.
    #[arg(long, env = "CAUCE_REPORT_EVERY", default_value_t = 900)]
    pub report_every: u64,
    /// Event days the scheduled reports cover, up to today (only their partitions are read);
    /// 0 covers the whole lake.
    #[arg(long, env = "CAUCE_REPORT_DAYS", default_value_t = reporter::REPORT_DAYS)]
    pub report_days: u32,
    /// Seconds a client has to send a request's headers; also how long a kept-alive connection
    /// may stay idle.
    #[arg(long, env = "CAUCE_HEADER_TIMEOUT", default_value_t = GUARDS.0)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body (408 after it).
    #[arg(long, env = "CAUCE_BODY_TIMEOUT", default_value_t = GUARDS.1)]
    pub body_timeout: u64,
    /// The most connections served at once; more wait to be accepted.
    #[arg(long, env = "CAUCE_MAX_CONNECTIONS", default_value_t = GUARDS.2)]
    pub max_connections: usize,
    /// Seconds a stop waits for requests in progress before it closes them.
    #[arg(long, env = "CAUCE_SHUTDOWN_GRACE", default_value_t = GUARDS.3)]
    pub shutdown_grace: u64,
    /// Requests with an invalid API key a minute (and at once) from one client address; past
    /// it, that address gets 429 for any key the server does not already know.
    #[arg(long, env = "CAUCE_AUTH_FAILURES", default_value_t = ApiConfig::default().auth_failures_per_minute)]
    pub auth_failures_per_minute: u32,
    /// Days a record stays in the hot store (`store.db`, what timelines read) after it was last
    /// written, as DynamoDB's TTL does in AWS; the lake keeps everything. 0 keeps records forever.
    #[arg(long, env = "CAUCE_TTL_DAYS", default_value_t = 30)]
    pub ttl_days: u32,
    /// Milliseconds the writer lets messages gather in the queue before it takes them, while
    /// it keeps up: fewer, larger store transactions cost less per event (see the README's
    /// "Sustained end to end"), for at most this much more lag before the lake. 0 takes them
    /// as soon as they come.
    #[arg(long, env = "CAUCE_WRITER_LINGER_MS", default_value_t = WRITER_LINGER_MS)]
    pub writer_linger_ms: u64,
    /// Items pending (accepted, not yet in the lake, as `/healthz` counts them) past which the
    /// write routes answer 429 `backlog_full` with `Retry-After` until the pipeline catches up:
    /// a load above the sustained rate then waits at the clients instead of filling the disk.
    /// 0: no bound.
    #[arg(long, env = "CAUCE_MAX_BACKLOG", default_value_t = MAX_BACKLOG)]
    pub max_backlog: u64,
    /// Keep the raw archive in DATA/raw: every request body the API takes, by hour, zstd
    /// NDJSON, from which `cauce replay` rebuilds the store and the lake.
    #[arg(long, env = "CAUCE_RAW_ARCHIVE", default_value_t = true, action = clap::ArgAction::Set)]
    pub raw_archive: bool,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first), read
    /// again on SIGHUP. Needs --tls-key.
    #[arg(long, env = "CAUCE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1), read again on SIGHUP.
    /// Needs --tls-cert.
    #[arg(long, env = "CAUCE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Who may read `GET /metrics` (Prometheus text): anyone who reaches the address, admin
    /// keys only (`x-api-key`), or nobody (no route).
    #[arg(long, env = "CAUCE_METRICS", value_enum, default_value_t = Access::Open)]
    pub metrics: Access,
}

/// How long the writer lets messages gather by default, milliseconds (`--writer-linger-ms`).
pub const WRITER_LINGER_MS: u64 = 100;

/// How long a stop waits for the writer to finish the batch in hand.
const WRITER_STOP: Duration = Duration::from_secs(10);

/// The default bound of the backlog (`--max-backlog`): about a minute of bursts at the API's
/// accept rate on two cores, a few GB of disk.
pub const MAX_BACKLOG: u64 = 10_000_000;

/// How often the API reads the backlog, for `--max-backlog`.
const BACKLOG_EVERY: Duration = Duration::from_millis(200);

/// How often the hot store's expired records are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(600);

/// How often the lake's watermark is written.
const WATERMARK_EVERY: Duration = Duration::from_secs(5);

/// How long the API may hold a request it has stamped before the queue has it.
const IN_FLIGHT: Duration = Duration::from_secs(2);

/// Writes the lake's watermark: every record received before the oldest one still in the
/// queue or not yet exported (and before the requests in flight) is in the lake.
#[derive(Clone)]
struct Watermarks {
    queue: Arc<SqliteQueue>,
    store: Arc<SqliteStore>,
    lake: Arc<LocalLake>,
}

impl Watermarks {
    async fn write(&self) -> anyhow::Result<()> {
        let now = cauce_store::time::now_ms();
        let queued = self.queue.oldest_received_at().await?;
        let unexported = self.store.oldest_untaken(CURSOR).await?;
        let oldest = queued.into_iter().chain(unexported).min();
        let mark = watermark::at(oldest, now, IN_FLIGHT.as_millis() as i64);
        watermark::write(self.lake.as_ref(), &mark).await?;
        Ok(())
    }

    async fn run(self) {
        let mut tick = tokio::time::interval(WATERMARK_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.write().await {
                tracing::warn!(error = %e, "The lake's watermark was not written; it is tried again.");
            }
        }
    }
}

/// The embedded system, running.
pub struct Server {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// `https` with --tls-cert and --tls-key, else `http`.
    pub scheme: &'static str,
    /// The app and key store.
    pub keys: Arc<SqliteKeys>,
    /// The lake.
    pub lake: Arc<LocalLake>,
    stop: tokio::sync::oneshot::Sender<()>,
    api: JoinHandle<std::io::Result<()>>,
    stop_writer: tokio::sync::oneshot::Sender<()>,
    writer: JoinHandle<()>,
    archive: Option<LocalArchive>,
    background: Vec<JoinHandle<()>>,
    watermarks: Watermarks,
}

impl Server {
    /// Stops accepting requests and stops the background tasks. Accepted items are durable in
    /// the queue and the store; a restart carries on where this one stopped.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.api.await??;
        // The writer finishes the batch in hand and acknowledges it, so that a restart does
        // not wait for those messages to be delivered again.
        let _ = self.stop_writer.send(());
        let mut writer = self.writer;
        if tokio::time::timeout(WRITER_STOP, &mut writer)
            .await
            .is_err()
        {
            tracing::warn!(
                within_s = WRITER_STOP.as_secs(),
                "The writer did not stop in time; its batch will be delivered again."
            );
            writer.abort();
        }
        // What the lake holds now, for the reports of a stopped system.
        self.watermarks.write().await?;
        if let Some(archive) = &self.archive {
            archive.close().await;
        }
        for task in self.background {
            task.abort();
        }
        Ok(())
    }
}

/// Runs the reports over the last `days` event days every `every`, publishing them into the
/// lake, and writes the feature table for ML ([`AsOf::scheduled`]).
async fn report_job(lake: Arc<LocalLake>, every: Duration, days: u32) {
    let source = LakeSource::folder(lake.root());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let scope = Scope::last_days(days, now.date_naive());
        match reporter::publish(lake.as_ref(), &source, &scope, &Settings::default(), now).await {
            Ok(p) => tracing::info!(
                apps = p.apps.len(),
                objects = p.objects,
                "Reports published."
            ),
            Err(e) => {
                tracing::error!(error = %e, "The report job failed; it runs again at the next interval.")
            }
        }
        let as_of = AsOf::scheduled(now);
        let written = features::publish(&source, lake.as_ref(), &as_of, now.timestamp_millis());
        match written.await {
            Ok(p) => tracing::info!(rows = p.rows, table = %p.table, "Feature table written."),
            Err(e) => {
                tracing::error!(error = %e, "The feature table was not written; it is tried again at the next interval.")
            }
        }
    }
}

/// Deletes the hot store's records written more than `ttl` ago, now and then every
/// [`EXPIRE_EVERY`].
async fn expire_job(store: Arc<SqliteStore>, ttl: Duration) {
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tick.tick().await;
        let before = chrono::Utc::now().timestamp_millis() - ttl.as_millis() as i64;
        match store.expire(before, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "Expired records left the hot store."),
            Err(e) => {
                tracing::error!(error = %e, "Expiring the hot store failed; it runs again later.")
            }
        }
    }
}

/// Starts the embedded system: the API on `args.addr`, the writer, the exporter and the
/// report job.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
    let keys = Arc::new(open_keys(&args.data)?);
    let dir = &args.data.data;
    let store = Arc::new(SqliteStore::open(dir.join("store.db"))?);
    let queue_config = SqliteQueueConfig::default();
    let queue = Arc::new(SqliteQueue::open(dir.join("queue.db"), queue_config)?);
    // Before the stages start, so that they record into it.
    let scrape =
        (args.metrics != Access::Off).then(|| Scrape::install(queue.clone(), (*store).clone()));
    let (stop_writer, writer_stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(poll_until(
        queue.clone(),
        store.clone(),
        PollConfig {
            linger: Duration::from_millis(args.writer_linger_ms),
            ..PollConfig::default()
        },
        async move {
            let _ = writer_stopped.await;
        },
    ));
    let mut background = Vec::new();
    let lake = Arc::new(LocalLake::new(dir.join("lake")));
    let exporter = Embedded::new((*store).clone(), lake.clone(), EmbeddedConfig::default()).await?;
    background.push(tokio::spawn(exporter.run()));
    let watermarks = Watermarks {
        queue: queue.clone(),
        store: store.clone(),
        lake: lake.clone(),
    };
    background.push(tokio::spawn(watermarks.clone().run()));
    if args.ttl_days > 0 {
        let ttl = Duration::from_secs(u64::from(args.ttl_days) * 86_400);
        background.push(tokio::spawn(expire_job(store.clone(), ttl)));
    }
    if args.report_every > 0 {
        let every = Duration::from_secs(args.report_every);
        let job = report_job(lake.clone(), every, args.report_days);
        background.push(tokio::spawn(job));
    }
    let mut config = ApiConfig {
        default_rate_limit: args.rate_limit,
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        auth_failures_per_minute: args.auth_failures_per_minute.max(1),
        max_backlog: args.max_backlog,
        ..ApiConfig::default()
    };
    config.packing.group_buckets = args.group_buckets.max(1);
    let tenancy = Tenancy::Keys(Arc::new(CachedKeys::new(keys.clone(), KEY_CACHE_TTL)));
    let mut state = ApiState::new(queue, store.clone(), tenancy, Some(keys.clone()), config)
        .with_backlog(Arc::new(FeedLag::new((*store).clone(), CURSOR)))
        .with_reports(Arc::new(LakeShelf::new(lake.clone())));
    let archive = match args.raw_archive {
        true => Some(LocalArchive::open(dir.join("raw"))?),
        false => None,
    };
    if let Some(archive) = &archive {
        state = state.with_archive(Arc::new(archive.clone()));
    }
    if let Some(scrape) = scrape {
        let access = match args.metrics {
            Access::Admin => MetricsAccess::Admin,
            _ => MetricsAccess::Open,
        };
        let scrape: Arc<dyn cauce_ingest::api::MetricsPage> = Arc::new(scrape);
        let ops = Ops::new(scrape.clone());
        background.push(tokio::spawn(ops.clone().run()));
        state = state.with_metrics(scrape, access).with_ops(ops);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = Tls::load(cert, key)?;
            tls.reload_on_sighup()?;
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = Arc::new(state);
    if args.max_backlog > 0 {
        background.push(tokio::spawn(state.clone().watch_backlog(BACKLOG_EVERY)));
    }
    let app = router(state);
    let guards = Guards {
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_connections: args.max_connections.max(1),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    };
    let api = tokio::spawn(http::serve(listener, app, guards, tls, stopped));
    tracing::info!(%addr, scheme, data = %dir.display(), "Cauce is serving.");
    Ok(Server {
        addr,
        scheme,
        keys,
        lake,
        stop,
        api,
        stop_writer,
        writer,
        archive,
        background,
        watermarks,
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = start(&args).await?;
    println!("cauce listening on {}://{}", server.scheme, server.addr);
    super::stop_signal().await?;
    server.stop().await?;
    tracing::info!("Cauce stopped.");
    Ok(())
}
