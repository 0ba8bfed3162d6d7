//! The `reporter` Lambda's handler against the moto server's S3: a lake of Parquet in a bucket,
//! a real EventBridge schedule event, and the per-app report objects it must write; then the
//! `api` Lambda, built from its settings as in AWS, serving each app its own reports from that
//! bucket to API Gateway requests.

mod common;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use cauce_analytics::features::{self, AsOf};
use cauce_analytics::output::json;
use cauce_analytics::reporter::{handle, ReporterSettings, REPORT_DAYS};
use cauce_analytics::{LakeSource, Settings, ALL};
use cauce_store::lake::layout::{dashboard_key, report_key};
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::s3::S3Lake;
use cauce_store::lake::Lake;
use common::{reports, Lake as Records, DAY, MONDAY};
use polars::prelude::{ParquetReader, SerReader};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_reporter_writes_each_apps_reports_from_an_s3_lake() {
    if !cauce_store::aws::emulator("the_reporter_writes_each_apps_reports_from_an_s3_lake") {
        return;
    }
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
    let lake = S3Lake::new(cauce_store::lake::s3::client(&aws), &bucket, "lake");
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
    let run = |days, max_bytes| ReporterSettings {
        lake: lake.location(),
        days,
        max_bytes,
        pipeline: None,
        features: true,
    };
    // The feature table reads 36 days: fewer are refused before any work, with what to change.
    let short = handle(&lake, &run(20, u64::MAX), &Settings::default(), &event).await;
    let message = short.unwrap_err().to_string();
    assert!(
        message.contains("CAUCE_REPORT_DAYS is 20") && message.contains("CAUCE_FEATURES=false"),
        "{message}"
    );
    assert!(lake.list("reports/").await.unwrap().is_empty());
    // A run reads only the partitions of its days: the records are 23 to 25 days old.
    let without_features = ReporterSettings {
        features: false,
        ..run(20, u64::MAX)
    };
    let recent = handle(&lake, &without_features, &Settings::default(), &event)
        .await
        .unwrap();
    assert!(recent.apps.is_empty(), "nothing in the last 20 days");
    assert!(recent.features.is_none());
    // A scope over the copy budget fails before copying, and says what to change.
    let over = handle(
        &lake,
        &run(REPORT_DAYS, 1_000),
        &Settings::default(),
        &event,
    )
    .await;
    let message = over.unwrap_err().to_string();
    assert!(
        message.contains("CAUCE_REPORT_DAYS") && message.contains("CAUCE_REPORT_MAX_GB"),
        "{message}"
    );
    let published = handle(
        &lake,
        &run(REPORT_DAYS, u64::MAX),
        &Settings::default(),
        &event,
    )
    .await
    .unwrap();
    assert_eq!(published.apps, ["news", "shop"]);
    assert_eq!(published.generated_at, "2026-11-27T06:00:00Z");

    // The feature table as of a week before the run (its labels complete), equal to the one
    // computed straight from the folder: the 8 users, active 23 to 25 days before the run.
    let as_of = AsOf::scheduled(event.time.unwrap());
    assert_eq!(as_of.day.to_string(), "2026-11-20");
    let table = published.features.expect("the feature table");
    assert_eq!((table.rows, table.labels_complete), (8, true));
    let (table_key, manifest_key) = features::keys(as_of.day);
    assert_eq!(
        (&table.table, &table.definitions),
        (&table_key, &manifest_key)
    );
    let written = lake.get(&table_key).await.unwrap();
    let written = ParquetReader::new(std::io::Cursor::new(written.to_vec()))
        .finish()
        .unwrap();
    let expected = features::user_features(&LakeSource::folder(dir.path()), &as_of).unwrap();
    assert!(written.equals_missing(&expected), "{written}\n{expected}");
    let manifest: Value = serde_json::from_slice(&lake.get(&manifest_key).await.unwrap()).unwrap();
    assert_eq!(manifest["RecordIdentifierFeatureName"], "user_key");

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

    api_lambda_serves_each_app_its_reports(&bucket, &lake).await;
}

/// An API Gateway REST proxy event (the fixture the API's own tests use) for `GET path`, with
/// the authorizer's context for `app`, converted by `lambda_http` as in Lambda.
fn gateway_get(path: &str, app: &str, role: &str) -> axum::extract::Request {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../ingest/tests/data/apigw-rest-authorized.json"
    ))
    .unwrap();
    event["resource"] = path.into();
    event["path"] = path.into();
    event["httpMethod"] = "GET".into();
    event["body"] = Value::Null;
    let ctx = &mut event["requestContext"];
    ctx["resourcePath"] = path.into();
    ctx["path"] = format!("/prod{path}").into();
    ctx["httpMethod"] = "GET".into();
    ctx["authorizer"]["app_id"] = app.into();
    ctx["authorizer"]["principalId"] = app.into();
    ctx["authorizer"]["role"] = role.into();
    let req = lambda_http::request::from_str(&event.to_string()).expect("a REST proxy event");
    req.map(axum::body::Body::new)
}

async fn api_lambda_serves_each_app_its_reports(bucket: &str, lake: &S3Lake) {
    use cauce_ingest::config::{AwsSettings, Needs};
    use tower::ServiceExt;
    // The api Lambda's settings, as the Terraform sets them; the queue and tables are not used
    // by these routes.
    for (name, value) in [
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true".to_owned()),
        ("CAUCE_QUEUE_URL", "https://sqs.invalid/q.fifo".to_owned()),
        ("CAUCE_DLQ_URL", "https://sqs.invalid/dlq.fifo".to_owned()),
        ("CAUCE_TABLE_PREFIX", "cauce".to_owned()),
        ("CAUCE_LAKE", format!("s3://{bucket}/lake")),
    ] {
        std::env::set_var(name, value);
    }
    let (settings, aws) = AwsSettings::load(Needs::API).await.unwrap();
    let state = settings.api_state(&aws).await.unwrap();
    let app = cauce_ingest::lambda::api_router(std::sync::Arc::new(state));
    let get = |path: &str, who: &str, role: &str| {
        let req = gateway_get(path, who, role);
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };

    for app_id in ["news", "shop"] {
        let (status, listed) = get("/v1/reports", app_id, "analyst").await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["app_id"], app_id);
        let mut names: Vec<&str> = ALL.to_vec();
        names.sort_unstable();
        assert_eq!(listed["reports"], serde_json::json!(names));
        for name in ALL {
            let (status, report) = get(&format!("/v1/reports/{name}"), app_id, "analyst").await;
            assert_eq!(status, 200, "{app_id} {name}: {report}");
            let stored: Value =
                serde_json::from_slice(&lake.get(&report_key(app_id, name)).await.unwrap())
                    .unwrap();
            assert_eq!(report, stored, "{app_id} {name}");
            assert_eq!(report["app_id"], app_id);
        }
    }
    // An app with no published reports sees none, and none of the others'.
    let (status, listed) = get("/v1/reports", "other", "developer").await;
    assert_eq!((status, &listed["reports"]), (200, &serde_json::json!([])));
    let (status, body) = get("/v1/reports/volume", "other", "developer").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("report_not_found"))
    );
    // A key that may only send cannot read them.
    let (status, body) = get("/v1/reports", "shop", "ingest").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
}
