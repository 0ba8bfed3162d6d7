//! The `Queue` contract, run against both adapters: SQLite (embedded) and SQS FIFO (the moto
//! server that `./test.sh` starts).

use std::time::Duration;

use cauce_ingest::queue::faults::FaultyQueue;
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::sqs::SqsQueue;
use cauce_ingest::queue::{Delivery, OutMessage, Queue};
use cauce_store::faults::{Fault, Schedule};

const MAX_RECEIVES: u32 = 3;
/// Short, so that the timeout test is quick; SQS counts it in whole seconds.
const VISIBILITY: Duration = Duration::from_secs(1);

fn msg(group: &str, body: &str) -> OutMessage {
    OutMessage::new(group.into(), body.into(), 1)
}

fn bodies(ds: &[Delivery], group: &str) -> Vec<String> {
    ds.iter()
        .filter(|d| d.group == group)
        .map(|d| d.body.clone())
        .collect()
}

/// Receives until `n` messages came or nothing more comes.
async fn receive_n(q: &dyn Queue, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    for _ in 0..10 {
        let got = q.receive(n - out.len()).await.unwrap();
        if got.is_empty() {
            break;
        }
        out.extend(got);
        if out.len() >= n {
            break;
        }
    }
    out
}

async fn fifo_order_holds_within_a_group(q: &dyn Queue) {
    q.send(vec![msg("g1", "m1"), msg("g2", "n1"), msg("g1", "m2")])
        .await
        .unwrap();
    q.send(vec![msg("g1", "m3"), msg("g2", "n2")])
        .await
        .unwrap();
    let got = receive_n(q, 5).await;
    assert_eq!(bodies(&got, "g1"), ["m1", "m2", "m3"]);
    assert_eq!(bodies(&got, "g2"), ["n1", "n2"]);
    assert!(
        got.iter().all(|d| d.sequence.parse::<u128>().is_ok()),
        "numeric sequence numbers"
    );
    assert_eq!(q.pending().await.unwrap(), 5);
    q.ack(&got).await.unwrap();
    assert_eq!(q.pending().await.unwrap(), 0);
    assert!(q.receive(10).await.unwrap().is_empty());
}

async fn a_group_in_flight_waits(q: &dyn Queue) {
    q.send(vec![msg("g3", "a"), msg("g3", "b")]).await.unwrap();
    let first = q.receive(1).await.unwrap();
    assert_eq!(bodies(&first, "g3"), ["a"]);
    assert!(
        q.receive(10).await.unwrap().is_empty(),
        "b must wait while a is in flight"
    );
    q.release(&first, "retry", Duration::ZERO).await.unwrap();
    let again = receive_n(q, 2).await;
    assert_eq!(
        bodies(&again, "g3"),
        ["a", "b"],
        "a retried message keeps its place"
    );
    assert_eq!(again[0].receive_count, 2);
    q.ack(&again).await.unwrap();
}

async fn duplicates_are_dropped(q: &dyn Queue) {
    let m = msg("g4", "same content");
    q.send(vec![m.clone()]).await.unwrap();
    q.send(vec![m.clone(), msg("g4", "other")]).await.unwrap();
    let got = receive_n(q, 3).await;
    assert_eq!(bodies(&got, "g4"), ["same content", "other"]);
    q.ack(&got).await.unwrap();
}

async fn dead_letters_keep_their_reason(q: &dyn Queue) {
    q.send(vec![msg("g5", "poison")]).await.unwrap();
    let got = q.receive(1).await.unwrap();
    q.dead_letter(&got[0], "undecodable message: expected value")
        .await
        .unwrap();
    assert!(q.receive(10).await.unwrap().is_empty());
    let dead = q.dead_letters(10).await.unwrap();
    let found = dead
        .iter()
        .find(|d| d.body == "poison")
        .expect("dead-lettered");
    assert_eq!(found.reason, "undecodable message: expected value");
    assert_eq!(found.group, "g5");
}

