//! People's Cognito tokens at the REQUEST authorizer: tokens signed with a local RSA key (made
//! by openssl), the key set served over HTTP on loopback as a user pool serves it, and every way
//! a token must be refused. Then what the `api` Lambda does with a person's context.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use axum::http::StatusCode;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cauce_ingest::api::{ApiConfig, ApiState, Tenancy};
use cauce_ingest::auth::jwt::{JwtVerifier, UserPool};
use cauce_ingest::auth::{AppAdmin, Role, SqliteKeys};
use cauce_ingest::error::IngestError;
use cauce_ingest::lambda::{api_router, authorize_with};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_store::sqlite::SqliteStore;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const CLIENT: &str = "4lt5ke1tqsq6nb0example";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/v1/reports";

/// An RSA key pair made by openssl: the private key for signing, the public one as a JWK.
struct Key {
    kid: &'static str,
    signing: EncodingKey,
    jwk: Value,
}

fn rsa_key(dir: &std::path::Path, kid: &'static str) -> Key {
    let pem = dir.join(format!("{kid}.pem"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let path = pem.to_str().unwrap();
    run(&["genrsa", "-out", path, "2048"]);
    let modulus = run(&["rsa", "-in", path, "-noout", "-modulus"]);
    let modulus = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    Key {
        kid,
        signing: EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).unwrap(),
        jwk: json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(modulus), "e": "AQAB",
        }),
    }
}

