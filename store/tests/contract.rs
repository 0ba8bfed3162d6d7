//! The `RecordStore` contract, run against both adapters: SQLite (embedded) and DynamoDB (the
//! moto server that `./test.sh` starts; `AWS_ENDPOINT_URL` points at it).

use cauce_store::change::Op;
use cauce_store::dynamo::{DynamoStore, Tables};
use cauce_store::faults::{Fault, FaultyStore, Schedule};
use cauce_store::sqlite::SqliteStore;
use cauce_store::{Kind, PutOutcome, Record, RecordStore, Stamp};

const NOW: i64 = 1_790_000_000_000;

fn record(kind: Kind, app: &str, json: &str) -> Record {
    received(
        Record::from_json(kind, json).expect("test record decodes"),
        app,
        NOW,
    )
}

/// The record as the API stamps it for `app` at `received_at`.
fn received(mut r: Record, app: &str, received_at: i64) -> Record {
    r.stamp(&Stamp {
        app_id: app.into(),
        received_at,
        skew_ms: 0,
    });
    r
}

fn event(app: &str, id: &str, name: &str, user: &str, ts: i64) -> Record {
    let json = format!(
        r#"{{"event_id":"{id}","name":"{name}","timestamp":{ts},"user_id":"{user}","properties":{{"n":1}}}}"#
    );
    record(Kind::Event, app, &json)
}

fn story(app: &str, id: &str, user: &str, updated_at: i64, outcome: &str) -> Record {
    let json = format!(
        r#"{{"story_id":"{id}","name":"checkout","user_id":"{user}","started_at":{NOW},"updated_at":{updated_at},"outcome":"{outcome}","steps":[{{"name":"cart","at":{NOW}}}]}}"#
    );
    record(Kind::Story, app, &json)
}

fn test(app: &str, user: &str, updated_at: i64, converted: bool) -> Record {
    let json = format!(
        r#"{{"experiment":"price","user_id":"{user}","variant":"b","exposed_at":{NOW},"updated_at":{updated_at},"converted":{converted}}}"#
    );
    record(Kind::Exposure, app, &json)
}

/// Writes records, which must not fail, and returns what each write did.
async fn put(store: &dyn RecordStore, records: Vec<Record>) -> Vec<PutOutcome> {
    store.put(records).await.unwrap()
}

fn name_of(r: &Record) -> String {
    match r {
        Record::Event(e) => e.name.clone(),
        Record::Story(s) => format!("{:?}", s.outcome),
        Record::Exposure(t) => format!("{:?}", t.converted),
    }
}

async fn first_event_copy_wins(store: &dyn RecordStore) {
    let out = put(
        store,
        vec![
            event("a1", "e1", "first", "u1", NOW),
            event("a1", "e1", "second", "u1", NOW + 5),
            event("a1", "e2", "other", "u1", NOW),
        ],
    )
    .await;
    assert_eq!(
        out,
        [
            PutOutcome::Inserted,
            PutOutcome::Duplicate,
            PutOutcome::Inserted
        ]
    );
    let again = put(store, vec![event("a1", "e1", "third", "u1", NOW)]).await;
    assert_eq!(again, [PutOutcome::Duplicate], "a resend in a later batch");
    let stored = store.get(Kind::Event, "a1", "e1").await.unwrap().unwrap();
    assert_eq!(name_of(&stored), "first");
}

async fn older_update_never_wins(store: &dyn RecordStore) {
    // Versions arrive out of order: 200, then 100 (older), then 300, then 300 again.
    let out = put(
        store,
        vec![
            story("a1", "s1", "u1", NOW + 200, "abandoned"),
            story("a1", "s1", "u1", NOW + 100, "in_progress"),
        ],
    )
    .await;
    assert_eq!(out, [PutOutcome::Inserted, PutOutcome::Stale]);
    let stored = store.get(Kind::Story, "a1", "s1").await.unwrap().unwrap();
    assert_eq!(name_of(&stored), "Abandoned");
    let out = put(store, vec![story("a1", "s1", "u1", NOW + 300, "completed")]).await;
    assert_eq!(out, [PutOutcome::Replaced]);
    let out = put(
        store,
        vec![
            story("a1", "s1", "u1", NOW + 300, "failed"),
            story("a1", "s1", "u1", NOW + 150, "failed"),
        ],
    )
    .await;
    assert_eq!(
        out,
        [PutOutcome::Stale, PutOutcome::Stale],
        "ties keep the stored one"
    );
    let stored = store.get(Kind::Story, "a1", "s1").await.unwrap().unwrap();
    assert_eq!(name_of(&stored), "Completed");
    assert_eq!(stored.updated_at(), Some(NOW + 300));
}

