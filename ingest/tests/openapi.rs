//! The OpenAPI document: the committed `ingest/openapi.json` is the one the code generates, the
//! server serves it, and every route it describes is a route the server has.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use cauce_ingest::api::{document_json, ApiConfig};
use common::{call, Harness};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let generated = document_json();
    if std::env::var_os("CAUCE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "ingest/openapi.json is not the document the code generates (they part at line {}: \
             committed {:?}, generated {:?}). Regenerate it with \
             `CAUCE_UPDATE_OPENAPI=1 cargo test -p cauce-ingest --test openapi` and commit it.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end>"),
            generated.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[tokio::test]
async fn the_server_serves_the_document_and_has_every_route_it_describes() {
    let h = Harness::new(ApiConfig::default());
    let res = call(&h.router, Method::GET, "/openapi.json", None, None, "").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["content-type"], "application/json");
    let doc: Value = serde_json::from_str(document_json()).unwrap();
    assert_eq!(res.json, doc, "the served document is the generated one");

    // Every described operation reaches a handler (here, without a key: a refusal of the
    // caller, or the handler's own answer), never the 404 of a path the server does not know.
    // `GET /metrics` is the exception: this deployment serves no metrics page, and says so.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri = path
            .replace("{user_id}", "u1")
            .replace("{name}", "volume")
            .replace("{app_id}", "app_x")
            .replace("{write_key}", "ck_unknown");
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let method: Method = method.to_uppercase().parse().unwrap();
            let res = call(&h.router, method.clone(), &uri, None, None, "").await;
            let unknown = res.json["message"] == "no such route";
            assert_eq!(unknown, path == "/metrics", "{method} {uri}: {}", res.json);
            assert!(res.status.as_u16() < 500, "{method} {uri}: {}", res.json);
            let documented = item[method.as_str().to_lowercase()]["responses"]
                .get(res.status.as_str())
                .is_some();
            assert!(
                documented || unknown,
                "{method} {uri} answered {}, which the document does not list",
                res.status
            );
        }
    }
    assert!(operations >= 30, "{operations} operations");
}
