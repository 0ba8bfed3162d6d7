//! The writer Lambda's handler on a real SQS FIFO event: an undecodable message, a message the
//! store refuses for good (a trigger in the real SQLite database), and a store that fails for a
//! while (a fault-injecting wrapper around the real store), with the SQLite queue as the
//! dead-letter queue.

use aws_lambda_events::event::sqs::SqsEvent;
use cauce_ingest::lambda::handle_sqs;
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::Queue;
use cauce_store::faults::FaultyStore;
use cauce_store::sqlite::SqliteStore;
use cauce_store::{Kind, Record, RecordStore};

const FIXTURE: &str = include_str!("data/sqs-fifo-event.json");

struct World {
    _dir: tempfile::TempDir,
    store: FaultyStore<SqliteStore>,
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
        store: FaultyStore::new(store),
        dlq,
    }
}

/// The fixture with a copy of its first message (events e-1, e-2) sent by another app, in that
/// app's own message group.
fn two_groups() -> SqsEvent {
    let mut event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    let mut other = event.records[0].clone();
    other.message_id = Some("0a0b0c0d-other-app".into());
    other.body = other.body.map(|b| b.replace("app_1", "app_2"));
    other
        .attributes
        .insert("MessageGroupId".into(), "app_2.05".into());
    event.records.push(other);
    event
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

async fn stored(store: &FaultyStore<SqliteStore>, app: &str) -> Vec<String> {
    store
        .inner()
        .scan(Kind::Event, app)
        .await
        .unwrap()
        .iter()
        .map(Record::key)
        .collect()
}

#[tokio::test]
async fn poison_goes_to_the_dead_letters_at_once_and_the_rest_is_stored() {
    let w = world();
    let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    let response = handle_sqs(event, &w.store, &w.dlq).await.unwrap();
    assert!(failures(&response).is_empty(), "{response:?}");
    // Everything storable is stored, with ingest_seq from the SQS sequence number.
    assert_eq!(stored(&w.store, "app_1").await, ["e-1", "e-2", "e-4"]);
    let e2 = w
        .store
        .get(Kind::Event, "app_1", "e-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e2.ingest_seq(), "1884949646046769612800001");
    // The undecodable message and the one the store refuses for good went to the dead letters
    // at their first receive, each with its reason.
    let dead = w.dlq.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].body, "{not an envelope");
    assert!(
        dead[0].reason.starts_with("undecodable message"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[1].reason.starts_with("the store refuses it") && dead[1].reason.contains("boom"),
        "{}",
        dead[1].reason
    );
    // The refused message's transaction was rolled back whole: e-3 is not stored either.
    assert!(w
        .store
        .get(Kind::Event, "app_1", "e-3")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_transient_failure_retries_its_group_only_and_never_dead_letters() {
    let w = world();
    w.store.faults().fail_app("app_1");
    // Many deliveries during an outage: each fails its group's messages, none is dead-lettered
    // for it, whatever the receive count.
    for receive in 1..=20 {
        let mut event = two_groups();
        for r in &mut event.records {
            r.attributes
                .insert("ApproximateReceiveCount".into(), receive.to_string());
        }
        let response = handle_sqs(event, &w.store, &w.dlq).await.unwrap();
        assert_eq!(
            failures(&response),
            [
                "059f36b4-87a3-44ab-83d2-661975830a7d",
                "6f2a4c2e-8d0b-4a5e-9d3c-2b1f0e9a7c11",
                "9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e"
            ],
            "app_1's storable messages, in order; the poison is dead-lettered, app_2 is stored"
        );
    }
    assert!(w.store.faults().injected() >= 20);
    assert_eq!(stored(&w.store, "app_1").await, Vec::<String>::new());
    assert_eq!(stored(&w.store, "app_2").await, ["e-1", "e-2"]);
    // Once the store is back, the redelivered messages are stored; only poison is dead.
    w.store.faults().heal();
    let response = handle_sqs(two_groups(), &w.store, &w.dlq).await.unwrap();
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(stored(&w.store, "app_1").await, ["e-1", "e-2", "e-4"]);
    let dead = w.dlq.dead_letters(100).await.unwrap();
    assert!(
        dead.iter().all(|d| !d.reason.contains("no space left")),
        "no dead letter for the outage: {dead:?}"
    );
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing() {
    let w = world();
    let mut event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
    event.records.truncate(1);
    for _ in 0..2 {
        let response = handle_sqs(event.clone(), &w.store, &w.dlq).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(stored(&w.store, "app_1").await, ["e-1", "e-2"]);
    assert_eq!(
        w.store.inner().last_change().await.unwrap(),
        2,
        "no change for the copies"
    );
}