async fn tests_upsert_by_experiment_and_user(store: &dyn RecordStore) {
    let out = put(
        store,
        vec![
            test("a1", "u1", NOW + 50, true),
            test("a1", "u1", NOW + 10, false),
            test("a1", "u2", NOW + 10, false),
        ],
    )
    .await;
    assert_eq!(
        out,
        [
            PutOutcome::Inserted,
            PutOutcome::Stale,
            PutOutcome::Inserted
        ]
    );
    let key = format!("price{}u1", cauce_store::model::KEY_SEPARATOR);
    let stored = store
        .get(Kind::Exposure, "a1", &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name_of(&stored), "Some(true)");
}

async fn timeline_is_per_app_and_user_newest_first(store: &dyn RecordStore) {
    put(
        store,
        vec![
            event("t1", "old", "a", "ann", NOW - 3_000),
            event("t1", "new", "b", "ann", NOW - 1_000),
            event("t1", "mid", "c", "ann", NOW - 2_000),
            event("t1", "bob", "d", "bob", NOW),
            event("t2", "ann-elsewhere", "e", "ann", NOW),
            story("t1", "journey", "ann", NOW + 1, "completed"),
        ],
    )
    .await;
    let keys = |rs: Vec<Record>| rs.iter().map(Record::key).collect::<Vec<_>>();
    let all = store.timeline("t1", "ann", 10).await.unwrap();
    // The story's ts is its started_at (NOW), the newest.
    assert_eq!(keys(all), ["journey", "new", "mid", "old"]);
    let two = store.timeline("t1", "ann", 2).await.unwrap();
    assert_eq!(keys(two), ["journey", "new"]);
    assert_eq!(
        keys(store.timeline("t2", "ann", 10).await.unwrap()),
        ["ann-elsewhere"]
    );
    assert!(store.timeline("t1", "nobody", 10).await.unwrap().is_empty());
}

async fn apps_are_isolated(store: &dyn RecordStore) {
    let out = put(
        store,
        vec![
            event("iso-a", "same", "from-a", "u", NOW),
            event("iso-b", "same", "from-b", "u", NOW),
        ],
    )
    .await;
    assert_eq!(out, [PutOutcome::Inserted, PutOutcome::Inserted]);
    let a = store
        .get(Kind::Event, "iso-a", "same")
        .await
        .unwrap()
        .unwrap();
    let b = store
        .get(Kind::Event, "iso-b", "same")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (name_of(&a), name_of(&b)),
        ("from-a".into(), "from-b".into())
    );
    assert!(store
        .get(Kind::Event, "iso-c", "same")
        .await
        .unwrap()
        .is_none());
}

async fn run_contract(store: &dyn RecordStore) {
    first_event_copy_wins(store).await;
    older_update_never_wins(store).await;
    tests_upsert_by_experiment_and_user(store).await;
    timeline_is_per_app_and_user_newest_first(store).await;
    apps_are_isolated(store).await;
    ids_with_separators_stay_apart(store).await;
}

async fn ids_with_separators_stay_apart(store: &dyn RecordStore) {
    // App `a` with user `b#c`, and app `a#b` with user `c`: a naive `{app}#{user}` key mixes them.
    put(store, vec![event("a", "x1", "mine", "b#c", NOW)]).await;
    put(store, vec![event("a#b", "x2", "theirs", "c", NOW)]).await;
    let a = store.timeline("a", "b#c", 10).await.unwrap();
    let ab = store.timeline("a#b", "c", 10).await.unwrap();
    assert_eq!(a.iter().map(Record::key).collect::<Vec<_>>(), ["x1"]);
    assert_eq!(ab.iter().map(Record::key).collect::<Vec<_>>(), ["x2"]);
}

#[tokio::test]
async fn sqlite_store_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    run_contract(&store).await;
}

