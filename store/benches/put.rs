//! What the embedded store costs to write an event (issue 12): `SqliteStore::put` against the
//! layout it replaced, in the same run.
//!
//! The anchor is the same events written the way the store wrote them before: one transaction
//! per batch into a table with its indexes of key, user and arrival, so that each event's entry
//! in the user index is a random insert (a page of that index dirtied per user in each commit).
//! Ours keeps those entries in memory and indexes them in one sorted transaction every
//! `TIMELINE_EVERY`. Both write to real files, with the same pragmas (WAL, `synchronous=FULL`)
//! and WAL checkpoints on a thread of their own.
//!
//! Run with `cargo bench -p cauce-store --no-default-features --bench put`. Settings:
//! `CAUCE_PUT_EVENTS` (events per run, 1,000,000), `CAUCE_PUT_BATCHES` (events per transaction,
//! comma-separated; 2000,10000,25600: what the writer takes at a low rate, at a high one, and its
//! largest), `CAUCE_PUT_USERS` (distinct users, 5,000), `CAUCE_PUT_IDS` (`sequential`, as the
//! benches send, or `random`, as SDKs' UUIDs are).

use std::time::Instant;

use cauce_store::sqlite::{open, spawn_checkpointer, SqliteStore};
use cauce_store::{Kind, Record, RecordStore};

const NOW: i64 = 1_790_000_000_000;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Event `k` of a run, each a new one: 32 senders' sequential ids (or random ones), one of
/// `users` users.
fn event(k: usize, users: usize, random_ids: bool) -> Record {
    let id = if random_ids {
        format!("{:016x}", (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    } else {
        format!("t{}-{}", k % 32, k / 32)
    };
    let user = k.wrapping_mul(2_654_435_761) % users;
    let json = format!(
        r#"{{"app_id":"app1","event_id":"{id}","name":"screen_view","timestamp":{NOW},"ts":{NOW},"received_at":{},"ingest_seq":"{k:020}","user_id":"user-{user}","session_id":"s-{}","properties":{{"screen":"checkout","step":{}}},"context":{{"app_version":"3.2.1","os":"ios"}}}}"#,
        NOW + k as i64 / 100,
        k / 50,
        k % 100
    );
    Record::from_json(Kind::Event, &json).expect("bench event decodes")
}

/// The layout before: every index kept in each transaction.
fn anchor(path: &std::path::Path, batches: &[Vec<Record>]) -> f64 {
    let mut conn = open(path).expect("anchor database opens");
    conn.execute_batch(
        "CREATE TABLE events (
             seq INTEGER PRIMARY KEY, app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT,
             ts INTEGER NOT NULL, doc TEXT NOT NULL, received_at INTEGER);
         CREATE UNIQUE INDEX events_key ON events (app_id, key);
         CREATE INDEX events_user ON events (app_id, user_id, ts);
         CREATE INDEX events_received ON events (received_at);",
    )
    .expect("anchor schema");
    // Checkpoints as the store takes them: on a thread of their own, beside the writes.
    let alive = std::sync::Arc::new(());
    spawn_checkpointer(&conn, path, std::sync::Arc::downgrade(&alive)).expect("checkpointer");
    let start = Instant::now();
    for batch in batches {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (app_id, key, user_id, ts, doc, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (app_id, key) DO NOTHING",
                )
                .expect("prepare");
            for r in batch {
                insert
                    .execute(rusqlite::params![
                        r.app_id(),
                        r.key(),
                        r.user_id(),
                        r.ts(),
                        r.to_json(),
                        r.received_at()
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    start.elapsed().as_secs_f64()
}

async fn ours(path: &std::path::Path, batches: Vec<Vec<Record>>) -> f64 {
    let store = SqliteStore::open(path).expect("store opens");
    let start = Instant::now();
    for batch in batches {
        store.put(batch).await.expect("put");
    }
    start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = setting("CAUCE_PUT_EVENTS", "1000000")
        .parse()
        .expect("events");
    let users: usize = setting("CAUCE_PUT_USERS", "5000").parse().expect("users");
    let random_ids = setting("CAUCE_PUT_IDS", "sequential") == "random";
    let sizes: Vec<usize> = setting("CAUCE_PUT_BATCHES", "2000,10000,25600")
        .split(',')
        .map(|s| s.trim().parse().expect("CAUCE_PUT_BATCHES: numbers"))
        .collect();
    println!(
        "store put: {events} events, {users} users, {} ids; µs an event, the layout before (every index in each transaction), then ours, each after a `sync`",
        if random_ids { "random" } else { "sequential" }
    );
    for size in sizes {
        let batches = || -> Vec<Vec<Record>> {
            (0..events)
                .step_by(size)
                .map(|first| {
                    (first..(first + size).min(events))
                        .map(|k| event(k, users, random_ids))
                        .collect()
                })
                .collect()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        // Each run starts with the other's files written back, not being written back.
        let sync = || std::process::Command::new("sync").status().map(|_| ());
        sync().ok();
        let before = anchor(&dir.path().join("anchor.db"), &batches());
        sync().ok();
        let after = ours(&dir.path().join("store.db"), batches()).await;
        let stored = {
            let c = open(&dir.path().join("store.db")).expect("store reopens");
            c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
                .expect("count")
        };
        assert_eq!(stored as usize, events, "every event is a new one");
        let us = |secs: f64| secs * 1e6 / events as f64;
        println!(
            "batches of {size:>6}: ours {:>6.2} µs ({:>7.0}/s), before {:>6.2} µs ({:>7.0}/s): ours/before = {:.2}x the time",
            us(after),
            events as f64 / after,
            us(before),
            events as f64 / before,
            after / before
        );
    }
}
