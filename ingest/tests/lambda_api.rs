//! The AWS path of the API: a real API Gateway REST proxy event, converted by `lambda_http` as
//! in Lambda, through the same Router with the tenant from the authorizer context; and the
//! REQUEST authorizer over the clients table on the moto server.

mod common;

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use axum::http::StatusCode;
use cauce_ingest::api::{ApiConfig, ApiState, Tenancy};
use cauce_ingest::auth::{hash_key, DynamoKeys, KeyInfo, KeyLookup, Role};
use cauce_ingest::lambda::{api_router, authorize};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::{Envelope, Queue};
use cauce_store::sqlite::SqliteStore;
use cauce_store::time::format_rfc3339;
use common::{now, send};

const PROXY_EVENT: &str = include_str!("data/apigw-rest-authorized.json");
const AUTHORIZER_EVENT: &str = include_str!("data/apigw-authorizer-request.json");

fn lambda_request(json: &str) -> lambda_http::Request {
    // The fixture's times are moved to now, so that they stay within the accepted window.
    let json = json
        .replace("2026-11-27T11:59:59.500Z", &format_rfc3339(now() - 500))
        .replace("2026-11-27T12:00:00Z", &format_rfc3339(now()));
    lambda_http::request::from_str(&json).expect("a REST proxy event")
}

#[tokio::test]
async fn rest_proxy_event_takes_the_tenant_from_the_authorizer() {
    // As the Terraform sets it: the stage prefix is not part of the routes.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let dir = tempfile::tempdir().unwrap();
    let queue =
        Arc::new(SqliteQueue::open(dir.path().join("q.db"), SqliteQueueConfig::default()).unwrap());
    let store = Arc::new(SqliteStore::open(dir.path().join("s.db")).unwrap());
    let state = ApiState::new(
        queue.clone(),
        store,
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    );
    let app = api_router(Arc::new(state));

    let req = lambda_request(PROXY_EVENT);
    assert_eq!(req.uri().path(), "/v1/events");
    let res = send(&app, req.map(axum::body::Body::new)).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.json);

    let got = queue.receive(10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].group.starts_with("app_gateway."), "{}", got[0].group);
    let env = Envelope::decode(&got[0].body).unwrap();
    let records = env.records(&got[0].sequence).unwrap();
    assert_eq!(
        records[0].app_id(),
        "app_gateway",
        "the body's app_id is ignored"
    );

    // Without an authorizer context the request is refused.
    let mut bare: serde_json::Value = serde_json::from_str(PROXY_EVENT).unwrap();
    bare["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let req = lambda_request(&bare.to_string());
    let res = send(&app, req.map(axum::body::Body::new)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json["error"], "missing_authorizer_context");
}

#[tokio::test]
async fn authorizer_allows_denies_and_refuses_by_hashed_key() {
    if !cauce_store::aws::emulator("authorizer_allows_denies_and_refuses_by_hashed_key") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let keys = DynamoKeys::new(
        aws_sdk_dynamodb::Client::new(&aws),
        format!("clients-{}", std::process::id()),
    );
    keys.create_table().await.unwrap();
    let good = cauce_ingest::auth::generate_key();
    let disabled = cauce_ingest::auth::generate_key();
    for (key, off) in [(&good, false), (&disabled, true)] {
        let info = KeyInfo {
            app_id: "app_shop".into(),
            role: Role::Ingest,
            disabled: off,
            rate_limit: None,
        };
        keys.put_key(&hash_key(key), &info).await.unwrap();
    }
    let request = |key: &str| -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        serde_json::from_str(&AUTHORIZER_EVENT.replace("KEY_PLACEHOLDER", key)).unwrap()
    };

    let allow = authorize(&request(&good), &keys).await.unwrap();
    let json = serde_json::to_value(&allow).unwrap();
    assert_eq!(json["principalId"], "app_shop");
    assert_eq!(json["context"]["app_id"], "app_shop");
    assert_eq!(json["context"]["role"], "ingest");
    assert_eq!(json["usageIdentifierKey"], good.as_str());
    assert_eq!(json["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(
        json["policyDocument"]["Statement"][0]["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"
    );

    let deny = authorize(&request(&disabled), &keys).await.unwrap();
    assert_eq!(
        deny.policy_document.statement[0].effect,
        aws_lambda_events::event::iam::IamPolicyEffect::Deny
    );

    for key in ["ck_unknown", ""] {
        let err = authorize(&request(key), &keys).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unauthorized",
            "API Gateway maps exactly this to 401"
        );
    }
}