/// Fresh DynamoDB tables on the emulator, named after `name` and this process.
async fn dynamo_store(name: &str) -> DynamoStore {
    let aws = cauce_store::aws::sdk_config().await;
    let prefix = format!("{name}{}", std::process::id());
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        Tables::with_prefix(&prefix),
        30,
    );
    store.create_tables().await.unwrap();
    store
}

#[tokio::test]
async fn dynamodb_store_passes_the_contract() {
    if !cauce_store::aws::emulator("dynamodb_store_passes_the_contract") {
        return;
    }
    run_contract(&dynamo_store("contract").await).await;
}

/// Calls `f` until it succeeds; every failure on the way must be one a retry may mend.
async fn until_ok<T, Fut>(what: &str, f: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, cauce_store::StoreError>>,
{
    cauce_store::faults::until_ok(what, cauce_store::StoreError::is_unavailable, f).await
}

/// Faults of every kind, several times over a short workload.
fn rough_schedule() -> Schedule {
    use std::time::Duration;
    Schedule::new()
        .every(2, Fault::LoseAnswer)
        .every(3, Fault::Throttle)
        .every(5, Fault::Fail)
        .every(7, Fault::Delay(Duration::from_millis(20)))
}

/// The contract under faults: a writer that retries every failed call ends with exactly what a
/// clean run stores, though some writes took effect and lost their answer (conditional writes
/// make the retries harmless), and every injected failure reads as transient.
async fn retries_through_faults_converge<S: RecordStore>(store: FaultyStore<S>) {
    let versions = [
        vec![
            event("f", "e1", "first", "u", NOW),
            event("f", "e2", "x", "u", NOW + 1),
        ],
        vec![
            event("f", "e1", "second", "u", NOW + 2),
            story("f", "s1", "u", NOW + 1, "in_progress"),
        ],
        vec![
            story("f", "s1", "u", NOW + 3, "completed"),
            test("f", "u", NOW + 1, false),
        ],
        vec![
            story("f", "s1", "u", NOW + 2, "failed"),
            test("f", "u", NOW + 2, true),
        ],
    ];
    for batch in versions {
        until_ok("put", || store.put(batch.clone())).await;
    }
    assert!(store.faults().injected() > 0, "faults struck");
    let store = &store;
    let get = |kind, key: &'static str| until_ok("get", move || store.get(kind, "f", key));
    let e1 = get(Kind::Event, "e1").await.unwrap();
    assert_eq!(
        name_of(&e1),
        "first",
        "the first copy wins, lost answers and all"
    );
    assert!(get(Kind::Event, "e2").await.is_some());
    let s1 = get(Kind::Story, "s1").await.unwrap();
    assert_eq!(
        s1.updated_at(),
        Some(NOW + 3),
        "the newest version, whatever the retries"
    );
    let t = until_ok("timeline", || store.timeline("f", "u", 10)).await;
    assert_eq!(t.len(), 4, "two events, one story, one test: no copies");
    let exposure = t.iter().find(|r| r.kind() == Kind::Exposure).unwrap();
    assert_eq!(name_of(exposure), "Some(true)");
}

/// The kind and operation of every change in the SQLite change log, in order.
async fn change_ops(store: &SqliteStore) -> Vec<(Kind, Op)> {
    let changes = store.changes_after(0, 100).await.unwrap();
    changes.iter().map(|c| (c.kind, c.op)).collect()
}

#[tokio::test]
async fn sqlite_store_converges_through_faults() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    retries_through_faults_converge(FaultyStore::with_schedule(store.clone(), rough_schedule()))
        .await;
    // The change log, what the lake is made from, holds each change once.
    assert_eq!(
        change_ops(&store).await,
        [
            (Kind::Event, Op::Insert),
            (Kind::Event, Op::Insert),
            (Kind::Story, Op::Insert),
            (Kind::Story, Op::Modify),
            (Kind::Exposure, Op::Insert),
            (Kind::Exposure, Op::Modify),
        ]
    );
}

#[tokio::test]
async fn dynamodb_store_converges_through_faults() {
    if !cauce_store::aws::emulator("dynamodb_store_converges_through_faults") {
        return;
    }
    let store = dynamo_store("faults").await;
    retries_through_faults_converge(FaultyStore::with_schedule(store, rough_schedule())).await;
}

