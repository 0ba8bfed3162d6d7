//! The `exporter` Lambda's handler on a real-shaped DynamoDB Streams event: INSERT, MODIFY, a
//! TTL REMOVE, a user REMOVE and one malformed record, into a real folder lake.

#[path = "support/reference.rs"]
mod reference;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use cauce_exporter::file::decode;
use cauce_exporter::stream::handle;
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::Lake;

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
    let (response, report) = handle(FIXTURE, &lake, None).await;
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

    let events = decode(lake.get(&keys[1]).await.unwrap()).unwrap();
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

    let stories = decode(lake.get(&keys[2]).await.unwrap()).unwrap();
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
    let (again, _) = handle(FIXTURE, &lake, None).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(lake.list("").await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_lake_failure_reports_the_first_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    // The lake's root is a regular file: every write fails.
    let root = dir.path().join("not-a-folder");
    std::fs::write(&root, b"x").unwrap();
    let (response, report) = handle(FIXTURE, &LocalLake::new(&root), None).await;
    assert!(report.is_err());
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000000000000001"}]})
    );
}

/// The handler's metrics, as the Lambda prints them: EMF documents with the files, rows and
/// bytes it wrote per kind, the bad rows, and how old the oldest record it wrote was.
#[test]
fn the_handler_prints_its_metrics_as_emf() {
    use cauce_store::metrics::emf::Emf;
    use cauce_store::metrics::{
        EXPORT_BAD_ROWS, EXPORT_BYTES, EXPORT_FILES, EXPORT_LAG_SECONDS, EXPORT_ROWS,
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let emf = Emf::new("Cauce", vec![("function".into(), "exporter".into())]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (response, _) = metrics::with_local_recorder(&emf, || {
        cauce_store::metrics::describe();
        rt.block_on(handle(FIXTURE, &lake, None))
    });
    assert!(response.batch_item_failures.is_empty());
    let mut out = Vec::new();
    emf.flush_to(&mut out).unwrap();
    let docs: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let doc = |kind: Option<&str>| {
        let found = docs
            .iter()
            .find(|d| d.get("kind").and_then(|k| k.as_str()) == kind);
        found.unwrap_or_else(|| panic!("no document for {kind:?}: {docs:#?}"))
    };
    let (events, stories, plain) = (doc(Some("events")), doc(Some("stories")), doc(None));
    assert_eq!(
        (&events[EXPORT_FILES], &events[EXPORT_ROWS]),
        (&1.0.into(), &1.0.into())
    );
    assert_eq!(
        (&stories[EXPORT_FILES], &stories[EXPORT_ROWS]),
        (&1.0.into(), &2.0.into())
    );
    let bytes = |d: &serde_json::Value| d[EXPORT_BYTES].as_f64().unwrap();
    let listed = rt.block_on(lake.list("events/")).unwrap();
    let sizes: u64 = listed.iter().map(|o| o.size).sum();
    assert_eq!(bytes(events), sizes as f64);
    assert_eq!(plain[EXPORT_BAD_ROWS], 1.0);
    // The fixture's records were received in 2026-11: the lake is far behind them.
    assert!(plain[EXPORT_LAG_SECONDS].as_f64().unwrap() > 0.0, "{plain}");
    let meta = &events["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(meta["Namespace"], "Cauce");
    assert_eq!(
        meta["Dimensions"],
        serde_json::json!([["function", "kind"], ["function"]])
    );
    assert_eq!(events["function"], "exporter");
    let units: std::collections::BTreeMap<&str, &str> = meta["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
        .collect();
    assert_eq!(units[EXPORT_BYTES], "Bytes");
    assert_eq!(units[EXPORT_ROWS], "Count");
}

/// The fixture without its malformed record, plus an event whose `doc` strings carry escapes
/// (quotes, a backslash, a non-ASCII character written as `\u00e9`).
fn clean_fixture() -> String {
    let mut event: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let records = event["Records"].as_array_mut().unwrap();
    records.pop(); // the malformed record
    let mut escaped = records[0].clone();
    let doc = r#"{"app_id":"app_1","event_id":"e-\"q\"","name":"caf\u00e9 \\ tap","timestamp":1795800000000,"ts":1795800000100,"received_at":1795800001000,"ingest_seq":"1884949646046769612800001","properties":{"label":"say \"hi\""}}"#;
    escaped["dynamodb"]["NewImage"]["doc"]["S"] = doc.into();
    escaped["dynamodb"]["SequenceNumber"] = "111100000000000000000009".into();
    records.push(escaped);
    event.to_string()
}

#[test]
fn a_clean_event_decodes_in_one_pass_to_the_same_batches() {
    use cauce_exporter::stream::decode;
    let clean = decode(&clean_fixture()).unwrap();
    assert!(clean.bad.is_empty());
    assert_eq!(clean.ttl_expired, 1);
    let names = strings(&clean.batches[0].batch, "name");
    assert_eq!(
        names,
        ["caf\u{e9} \\ tap", "screen_view"],
        "escapes are decoded"
    );

    // The malformed record sends the event down the record-by-record path: the other records
    // give the same batches, the bad one is kept with its sequence number.
    let mut mixed: serde_json::Value = serde_json::from_str(&clean_fixture()).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let malformed = fixture["Records"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    mixed["Records"]
        .as_array_mut()
        .unwrap()
        .insert(4, malformed);
    let mixed = decode(&mixed.to_string()).unwrap();
    assert_eq!(mixed.batches, clean.batches, "both paths agree");
    assert_eq!(mixed.ttl_expired, 1);
    let bad: Vec<_> = mixed.bad.iter().map(|b| b.sequence.clone()).collect();
    assert_eq!(bad, [Some("111500000000000000000005".to_owned())]);
}

#[test]
fn decoding_into_columns_equals_the_owned_model_path() {
    // The naive path: aws_lambda_events + serde_dynamo into owned `Change`s, then the transform
    // that the embedded exporter uses. The fast path must build the very same batches.
    use cauce_exporter::stream::decode;
    use cauce_exporter::transform::partition_changes;
    let payload = clean_fixture();
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_str(&payload).unwrap();
    let changes: Vec<_> = reference::decode_event(&event)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let owned = partition_changes(&changes).unwrap();
    let fast = decode(&payload).unwrap().batches;
    assert_eq!(fast.len(), 2, "events and stories");
    assert_eq!(fast, owned);
    assert_eq!(fast[0].batch.num_rows(), 2);
}

/// The lake's Glue tables as `terraform/modules/lake` makes them (columns from the one schema
/// source, `dt`/`hour` partition keys), in a database of their own on the moto server.
async fn glue_tables(glue: &aws_sdk_glue::Client, db: &str) {
    use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
    let input = DatabaseInput::builder().name(db).build().unwrap();
    glue.create_database()
        .database_input(input)
        .send()
        .await
        .unwrap();
    let columns: serde_json::Value =
        serde_json::from_str(&cauce_store::lake::schema::glue_columns_json()).unwrap();
    let column = |name: &str, ty: &str| Column::builder().name(name).r#type(ty).build().unwrap();
    for kind in cauce_store::Kind::ALL {
        let cols = columns[kind.plural()].as_array().unwrap().iter();
        let sd = StorageDescriptor::builder()
            .location(format!("s3://lake-bucket/lake/{}/", kind.plural()))
            .set_columns(Some(
                cols.map(|c| column(c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
                    .collect(),
            ))
            .build();
        let table = TableInput::builder()
            .name(kind.plural())
            .storage_descriptor(sd)
            .partition_keys(column("dt", "string"))
            .partition_keys(column("hour", "string"))
            .build()
            .unwrap();
        glue.create_table()
            .database_name(db)
            .table_input(table)
            .send()
            .await
            .unwrap();
    }
}

/// The catalog's partitions, as lake folders (`events/dt=…/hour=…`), each with its location.
async fn catalog_folders(glue: &aws_sdk_glue::Client, db: &str) -> Vec<(String, String)> {
    let mut folders = Vec::new();
    for kind in cauce_store::Kind::ALL {
        let out = glue
            .get_partitions()
            .database_name(db)
            .table_name(kind.plural())
            .send()
            .await
            .unwrap();
        for p in out.partitions() {
            let folder = format!(
                "{}/dt={}/hour={}",
                kind.plural(),
                p.values()[0],
                p.values()[1]
            );
            let sd = p.storage_descriptor().unwrap();
            assert_eq!(sd.columns().len(), {
                cauce_store::lake::schema::columns(kind).len()
            });
            folders.push((folder, sd.location().unwrap().to_owned()));
        }
    }
    folders.sort();
    folders
}

#[tokio::test]
async fn new_partitions_are_registered_in_glue_and_the_compactor_mends_a_missed_one() {
    use cauce_exporter::catalog::{Catalog, GlueCatalog};
    use cauce_store::lake::layout::Partition;
    if !cauce_store::aws::emulator("new_partitions_are_registered_in_glue") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let glue = aws_sdk_glue::Client::new(&aws);
    let db = format!("lake_{}", std::process::id());
    glue_tables(&glue, &db).await;

    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let catalog = GlueCatalog::new(glue.clone(), &db);
    let (response, report) = handle(FIXTURE, &lake, Some(&catalog as &dyn Catalog)).await;
    assert!(response.batch_item_failures.is_empty());
    report.unwrap();
    // A retried batch in a new process (nothing remembered): "already exists" is not an error.
    let cold = GlueCatalog::new(glue.clone(), &db);
    let (again, report) = handle(FIXTURE, &lake, Some(&cold as &dyn Catalog)).await;
    assert!(again.batch_item_failures.is_empty());
    report.unwrap();

    let lake_folders: std::collections::BTreeSet<String> =
        cauce_exporter::compact::partitions(&lake)
            .await
            .unwrap()
            .keys()
            .map(|p| p.dir())
            .collect();
    assert_eq!(lake_folders.len(), 2, "{lake_folders:?}");
    let registered = catalog_folders(&glue, &db).await;
    let want: Vec<(String, String)> = lake_folders
        .iter()
        .map(|f| (f.clone(), format!("s3://lake-bucket/lake/{f}/")))
        .collect();
    assert_eq!(registered, want);

    // A partition the exporter could not register (Glue was down): the compactor's run adds it.
    let (first, _) = want[0].0.split_once("/dt=").unwrap();
    let values: Vec<String> = want[0]
        .0
        .split('/')
        .skip(1)
        .map(|v| v[v.find('=').unwrap() + 1..].to_owned())
        .collect();
    glue.delete_partition()
        .database_name(&db)
        .table_name(first)
        .set_partition_values(Some(values))
        .send()
        .await
        .unwrap();
    assert_eq!(catalog_folders(&glue, &db).await.len(), 1);
    let newest = lake_folders
        .iter()
        .filter_map(|f| Partition::parse_key(&format!("{f}/x.parquet")))
        .map(|p| p.hour_start_ms)
        .max()
        .unwrap();
    let fresh = GlueCatalog::new(glue.clone(), &db);
    let n = cauce_exporter::compact::reconcile(&lake, &fresh, newest + 3_600_000)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(catalog_folders(&glue, &db).await, want);
}
