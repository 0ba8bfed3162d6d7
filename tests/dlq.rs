//! `cauce dlq list` and `cauce dlq replay` on the embedded queue: dead letters are shown with
//! their reasons and apps, replayed by app or id into the queue, once.

mod support;

use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::{OutMessage, Queue};
use serde_json::Value;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_by_app_or_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let queue = SqliteQueue::open(data.join("queue.db"), SqliteQueueConfig::default()).unwrap();
    for (group, body) in [("app_a.00", "a1"), ("app_a.00", "a2"), ("app_b.00", "b1")] {
        queue
            .send(vec![OutMessage::new(group.into(), body.into(), 1)])
            .await
            .unwrap();
    }
    for d in queue.receive(10).await.unwrap() {
        let reason = format!("undecodable message: {}", d.body);
        queue.dead_letter(&d, &reason).await.unwrap();
    }
    queue.close().await.unwrap();
    let data_arg = data.to_str().unwrap();

    let listed = lines(&support::cli_text(data, &["dlq", "list"]));
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["app_id"], "app_a");
    assert_eq!(listed[0]["reason"], "undecodable message: a1");
    assert_eq!(listed[2]["app_id"], "app_b");
    let only_b = lines(&support::cli_text(data, &["dlq", "list", "--app", "app_b"]));
    assert_eq!(only_b.len(), 1);

    let replayed = lines(&support::cli_text(
        data,
        &["dlq", "replay", "--app", "app_a"],
    ));
    assert_eq!(replayed[0]["replayed"], 2);
    let again = lines(&support::cli_text(
        data,
        &["dlq", "replay", "--app", "app_a"],
    ));
    assert_eq!(
        again[0]["replayed"], 0,
        "replaying twice moves nothing more"
    );
    let id = only_b[0]["id"].as_str().unwrap().to_owned();
    let by_id = lines(&support::cli_text(data, &["dlq", "replay", "--id", &id]));
    assert_eq!(by_id[0]["replayed"], 1);
    assert!(support::cli_text(data, &["dlq", "list"]).trim().is_empty());

    // Back in the queue, in order within their groups.
    let queue = SqliteQueue::open(data.join("queue.db"), SqliteQueueConfig::default()).unwrap();
    let back = queue.receive(10).await.unwrap();
    let bodies: Vec<&str> = back.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["a1", "a2", "b1"]);
    assert_eq!(queue.dead_lettered().await.unwrap(), 0);

    // Saying nothing about which is an error that says what to say.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cauce"))
        .args(["dlq", "replay", "--data", data_arg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all, --app APP or --id ID"));
}