#[tokio::test]
async fn sqlite_change_log_records_every_change_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    put(
        &store,
        vec![
            event("a", "e1", "x", "u", NOW),
            event("a", "e1", "dup", "u", NOW),
            story("a", "s1", "u", NOW + 2, "in_progress"),
            story("a", "s1", "u", NOW + 1, "failed"),
            story("a", "s1", "u", NOW + 3, "completed"),
        ],
    )
    .await;
    assert_eq!(
        change_ops(&store).await,
        [
            (Kind::Event, Op::Insert),
            (Kind::Story, Op::Insert),
            (Kind::Story, Op::Modify)
        ],
        "duplicates and stale versions make no change"
    );
    let changes = store.changes_after(0, 100).await.unwrap();
    let modify = &changes[2];
    assert_eq!(
        modify.old_image.as_ref().unwrap().updated_at(),
        Some(NOW + 2)
    );
    assert_eq!(
        modify.new_image.as_ref().unwrap().updated_at(),
        Some(NOW + 3)
    );
    assert_eq!(store.last_change().await.unwrap(), 3);
    let after = store.changes_after(2, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].sequence, "3");

    // A read stops once it holds its byte budget, whatever the count allows: the modify carries
    // two documents and is the largest.
    let sizes = store.change_batch(0, 100, usize::MAX).await.unwrap().sizes;
    let budget = sizes[0] + 1;
    let bounded = store.change_batch(0, 100, budget).await.unwrap();
    assert_eq!(
        bounded.changes.len(),
        2,
        "the change that passes the budget ends the read"
    );
    assert_eq!(bounded.last, 2);
    let one = store.change_batch(0, 100, 1).await.unwrap();
    assert_eq!(one.changes.len(), 1, "at least one change, however large");

    // Pruning what the consumer has passed keeps the positions going.
    assert_eq!(store.prune_changes(2).await.unwrap(), 2);
    assert_eq!(store.changes_after(0, 100).await.unwrap().len(), 1);
    assert_eq!(store.last_change().await.unwrap(), 3);
    put(&store, vec![event("a", "e9", "x", "u", NOW)]).await;
    let next = store.changes_after(3, 100).await.unwrap();
    assert_eq!(next[0].sequence, "4");
}

#[tokio::test]
async fn sqlite_hot_store_expires_what_was_last_written_before_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    const DAY: i64 = 86_400_000;
    let old = |r: Record| received(r, "a", NOW - 40 * DAY);
    put(
        &store,
        vec![
            old(event("a", "e-old", "x", "u", NOW)),
            event("a", "e-new", "x", "u", NOW),
            old(story("a", "s-old", "u", NOW, "in_progress")),
            old(story("a", "s-updated", "u", NOW, "in_progress")),
            // Written again recently: a newer version moves its expiry, as in DynamoDB.
            story("a", "s-updated", "u", NOW + 1, "completed"),
            old(test("a", "u", NOW, false)),
        ],
    )
    .await;
    let changes = store.last_change().await.unwrap();
    // Chunks of one row: the loop must go on until a chunk comes back short.
    let gone = store.expire(NOW - 30 * DAY, 1).await.unwrap();
    assert_eq!(gone, 3, "one old event, one old story, one old test");
    let keys = |kind| {
        let store = store.clone();
        async move {
            let rows = store.scan(kind, "a").await.unwrap();
            rows.iter().map(Record::key).collect::<Vec<_>>()
        }
    };
    assert_eq!(keys(Kind::Event).await, ["e-new"]);
    assert_eq!(keys(Kind::Story).await, ["s-updated"]);
    assert!(keys(Kind::Exposure).await.is_empty());
    assert_eq!(
        store.last_change().await.unwrap(),
        changes,
        "an expiry is not a change: the lake keeps the records"
    );
    assert_eq!(store.expire(NOW - 30 * DAY, 100).await.unwrap(), 0);
    // The lake has not had them yet (no consumer has a position): the expired event is still
    // in the feed, at its own position, before the event written after it.
    let feed = store.changes_after(0, 100).await.unwrap();
    let events: Vec<(String, String)> = feed
        .iter()
        .filter(|c| c.kind == Kind::Event)
        .map(|c| (c.sequence.clone(), c.new_image.as_ref().unwrap().key()))
        .collect();
    assert_eq!(
        events,
        [("1".into(), "e-old".into()), ("2".into(), "e-new".into())]
    );
    assert_eq!(feed.len(), 6, "every change, expired or not");
}

