//! The writer Lambda's handler on a real SQS FIFO event: a poison message, and a store failure
//! in the middle of the batch, against the real SQLite store (the failure is a trigger in the
//! real database) with the SQLite queue as the dead-letter queue.

use aws_lambda_events::event::sqs::SqsEvent;
use cauce_ingest::lambda::handle_sqs;
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::Queue;
use cauce_store::sqlite::SqliteStore;
use cauce_store::{Kind, Record, RecordStore};

const FIXTURE: &str = include_str!("data/sqs-fifo-event.json");
const MAX_RECEIVES: u32 = 5;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    dlq: SqliteQueue,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    rusqlite::Connection::open(dir.path().join("store.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.key = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom is not welcome'); END;",
        )
        .unwrap();
    let dlq = SqliteQueue::open(dir.path().join("dlq.db"), SqliteQueueConfig::default()).unwrap();
    World {
        _dir: dir,
        store,
        dlq,
    }
}

async fn stored(store: &SqliteStore) -> Vec<String> {
    store
        .scan(Kind::Event, "app_1")
        .await
        .unwrap()
        .iter()
        .map(Record::key)
        .collect()
}

#[tokio::test]
async fn a_mid_batch_failure_returns_it_and_everything_after() {
    let w = world();
    let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    let response = handle_sqs(event, &w.store, &w.dlq, MAX_RECEIVES)
        .await
        .unwrap();
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"batchItemFailures": [
            {"itemIdentifier": "6f2a4c2e-8d0b-4a5e-9d3c-2b1f0e9a7c11"},
            {"itemIdentifier": "9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e"}
        ]})
    );
    // The first message is stored, with ingest_seq from the SQS sequence number.
    assert_eq!(stored(&w.store).await, ["e-1", "e-2"]);
    let e2 = w
        .store
        .get(Kind::Event, "app_1", "e-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e2.ingest_seq(), "1884949646046769612800001");
    // The poison message went to the dead letters with its reason, and is not retried.
    let dead = w.dlq.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{not an envelope");
    assert!(
        dead[0].reason.starts_with("undecodable message"),
        "{}",
        dead[0].reason
    );
    // The failing message's transaction was rolled back whole: e-3 is not stored either.
    assert!(w
        .store
        .get(Kind::Event, "app_1", "e-3")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_message_failing_at_its_last_receive_is_dead_lettered_and_the_rest_goes_on() {
    let w = world();
    let mut event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    event.records[2]
        .attributes
        .insert("ApproximateReceiveCount".into(), MAX_RECEIVES.to_string());
    let response = handle_sqs(event, &w.store, &w.dlq, MAX_RECEIVES)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(stored(&w.store).await, ["e-1", "e-2", "e-4"]);
    let dead = w.dlq.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead[1].reason.contains("boom is not welcome"),
        "{}",
        dead[1].reason
    );
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing() {
    let w = world();
    let mut event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    event.records.truncate(1);
    for _ in 0..2 {
        let response = handle_sqs(event.clone(), &w.store, &w.dlq, MAX_RECEIVES)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(stored(&w.store).await, ["e-1", "e-2"]);
    assert_eq!(
        w.store.last_change().await.unwrap(),
        2,
        "no change for the copies"
    );
}
