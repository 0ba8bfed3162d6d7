//! The Polars reader over a folder lake the exporter wrote: copies dropped, the latest version of
//! each key kept, removed keys gone, ingest days pruned, and the frame of an empty lake typed as
//! the files are.

mod common;

use cauce_analytics::reader::{scan, scan_rows, Days};
use cauce_analytics::source::empty_schema;
use cauce_store::Kind;
use common::{Lake, DAY, MONDAY};
use polars::prelude::*;

fn ids(df: &DataFrame, column: &str) -> Vec<String> {
    let mut out: Vec<String> = df
        .column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

async fn lake() -> tempfile::TempDir {
    let mut lake = Lake::default();
    lake.event("app", "e1", "open", "u1", "s1", MONDAY);
    lake.event("app", "e2", "tap", "u1", "s1", MONDAY + 1_000);
    lake.export_again(); // e2 twice, in two files of one hour
    lake.event("app", "e3", "open", "u2", "", MONDAY + DAY);
    let steps = ["cart", "pay"];
    lake.story(
        "app",
        "s1",
        Some("u1"),
        &steps[..1],
        "in_progress",
        MONDAY,
        None,
        10,
    );
    lake.story(
        "app",
        "s1",
        Some("u1"),
        &steps,
        "completed",
        MONDAY,
        None,
        20,
    );
    lake.story("app", "s2", None, &steps, "abandoned", MONDAY, None, 30);
    lake.remove_last(); // s2 deleted by its user
    lake.story(
        "app",
        "s3",
        None,
        &steps[..1],
        "in_progress",
        MONDAY,
        None,
        40,
    );
    lake.test("app", "exp", "u1", "control", None, 50);
    lake.test("app", "exp", "u1", "control", Some(true), 60);
    lake.test("app", "exp", "u2", "b", None, 70);
    lake.write().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_resolves_copies_versions_and_removals() {
    let dir = lake().await;
    let all = Days::default();
    let rows = |kind| {
        scan_rows(dir.path(), kind, all)
            .unwrap()
            .unwrap()
            .collect()
            .unwrap()
    };
    let latest = |kind| {
        scan(dir.path(), kind, all)
            .unwrap()
            .unwrap()
            .collect()
            .unwrap()
    };

    assert_eq!(rows(Kind::Event).height(), 4, "as written: e2 twice");
    assert_eq!(ids(&latest(Kind::Event), "event_id"), ["e1", "e2", "e3"]);

    assert_eq!(rows(Kind::Story).height(), 5);
    let stories = latest(Kind::Story);
    assert_eq!(ids(&stories, "story_id"), ["s1", "s3"]);
    assert_eq!(ids(&stories, "outcome"), ["completed", "in_progress"]);

    let exposures = latest(Kind::Exposure);
    assert_eq!(exposures.height(), 2);
    let converted = exposures.column("converted").unwrap().bool().unwrap();
    assert_eq!(converted.iter().flatten().collect::<Vec<_>>(), [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_days_prune_files() {
    let dir = lake().await;
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .date_naive()
    };
    let from_tuesday = Days {
        from: Some(day(MONDAY + DAY)),
        to: None,
    };
    let events = scan(dir.path(), Kind::Event, from_tuesday)
        .unwrap()
        .unwrap();
    assert_eq!(ids(&events.collect().unwrap(), "event_id"), ["e3"]);
    let only_monday = Days {
        from: None,
        to: Some(day(MONDAY)),
    };
    let events = scan(dir.path(), Kind::Event, only_monday).unwrap().unwrap();
    assert_eq!(ids(&events.collect().unwrap(), "event_id"), ["e1", "e2"]);
    let later = Days {
        from: Some(day(MONDAY + 30 * DAY)),
        to: None,
    };
    assert!(scan(dir.path(), Kind::Event, later).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_lake_reads_with_the_types_of_the_files() {
    // The schema used when a kind has no file yet is built from the lake's column list, as the
    // exporter's Arrow schema is: it must be exactly what Polars reads from a real file.
    let dir = lake().await;
    for kind in Kind::ALL {
        let from_file = scan_rows(dir.path(), kind, Days::default())
            .unwrap()
            .unwrap()
            .collect_schema()
            .unwrap();
        assert_eq!(*from_file, empty_schema(kind), "{kind}");
    }
}
