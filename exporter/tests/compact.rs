//! Exactly-once through retries and compaction, and compaction's crash safety, on a real
//! folder lake.

use std::collections::BTreeMap;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use async_trait::async_trait;
use bytes::Bytes;
use cauce_exporter::compact::{compact, CompactConfig, COMPACTED};
use cauce_exporter::file::decode_prefix;
use cauce_exporter::writer::LakeWriter;
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::{Lake, Object};
use cauce_store::{Change, Kind, Op, Record, Result, Stamp, StoreError};

const HOUR: i64 = 1_795_773_600_000; // 2026-11-27T07:00:00Z

fn record(kind: Kind, json: &str, app: &str, received_at: i64) -> Record {
    let mut r = Record::from_json(kind, json).unwrap();
    r.stamp(&Stamp {
        app_id: app.into(),
        received_at,
        skew_ms: 0,
    });
    r.set_ingest_seq(format!("{received_at:025}"));
    r
}

/// A feed of 300 changes in one hour: 200 events over two apps (some sent twice, as
/// byte-identical copies would be after a retry upstream), and 50 stories in two versions.
fn feed() -> Vec<Change> {
    let mut out = Vec::new();
    let mut seq = 1000u64;
    let mut push = |kind, op, r: Record, out: &mut Vec<Change>| {
        seq += 1;
        out.push(Change {
            kind,
            op,
            shard: "shard-0".into(),
            sequence: seq.to_string(),
            ttl_expired: false,
            new_image: Some(r),
            old_image: None,
        });
    };
    for i in 0..200i64 {
        let app = if i % 3 == 0 { "app_b" } else { "app_a" };
        let json = format!(
            r#"{{"event_id":"e{i}","name":"n","timestamp":{},"user_id":"u{}"}}"#,
            HOUR - i * 7,
            i % 9
        );
        push(
            Kind::Event,
            Op::Insert,
            record(Kind::Event, &json, app, HOUR + i * 1000),
            &mut out,
        );
    }
    for s in 0..50i64 {
        for v in 1..=2i64 {
            let json = format!(
                r#"{{"story_id":"s{s}","name":"checkout","started_at":{HOUR},"updated_at":{},"steps":[{{"name":"a","at":{HOUR}}}]}}"#,
                HOUR + v
            );
            let op = if v == 1 { Op::Insert } else { Op::Modify };
            push(
                Kind::Story,
                op,
                record(Kind::Story, &json, "app_a", HOUR + 500_000 + s),
                &mut out,
            );
        }
    }
    out
}

async fn write(lake: &dyn Lake, changes: &[Change]) {
    let mut w = LakeWriter::new(usize::MAX);
    for c in changes {
        w.write(c.clone(), 500);
    }
    w.flush(lake).await.unwrap();
}

fn strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let a = b.column_by_name(col).unwrap();
    let a = a.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_owned()).collect()
}

/// Every row of a kind, as (key, the whole row as text).
async fn rows(lake: &dyn Lake, kind: &str, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in decode_prefix(lake, &format!("{kind}/")).await.unwrap() {
        let keys = strings(&b, key);
        for (i, k) in keys.into_iter().enumerate() {
            let row = arrow_cast_row(&b, i);
            out.push((k, row));
        }
    }
    out.sort();
    out
}

fn arrow_cast_row(b: &RecordBatch, i: usize) -> String {
    b.columns()
        .iter()
        .map(|c| format!("{:?}", c.slice(i, 1)))
        .collect::<Vec<_>>()
        .join("|")
}

fn config(include_open: bool) -> CompactConfig {
    CompactConfig {
        target_bytes: 128 * 1024 * 1024,
        include_open,
        now_ms: HOUR + 2 * 3_600_000,
    }
}

#[tokio::test]
async fn a_batch_delivered_twice_and_split_differently_is_exported_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let changes = feed();
    write(&lake, &changes).await; // the first delivery
    write(&lake, &changes).await; // the same batch again: same file names, overwritten
                                  // A retry from the 51st change, bisected: its rows land in files of other names.
    let (left, right) = changes[50..].split_at(87);
    write(&lake, left).await;
    write(&lake, right).await;

    // Before compaction: copies exist, but every row sharing a key is byte-identical.
    let events = rows(&lake, "events", "event_id").await;
    assert!(
        events.len() > 200,
        "the retry added copies: {}",
        events.len()
    );
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, row) in &events {
        by_key.entry(k).or_default().push(row);
    }
    assert_eq!(by_key.len(), 200);
    assert!(by_key.values().all(|v| v.windows(2).all(|w| w[0] == w[1])));

    let report = compact(&lake, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!((report.hours, report.outputs), (2, 2), "{report:?}");
    let events = rows(&lake, "events", "event_id").await;
    assert_eq!(events.len(), 200, "each event exactly once");
    let stories = rows(&lake, "stories", "story_id").await;
    assert_eq!(stories.len(), 100, "one row per story version");

    // Sorted by app_id, then ts, in one compacted file per hour.
    let files = lake.list("events/").await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].key.contains(COMPACTED));
    let b = &decode_prefix(&lake, "events/").await.unwrap()[0];
    let apps = strings(b, "app_id");
    let ts = b.column_by_name("ts").unwrap();
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    let order: Vec<(String, i64)> = (0..b.num_rows())
        .map(|i| (apps[i].clone(), ts.value(i)))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // Idempotent: a second run finds nothing to do and changes nothing.
    let before = lake.list("").await.unwrap();
    let again = compact(&lake, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!((again.hours, again.skipped), (0, 2));
    assert_eq!(lake.list("").await.unwrap(), before);
}

#[tokio::test]
async fn open_hours_wait_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    write(&lake, &feed()).await;
    let mut cfg = config(false);
    cfg.now_ms = HOUR + 60_000; // still inside the hour
    let report = compact(&lake, &cfg, &|_, _| {}).await.unwrap();
    assert_eq!((report.hours, report.skipped), (0, 2));
    cfg.include_open = true;
    let report = compact(&lake, &cfg, &|_, _| {}).await.unwrap();
    assert_eq!(report.hours, 2);
}

/// A folder lake whose deletes fail, as if the process died right after writing the outputs.
struct CrashBeforeDeletes(LocalLake);

#[async_trait]
impl Lake for CrashBeforeDeletes {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.0.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        Err(StoreError::Config(format!("crashed before deleting {key}")))
    }
    fn location(&self) -> String {
        self.0.location()
    }
}

#[tokio::test]
async fn a_crash_between_outputs_and_deletes_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let changes = feed();
    let (left, right) = changes.split_at(90);
    write(&lake, left).await;
    write(&lake, right).await;
    let inputs = lake.list("events/").await.unwrap().len();

    let crashing = CrashBeforeDeletes(LocalLake::new(dir.path()));
    assert!(compact(&crashing, &config(false), &|_, _| {})
        .await
        .is_err());
    let after_crash = lake.list("events/").await.unwrap();
    assert_eq!(
        after_crash.len(),
        inputs + 1,
        "the output and every input are there"
    );

    let report = compact(&lake, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!(report.hours, 2);
    assert_eq!(rows(&lake, "events", "event_id").await.len(), 200);
    assert_eq!(rows(&lake, "stories", "story_id").await.len(), 100);
    let left_over: Vec<Object> = lake.list("").await.unwrap();
    assert!(
        left_over.iter().all(|o| o.key.contains(COMPACTED)),
        "{left_over:?}"
    );
}