#[tokio::test]
async fn sqlite_expiry_leaves_the_feed_only_what_its_consumer_passed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    const DAY: i64 = 86_400_000;
    let old = |id: &str| received(event("a", id, "x", "u", NOW), "a", NOW - 40 * DAY);
    put(&store, vec![old("e1"), old("e2"), old("e3")]).await;
    // The exporter passed the first two and dropped them from the feed.
    store.set_cursor("lake", 2).await.unwrap();
    assert_eq!(store.prune_changes(2).await.unwrap(), 2, "two events");
    assert_eq!(store.expire(NOW - 30 * DAY, 100).await.unwrap(), 3);
    let feed = store.changes_after(0, 100).await.unwrap();
    assert_eq!(feed.len(), 1, "the one the exporter has not read");
    assert_eq!(feed[0].sequence, "3");
    assert_eq!(feed[0].new_image.as_ref().unwrap().key(), "e3");
    // Gone from the store: the same id is new again, as after DynamoDB's TTL.
    assert_eq!(
        put(&store, vec![event("a", "e1", "x", "u", NOW)]).await,
        [PutOutcome::Inserted]
    );
    assert_eq!(store.last_change().await.unwrap(), 4);
}

#[tokio::test]
async fn sqlite_store_made_before_the_events_feed_keeps_its_log_and_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        // Events as an earlier version stored them: a table keyed by app and key, each event
        // also copied to the change log, of which the exporter had read the first.
        let store = SqliteStore::open(&path).unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE events;
             CREATE TABLE events (app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT,
                 ts INTEGER NOT NULL, updated_at INTEGER, doc TEXT NOT NULL, received_at INTEGER,
                 PRIMARY KEY (app_id, key)) WITHOUT ROWID;
             DROP TABLE feed;",
        )
        .unwrap();
        for id in ["e1", "e2"] {
            let e = event("a", id, "x", "u", NOW);
            conn.execute(
                "INSERT INTO events (app_id, key, user_id, ts, doc, received_at)
                 VALUES ('a', ?1, 'u', ?2, ?3, ?2)",
                rusqlite::params![id, NOW, e.to_json()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO changes (kind, op, app_id, key, new_doc) VALUES ('event', 'insert', 'a', ?1, ?2)",
                rusqlite::params![id, e.to_json()],
            )
            .unwrap();
        }
        conn.execute("DELETE FROM changes WHERE seq = 1", [])
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.last_change().await.unwrap(),
        2,
        "the log's numbering goes on"
    );
    let feed = store.changes_after(1, 100).await.unwrap();
    assert_eq!(
        feed.len(),
        1,
        "e2, once: from the log, not again from its table"
    );
    assert_eq!(feed[0].new_image.as_ref().unwrap().key(), "e2");
    // The records are kept: a copy of one is a duplicate; a new one takes the next position.
    assert_eq!(
        put(
            &store,
            vec![
                event("a", "e1", "again", "u", NOW),
                event("a", "e3", "x", "u", NOW)
            ]
        )
        .await,
        [PutOutcome::Duplicate, PutOutcome::Inserted]
    );
    let next = store.changes_after(2, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].sequence, "3");
    assert_eq!(store.timeline("a", "u", 10).await.unwrap().len(), 3);
    // Expiry still works on the moved rows.
    assert_eq!(store.expire(NOW + 1, 100).await.unwrap(), 3);
}