#[tokio::test]
async fn a_taken_body_is_archived_on_firehose_with_the_gateway_request_id() {
    use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
    use cauce_ingest::archive::firehose::FirehoseArchive;
    use cauce_ingest::archive::RawLine;
    use cauce_store::lake::Lake;
    if !cauce_store::aws::emulator("a_taken_body_is_archived_on_firehose") {
        return;
    }
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let aws = cauce_store::aws::sdk_config().await;
    let bucket = format!("raw-{}", std::process::id());
    let raw = cauce_store::lake::s3::S3Lake::new(cauce_store::lake::s3::client(&aws), &bucket, "");
    raw.create_bucket().await.unwrap();
    let firehose = aws_sdk_firehose::Client::new(&aws);
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/raw-firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix("raw/")
        .build()
        .unwrap();
    firehose
        .create_delivery_stream()
        .delivery_stream_name(&bucket)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let queue =
        Arc::new(SqliteQueue::open(dir.path().join("q.db"), SqliteQueueConfig::default()).unwrap());
    let store = Arc::new(SqliteStore::open(dir.path().join("s.db")).unwrap());
    let state = ApiState::new(
        queue,
        store,
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    )
    .with_archive(Arc::new(FirehoseArchive::new(firehose, &bucket)));
    let app = api_router(Arc::new(state));
    let req = lambda_request(PROXY_EVENT);
    let res = send(&app, req.map(axum::body::Body::new)).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.json);

    // moto delivers at once (Firehose buffers for minutes), uncompressed.
    let mut archived = Vec::new();
    for object in raw.list("raw/").await.unwrap() {
        let bytes = raw.get(&object.key).await.unwrap();
        archived.extend(
            bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    assert_eq!(archived.len(), 1);
    let line: RawLine<'_> = serde_json::from_slice(&archived[0]).unwrap();
    assert_eq!(line.request_id, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
    assert_eq!(line.app_id, "app_gateway");
    assert_eq!(line.kind, cauce_store::Kind::Event);
    let body: serde_json::Value = serde_json::from_slice(line.body_bytes()).unwrap();
    let sent: serde_json::Value =
        serde_json::from_slice(lambda_request(PROXY_EVENT).body().as_ref()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["event_id"].to_string())
            .collect()
    };
    assert!(!ids(&sent).is_empty());
    assert_eq!(ids(&body), ids(&sent), "the body as sent");
}

#[tokio::test]
async fn aws_apps_live_in_the_clients_table_and_api_gateways_usage_plans() {
    use cauce_ingest::auth::{AppAdmin, GatewayApps};
    if !cauce_store::aws::emulator("aws_apps_live_in_the_clients_table") {
        return;
    }
    let aws = cauce_store::aws::sdk_config().await;
    let table = format!("apps-{}", std::process::id());
    let keys = DynamoKeys::new(aws_sdk_dynamodb::Client::new(&aws), table.clone());
    keys.create_table().await.unwrap();
    let gateway = aws_sdk_apigateway::Client::new(&aws);
    let plan = gateway
        .create_usage_plan()
        .name(format!("standard-{}", std::process::id()))
        .send()
        .await
        .unwrap();
    let plan = plan.id().unwrap().to_owned();
    let apps = GatewayApps::new(
        aws_sdk_dynamodb::Client::new(&aws),
        &table,
        gateway.clone(),
        &plan,
    );
    let request = |key: &str| -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        serde_json::from_str(&AUTHORIZER_EVENT.replace("KEY_PLACEHOLDER", key)).unwrap()
    };
    // What API Gateway holds: the plan's keys, each with its value and whether it is enabled.
    let plan_keys = || async {
        let out = gateway
            .get_usage_plan_keys()
            .usage_plan_id(&plan)
            .send()
            .await
            .unwrap();
        let mut keys = Vec::new();
        for k in out.items() {
            let key = gateway
                .get_api_key()
                .api_key(k.id().unwrap())
                .include_value(true)
                .send()
                .await
                .unwrap();
            keys.push((key.value().unwrap().to_owned(), key.enabled()));
        }
        keys
    };

    let shop = apps
        .create_app("shop", Some(50), Role::Ingest)
        .await
        .unwrap();
    let info = keys
        .lookup(&hash_key(&shop.api_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (info.app_id.as_str(), info.disabled),
        (shop.app_id.as_str(), false)
    );
    assert_eq!(plan_keys().await, [(shop.api_key.clone(), true)]);
    let allow = authorize(&request(&shop.api_key), &keys).await.unwrap();
    assert_eq!(
        allow.usage_identifier_key.as_deref(),
        Some(shop.api_key.as_str())
    );
    let listed = apps.list_apps().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].rate_limit),
        ("shop", Some(50))
    );

    // Disabled: the authorizer denies it and API Gateway's key is off; enabled: both back.
    assert!(apps.disable_app(&shop.app_id).await.unwrap());
    let deny = authorize(&request(&shop.api_key), &keys).await.unwrap();
    assert_eq!(
        deny.policy_document.statement[0].effect,
        aws_lambda_events::event::iam::IamPolicyEffect::Deny
    );
    assert_eq!(plan_keys().await, [(shop.api_key.clone(), false)]);
    assert!(apps.set_disabled(&shop.app_id, false).await.unwrap());
    assert_eq!(plan_keys().await, [(shop.api_key.clone(), true)]);
    assert!(!apps.disable_app("app_nobody").await.unwrap());

    // Rotated: the old key is unknown everywhere, the new one is in the plan.
    let rotated = apps.rotate_key(&shop.app_id).await.unwrap().unwrap();
    assert_eq!(rotated.app_id, shop.app_id);
    assert!(authorize(&request(&shop.api_key), &keys).await.is_err());
    authorize(&request(&rotated.api_key), &keys).await.unwrap();
    assert_eq!(plan_keys().await, [(rotated.api_key.clone(), true)]);
    assert_eq!(apps.list_apps().await.unwrap().len(), 1);
}
