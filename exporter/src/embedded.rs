//! The embedded exporter of `cauce serve`: it tails the SQLite change log and writes the same
//! files as the Lambda under `DATA/lake`. It flushes on a byte budget or a short latency, and
//! saves its cursor only after the files are written: a crash in between re-exports the same
//! changes under the same names, so nothing is lost and nothing is duplicated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cauce_store::lake::Lake;
use cauce_store::sqlite::{SqliteStore, CHANGE_LOG_SHARD};

use crate::error::Result;
use crate::writer::{LakeWriter, Written};

/// The cursor name of the lake exporter in the change log.
pub const CURSOR: &str = "lake";

/// Settings of the embedded exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Flush once this many bytes of changes are buffered.
    pub budget_bytes: usize,
    /// Flush changes at most this long after the first one was read.
    pub max_latency: Duration,
    /// Changes read from the log at once, at most.
    pub read_batch: usize,
    /// Bytes of changes read from the log at once, at most (after the change that passes it):
    /// with `budget_bytes`, what bounds the exporter's memory, however large the records.
    pub read_bytes: usize,
    /// Sleep when the log has nothing new.
    pub idle: Duration,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            budget_bytes: 64 * 1024 * 1024,
            max_latency: Duration::from_secs(1),
            read_batch: 10_000,
            read_bytes: 16 * 1024 * 1024,
            idle: Duration::from_millis(100),
        }
    }
}

/// How far the exporter is behind the change log.
pub async fn backlog(store: &SqliteStore) -> Result<u64> {
    Ok(store.lag(CURSOR).await?)
}

/// The exporter: reads, buffers and flushes; one step of its loop.
pub struct Embedded {
    store: SqliteStore,
    lake: Arc<dyn Lake>,
    config: EmbeddedConfig,
    writer: LakeWriter,
    read_to: u64,
    first_read: Option<Instant>,
}

impl Embedded {
    /// An exporter that resumes from the saved cursor.
    pub async fn new(
        store: SqliteStore,
        lake: Arc<dyn Lake>,
        config: EmbeddedConfig,
    ) -> Result<Self> {
        let read_to = store.cursor(CURSOR).await?;
        Ok(Embedded {
            store,
            lake,
            writer: LakeWriter::new(config.budget_bytes),
            config,
            read_to,
            first_read: None,
        })
    }

    /// Reads what is new, and flushes when the budget or the latency says so. Returns the files
    /// written (empty when it did not flush) and whether the log had anything new.
    pub async fn step(&mut self) -> Result<(Vec<Written>, bool)> {
        let mut fresh = false;
        if !self.writer.should_flush() {
            let batch = self
                .store
                .change_batch(self.read_to, self.config.read_batch, self.config.read_bytes)
                .await?;
            fresh = !batch.changes.is_empty();
            for (change, size) in batch.changes.into_iter().zip(batch.sizes) {
                self.writer.write(change, size);
            }
            if fresh {
                self.first_read.get_or_insert_with(Instant::now);
            }
            self.read_to = batch.last;
        }
        let due = self
            .first_read
            .is_some_and(|t| t.elapsed() >= self.config.max_latency);
        if self.writer.is_empty() || !(self.writer.should_flush() || due) {
            return Ok((Vec::new(), fresh));
        }
        let written = self.writer.flush(self.lake.as_ref()).await?;
        // Commit only after every file is written; then the log up to there is not needed.
        self.store.set_cursor(CURSOR, self.read_to).await?;
        self.store.prune_changes(self.read_to).await?;
        self.first_read = None;
        Ok((written, fresh))
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        loop {
            match self.step().await {
                Ok((written, fresh)) => {
                    for w in &written {
                        tracing::debug!(key = %w.key, rows = w.rows, bytes = w.bytes, "Lake file written.");
                    }
                    if !fresh {
                        tokio::time::sleep(self.config.idle).await;
                    }
                }
                // The server is stopping: what was not committed is read again next time.
                Err(e) if e.is_shutdown() => {
                    tracing::debug!(error = %e, "Export stopped with the runtime.");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, shard = CHANGE_LOG_SHARD, "Export failed; retrying.");
                    tokio::time::sleep(self.config.idle * 10).await;
                }
            }
        }
    }
}
