//! The embedded `RecordStore`: SQLite tables per kind, and the embedded change feed.
//!
//! The feed is numbered by one sequence (`feed.next_seq`) and kept in two places, so that an
//! event, most of what is written, is written once:
//!
//! * the `events` table is the feed of events: an event is only ever inserted, and its row's
//!   `seq` (the table's rowid) is its position in the feed;
//! * the `changes` table holds every change of a story or a test (with the version it
//!   replaced), and an event that the hot store expires before the feed's slowest consumer
//!   passed it, moved there under its own position.
//!
//! An event's timeline entry is not indexed as it is written: a random insert into an index of
//! every user's events dirties a page of it per user in each commit, which was most of the
//! writer's work. The entries of the events written since the last flush are kept in memory,
//! where this process's timeline reads find them, and the `timeline` table (keyed by app, user,
//! time and position) is filled from the `events` table in one sorted transaction every
//! [`TIMELINE_EVERY`], and at open for whatever a stopped process left unindexed.
//!
//! Reads of the feed merge the two in order. Rows of `events` made before the feed existed
//! (when every event was also copied to `changes`) have negative positions: the feed never
//! shows them, since their copy in `changes` does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::change::{Change, Op};
use crate::error::{Result, StoreError};
use crate::model::{Kind, Record};
use crate::port::{BadRow, PutOutcome, RecordStore};

/// The shard name of the embedded change log.
pub const CHANGE_LOG_SHARD: &str = "sqlite";

/// Opens a SQLite database the way every embedded adapter wants it: WAL, full durability on
/// commit, and a busy timeout so that the CLI can work beside a running server.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache (the default is 2 MiB): queue bodies and indexes stay in memory.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Readers that never pause keep a checkpoint from rewinding the WAL, which then grows; past
    // a checkpoint, cut it back to 64 MiB.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

/// How often [`spawn_checkpointer`] copies the write-ahead log into the database.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A write-ahead log file larger than this is cut back to nothing at a quiet moment (see
/// [`spawn_checkpointer`]).
pub const TRIM_LOG_ABOVE: u64 = 64 * 1024 * 1024;

/// At most this much log between two checkpoints (a quarter of a second) is a light load: a
/// few thousand events a second, where a pause of the writers while the log shrinks holds up
/// a few requests. The API at tens of thousands a second writes more, and is never cut back.
const LIGHT_WRITES: u64 = 1024 * 1024;

/// How long the log must stay quiet, in checkpoints of [`CHECKPOINT_EVERY`], before it is cut
/// back: two seconds.
const QUIET_CHECKPOINTS: u32 = 8;

/// Takes WAL checkpoints off a writing connection: turns its automatic checkpoints off (they
/// would run inside its commits, copying and syncing the database while the writer waits) and
/// starts a thread with a connection of its own that runs a passive checkpoint every
/// [`CHECKPOINT_EVERY`], beside the writes, until `alive` can no longer be upgraded (its owner
/// was dropped). A passive checkpoint never blocks writers or readers; the log restarts from
/// its beginning once a checkpoint has copied all of it.
///
/// A log file keeps the size it once grew to (a burst, a slow checkpoint). Once it is over
/// [`TRIM_LOG_ABOVE`] and the writes have been quiet for two seconds (every checkpoint of them
/// copied all of the log, which either did not change or held at most 1 MiB),
/// the thread cuts it back with a truncating checkpoint. That one never waits: a writer or a
/// reader in its way (a long transaction looks quiet until it commits) puts it off to the next
/// quiet moment. Once it runs, it holds off writers while the file shrinks (100–440 ms for
/// hundreds of MB on a shared disk), which a quiet moment can afford and a busy one could not.
pub fn spawn_checkpointer<T: Send + Sync + 'static>(
    writer: &Connection,
    path: &Path,
    alive: std::sync::Weak<T>,
) -> Result<()> {
    let conn = open(path)?;
    // The truncating checkpoint gives way at once to a writer or a reader; the passive ones
    // never wait anyway.
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    writer.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Thread names show in profiles cut to 15 bytes: `ckpt-store`, `ckpt-queue`.
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("db");
    let name = format!("ckpt-{}", stem.chars().take(10).collect::<String>());
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            // Said once when checkpoints start failing (a full disk, say) and once when they
            // work again, not four times a second.
            let mut failing = false;
            let mut quiet = Quiet::default();
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_EVERY);
                let frames = match checkpoint(&conn, "PASSIVE") {
                    Ok(frames) => frames,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "WAL checkpoints fail; trying again every 250 ms.");
                            failing = true;
                        }
                        continue;
                    }
                };
                if failing {
                    tracing::info!("WAL checkpoints work again.");
                    failing = false;
                }
                if !quiet.observe(frames, page_size) {
                    continue;
                }
                // The file's size only matters once the writes are quiet.
                let log_file = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                if log_file > TRIM_LOG_ABOVE {
                    trim_log(&conn, &wal, log_file);
                    quiet = Quiet::default();
                }
            }
        })
        .map_err(|e| StoreError::io(path, e))?;
    Ok(())
}