async fn dead_lettered_after_too_many_silent_receives(q: &dyn Queue) {
    // Receives that end without an ack or a release (a crash, a hung writer) count.
    q.send(vec![msg("g6", "crashes"), msg("g6", "next")])
        .await
        .unwrap();
    for attempt in 1..=MAX_RECEIVES {
        let got = receive_n(q, 1).await;
        assert_eq!(bodies(&got, "g6"), ["crashes"], "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        tokio::time::sleep(VISIBILITY + Duration::from_millis(700)).await;
    }
    // The next receive moves it to the dead letters; its group goes on.
    let got = receive_n(q, 1).await;
    assert_eq!(
        bodies(&got, "g6"),
        ["next"],
        "the group is not blocked forever"
    );
    q.ack(&got).await.unwrap();
    let dead = q.dead_letters(10).await.unwrap();
    assert!(dead.iter().any(|d| d.body == "crashes"), "{dead:?}");
    assert_eq!(q.dead_lettered().await.unwrap(), 1);
}

async fn a_release_comes_back_after_its_wait(q: &dyn Queue) {
    q.send(vec![msg("g8", "later")]).await.unwrap();
    q.send(vec![msg("g9", "other group")]).await.unwrap();
    let got = receive_n(q, 2).await;
    let (mine, theirs): (Vec<Delivery>, Vec<Delivery>) =
        got.into_iter().partition(|d| d.group == "g8");
    assert_eq!(bodies(&theirs, "g9"), ["other group"]);
    assert_eq!(bodies(&mine, "g8"), ["later"]);
    q.release(&mine, "store unavailable", Duration::from_secs(2))
        .await
        .unwrap();
    q.ack(&theirs).await.unwrap();
    assert!(
        q.receive(10).await.unwrap().is_empty(),
        "the released message waits out its delay"
    );
    tokio::time::sleep(Duration::from_millis(2_700)).await;
    let again = receive_n(q, 1).await;
    assert_eq!(bodies(&again, "g8"), ["later"]);
    q.ack(&again).await.unwrap();
}

async fn dead_letters_are_listed_and_replayed_once(q: &dyn Queue) {
    q.send(vec![msg("app_a.01", "poison")]).await.unwrap();
    q.send(vec![msg("app_b.01", "keep")]).await.unwrap();
    for d in receive_n(q, 2).await {
        q.dead_letter(&d, &format!("reason for {}", d.body))
            .await
            .unwrap();
    }
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let a = dead.iter().find(|d| d.app_id() == "app_a").unwrap();
    assert_eq!(
        (a.body.as_str(), a.reason.as_str()),
        ("poison", "reason for poison")
    );
    // Listing leaves them where they are.
    assert_eq!(q.dead_letters(10).await.unwrap().len(), 2);
    assert_eq!(q.replay(std::slice::from_ref(&a.id)).await.unwrap(), 1);
    assert_eq!(
        q.replay(std::slice::from_ref(&a.id)).await.unwrap(),
        0,
        "a second replay moves nothing"
    );
    let back = receive_n(q, 1).await;
    assert_eq!(bodies(&back, "app_a.01"), ["poison"]);
    q.ack(&back).await.unwrap();
    let left = q.dead_letters(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].app_id(), "app_b");
}

async fn an_unacked_message_comes_back_after_the_visibility_timeout(q: &dyn Queue) {
    q.send(vec![msg("g7", "slow")]).await.unwrap();
    let first = q.receive(1).await.unwrap();
    assert_eq!(bodies(&first, "g7"), ["slow"]);
    assert!(
        q.receive(1).await.unwrap().is_empty(),
        "hidden while in flight"
    );
    tokio::time::sleep(VISIBILITY + Duration::from_millis(700)).await;
    let again = receive_n(q, 1).await;
    assert_eq!(bodies(&again, "g7"), ["slow"]);
    assert_eq!(again[0].receive_count, 2);
    q.ack(&again).await.unwrap();
    assert_eq!(q.pending().await.unwrap(), 0);
}

