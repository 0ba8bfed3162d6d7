//! The per-user feature table: known answers on a hand-built lake, no feature that reads the
//! as-of time or after it (a lake with planted future events and versions gives the same
//! features, and only the labels move), and Feature Store's types and names.

mod common;

use polars::prelude::*;

use cauce_analytics::features::{
    definitions, keys, publish, user_features, AsOf, FeatureType, Role, RESERVED,
};
use cauce_analytics::LakeSource;
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::Lake as _;
use common::{Lake, DAY, HOUR, MONDAY};

/// 2026-11-16: two weeks after `MONDAY`.
const AS_OF: i64 = MONDAY + 14 * DAY;

fn as_of() -> AsOf {
    AsOf {
        day: chrono::NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
        horizon_days: 7,
    }
}

/// The past: what the features may read.
fn past(lake: &mut Lake) {
    lake.event("a", "e1", "open", "u1", "s1", AS_OF - HOUR);
    lake.event("a", "e2", "search", "u1", "s1", AS_OF - 3 * DAY);
    lake.event("a", "e3", "open", "u1", "s2", AS_OF - 20 * DAY);
    lake.event("a", "e4", "open", "u1", "s3", AS_OF - 40 * DAY);
    lake.event("a", "e5", "open", "u2", "", AS_OF - 2 * DAY);
    lake.event("a", "e6", "open", "u3", "s9", AS_OF - 40 * DAY);
    lake.event("a", "e7", "open", "", "s9", AS_OF - DAY);
    // u1's stories: one completed, one still in progress at the as-of time, one abandoned.
    let started = |d: i64| AS_OF - d * DAY;
    lake.story(
        "a",
        "sa",
        Some("u1"),
        &["cart", "pay"],
        "completed",
        started(5),
        Some(started(4)),
        started(4),
    );
    lake.story(
        "a",
        "sb",
        Some("u1"),
        &["cart"],
        "in_progress",
        started(2),
        None,
        started(2),
    );
    lake.story(
        "a",
        "sc",
        Some("u1"),
        &["cart"],
        "abandoned",
        started(3),
        Some(started(1)),
        started(1),
    );
    // Tests (exposed on MONDAY): u1 not converted by then, u2 converted a day later.
    lake.test("a", "exp1", "u1", "control", None, HOUR);
    lake.test("a", "exp1", "u2", "treatment", Some(true), DAY);
}

/// The future: events, a story's completion and a test's conversion at or after the as-of
/// time. Only the labels may see them.
fn future(lake: &mut Lake) {
    lake.event("a", "f1", "open", "u1", "s4", AS_OF);
    lake.event("a", "f2", "buy", "u1", "s4", AS_OF + 2 * DAY);
    lake.event("a", "f3", "open", "u1", "s5", AS_OF + 8 * DAY);
    lake.event("a", "f4", "open", "u4", "s6", AS_OF + DAY);
    lake.story(
        "a",
        "sb",
        Some("u1"),
        &["cart", "pay"],
        "completed",
        AS_OF - 2 * DAY,
        Some(AS_OF + DAY),
        AS_OF + DAY,
    );
    lake.story(
        "a",
        "sd",
        Some("u2"),
        &["cart"],
        "completed",
        AS_OF - DAY,
        Some(AS_OF + HOUR),
        AS_OF + HOUR,
    );
    lake.test("a", "exp1", "u1", "control", Some(true), 20 * DAY);
    lake.test("a", "exp2", "u2", "control", None, 15 * DAY);
}

async fn table(with_future: bool) -> DataFrame {
    let mut lake = Lake::default();
    past(&mut lake);
    if with_future {
        future(&mut lake);
    }
    let dir = lake.write().await;
    user_features(&LakeSource::folder(dir.path()), &as_of()).unwrap()
}