/// What a checkpoint reports: frames in the log, and how many of them are in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frames {
    busy: bool,
    log: u64,
    copied: u64,
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Frames> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok(Frames {
            busy: r.get::<_, i64>(0)? != 0,
            log: r.get::<_, i64>(1)?.max(0) as u64,
            copied: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })
}

/// Whether a log's writes have been quiet for [`QUIET_CHECKPOINTS`] checkpoints in a row.
#[derive(Debug, Default)]
struct Quiet {
    last: Option<Frames>,
    for_checkpoints: u32,
}

impl Quiet {
    /// Takes one checkpoint's report and says whether the log is now quiet: copied in full,
    /// and either unchanged since the last checkpoint (no writes) or small (light ones).
    fn observe(&mut self, frames: Frames, page_size: u64) -> bool {
        let small = frames.log * page_size <= LIGHT_WRITES;
        let settled =
            !frames.busy && frames.log == frames.copied && (self.last == Some(frames) || small);
        self.for_checkpoints = if settled { self.for_checkpoints + 1 } else { 0 };
        self.last = Some(frames);
        self.for_checkpoints >= QUIET_CHECKPOINTS
    }
}

/// Cuts a quiet log back to nothing, unless a writer or a reader is in the way.
fn trim_log(conn: &Connection, wal: &Path, was: u64) {
    match checkpoint(conn, "TRUNCATE") {
        Ok(f) if !f.busy => tracing::info!(
            log = %wal.display(),
            was_mib = was / (1024 * 1024),
            "cut the write-ahead log back at a quiet moment"
        ),
        Ok(_) => {
            tracing::debug!(log = %wal.display(), "a transaction put off cutting the log back")
        }
        Err(e) => tracing::debug!(log = %wal.display(), error = %e, "could not cut the log back"),
    }
}

/// How many read-only connections a store keeps beside its one writing connection.
pub const READERS: usize = 4;

/// Runs a closure on a shared connection in tokio's blocking pool.
pub async fn with_conn<T, F>(conn: &Arc<Mutex<Connection>>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    })
    .await?
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT,
    ts INTEGER NOT NULL, updated_at INTEGER, doc TEXT NOT NULL, received_at INTEGER);