macro_rules! contract {
    ($make:expr) => {{
        fifo_order_holds_within_a_group(&$make("order").await).await;
        a_group_in_flight_waits(&$make("inflight").await).await;
        duplicates_are_dropped(&$make("dedup").await).await;
        dead_letters_keep_their_reason(&$make("dlq").await).await;
        dead_lettered_after_too_many_silent_receives(&$make("redrive").await).await;
        a_release_comes_back_after_its_wait(&$make("backoff").await).await;
        dead_letters_are_listed_and_replayed_once(&$make("replay").await).await;
        an_unacked_message_comes_back_after_the_visibility_timeout(&$make("visibility").await)
            .await;
    }};
}

/// Calls `f` until it succeeds; every failure on the way must be one a retry may mend.
async fn until_ok<T, Fut>(what: &str, f: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, cauce_ingest::error::IngestError>>,
{
    cauce_store::faults::until_ok(what, cauce_ingest::error::IngestError::is_unavailable, f).await
}

/// The receives a fault may cost: a receive that lost its answer hid its messages, and each
/// such receive counts toward dead-lettering, as in SQS.
const FAULTY_MAX_RECEIVES: u32 = 10;

/// The contract under faults of every kind: a producer and a consumer that retry each failed
/// call deliver every message once, in order within its group. A send that took effect and
/// lost its answer is absorbed by its dedup id, an ack that did the same is harmless to repeat,
/// and a receive that lost its answer comes back after the visibility timeout. The consumer
/// receives up to `batch` messages at once.
async fn retries_through_faults_converge<Q: Queue>(inner: Q, batch: usize) {
    let schedule = Schedule::new()
        .every(4, Fault::LoseAnswer)
        .every(5, Fault::Throttle)
        .every(7, Fault::Fail)
        .every(3, Fault::Delay(Duration::from_millis(20)));
    let q = FaultyQueue::new(inner, schedule);
    let q = &q;
    let sent: Vec<OutMessage> = (0..12)
        .map(|i| msg(&format!("f{}", i % 3), &format!("m{i}")))
        .collect();
    for m in &sent {
        until_ok("send", || q.send(vec![m.clone()])).await;
    }
    let mut processed = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while processed.len() < sent.len() {
        assert!(std::time::Instant::now() < deadline, "only {processed:?}");
        let Ok(got) = q.receive(batch).await else {
            continue;
        };
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        until_ok("ack", || q.ack(&got)).await;
        processed.extend(got);
    }
    assert!(q.faults().injected() > 0, "faults struck");
    for g in ["f0", "f1", "f2"] {
        let want: Vec<String> = sent
            .iter()
            .filter(|m| m.group == g)
            .map(|m| m.body.clone())
            .collect();
        assert_eq!(bodies(&processed, g), want, "each once, in order");
    }
    assert_eq!(until_ok("pending", || q.pending()).await, 0);
    assert_eq!(until_ok("dead_lettered", || q.dead_lettered()).await, 0);
}

#[tokio::test]
async fn sqlite_queue_converges_through_faults() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteQueueConfig {
        visibility_timeout: VISIBILITY,
        max_receives: FAULTY_MAX_RECEIVES,
    };
    let q = SqliteQueue::open(dir.path().join("q.db"), config).unwrap();
    retries_through_faults_converge(q, 10).await;
}

#[tokio::test]
async fn sqs_fifo_queue_converges_through_faults() {
    if !cauce_store::aws::emulator("sqs_fifo_queue_converges_through_faults") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let name = format!("faults-{}", std::process::id());
    let q = SqsQueue::create(client, &name, FAULTY_MAX_RECEIVES, VISIBILITY)
        .await
        .unwrap();
    // One message a receive: when several messages of a FIFO group time out in flight together,
    // moto delivers the group's later ones before its earlier ones (it frees the group only as
    // it meets each timed-out message); SQS keeps their order.
    retries_through_faults_converge(q, 1).await;
}

