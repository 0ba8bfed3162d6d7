//! The embedded queue: a SQLite database served by one thread that batches every waiting
//! command into one transaction (group commit), so that many concurrent sends share one fsync.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};

use cauce_store::time::now_ms;

use super::{DeadLetter, Delivery, OutMessage, Queue};
use crate::error::{IngestError, Result};

const SCHEMA: &str = "
-- Small columns first: a large body spills into overflow pages that a scan of the columns
-- after it would have to read.
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, items INTEGER NOT NULL,
    visible_at INTEGER NOT NULL DEFAULT 0, receive_count INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, body TEXT NOT NULL, retries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_grp ON messages (grp, visible_at);
CREATE TABLE IF NOT EXISTS dedup (dedup_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, body TEXT NOT NULL,
    items INTEGER NOT NULL, receive_count INTEGER NOT NULL, reason TEXT NOT NULL,
    dead_at INTEGER NOT NULL);
";

/// The `visible_at` of a new message: long past (2004), but, like every time a receive sets,
/// an integer that SQLite stores in six bytes. A receive then leaves the row's size as it was,
/// so SQLite rewrites it in place and leaves the body's overflow pages alone (it writes only
/// pages whose bytes change): each body reaches the log once, when sent.
const VISIBLE_SINCE: i64 = 1 << 40;

/// How long a dedup id is remembered, as in SQS FIFO.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Settings of the embedded queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteQueueConfig {
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// A message received this many times without an ack or a release (a crash, a timeout)
    /// goes to the dead letters. Releases after a transient failure do not count.
    pub max_receives: u32,
}

impl Default for SqliteQueueConfig {
    fn default() -> Self {
        SqliteQueueConfig {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
        }
    }
}

enum Command {
    Send(Vec<OutMessage>),
    Receive(usize),
    Ack(Vec<Delivery>),
    Release(Vec<Delivery>, String, i64),
    DeadLetter(Delivery, String),
    DeadLetters(usize),
    Replay(Vec<String>),
    Pending,
    DeadLettered,
    OldestAt,
    Close,
}

enum Reply {
    Done,
    Deliveries(Vec<Delivery>),
    DeadLetters(Vec<DeadLetter>),
    Count(u64),
}

type Job = (Command, oneshot::Sender<Result<Reply>>);

/// The SQLite queue. Cloning shares the same database thread.
#[derive(Clone)]
pub struct SqliteQueue {
    tx: mpsc::Sender<Job>,
    /// Keeps the checkpointer going while a clone of the queue lives.
    _alive: std::sync::Arc<()>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// Opens (and creates if needed) the queue at `path` and starts its thread. The thread
    /// stops when every clone of the queue is dropped.
    pub fn open(path: impl AsRef<Path>, config: SqliteQueueConfig) -> Result<Self> {
        let conn = cauce_store::sqlite::open(path.as_ref())?;
        // The log keeps the size it grew to, and is written again from its start after each
        // checkpoint. Cutting it back (the store's 64 MiB limit) is an ftruncate on this thread,
        // which every send waits for: freeing hundreds of MB of just-written log took 100 to
        // 440 ms on a shared disk, the request stalls that made the API's p99 (issue 12).
        conn.pragma_update(None, "journal_size_limit", -1)?;
        conn.execute_batch(SCHEMA)?;
        add_retries_column(&conn)?;
        let alive = std::sync::Arc::new(());
        cauce_store::sqlite::spawn_checkpointer(
            &conn,
            path.as_ref(),
            std::sync::Arc::downgrade(&alive),
        )?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        std::thread::Builder::new()
            .name("cauce-queue".into())
            .spawn(move || serve(conn, rx, config))
            .map_err(|e| IngestError::Config(format!("cannot start the queue thread: {e}")))?;
        Ok(SqliteQueue { tx, _alive: alive })
    }

    /// Stops the queue's thread after the work already waiting; later calls fail with
    /// [`IngestError::QueueClosed`].
    pub async fn close(&self) -> Result<()> {
        self.call(Command::Close).await.map(|_| ())
    }

    /// When the API took the oldest message still in the queue (epoch ms); `None` when the
    /// queue is empty.
    pub async fn oldest_received_at(&self) -> Result<Option<i64>> {
        match self.call(Command::OldestAt).await? {
            Reply::Count(0) => Ok(None),
            Reply::Count(at) => Ok(Some(at as i64)),
            _ => unreachable!("oldest_received_at replies with a count"),
        }
    }

    async fn call(&self, cmd: Command) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((cmd, reply))
            .await
            .map_err(|_| IngestError::QueueClosed)?;
        rx.await.map_err(|_| IngestError::QueueClosed)?
    }
}

