//! The `reporter` Lambda's handler against the moto server's S3: a lake of Parquet in a bucket,
//! a real EventBridge schedule event, and the per-app report objects it must write.

mod common;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use cauce_analytics::output::json;
use cauce_analytics::reporter::{dashboard_key, handle, report_key};
use cauce_analytics::{Settings, ALL};
use cauce_exporter::lake::local::LocalLake;
use cauce_exporter::lake::s3::S3Lake;
use cauce_exporter::lake::Lake;
use common::{reports, Lake as Records, DAY, MONDAY};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_reporter_writes_each_apps_reports_from_an_s3_lake() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL must point at a moto server: run ./test.sh"
    );
    let mut records = Records::default();
    for (app, users) in [("shop", 5), ("news", 3)] {
        for u in 0..users {
            for d in 0..3 {
                let at = MONDAY + d * DAY + u * 60_000;
                let id = format!("{app}-{u}-{d}");
                records.event(app, &id, "open", &format!("u{u}"), &format!("s{u}-{d}"), at);
                records.event(
                    app,
                    &format!("{id}b"),
                    "buy",
                    &format!("u{u}"),
                    &format!("s{u}-{d}"),
                    at + 1,
                );
            }
        }
    }
    records.story(
        "shop",
        "s1",
        Some("u1"),
        &["cart", "pay"],
        "completed",
        MONDAY,
        Some(MONDAY + 9),
        MONDAY + 9,
    );
    records.test("shop", "color", "u1", "control", Some(true), 0);
    records.test("shop", "color", "u2", "blue", Some(false), 0);
    let dir = records.write().await;

    // The same files, in a bucket.
    let aws = cauce_store::aws::sdk_config().await;
    let bucket = format!("reports-{}", std::process::id());
    let lake = S3Lake::new(cauce_exporter::config::s3_client(&aws), &bucket, "lake");
    lake.create_bucket().await.unwrap();
    let folder = LocalLake::new(dir.path());
    let mut copied = 0;
    for object in folder.list("").await.unwrap() {
        lake.put(&object.key, folder.get(&object.key).await.unwrap())
            .await
            .unwrap();
        copied += 1;
    }
    assert!(copied >= 3, "one file per kind at least");

    let event: EventBridgeEvent = serde_json::from_str(include_str!("data/schedule.json")).unwrap();
    let published = handle(&lake, &Settings::default(), &event).await.unwrap();
    assert_eq!(published.apps, ["news", "shop"]);
    assert_eq!(published.generated_at, "2026-11-27T06:00:00Z");

    // Each app's objects hold exactly its own rows, as computed straight from the folder.
    let local = reports(dir.path(), &Default::default(), &Settings::default());
    for app in ["news", "shop"] {
        let mine = local.for_app(app).unwrap();
        for name in ALL {
            let object = lake.get(&report_key(app, name)).await.unwrap();
            let body: Value = serde_json::from_slice(&object).unwrap();
            assert_eq!(body["app_id"], app);
            assert_eq!(body["report"], name);
            assert_eq!(body["generated_at"], "2026-11-27T06:00:00Z");
            assert_eq!(
                body["data"],
                json::report(mine.get(name).unwrap()).unwrap(),
                "{app} {name}"
            );
        }
        let page = lake.get(&dashboard_key(app)).await.unwrap();
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(
            page.contains("<svg") && page.contains(app),
            "{app}'s dashboard"
        );
    }
    let shop_volume = lake.get(&report_key("shop", "volume")).await.unwrap();
    let shop_volume: Value = serde_json::from_slice(&shop_volume).unwrap();
    let days = shop_volume["data"]["daily"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert!(days
        .iter()
        .all(|d| d["app_id"] == "shop" && d["events"] == 10 && d["users"] == 5));
    let index: Value =
        serde_json::from_slice(&lake.get("reports/index.json").await.unwrap()).unwrap();
    assert_eq!(index["apps"], serde_json::json!(["news", "shop"]));
}
