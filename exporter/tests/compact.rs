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

/// The events of [`feed`].
fn event_feed() -> Vec<Change> {
    feed()
        .into_iter()
        .filter(|c| c.kind == Kind::Event)
        .collect()
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
        include_open,
        now_ms: HOUR + 2 * 3_600_000,
        ..CompactConfig::default()
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
    // Closed, but within the grace period that lets the exporter's late files arrive.
    cfg.now_ms = HOUR + 3_600_000 + cfg.grace_ms - 1;
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
    let report = compact(&crashing, &config(false), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 2, "both hours failed: {report:?}");
    assert!(report.failed[0].error.contains("crashed before deleting"));
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

/// A folder lake that, when compaction uploads its first output (after it read the inputs and
/// before it deletes them), lets a retried export rewrite one input with more rows.
struct RewriteDuringCompaction {
    lake: LocalLake,
    rewrite: std::sync::Mutex<Option<Vec<Change>>>,
}

#[async_trait]
impl Lake for RewriteDuringCompaction {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.lake.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.lake.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        self.lake.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.lake.delete(key).await
    }
    async fn upload(&self, key: &str, src: &std::path::Path) -> Result<()> {
        let retry = self.rewrite.lock().unwrap().take();
        if let Some(changes) = retry {
            write(&self.lake, &changes).await;
        }
        self.lake.upload(key, src).await
    }
    fn location(&self) -> String {
        self.lake.location()
    }
}

#[tokio::test]
async fn an_input_rewritten_between_read_and_delete_is_kept_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let changes = event_feed();
    // The first delivery of a batch held 60 changes; the retry of the same batch (same first
    // sequence number, so the same file name) holds 120.
    write(&lake, &changes[..60]).await;
    write(&lake, &changes[120..]).await;
    let racing = RewriteDuringCompaction {
        lake: LocalLake::new(dir.path()),
        rewrite: std::sync::Mutex::new(Some(changes[..120].to_vec())),
    };
    let report = compact(&racing, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!((report.hours, report.changed), (1, 1), "{report:?}");
    assert!(report.failed.is_empty());
    // The rewritten input is still there, beside the output: no row is lost.
    let keys: std::collections::BTreeSet<String> = rows(&lake, "events", "event_id")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 200, "every event is in the lake");
    // The next run merges it in, and copies are dropped.
    let report = compact(&lake, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!((report.hours, report.changed), (1, 0));
    assert_eq!(rows(&lake, "events", "event_id").await.len(), 200);
    assert_eq!(lake.list("events/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_bad_file_fails_its_hour_only() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let changes = feed();
    let (left, right) = changes.split_at(90);
    write(&lake, left).await;
    write(&lake, right).await;
    let hour = lake.list("events/").await.unwrap()[0].key.clone();
    let hour = hour.rsplit_once('/').unwrap().0.to_owned();
    let bad = format!("{hour}/broken.parquet");
    lake.put(&bad, Bytes::from_static(b"PAR1 this is not parquet"))
        .await
        .unwrap();
    let events_before = lake.list("events/").await.unwrap();

    let report = compact(&lake, &config(false), &|_, _| {}).await.unwrap();
    assert_eq!(
        report.hours, 1,
        "the stories' hour is compacted: {report:?}"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].partition, hour);
    assert!(
        report.failed[0].error.contains("broken.parquet"),
        "the error names the file: {report:?}"
    );
    assert_eq!(
        lake.list("events/").await.unwrap(),
        events_before,
        "the failed hour is left as it was"
    );
    assert_eq!(lake.list("stories/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_files_merge_in_passes_and_old_files_without_extra_read_as_null() {
    use cauce_exporter::file::{decode, encode};
    use cauce_exporter::merge::Budget;
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let events = event_feed();
    // Nine files, each sorted, overlapping in time; one of them sent twice (copies).
    for chunk in events.chunks(23) {
        write(&lake, chunk).await;
    }
    let mut again = events[23..46].to_vec();
    for c in &mut again {
        c.sequence = format!("9{}", c.sequence); // another file name, the same rows
    }
    write(&lake, &again).await;
    // One file as an older version wrote it: without the columns added since (`extra`, then
    // `anonymous_id` and `type`).
    let later = ["extra", "anonymous_id", "type"];
    let first = lake.list("events/").await.unwrap().remove(0);
    let batches = decode(lake.get(&first.key).await.unwrap()).unwrap();
    let old: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|&i| !later.contains(&b.schema().field(i).name().as_str()))
                .collect();
            b.project(&keep).unwrap()
        })
        .collect();
    assert_eq!(old[0].num_columns() + 3, batches[0].num_columns());
    lake.put(&first.key, Bytes::from(encode(&old).unwrap()))
        .await
        .unwrap();

    let cfg = CompactConfig {
        budget: Budget {
            fan_in: 3,
            batch_bytes: 2_000, // a few rows a batch: many batches per file
        },
        ..config(false)
    };
    let report = compact(&lake, &cfg, &|_, _| {}).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        (report.inputs, report.rows_in, report.rows_out),
        (10, 223, 200)
    );
    let batches = decode_prefix(&lake, "events/").await.unwrap();
    let extra = batches[0].column_by_name("extra").unwrap();
    assert_eq!(
        extra.null_count(),
        extra.len(),
        "no event had unknown fields"
    );
    let mut order = Vec::new();
    for b in &batches {
        let apps = strings(b, "app_id");
        let ts = b.column_by_name("ts").unwrap();
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        order.extend((0..b.num_rows()).map(|i| (apps[i].clone(), ts.value(i))));
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "sorted across every input");
    let keys: std::collections::BTreeSet<String> = rows(&lake, "events", "event_id")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 200);
}