/// A user pool on loopback: its issuer URL, and how many times its key set was fetched.
async fn pool(keys: &[&Key]) -> (String, Arc<AtomicUsize>) {
    let set = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/us-east-1_Test/.well-known/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let set = set.clone();
            async move { axum::Json(set) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/us-east-1_Test"), fetches)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a Cognito id token from `issuer`, for `CLIENT`, valid for an hour.
fn id_claims(issuer: &str, groups: &[&str]) -> Value {
    json!({
        "sub": "5b7a1c7e-0d3f-4f7e-9a5e-2a1f0c3d9e11",
        "iss": issuer,
        "aud": CLIENT,
        "token_use": "id",
        "cognito:username": "ana",
        "cognito:groups": groups,
        "auth_time": now() - 60,
        "iat": now() - 60,
        "exp": now() + 3600,
    })
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.into());
    encode(&header, claims, &key.signing).unwrap()
}

/// An authorizer request with these headers and query parameters.
fn request(
    headers: &[(&str, &str)],
    query: &[(&str, &str)],
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let one: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let many: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!([v])))
        .collect();
    let q: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mq: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!([v])))
        .collect();
    serde_json::from_value(json!({
        "type": "REQUEST", "methodArn": ARN, "resource": "/v1/reports", "path": "/v1/reports",
        "httpMethod": "GET", "headers": one, "multiValueHeaders": many,
        "queryStringParameters": q, "multiValueQueryStringParameters": mq,
        "requestContext": {"accountId": "123456789012", "stage": "prod", "apiId": "abc123",
                           "requestId": "r-1", "httpMethod": "GET", "resourcePath": "/v1/reports"},
    }))
    .unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn reason(result: cauce_ingest::error::Result<cauce_ingest::auth::jwt::Person>) -> String {
    match result {
        Err(IngestError::InvalidToken(reason)) => reason,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_are_verified_against_the_pools_key_set() {
    let dir = tempfile::tempdir().unwrap();
    let (good, rogue) = (rsa_key(dir.path(), "k1"), rsa_key(dir.path(), "k2"));
    let (issuer, fetches) = pool(&[&good]).await;
    let verifier = JwtVerifier::for_pool(UserPool {
        issuer: issuer.clone(),
        client_ids: vec![CLIENT.into()],
        jwks_url: None,
    })
    .unwrap();

    // A valid id token: the strongest group gives the role.
    let person = verifier
        .verify(&sign(&good, &id_claims(&issuer, &["analyst", "developer"])))
        .await
        .unwrap();
    assert_eq!(person.role, Role::Developer);
    assert_eq!(person.subject, "5b7a1c7e-0d3f-4f7e-9a5e-2a1f0c3d9e11");
    assert_eq!(person.apps, None);

    // A valid access token names its client in `client_id`, not `aud`.
    let mut access = id_claims(&issuer, &["admin"]);
    access["token_use"] = json!("access");
    access.as_object_mut().unwrap().remove("aud");
    access["client_id"] = json!(CLIENT);
    assert_eq!(
        verifier.verify(&sign(&good, &access)).await.unwrap().role,
        Role::Admin
    );

    // Expired (beyond the leeway).
    let mut expired = id_claims(&issuer, &["analyst"]);
    expired["exp"] = json!(now() - 600);
    let why = reason(verifier.verify(&sign(&good, &expired)).await);
    assert!(why.contains("expired"), "{why}");

    // Another app client.
    let mut other_client = id_claims(&issuer, &["analyst"]);
    other_client["aud"] = json!("someone-elses-client");
    let why = reason(verifier.verify(&sign(&good, &other_client)).await);
    assert!(why.contains("another app client"), "{why}");

    // Another issuer: another pool, signed with a key this pool happens to trust.
    let other_pool = id_claims(
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other",
        &["admin"],
    );
    let why = reason(verifier.verify(&sign(&good, &other_pool)).await);
    assert!(why.contains("another issuer"), "{why}");

    // A key the pool does not have.
    let why = reason(
        verifier
            .verify(&sign(&rogue, &id_claims(&issuer, &["admin"])))
            .await,
    );
    assert!(why.contains("no key \"k2\""), "{why}");

    // A tampered payload (analyst made admin) under the original signature.
    let token = sign(&good, &id_claims(&issuer, &["analyst"]));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(id_claims(&issuer, &["admin"]).to_string());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    let why = reason(verifier.verify(&tampered).await);
    assert!(why.contains("signature"), "{why}");

    // The rogue key under the good key's id.
    let mut forged_kid = rsa_key(dir.path(), "k3");
    forged_kid.kid = "k1";
    let why = reason(
        verifier
            .verify(&sign(&forged_kid, &id_claims(&issuer, &["admin"])))
            .await,
    );
    assert!(why.contains("signature"), "{why}");

    // A user in no group, a token of no use, an HMAC token, and no JWT at all.
    let why = reason(
        verifier
            .verify(&sign(&good, &id_claims(&issuer, &[])))
            .await,
    );
    assert!(why.contains("none of the groups"), "{why}");
    let mut refresh = id_claims(&issuer, &["admin"]);
    refresh["token_use"] = json!("refresh");
    let why = reason(verifier.verify(&sign(&good, &refresh)).await);
    assert!(why.contains("token_use"), "{why}");
    let hmac = encode(
        &Header::new(Algorithm::HS256),
        &id_claims(&issuer, &["admin"]),
        &EncodingKey::from_secret(b"the public key, as a shared secret"),
    )
    .unwrap();
    let why = reason(verifier.verify(&hmac).await);
    assert!(why.contains("RS256"), "{why}");
    let why = reason(verifier.verify("ck_an_app_key_in_the_wrong_header").await);
    assert!(why.contains("not a JWT"), "{why}");

    // The key set was fetched once: the unknown kid came too soon after to fetch it again.
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_pool_that_cannot_be_reached_is_an_outage_not_a_refusal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let verifier = JwtVerifier::for_pool(UserPool {
        issuer: format!("http://{closed}/us-east-1_Gone"),
        client_ids: vec![CLIENT.into()],
        jwks_url: None,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = rsa_key(dir.path(), "k1");
    let err = verifier
        .verify(&sign(&key, &id_claims("x", &["admin"])))
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Jwks(_)), "{err}");
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn the_authorizer_takes_an_app_key_or_a_persons_token() {
    let dir = tempfile::tempdir().unwrap();
    let good = rsa_key(dir.path(), "k1");
    let (issuer, _) = pool(&[&good]).await;
    let people = JwtVerifier::for_pool(UserPool {
        issuer: issuer.clone(),
        client_ids: vec![CLIENT.into()],
        jwks_url: None,
    })
    .unwrap();
    let keys = SqliteKeys::open(dir.path().join("apps.db")).unwrap();
    let shop = keys.create_app("shop", None, Role::Ingest).await.unwrap();
    let decide = |headers: Vec<(&'static str, String)>,
                  query: Vec<(&'static str, &'static str)>| {
        let keys = &keys;
        let people = &people;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = authorize_with(&request(&h, &query), keys, Some(people)).await;
            r.map(|r| serde_json::to_value(r).unwrap())
        }
    };

    // An app key, as before: its app, its role, API Gateway's usage key.
    let json = decide(vec![("x-api-key", shop.api_key.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(json["context"]["app_id"], shop.app_id.as_str());
    assert_eq!(json["context"]["role"], "ingest");
    assert_eq!(json["usageIdentifierKey"], shop.api_key.as_str());

    // An analyst's token, naming the app in the header or the query.
    let analyst = bearer(&sign(&good, &id_claims(&issuer, &["analyst"])));
    for (headers, query) in [
        (
            vec![
                ("authorization", analyst.clone()),
                ("x-cauce-app", shop.app_id.clone()),
            ],
            vec![],
        ),
        (
            vec![("Authorization", analyst.clone())],
            vec![("app", "app_named_in_the_query")],
        ),
    ] {
        let json = decide(headers, query).await.unwrap();
        assert_eq!(json["policyDocument"]["Statement"][0]["Effect"], "Allow");
        assert_eq!(json["context"]["role"], "analyst");
        assert_eq!(
            json["context"]["subject"],
            "5b7a1c7e-0d3f-4f7e-9a5e-2a1f0c3d9e11"
        );
        assert_eq!(json["principalId"], "5b7a1c7e-0d3f-4f7e-9a5e-2a1f0c3d9e11");
        assert!(
            json.get("usageIdentifierKey").is_none_or(Value::is_null),
            "{json}"
        );
    }

    // A person restricted to some apps is denied the others.
    let mut claims = id_claims(&issuer, &["analyst"]);
    claims["custom:apps"] = json!("app_a, app_b");
    let restricted = bearer(&sign(&good, &claims));
    for (app, effect) in [("app_b", "Allow"), ("app_c", "Deny")] {
        let headers = vec![
            ("authorization", restricted.clone()),
            ("x-cauce-app", app.to_owned()),
        ];
        let json = decide(headers, vec![]).await.unwrap();
        assert_eq!(
            json["policyDocument"]["Statement"][0]["Effect"], effect,
            "{app}"
        );
    }

    // Refused with API Gateway's 401: an expired token, a bad key, nothing.
    let mut expired = id_claims(&issuer, &["admin"]);
    expired["exp"] = json!(now() - 600);
    for headers in [
        vec![("authorization", bearer(&sign(&good, &expired)))],
        vec![("x-api-key", "ck_unknown".to_owned())],
        vec![("authorization", "Basic Y2tfeDo=".to_owned())],
        vec![],
    ] {
        let err = decide(headers, vec![]).await.unwrap_err();
        assert_eq!(err.to_string(), "Unauthorized");
    }

    // Without a user pool, a token is not an identity.
    let token = vec![("authorization", analyst.as_str())];
    let err = authorize_with(&request(&token, &[]), &keys, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Unauthorized");
}

const PROXY_EVENT: &str = include_str!("data/apigw-rest-authorized.json");

#[tokio::test]
async fn a_person_reads_the_app_they_named_and_must_name_one() {
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let dir = tempfile::tempdir().unwrap();
    let queue = SqliteQueue::open(dir.path().join("q.db"), SqliteQueueConfig::default()).unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let state = ApiState::new(
        Arc::new(queue),
        Arc::new(store.clone()),
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    );
    let app = api_router(Arc::new(state));
    let timeline = |app_id: &str| {
        let mut event: Value = serde_json::from_str(PROXY_EVENT).unwrap();
        event["path"] = json!("/v1/users/u-7/timeline");
        event["httpMethod"] = json!("GET");
        event["body"] = Value::Null;
        event["requestContext"]["authorizer"] = json!({"principalId": "sub-1", "app_id": app_id, "role": "analyst", "subject": "sub-1"});
        lambda_http::request::from_str(&event.to_string())
            .unwrap()
            .map(axum::body::Body::new)
    };
    let res = common::send(&app, timeline("")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.json);
    assert_eq!(res.json["error"], "app_required");
    assert!(res.json["message"]
        .as_str()
        .unwrap()
        .contains("x-cauce-app"));

    let res = common::send(&app, timeline("app_gateway")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.json);
    assert_eq!(res.json["user_id"], "u-7", "{}", res.json);
    assert_eq!(res.json["app_id"], "app_gateway", "{}", res.json);
}