fn value(df: &DataFrame, user: &str, column: &str) -> AnyValue<'static> {
    let row = df
        .column("user_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .position(|u| u == Some(user))
        .unwrap_or_else(|| panic!("no row for {user}"));
    df.column(column).unwrap().get(row).unwrap().into_static()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_have_their_known_answers() {
    let df = table(true).await;
    // u3 was last active 40 days before, and the event without a user has no row: two rows.
    assert_eq!(df.height(), 2, "{df}");
    let int = |u, c| value(&df, u, c).extract::<i64>().unwrap();
    let float = |u, c| value(&df, u, c).extract::<f64>().unwrap();
    let text = |u, c| value(&df, u, c).str_value().to_string();

    assert_eq!(text("u1", "user_key"), "a/u1");
    assert_eq!(text("u1", "event_time"), "2026-11-16T00:00:00Z");
    let u1 = [
        ("events_1d", 1),
        ("events_7d", 2),
        ("events_28d", 3),
        ("active_days_28d", 3),
        ("sessions_28d", 2),
        ("distinct_events_28d", 2),
        ("stories_started_28d", 3),
        ("story_completions_28d", 1),
        ("story_dropoffs_28d", 1),
        ("experiments_exposed", 1),
        ("experiment_conversions", 0),
        ("label_active_next_7d", 1),
        ("label_events_next_7d", 2),
    ];
    for (c, want) in u1 {
        assert_eq!(int("u1", c), want, "u1 {c}");
    }
    assert!((float("u1", "days_since_last_event") - 1.0 / 24.0).abs() < 1e-9);
    assert!((float("u1", "days_since_first_event") - 40.0).abs() < 1e-9);
    assert!((float("u1", "trend_7d_vs_28d") - 8.0 / 3.0).abs() < 1e-9);

    let u2 = [
        ("events_1d", 0),
        ("events_7d", 1),
        ("events_28d", 1),
        ("sessions_28d", 0),
        ("stories_started_28d", 0),
        ("experiments_exposed", 1),
        ("experiment_conversions", 1),
        ("label_active_next_7d", 0),
        ("label_events_next_7d", 0),
    ];
    for (c, want) in u2 {
        assert_eq!(int("u2", c), want, "u2 {c}");
    }
    assert!((float("u2", "trend_7d_vs_28d") - 4.0).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_feature_reads_the_as_of_time_or_after_it() {
    let (without, with) = (table(false).await, table(true).await);
    let defs = definitions(&as_of());
    let features: Vec<&str> = defs
        .iter()
        .filter(|d| d.role != Role::Label)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        without.select(features.clone()).unwrap(),
        with.select(features).unwrap(),
        "the planted future changed a feature"
    );
    // The labels did see it.
    let labels = |df: &DataFrame| {
        df.column("label_events_next_7d")
            .unwrap()
            .i64()
            .unwrap()
            .sum()
            .unwrap()
    };
    assert_eq!((labels(&without), labels(&with)), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_is_what_feature_store_takes_and_its_manifest_says_so() {
    let mut lake = Lake::default();
    past(&mut lake);
    future(&mut lake);
    let dir = lake.write().await;
    let local = LocalLake::new(dir.path());
    let published = publish(
        &LakeSource::folder(dir.path()),
        &local,
        &as_of(),
        AS_OF + 3 * DAY,
    )
    .await
    .unwrap();
    assert_eq!(published.rows, 2);
    assert!(!published.labels_complete, "the horizon had not ended");
    let (table_key, manifest_key) = keys(as_of().day);
    assert_eq!(table_key, "features/user/dt=2026-11-16/features.parquet");

    let bytes = local.get(&table_key).await.unwrap();
    let df = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
        .finish()
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&local.get(&manifest_key).await.unwrap()).unwrap();
    assert_eq!(manifest["RecordIdentifierFeatureName"], "user_key");
    assert_eq!(manifest["EventTimeFeatureName"], "event_time");
    assert_eq!(manifest["labels_complete"], false);
    let declared = manifest["FeatureDefinitions"].as_array().unwrap();
    assert_eq!(declared.len(), df.width());
    for (d, c) in declared.iter().zip(df.columns()) {
        assert_eq!(d["FeatureName"], c.name().as_str());
        assert!(!RESERVED.contains(&c.name().as_str()));
        let want = match d["FeatureType"].as_str().unwrap() {
            "Integral" => DataType::Int64,
            "Fractional" => DataType::Float64,
            "String" => DataType::String,
            other => panic!("{other}"),
        };
        assert_eq!(c.dtype(), &want, "{}", c.name());
    }
    // Feature Store's name rule: letters, digits, `-` and `_`, up to 64 characters.
    for d in definitions(&as_of()) {
        assert!(
            d.name.len() <= 64
                && d.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
        assert!(matches!(
            d.ty,
            FeatureType::Integral | FeatureType::Fractional | FeatureType::String
        ));
    }
}