#[tokio::test]
async fn sqlite_queue_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteQueueConfig {
        visibility_timeout: VISIBILITY,
        max_receives: MAX_RECEIVES,
    };
    let make = |name: &str| {
        let path = dir.path().join(format!("{name}.db"));
        async move { SqliteQueue::open(path, config).unwrap() }
    };
    contract!(make);
}

#[tokio::test]
async fn sqs_fifo_queue_passes_the_contract() {
    if !cauce_store::aws::emulator("sqs_fifo_queue_passes_the_contract") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&aws);
    let pid = std::process::id();
    let make = |name: &str| {
        let (client, name) = (client.clone(), format!("{name}-{pid}"));
        async move {
            SqsQueue::create(client, &name, MAX_RECEIVES, VISIBILITY)
                .await
                .unwrap()
        }
    };
    contract!(make);
}

/// SQS FIFO sequence numbers grow within a group; moto draws them at random, so this is checked
/// on the embedded queue only.
#[tokio::test]
async fn sqlite_sequence_numbers_grow_within_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let q = SqliteQueue::open(dir.path().join("q.db"), SqliteQueueConfig::default()).unwrap();
    q.send(vec![
        msg("g", "1"),
        msg("h", "x"),
        msg("g", "2"),
        msg("g", "3"),
    ])
    .await
    .unwrap();
    let got = q.receive(10).await.unwrap();
    let seqs: Vec<u128> = got
        .iter()
        .filter(|d| d.group == "g")
        .map(|d| d.sequence.parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[tokio::test]
async fn sqlite_queue_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let q = SqliteQueue::open(&path, SqliteQueueConfig::default()).unwrap();
        q.send(vec![msg("g", "durable")]).await.unwrap();
        q.close().await.unwrap();
        assert!(q.send(vec![msg("g", "after close")]).await.is_err());
    }
    let q = SqliteQueue::open(&path, SqliteQueueConfig::default()).unwrap();
    let got = q.receive(10).await.unwrap();
    assert_eq!(bodies(&got, "g"), ["durable"]);
}

/// The embedded queue tells a release after a transient failure from a silent receive: however
/// many releases, the message is never dead-lettered for them.
#[tokio::test]
async fn sqlite_releases_never_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteQueueConfig {
        visibility_timeout: VISIBILITY,
        max_receives: MAX_RECEIVES,
    };
    let q = SqliteQueue::open(dir.path().join("q.db"), config).unwrap();
    q.send(vec![msg("g", "outage")]).await.unwrap();
    for attempt in 1..=3 * MAX_RECEIVES {
        let got = q.receive(1).await.unwrap();
        assert_eq!(bodies(&got, "g"), ["outage"], "attempt {attempt}");
        q.release(&got, "store unavailable", Duration::ZERO)
            .await
            .unwrap();
    }
    let got = q.receive(1).await.unwrap();
    assert_eq!(bodies(&got, "g"), ["outage"]);
    q.ack(&got).await.unwrap();
    assert_eq!(q.dead_lettered().await.unwrap(), 0);
    assert_eq!(q.pending().await.unwrap(), 0);

    // While a released message waits, its whole group waits: order holds through a back-off.
    q.send(vec![msg("h", "first"), msg("h", "second")])
        .await
        .unwrap();
    let got = q.receive(1).await.unwrap();
    q.release(&got, "store unavailable", Duration::from_millis(800))
        .await
        .unwrap();
    assert!(q.receive(10).await.unwrap().is_empty(), "the group waits");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let again = q.receive(10).await.unwrap();
    assert_eq!(bodies(&again, "h"), ["first", "second"]);
}