/// Queues made before transient releases were counted apart lack the `retries` column.
fn add_retries_column(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'retries'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

fn serve(mut conn: Connection, mut rx: mpsc::Receiver<Job>, config: SqliteQueueConfig) {
    let mut last_prune = 0i64;
    // Items in the queue, kept in memory so that `pending` never scans the table; changes of a
    // transaction count only once it commits.
    let mut pending: i64 = conn
        .query_row("SELECT COALESCE(SUM(items), 0) FROM messages", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < 1024 {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let now = now_ms();
        let mut delta = 0i64;
        let mut recount = None;
        let result = (|| -> Result<Vec<Result<Reply>>> {
            let tx = conn.transaction()?;
            let replies = jobs
                .iter()
                .map(|(cmd, _)| run(&tx, cmd, now, &config, pending, &mut delta))
                .collect();
            if now - last_prune > DEDUP_WINDOW_MS / 5 {
                tx.execute("DELETE FROM dedup WHERE at < ?1", [now - DEDUP_WINDOW_MS])?;
                // Count again now and then: another process (`cauce dlq replay`) may have
                // added messages.
                let items: i64 =
                    tx.query_row("SELECT COALESCE(SUM(items), 0) FROM messages", [], |r| {
                        r.get(0)
                    })?;
                recount = Some(items);
                last_prune = now;
            }
            tx.commit()?;
            Ok(replies)
        })();
        if jobs.iter().any(|(cmd, _)| matches!(cmd, Command::Close)) {
            // Refuse new work before anyone hears that the queue closed.
            rx.close();
        }
        match result {
            Ok(replies) => {
                pending = recount.unwrap_or(pending + delta);
                for ((_, reply), r) in jobs.into_iter().zip(replies) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let (message, transient) = (e.to_string(), e.is_unavailable());
                tracing::error!(error = %message, "Queue transaction failed.");
                for (_, reply) in jobs {
                    let _ = reply.send(Err(IngestError::QueueTransaction {
                        message: message.clone(),
                        transient,
                    }));
                }
            }
        }
    }
}

/// Runs one command in the batch's transaction; `delta` gathers the change of the pending count.
fn run(
    tx: &Transaction<'_>,
    cmd: &Command,
    now: i64,
    config: &SqliteQueueConfig,
    pending: i64,
    delta: &mut i64,
) -> Result<Reply> {
    match cmd {
        Command::Send(messages) => {
            let mut dedup =
                tx.prepare_cached("INSERT OR IGNORE INTO dedup (dedup_id, at) VALUES (?1, ?2)")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (grp, body, items, visible_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for m in messages {
                if dedup.execute(params![m.dedup_id, now])? == 1 {
                    insert.execute(params![m.group, m.body, m.items, VISIBLE_SINCE])?;
                    *delta += i64::from(m.items);
                }
            }
            Ok(Reply::Done)
        }
        Command::Receive(max) => receive(tx, *max, now, config, delta).map(Reply::Deliveries),
        Command::Ack(deliveries) => {
            let mut del = tx.prepare_cached(
                "DELETE FROM messages WHERE id = ?1 AND receive_count = ?2 RETURNING items",
            )?;
            for d in deliveries {
                let items: Option<i64> = del
                    .query_row(params![d.id, d.receive_count], |r| r.get(0))
                    .optional()?;
                *delta -= items.unwrap_or(0);
            }
            Ok(Reply::Done)
        }
        Command::Release(deliveries, reason, retry_in_ms) => {
            let mut upd = tx.prepare_cached(
                "UPDATE messages SET visible_at = ?3, last_error = ?4, retries = retries + 1
                 WHERE id = ?1 AND receive_count = ?2",
            )?;
            for d in deliveries {
                upd.execute(params![d.id, d.receive_count, now + retry_in_ms, reason])?;
            }
            Ok(Reply::Done)
        }
        Command::OldestAt => {
            // The oldest message's first item (or bad row) carries when the API took it.
            let at: Option<i64> = tx
                .query_row(
                    "SELECT COALESCE(json_extract(body, '$.items[0].received_at'),
                                     json_extract(body, '$.rejected[0].received_at'))
                     FROM messages ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            Ok(Reply::Count(at.unwrap_or(0).max(0) as u64))
        }
        Command::DeadLettered => {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
            Ok(Reply::Count(n as u64))
        }
        Command::DeadLetter(d, reason) => {
            *delta -= move_to_dead_letters(tx, d, reason, now)?;
            Ok(Reply::Done)
        }
        Command::DeadLetters(max) => {
            let mut stmt = tx.prepare_cached(
                "SELECT id, grp, body, reason FROM dead_letters ORDER BY id LIMIT ?1",
            )?;
            let rows = stmt.query_map([*max as i64], |r| {
                Ok(DeadLetter {
                    id: r.get::<_, i64>(0)?.to_string(),
                    group: r.get(1)?,
                    body: r.get(2)?,
                    reason: r.get(3)?,
                })
            })?;
            Ok(Reply::DeadLetters(rows.collect::<rusqlite::Result<_>>()?))
        }
        Command::Replay(ids) => {
            let mut take = tx.prepare_cached(
                "DELETE FROM dead_letters WHERE id = ?1 RETURNING grp, body, items",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (grp, body, items, visible_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut moved = 0;
            for id in ids {
                let Ok(id) = id.parse::<i64>() else { continue };
                let row: Option<(String, String, i64)> = take
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                if let Some((group, body, items)) = row {
                    insert.execute(params![group, body, items, VISIBLE_SINCE])?;
                    *delta += items;
                    moved += 1;
                }
            }
            Ok(Reply::Count(moved))
        }
        Command::Close => Ok(Reply::Done),
        Command::Pending => Ok(Reply::Count((pending + *delta).max(0) as u64)),
    }
}

/// Moves a message to the dead letters. The delivery's own group and body are kept, so a message
/// that came from another queue (a Lambda event) can be dead-lettered here too. Returns the
/// number of items that left the queue.
fn move_to_dead_letters(tx: &Transaction<'_>, d: &Delivery, reason: &str, now: i64) -> Result<i64> {
    let items: i64 = tx
        .prepare_cached("SELECT COALESCE(SUM(items), 0) FROM messages WHERE id = ?1")?
        .query_row([&d.id], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO dead_letters (grp, body, items, receive_count, reason, dead_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.group,
        d.body,
        items,
        d.receive_count,
        reason,
        now
    ])?;
    tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([&d.id])?;
    Ok(items)
}

type Candidate = (i64, String, String, u32, u32, Option<String>);

fn receive(
    tx: &Transaction<'_>,
    max: usize,
    now: i64,
    config: &SqliteQueueConfig,
    delta: &mut i64,
) -> Result<Vec<Delivery>> {
    let hidden_until = now + config.visibility_timeout.as_millis() as i64;
    let mut out = Vec::with_capacity(max);
    loop {
        // The first messages of every group that has nothing in flight, in id order.
        let candidates: Vec<Candidate> = tx
            .prepare_cached(
                "SELECT id, grp, body, receive_count, retries, last_error FROM messages m
                 WHERE m.visible_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.grp = m.grp AND p.visible_at > ?1)
                 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![now, (max - out.len()) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if candidates.is_empty() {
            return Ok(out);
        }
        let mut dead = 0;
        for (id, group, body, count, retries, last_error) in candidates {
            let delivery = Delivery {
                id: id.to_string(),
                receipt: format!("{id}:{}", count + 1),
                group,
                body,
                sequence: id.to_string(),
                receive_count: count + 1,
            };
            // Receives that ended in a release after a transient failure do not count: only
            // those that ended without a word (a crash, a timeout) do.
            let silent = count.saturating_sub(retries);
            if silent >= config.max_receives {
                let reason = format!(
                    "received {silent} times without an answer; last error: {}",
                    last_error.as_deref().unwrap_or("none recorded")
                );
                *delta -= move_to_dead_letters(tx, &delivery, &reason, now)?;
                dead += 1;
                continue;
            }
            tx.prepare_cached(
                "UPDATE messages SET visible_at = ?2, receive_count = ?3 WHERE id = ?1",
            )?
            .execute(params![id, hidden_until, count + 1])?;
            out.push(delivery);
        }
        // Look again only when dead letters made room, so a group goes on with its next message.
        if dead == 0 || out.len() >= max {
            return Ok(out);
        }
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, messages: Vec<OutMessage>) -> Result<()> {
        self.call(Command::Send(messages)).await.map(|_| ())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>> {
        match self.call(Command::Receive(max)).await? {
            Reply::Deliveries(d) => Ok(d),
            _ => unreachable!("receive replies with deliveries"),
        }
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<()> {
        self.call(Command::Ack(deliveries.to_vec()))
            .await
            .map(|_| ())
    }

    async fn release(
        &self,
        deliveries: &[Delivery],
        reason: &str,
        retry_in: Duration,
    ) -> Result<()> {
        let retry_in_ms = retry_in.as_millis().min(i64::MAX as u128) as i64;
        let cmd = Command::Release(deliveries.to_vec(), reason.to_owned(), retry_in_ms);
        self.call(cmd).await.map(|_| ())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        self.call(Command::DeadLetter(delivery.clone(), reason.to_owned()))
            .await
            .map(|_| ())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>> {
        match self.call(Command::DeadLetters(max)).await? {
            Reply::DeadLetters(d) => Ok(d),
            _ => unreachable!("dead_letters replies with dead letters"),
        }
    }

    async fn pending(&self) -> Result<u64> {
        match self.call(Command::Pending).await? {
            Reply::Count(n) => Ok(n),
            _ => unreachable!("pending replies with a count"),
        }
    }

    async fn replay(&self, ids: &[String]) -> Result<usize> {
        match self.call(Command::Replay(ids.to_vec())).await? {
            Reply::Count(n) => Ok(n as usize),
            _ => unreachable!("replay replies with a count"),
        }
    }

    async fn dead_lettered(&self) -> Result<u64> {
        match self.call(Command::DeadLettered).await? {
            Reply::Count(n) => Ok(n),
            _ => unreachable!("dead_lettered replies with a count"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes in the write-ahead log of `path`.
    fn wal_bytes(path: &Path) -> u64 {
        std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
    }

    #[test]
    fn a_receive_leaves_the_body_where_the_send_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let mut conn = cauce_store::sqlite::open(&path).unwrap();
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        // 64 messages of 32 KiB: 2 MiB of bodies, mostly in overflow pages.
        let body = "x".repeat(32 * 1024);
        let messages = (0..64)
            .map(|i| OutMessage {
                group: format!("g{i}"),
                dedup_id: format!("d{i}"),
                body: body.clone(),
                items: 1,
            })
            .collect();
        let config = SqliteQueueConfig::default();
        let (now, mut delta) = (now_ms(), 0);
        let tx = conn.transaction().unwrap();
        run(&tx, &Command::Send(messages), now, &config, 0, &mut delta).unwrap();
        tx.commit().unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        assert_eq!(wal_bytes(&path), 0);

        let tx = conn.transaction().unwrap();
        let got = receive(&tx, 100, now, &config, &mut delta).unwrap();
        tx.commit().unwrap();
        assert_eq!(got.len(), 64);
        assert!(got.iter().all(|d| d.body == body && d.receive_count == 1));
        // The receive wrote the rows' first pages and the index, not the bodies again.
        let written = wal_bytes(&path);
        assert!(
            written < 64 * 32 * 1024 / 4,
            "a receive of 2 MiB of bodies wrote {written} bytes of log"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_a_burst_grew_is_cut_back_once_the_sends_stop_and_loses_nothing() {
        use cauce_store::sqlite::{CHECKPOINT_EVERY, TRIM_LOG_ABOVE};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let queue = SqliteQueue::open(&path, SqliteQueueConfig::default()).unwrap();
        // One transaction of 80 MiB of bodies: the log grows past the trim size at once.
        let body = |i: usize| format!("{i:08}{}", "y".repeat(1024 * 1024 - 8));
        let burst = (0..80)
            .map(|i| OutMessage::new(format!("g{}", i % 4), body(i), 1))
            .collect();
        queue.send(burst).await.unwrap();
        let grown = wal_bytes(&path);
        assert!(
            grown > TRIM_LOG_ABOVE,
            "the burst grew the log to {grown} bytes only"
        );

        // Quiet: the checkpointer cuts the log back after two seconds without writes.
        let started = std::time::Instant::now();
        while wal_bytes(&path) > 0 {
            assert!(
                started.elapsed() < 60 * CHECKPOINT_EVERY,
                "the log is still {} bytes after {:?} of quiet",
                wal_bytes(&path),
                started.elapsed()
            );
            tokio::time::sleep(CHECKPOINT_EVERY / 2).await;
        }
        assert!(
            started.elapsed() >= 6 * CHECKPOINT_EVERY,
            "cut back before the quiet was long enough"
        );

        // Everything sent is still there, and the queue takes more.
        queue
            .send(vec![OutMessage::new("g0".into(), "after".into(), 1)])
            .await
            .unwrap();
        assert_eq!(queue.pending().await.unwrap(), 81);
        let mut bodies = Vec::new();
        while bodies.len() < 81 {
            let got = queue.receive(100).await.unwrap();
            assert!(!got.is_empty(), "received {} of 81", bodies.len());
            queue.ack(&got).await.unwrap();
            bodies.extend(got.into_iter().map(|d| d.body));
        }
        for i in 0..80 {
            assert!(bodies.contains(&body(i)), "message {i} is lost");
        }
        assert!(bodies.contains(&"after".to_string()));
    }
}
