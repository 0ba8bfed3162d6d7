//! `GET /metrics` of `cauce serve`: every metric of the vocabulary
//! ([`cauce_store::metrics::CATALOG`]) in Prometheus' text format, with the levels of the
//! embedded queue and exporter measured at each scrape.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use cauce_exporter::embedded::CURSOR;
use cauce_ingest::api::MetricsPage;
use cauce_ingest::queue::sqlite::SqliteQueue;
use cauce_ingest::queue::Queue;
use cauce_store::metrics::{
    DEAD_LETTERS, EXPORT_LAG_RECORDS, EXPORT_LAG_SECONDS, QUEUE_DEPTH, QUEUE_OLDEST_AGE,
    REPORT_DURATION, REQUEST_DURATION, WRITER_BATCH,
};
use cauce_store::sqlite::SqliteStore;

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Access {
    /// Anyone who reaches the address.
    Open,
    /// Admin keys only (`x-api-key`).
    Admin,
    /// No `/metrics` route.
    Off,
}

/// Latency buckets, seconds: 1 ms to 10 s.
const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Report durations, seconds.
const REPORTS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0];
/// Messages per writer batch.
const BATCHES: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0];

/// The process's Prometheus recorder, installed on first use.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            (REQUEST_DURATION, LATENCY),
            (REPORT_DURATION, REPORTS),
            (WRITER_BATCH, BATCHES),
        ];
        let mut builder = PrometheusBuilder::new();
        for (name, values) in buckets {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), values)
                .expect("bucket lists are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            cauce_store::metrics::describe();
        } else {
            tracing::warn!("Another metrics recorder is installed; /metrics will be empty.");
        }
        handle
    })
}

/// The page: the recorder's metrics, and the queue's and exporter's levels.
pub struct Scrape {
    queue: Arc<SqliteQueue>,
    store: SqliteStore,
}

impl Scrape {
    /// Installs the recorder (once a process) and serves its page.
    pub fn install(queue: Arc<SqliteQueue>, store: SqliteStore) -> Self {
        handle();
        Scrape { queue, store }
    }

    /// Sets the gauges measured at a scrape.
    async fn measure(&self) -> cauce_ingest::Result<()> {
        let now = cauce_store::time::now_ms();
        let age = |at: i64| (now - at).max(0) as f64 / 1e3;
        metrics::gauge!(QUEUE_DEPTH).set(self.queue.pending().await? as f64);
        metrics::gauge!(DEAD_LETTERS).set(self.queue.dead_lettered().await? as f64);
        let oldest = self.queue.oldest_received_at().await?;
        metrics::gauge!(QUEUE_OLDEST_AGE).set(oldest.map_or(0.0, age));
        let cursor = self.store.cursor(CURSOR).await?;
        let last = self.store.last_change().await?;
        metrics::gauge!(EXPORT_LAG_RECORDS).set(last.saturating_sub(cursor) as f64);
        // The oldest change the lake does not have yet: how far behind it is, now.
        let next = self.store.change_batch(cursor, 1, 1).await?;
        let behind = next.changes.first().and_then(|c| c.record());
        metrics::gauge!(EXPORT_LAG_SECONDS).set(behind.map_or(0.0, |r| age(r.received_at())));
        Ok(())
    }
}

#[async_trait]
impl MetricsPage for Scrape {
    async fn render(&self) -> cauce_ingest::Result<String> {
        self.measure().await?;
        let handle = handle();
        handle.run_upkeep();
        Ok(handle.render())
    }
}
