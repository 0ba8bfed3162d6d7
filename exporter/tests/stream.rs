//! The `exporter` Lambda's handler on a real-shaped DynamoDB Streams event: INSERT, MODIFY, a
//! TTL REMOVE, a user REMOVE and one malformed record, into a real folder lake.

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use cauce_exporter::lake::local::LocalLake;
use cauce_exporter::lake::Lake;
use cauce_exporter::read::read_file;
use cauce_exporter::stream::handle;

const FIXTURE: &str = include_str!("data/dynamodb-stream.json");

fn strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let a = b.column_by_name(col).unwrap();
    let a = a.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_owned()).collect()
}

#[tokio::test]
async fn changes_become_partitioned_files_and_bad_records_are_archived() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let (response, report) = handle(FIXTURE, &lake).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let report = report.unwrap();
    assert_eq!((report.bad, report.ttl_expired), (1, 1));

    let keys: Vec<String> = lake
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "bad_rows/dt=2026-11-27/hour=17/cauce-events@2026-11-27T00_00_00.000-111500000000000000000005.ndjson",
            "events/dt=2026-11-27/hour=17/cauce-events@2026-11-27T00_00_00.000-111100000000000000000001.parquet",
            "stories/dt=2026-11-27/hour=17/cauce-stories@2026-11-27T00_00_00.000-111200000000000000000002.parquet",
        ]
    );

    let events = read_file(lake.get(&keys[1]).await.unwrap()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        strings(&events[0], "event_id"),
        ["e-1"],
        "the TTL expiry is not exported"
    );
    assert_eq!(strings(&events[0], "op"), ["insert"]);
    assert_eq!(strings(&events[0], "properties"), [r#"{"screen":"home"}"#]);
    let ts = events[0].column_by_name("ts").unwrap();
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    assert_eq!(ts.value(0), 1_795_800_000_250);
    assert_eq!(ts.timezone(), Some("UTC"));

    let stories = read_file(lake.get(&keys[2]).await.unwrap()).unwrap();
    assert_eq!(
        strings(&stories[0], "op"),
        ["modify", "remove"],
        "a user REMOVE is exported"
    );
    assert_eq!(strings(&stories[0], "outcome"), ["completed", "completed"]);

    let bad = String::from_utf8(lake.get(&keys[0]).await.unwrap().to_vec()).unwrap();
    let line: serde_json::Value = serde_json::from_str(bad.lines().next().unwrap()).unwrap();
    assert_eq!(line["sequence"], "111500000000000000000005");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains("`doc` is not a event"),
        "{line}"
    );
    assert!(line["raw"].as_str().unwrap().contains("broken"));

    // A retry of the same batch writes the same names: nothing is added.
    let (again, _) = handle(FIXTURE, &lake).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(lake.list("").await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_lake_failure_reports_the_first_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    // The lake's root is a regular file: every write fails.
    let root = dir.path().join("not-a-folder");
    std::fs::write(&root, b"x").unwrap();
    let (response, report) = handle(FIXTURE, &LocalLake::new(&root)).await;
    assert!(report.is_err());
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000000000000001"}]})
    );
}

#[test]
fn a_clean_event_decodes_in_one_pass_to_the_same_changes() {
    use cauce_exporter::stream::{decode, Decoded};
    let mut event: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    event["Records"].as_array_mut().unwrap().pop(); // drop the malformed record
    let clean = decode(&event.to_string()).unwrap();
    let mixed = decode(FIXTURE).unwrap();
    let summary = |ds: &[Decoded]| -> Vec<String> {
        ds.iter()
            .map(|d| match d {
                Decoded::Change(c, size, _) => {
                    format!(
                        "{}:{}:{}:{}:{}",
                        c.sequence,
                        c.op.as_str(),
                        c.ttl_expired,
                        c.kind,
                        size > &0
                    )
                }
                Decoded::Bad(b) => format!("bad:{}", b.sequence.clone().unwrap_or_default()),
            })
            .collect()
    };
    let (clean, mixed) = (summary(&clean), summary(&mixed));
    assert_eq!(clean.len(), 4);
    assert_eq!(clean[..], mixed[..4], "both paths agree");
    assert_eq!(mixed[4], "bad:111500000000000000000005");
}