#[tokio::test]
async fn sqlite_store_made_before_expiry_gains_received_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        // The tables as an earlier version made them, with one record.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for t in ["events", "stories", "tests"] {
            conn.execute_batch(&format!(
                "CREATE TABLE {t} (app_id TEXT NOT NULL, key TEXT NOT NULL, user_id TEXT,
                 ts INTEGER NOT NULL, updated_at INTEGER, doc TEXT NOT NULL,
                 PRIMARY KEY (app_id, key)) WITHOUT ROWID;"
            ))
            .unwrap();
        }
        let e = event("a", "e1", "x", "u", NOW);
        conn.execute(
            "INSERT INTO events (app_id, key, user_id, ts, doc) VALUES ('a', 'e1', 'u', ?1, ?2)",
            rusqlite::params![NOW, e.to_json()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.expire(NOW, 100).await.unwrap(), 0, "received at NOW");
    assert_eq!(store.expire(NOW + 1, 100).await.unwrap(), 1);
    put(&store, vec![event("a", "e2", "x", "u", NOW)]).await;
    assert_eq!(store.count(Kind::Event, "a").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_do_not_wait_for_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    put(&store, vec![event("a", "e1", "x", "u", NOW)]).await;
    // Another process holds the write lock: the store's write waits out the busy timeout,
    // holding its writing connection all the while.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = tokio::spawn({
        let store = store.clone();
        async move { store.put(vec![event("a", "e2", "x", "u", NOW)]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        (
            store.timeline("a", "u", 10).await.unwrap(),
            store.cursor("lake").await.unwrap(),
            store.change_batch(0, 10, usize::MAX).await.unwrap(),
        )
    })
    .await
    .expect("reads answer while a write waits for the lock");
    assert_eq!(read.0.len(), 1);
    assert_eq!(read.2.changes.len(), 1);
    assert!(!writer.is_finished(), "the write was still waiting");
    blocker.execute_batch("COMMIT").unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(store.timeline("a", "u", 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn sqlite_feed_tells_when_its_oldest_untaken_record_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    assert_eq!(store.oldest_untaken("lake").await.unwrap(), None);
    let first = received(event("a", "e1", "open", "u1", NOW), "a", NOW + 500);
    let later = received(event("a", "e2", "open", "u1", NOW), "a", NOW + 900);
    let upsert = received(story("a", "s1", "u1", NOW + 1, "completed"), "a", NOW + 300);
    put(&store, vec![first, later, upsert]).await;
    // An event and a story wait: the story arrived first.
    assert_eq!(store.oldest_untaken("lake").await.unwrap(), Some(NOW + 300));
    // Taken up to the first event: the story (seq 3) and the later event still wait.
    store.set_cursor("lake", 1).await.unwrap();
    assert_eq!(store.oldest_untaken("lake").await.unwrap(), Some(NOW + 300));
    let last = store.last_change().await.unwrap();
    store.set_cursor("lake", last).await.unwrap();
    assert_eq!(store.oldest_untaken("lake").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_timeline_index_fills_in_batches_at_open_and_loses_nothing() {
    use cauce_store::sqlite::TIMELINE_EVERY;
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let indexed = || -> i64 {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("SELECT COUNT(*) FROM timeline", [], |r| r.get(0))
            .unwrap()
    };
    let keys = |rs: Vec<Record>| rs.iter().map(Record::key).collect::<Vec<_>>();
    let store = SqliteStore::open(&path).unwrap();
    let first: Vec<Record> = (0..3)
        .map(|i| event("a", &format!("e{i}"), "x", "u", NOW + i))
        .collect();
    put(&store, first).await;
    // Written, and read from this process's staged entries: none is in the table yet.
    assert_eq!(indexed(), 0);
    assert_eq!(
        keys(store.timeline("a", "u", 10).await.unwrap()),
        ["e2", "e1", "e0"]
    );
    // Another process opening the store indexes what the first has not (as a restart after a
    // crash does), from the events table itself.
    let other = SqliteStore::open(&path).unwrap();
    assert_eq!(indexed(), 3);
    assert_eq!(
        keys(other.timeline("a", "u", 10).await.unwrap()),
        ["e2", "e1", "e0"]
    );
    // Once the interval has passed, the next write flushes, its own entries included; a copy
    // of a stored event adds no entry, and an entry both staged and indexed is read once.
    tokio::time::sleep(TIMELINE_EVERY).await;
    put(
        &store,
        vec![
            event("a", "e3", "x", "u", NOW + 3),
            event("a", "e0", "copy", "u", NOW + 9),
            event("a", "v0", "x", "v", NOW),
            event("b", "e4", "x", "u", NOW + 4),
        ],
    )
    .await;
    assert_eq!(indexed(), 6);
    assert_eq!(
        keys(store.timeline("a", "u", 10).await.unwrap()),
        ["e3", "e2", "e1", "e0"]
    );
    assert_eq!(
        keys(store.timeline("a", "u", 2).await.unwrap()),
        ["e3", "e2"]
    );
    assert_eq!(keys(store.timeline("b", "u", 10).await.unwrap()), ["e4"]);
    // Expiry takes the entries with their events.
    assert_eq!(store.expire(NOW + DAY, 2).await.unwrap(), 6);
    assert_eq!(indexed(), 0);
    assert!(store.timeline("a", "u", 10).await.unwrap().is_empty());
}