CREATE TABLE IF NOT EXISTS stories (
    app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT, ts INTEGER NOT NULL,
    updated_at INTEGER, doc TEXT NOT NULL, received_at INTEGER,
    PRIMARY KEY (app_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tests (
    app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT, ts INTEGER NOT NULL,
    updated_at INTEGER, doc TEXT NOT NULL, received_at INTEGER,
    PRIMARY KEY (app_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stories_user ON stories (app_id, user_id, ts);
CREATE INDEX IF NOT EXISTS tests_user ON tests (app_id, user_id, ts);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, op TEXT NOT NULL,
    app_id TEXT NOT NULL, key TEXT NOT NULL, new_doc TEXT, old_doc TEXT);
CREATE TABLE IF NOT EXISTS timeline (
    app_id TEXT NOT NULL, user_id TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, ts, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed (
    id INTEGER PRIMARY KEY CHECK (id = 1), next_seq INTEGER NOT NULL, pruned INTEGER NOT NULL);
INSERT OR IGNORE INTO feed (id, next_seq, pruned)
    VALUES (1, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0) + 1, 0);
CREATE TABLE IF NOT EXISTS bad_rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL, kind TEXT NOT NULL,
    received_at INTEGER NOT NULL, item_index INTEGER NOT NULL, item_id TEXT,
    error TEXT NOT NULL, message TEXT NOT NULL, raw TEXT NOT NULL);
";

/// A read of the change log.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// The JSON size of each change, bytes.
    pub sizes: Vec<usize>,
    /// The position of the last change read (the `after` given when none was).
    pub last: u64,
}

/// Read-only connections beside the writing one. WAL lets a reader see the last commit while a
/// write is in progress, so an analyst's timeline, the exporter's reads and `/healthz` never
/// queue behind ingestion's writes, nor it behind them.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn open(path: &Path, n: usize) -> Result<Readers> {
        let conns = (0..n.max(1))
            .map(|_| {
                let conn = open(path)?;
                conn.pragma_update(None, "query_only", true)?;
                // Readers scan indexes and the change log: 8 MiB of cache each is plenty.
                conn.pragma_update(None, "cache_size", -8_192)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Readers {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// A free connection if there is one (starting from the next in turn), else the next in
    /// turn once it is free.
    fn acquire(&self) -> MutexGuard<'_, Connection> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.conns[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.conns[start % n]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// How often the `timeline` table takes the entries of the events written since its last flush.
pub const TIMELINE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// One event's timeline entry, written but not yet in the `timeline` table.
struct Entry {
    seq: i64,
    ts: i64,
    app_id: String,
    user_id: String,
}

/// The timeline entries of the events this process wrote since the last flush, in feed order.
struct Staged {
    entries: Vec<Entry>,
    flushed: std::time::Instant,
}

impl Staged {
    /// The times and positions of one user's staged events.
    fn of(&self, app_id: &str, user_id: &str) -> Vec<(i64, i64)> {
        self.entries
            .iter()
            .filter(|e| e.user_id == user_id && e.app_id == app_id)
            .map(|e| (e.ts, e.seq))
            .collect()
    }
}

/// The SQLite record store: one connection writes, [`READERS`] others read.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
    staged: Arc<Mutex<Staged>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (and creates if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open(&path)?;
        conn.execute_batch(SCHEMA)?;
        add_received_at(&conn)?;
        events_as_feed(&conn)?;
        timeline_table(&conn)?;
        flush_timeline(&mut conn)?;
        let readers = Arc::new(Readers::open(&path, READERS)?);
        spawn_checkpointer(&conn, &path, Arc::downgrade(&readers))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            readers,
            staged: Arc::new(Mutex::new(Staged {
                entries: Vec::new(),
                flushed: std::time::Instant::now(),
            })),
            path,
        })
    }

    /// Runs a read on one of the read-only connections, in tokio's blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || f(&readers.acquire())).await?
    }

    /// Deletes the records (all kinds) last written before `before_ms` (their `received_at`),
    /// as DynamoDB's TTL does for the AWS hot store: the lake keeps them, and the change feed
    /// records nothing (an expiry is not a deletion). An event that the feed's slowest consumer
    /// has not passed yet moves to the change log under its own position, so that the lake
    /// still gets it. Deletes in transactions of at most `chunk` rows so that ingestion's
    /// writes go on in between. Returns how many went.
    pub async fn expire(&self, before_ms: i64, chunk: usize) -> Result<u64> {
        let mut total = 0;
        for kind in Kind::ALL {
            loop {
                let gone = with_conn(&self.conn, move |c| {
                    let t = kind.plural();
                    let tx = c.transaction()?;
                    if kind == Kind::Event {
                        // The slowest consumer's position (none yet: nothing is passed).
                        tx.prepare_cached(
                            "INSERT INTO changes (seq, kind, op, app_id, key, new_doc)
                             SELECT seq, 'event', 'insert', app_id, key, doc FROM events
                             WHERE seq IN (SELECT seq FROM events WHERE received_at < ?1 LIMIT ?2)
                             AND seq > (SELECT MAX(COALESCE((SELECT MIN(seq) FROM cursors), 0), pruned) FROM feed)",
                        )?
                        .execute(params![before_ms, chunk.max(1) as i64])?;
                        // Their timeline entries (the staged ones find no row and are skipped).
                        tx.prepare_cached(
                            "DELETE FROM timeline WHERE (app_id, user_id, ts, seq) IN
                             (SELECT app_id, user_id, ts, seq FROM events WHERE seq IN
                              (SELECT seq FROM events WHERE received_at < ?1 LIMIT ?2))",
                        )?
                        .execute(params![before_ms, chunk.max(1) as i64])?;
                    }
                    // Events by the same selection as the moves above.
                    let (id, cols) = match kind {
                        Kind::Event => ("seq", "seq"),
                        _ => ("(app_id, key)", "app_id, key"),
                    };
                    let gone = tx
                        .prepare_cached(&format!(
                            "DELETE FROM {t} WHERE {id} IN
                             (SELECT {cols} FROM {t} WHERE received_at < ?1 LIMIT ?2)"
                        ))?
                        .execute(params![before_ms, chunk.max(1) as i64])?;
                    tx.commit()?;
                    Ok(gone)
                })
                .await?;
                total += gone as u64;
                if gone < chunk.max(1) {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every stored record of one kind and app, by key.
    pub async fn scan(&self, kind: Kind, app_id: &str) -> Result<Vec<Record>> {
        let app_id = app_id.to_owned();
        self.read(move |c| {
            let sql = format!(
                "SELECT doc FROM {} WHERE app_id = ?1 ORDER BY key",
                kind.plural()
            );
            let mut stmt = c.prepare(&sql)?;
            let docs = stmt
                .query_map([&app_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            docs.iter()
                .map(|d| Ok(Record::from_json(kind, d)?))
                .collect()
        })
        .await
    }

    /// How many records of one kind and app are stored.
    pub async fn count(&self, kind: Kind, app_id: &str) -> Result<u64> {
        let app_id = app_id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT COUNT(*) FROM {} WHERE app_id = ?1", kind.plural());
            let n: i64 = c.query_row(&sql, [&app_id], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    /// The archived bad rows of one app, oldest first.
    pub async fn bad_rows(&self, app_id: &str) -> Result<Vec<BadRow>> {
        let app_id = app_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT kind, received_at, item_index, item_id, error, message, raw
                 FROM bad_rows WHERE app_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([&app_id], |r| {
                Ok(BadRow {
                    app_id: app_id.clone(),
                    kind: Kind::parse(&r.get::<_, String>(0)?).unwrap_or(Kind::Event),
                    received_at: r.get(1)?,
                    index: r.get::<_, i64>(2)? as usize,
                    id: r.get(3)?,
                    error: r.get(4)?,
                    message: r.get(5)?,
                    raw: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Reads the change log after position `after`, at most `limit` changes, in order.
    pub async fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        Ok(self.change_batch(after, limit, usize::MAX).await?.changes)
    }

    /// Reads the change log after position `after`, in order: at most `limit` changes, and no
    /// more once they hold `max_bytes` of JSON (at least one is read), so that memory is bounded
    /// by the settings, not by how large the records are. With each change its JSON size (for
    /// byte budgets), and the position of the last one.
    pub async fn change_batch(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ChangeBatch> {
        self.read(move |c| {
            // The two halves of the feed, merged in order; nothing at or before what was pruned.
            let mut stmt = c.prepare_cached(
                "SELECT seq, 'event', 'insert', doc, NULL FROM events
                 WHERE seq > MAX(?1, (SELECT pruned FROM feed))
                 UNION ALL
                 SELECT seq, kind, op, new_doc, old_doc FROM changes
                 WHERE seq > MAX(?1, (SELECT pruned FROM feed))
                 ORDER BY 1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut batch = ChangeBatch {
                last: after,
                ..ChangeBatch::default()
            };
            let mut bytes = 0usize;
            for row in rows {
                let (seq, kind, op, new_doc, old_doc) = row?;
                let size = new_doc.as_ref().map_or(0, String::len)
                    + old_doc.as_ref().map_or(0, String::len);
                batch
                    .changes
                    .push(decode_change(seq, &kind, &op, new_doc, old_doc)?);
                batch.sizes.push(size);
                batch.last = seq as u64;
                bytes += size;
                if bytes >= max_bytes {
                    break;
                }
            }
            Ok(batch)
        })
        .await
    }

    /// The saved position of a named consumer of the change log (0 when it has none).
    pub async fn cursor(&self, name: &str) -> Result<u64> {
        let name = name.to_owned();
        self.read(move |c| {
            let seq: Option<i64> = c
                .query_row("SELECT seq FROM cursors WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(seq.unwrap_or(0) as u64)
        })
        .await
    }

    /// Saves the position of a named consumer, durably.
    pub async fn set_cursor(&self, name: &str, seq: u64) -> Result<()> {
        let name = name.to_owned();
        with_conn(&self.conn, move |c| {
            c.execute(
                "INSERT INTO cursors (name, seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET seq = ?2",
                params![name, seq as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// The position of the newest change ever logged (0 when none was), pruned or not.
    pub async fn last_change(&self) -> Result<u64> {
        self.read(|c| {
            let next: i64 = c.query_row("SELECT next_seq FROM feed", [], |r| r.get(0))?;
            Ok(next.saturating_sub(1).max(0) as u64)
        })
        .await
    }

    /// Drops the feed up to position `through`, which its one consumer (the lake exporter) has
    /// passed, so that it does not grow forever: deletes those changes of the change log, and
    /// the feed no longer shows the events at or before it (they stay in the store until they
    /// expire). Returns how many changes the feed dropped, of both kinds.
    pub async fn prune_changes(&self, through: u64) -> Result<u64> {
        with_conn(&self.conn, move |c| {
            let tx = c.transaction()?;
            let through = through as i64;
            let events: i64 = tx.query_row(
                "SELECT COUNT(*) FROM events WHERE seq > (SELECT pruned FROM feed) AND seq <= ?1",
                [through],
                |r| r.get(0),
            )?;
            let changes = tx.execute("DELETE FROM changes WHERE seq <= ?1", [through])?;
            tx.execute("UPDATE feed SET pruned = MAX(pruned, ?1)", [through])?;
            tx.commit()?;
            Ok(events as u64 + changes as u64)
        })
        .await
    }

    /// How many changes the named consumer has not taken yet.
    pub async fn lag(&self, cursor: &str) -> Result<u64> {
        let last = self.last_change().await?;
        Ok(last.saturating_sub(self.cursor(cursor).await?))
    }

    /// When the API received the oldest record whose change the named consumer has not taken
    /// yet (epoch ms), read from the first changes it has not taken; `None` when it has taken
    /// them all.
    pub async fn oldest_untaken(&self, cursor: &str) -> Result<Option<i64>> {
        let after = self.cursor(cursor).await? as i64;
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT min(r) FROM (
                     SELECT min(received_at) AS r FROM (
                         SELECT received_at FROM events WHERE seq > ?1 ORDER BY seq LIMIT 256)
                     UNION ALL
                     SELECT min(json_extract(coalesce(new_doc, old_doc), '$.received_at')) FROM (
                         SELECT new_doc, old_doc FROM changes WHERE seq > ?1 ORDER BY seq LIMIT 256))",
                [after],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
        .await
    }
}

/// Gives a table made before hot-store expiry its `received_at` column, filled from the
/// documents, and indexes it (for [`SqliteStore::expire`]).
fn add_received_at(conn: &Connection) -> Result<()> {
    for kind in Kind::ALL {
        let t = kind.plural();
        let has: bool = conn.query_row(
            &format!(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('{t}') WHERE name = 'received_at'"
            ),
            [],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!(
                "ALTER TABLE {t} ADD COLUMN received_at INTEGER;
                 UPDATE {t} SET received_at = json_extract(doc, '$.received_at');"
            ))?;
        }
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {t}_received ON {t} (received_at);"
        ))?;
    }
    Ok(())
}

/// Gives a store made before the `timeline` table a mark before its first event, so that the
/// flush that follows at open indexes every stored event, and drops the index of events by
/// user that the table replaces.
fn timeline_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "INSERT OR IGNORE INTO timeline_mark (id, through)
             VALUES (1, COALESCE((SELECT MIN(seq) FROM events), 1) - 1);
         DROP INDEX IF EXISTS events_user;",
    )?;
    Ok(())
}

/// Puts the timeline entries of every event written after the mark into the `timeline` table,
/// sorted (so that each user's new entries go to one place), from the `events` table itself:
/// whichever process wrote them. Returns the new mark: every event at or before it is indexed.
fn flush_timeline(conn: &mut Connection) -> Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let through: i64 = tx.query_row("SELECT through FROM timeline_mark", [], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO timeline (app_id, user_id, ts, seq)
         SELECT app_id, user_id, ts, seq FROM events WHERE seq > ?1 AND user_id IS NOT NULL
         ORDER BY app_id, user_id, ts, seq",
    )?
    .execute([through])?;
    let last: Option<i64> = tx.query_row(
        "SELECT MAX(seq) FROM events WHERE seq > ?1",
        [through],
        |r| r.get(0),
    )?;
    let last = last.unwrap_or(through);
    tx.execute("UPDATE timeline_mark SET through = ?1", [last])?;
    tx.commit()?;
    Ok(last)
}

/// Moves a store made before the events table was the feed of events (a `WITHOUT ROWID` table
/// keyed by app and key) to the feed's layout, in one transaction, and indexes the key. The
/// rows it had get negative positions, which the feed never shows: their changes are in the
/// change log already. Their timeline entries are made next, by [`timeline_table`].
fn events_as_feed(conn: &Connection) -> Result<()> {
    let is_feed: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'seq'",
        [],
        |r| r.get(0),
    )?;
    if !is_feed {
        tracing::info!("Moving the events table to the feed's layout (once).");
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE events RENAME TO events_before_feed;
             DROP INDEX IF EXISTS events_user;
             DROP INDEX IF EXISTS events_received;
             CREATE TABLE events (
                 seq INTEGER PRIMARY KEY, app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT,
                 ts INTEGER NOT NULL, updated_at INTEGER, doc TEXT NOT NULL, received_at INTEGER);
             INSERT INTO events (seq, app_id, key, user_id, ts, updated_at, doc, received_at)
                 SELECT -ROW_NUMBER() OVER (ORDER BY app_id, key), app_id, key, user_id, ts,
                        updated_at, doc, received_at
                 FROM events_before_feed;
             DROP TABLE events_before_feed;
             CREATE INDEX events_received ON events (received_at);
             DELETE FROM timeline;
             DELETE FROM timeline_mark;
             COMMIT;",
        )?;
    }
    conn.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (app_id, key);")?;
    Ok(())
}

fn decode_change(
    seq: i64,
    kind: &str,
    op: &str,
    new_doc: Option<String>,
    old_doc: Option<String>,
) -> Result<Change> {
    let kind = Kind::parse(kind).ok_or_else(|| StoreError::BadChange(format!("kind {kind:?}")))?;
    let op = Op::parse(op).ok_or_else(|| StoreError::BadChange(format!("op {op:?}")))?;
    let decode = |doc: Option<String>| -> Result<Option<Record>> {
        doc.map(|d| Record::from_json(kind, &d))
            .transpose()
            .map_err(Into::into)
    };
    Ok(Change {
        kind,
        op,
        shard: CHANGE_LOG_SHARD.to_owned(),
        sequence: seq.to_string(),
        ttl_expired: false,
        new_image: decode(new_doc)?,
        old_image: decode(old_doc)?,
    })
}

/// The SQL of one kind's table, built once.
struct Statements {
    select: String,
    insert_new: String,
    upsert: String,
}

impl Statements {
    fn of(kind: Kind) -> Statements {
        let t = kind.plural();
        Statements {
            select: format!("SELECT updated_at, doc FROM {t} WHERE app_id = ?1 AND key = ?2"),
            // Events only, at their position in the feed.
            insert_new: format!(
                "INSERT INTO {t} (app_id, key, user_id, ts, updated_at, doc, received_at, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (app_id, key) DO NOTHING"
            ),
            upsert: format!(
                "INSERT INTO {t} (app_id, key, user_id, ts, updated_at, doc, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (app_id, key)
                 DO UPDATE SET user_id = ?3, ts = ?4, updated_at = ?5, doc = ?6, received_at = ?7"
            ),
        }
    }
}

/// Writes one record; `next` is the feed position the next change takes.
fn put_one(
    tx: &rusqlite::Transaction<'_>,
    sql: &Statements,
    record: &Record,
    next: &mut i64,
) -> Result<PutOutcome> {
    let key = record.key();
    let doc = record.to_json();
    // The last, the feed position, is an event's only: stories and tests take the first seven.
    let row = params![
        record.app_id(),
        key,
        record.user_id(),
        record.ts(),
        record.updated_at(),
        doc,
        record.received_at(),
        *next
    ];
    let (outcome, op, old_doc) = match record.updated_at() {
        // Events: insert-only; the first copy wins, and its row is its change in the feed.
        None => {
            if tx.prepare_cached(&sql.insert_new)?.execute(row)? == 0 {
                return Ok(PutOutcome::Duplicate);
            }
            *next += 1;
            return Ok(PutOutcome::Inserted);
        }
        // Stories and tests: a newer `updated_at` replaces an older one, never the reverse.
        Some(new) => {
            let existing: Option<(Option<i64>, String)> = tx
                .prepare_cached(&sql.select)?
                .query_row(params![record.app_id(), key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let decided = match existing {
                None => (PutOutcome::Inserted, Op::Insert, None),
                Some((Some(stored), _)) if new <= stored => return Ok(PutOutcome::Stale),
                Some((_, old)) => (PutOutcome::Replaced, Op::Modify, Some(old)),
            };
            tx.prepare_cached(&sql.upsert)?.execute(&row[..7])?;
            decided
        }
    };
    tx.prepare_cached(
        "INSERT INTO changes (seq, kind, op, app_id, key, new_doc, old_doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        *next,
        record.kind().as_str(),
        op.as_str(),
        record.app_id(),
        key,
        doc,
        old_doc
    ])?;
    *next += 1;
    Ok(outcome)
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn put(&self, records: Vec<Record>) -> Result<Vec<PutOutcome>> {
        let staged = Arc::clone(&self.staged);
        with_conn(&self.conn, move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let sql = Kind::ALL.map(Statements::of);
            let first: i64 = tx.query_row("SELECT next_seq FROM feed", [], |r| r.get(0))?;
            let mut next = first;
            let mut entries = Vec::new();
            let outcomes = records
                .iter()
                .map(|r| {
                    let at = next;
                    let outcome = put_one(&tx, &sql[r.kind().index()], r, &mut next)?;
                    if let (Kind::Event, PutOutcome::Inserted, Some(user)) =
                        (r.kind(), outcome, r.user_id())
                    {
                        entries.push(Entry {
                            seq: at,
                            ts: r.ts(),
                            app_id: r.app_id().to_owned(),
                            user_id: user.to_owned(),
                        });
                    }
                    Ok(outcome)
                })
                .collect::<Result<Vec<_>>>()?;
            if next != first {
                tx.execute("UPDATE feed SET next_seq = ?1", [next])?;
            }
            tx.commit()?;
            let due = {
                let mut staged = staged.lock().unwrap_or_else(|p| p.into_inner());
                staged.entries.extend(entries);
                staged.flushed.elapsed() >= TIMELINE_EVERY
            };
            // Without the staged entries' lock, which timeline reads take: the flush may wait
            // for another process's write. The events are stored whether or not their entries
            // reach the table now: a failed flush leaves them staged, and the next flush (or
            // the next open) takes them.
            if due {
                let through = flush_timeline(c);
                let mut staged = staged.lock().unwrap_or_else(|p| p.into_inner());
                match through {
                    Ok(through) => staged.entries.retain(|e| e.seq > through),
                    Err(e) => tracing::warn!(error = %e, "The timeline index could not be updated; trying again later."),
                }
                staged.flushed = std::time::Instant::now();
            }
            Ok(outcomes)
        })
        .await
    }

    async fn get(&self, kind: Kind, app_id: &str, key: &str) -> Result<Option<Record>> {
        let (app_id, key) = (app_id.to_owned(), key.to_owned());
        self.read(move |c| {
            let doc: Option<String> = c
                .prepare_cached(&format!(
                    "SELECT doc FROM {} WHERE app_id = ?1 AND key = ?2",
                    kind.plural()
                ))?
                .query_row(params![app_id, key], |r| r.get(0))
                .optional()?;
            doc.map(|d| Record::from_json(kind, &d))
                .transpose()
                .map_err(Into::into)
        })
        .await
    }

    async fn timeline(&self, app_id: &str, user_id: &str, limit: usize) -> Result<Vec<Record>> {
        // Staged first, then the tables: an entry flushed in between is in the second read.
        let staged = self
            .staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .of(app_id, user_id);
        let (app_id, user_id) = (app_id.to_owned(), user_id.to_owned());
        self.read(move |c| {
            // Events: the indexed entries and the staged ones (a position can be in both).
            let mut newest: Vec<(i64, i64)> = c
                .prepare_cached(
                    "SELECT ts, seq FROM timeline WHERE app_id = ?1 AND user_id = ?2
                     ORDER BY ts DESC LIMIT ?3",
                )?
                .query_map(params![app_id, user_id, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            newest.extend(staged);
            newest.sort_unstable_by(|a, b| b.cmp(a));
            newest.dedup();
            newest.truncate(limit);
            let mut out = Vec::new();
            let mut by_seq = c.prepare_cached("SELECT doc FROM events WHERE seq = ?1")?;
            for (_, seq) in newest {
                // An entry whose event has expired since has no row.
                if let Some(d) = by_seq
                    .query_row([seq], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    out.push(Record::from_json(Kind::Event, &d)?);
                }
            }
            for kind in [Kind::Story, Kind::Exposure] {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT doc FROM {} WHERE app_id = ?1 AND user_id = ?2 ORDER BY ts DESC LIMIT ?3",
                    kind.plural()
                ))?;
                let docs = stmt
                    .query_map(params![app_id, user_id, limit as i64], |r| {
                        r.get::<_, String>(0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for d in docs {
                    out.push(Record::from_json(kind, &d)?);
                }
            }
            Ok(newest_first(out, limit))
        })
        .await
    }

    async fn archive_rejected(&self, rows: Vec<BadRow>) -> Result<()> {
        with_conn(&self.conn, move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO bad_rows (app_id, kind, received_at, item_index, item_id, error, message, raw)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for r in &rows {
                    stmt.execute(params![
                        r.app_id,
                        r.kind.as_str(),
                        r.received_at,
                        r.index as i64,
                        r.id,
                        r.error,
                        r.message,
                        r.raw
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Sorts records newest `ts` first (ties by key, for a stable order) and keeps the first `limit`.
pub fn newest_first(mut records: Vec<Record>, limit: usize) -> Vec<Record> {
    records.sort_by(|a, b| b.ts().cmp(&a.ts()).then_with(|| a.key().cmp(&b.key())));
    records.truncate(limit);
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(log: u64, copied: u64) -> Frames {
        Frames {
            busy: false,
            log,
            copied,
        }
    }

    #[test]
    fn a_log_is_quiet_after_two_seconds_without_writes_or_with_light_ones() {
        const PAGE: u64 = 4096;
        let big = TRIM_LOG_ABOVE / PAGE;
        // Unchanged and copied in full: quiet once it has been so for eight checkpoints.
        let mut quiet = Quiet::default();
        let seen: Vec<bool> = (0..10)
            .map(|_| quiet.observe(frames(big, big), PAGE))
            .collect();
        assert_eq!(seen.iter().position(|q| *q), Some(8));
        // Light writes (the log restarts small each time): quiet too.
        let mut quiet = Quiet::default();
        let seen: Vec<bool> = (1..=10)
            .map(|i| quiet.observe(frames(i, i), PAGE))
            .collect();
        assert_eq!(seen.iter().position(|q| *q), Some(7));
        // A log that keeps changing by more than light writes (2.4 MiB a checkpoint, the API at
        // some 30,000 events/s), or one not yet copied, is not.
        let mut quiet = Quiet::default();
        assert!((0..20).all(|i| !quiet.observe(frames(600 + i, 600 + i), PAGE)));
        let mut quiet = Quiet::default();
        assert!((0..20).all(|i| !quiet.observe(frames(big + i, big + i), PAGE)));
        let mut quiet = Quiet::default();
        assert!((0..20).all(|_| !quiet.observe(frames(big, big - 1), PAGE)));
        // A busy checkpoint starts the count again.
        let mut quiet = Quiet::default();
        (0..7).for_each(|_| assert!(!quiet.observe(frames(big, big), PAGE)));
        let busy = Frames {
            busy: true,
            ..frames(big, big)
        };
        assert!(!quiet.observe(busy, PAGE));
        assert!(!quiet.observe(frames(big, big), PAGE));
    }
}
