//! The deployment, end to end on the moto server: `terraform apply` of `terraform/` (event
//! source mappings off: moto would run the functions in Docker), then the whole serverless
//! pipeline on what Terraform made, read from `terraform output`: API Gateway's authorizer and
//! the `api` handler → the SQS FIFO queue → the `writer` handler → DynamoDB → each table's
//! stream shard → the `exporter` handler → the S3 lake and the Glue partitions → `compactor` →
//! `reporter` → `GET /v1/reports` through the `api` handler. The local harness
//! (`support/harness.rs`) gives the handlers Lambda's batch semantics. Then `terraform destroy`.
//!
//! The traffic: 20,000 events in 200 batches (2 invalid items in each, every tenth batch sent
//! twice), 300 story updates in the wrong order, and A/B exposures with later conversions. The
//! same requests also go through the embedded adapters (SQLite, a folder), and both deployments
//! publish the same reports.

#[path = "support/harness.rs"]
mod harness;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use cauce_analytics::pipeline::{Pipeline, MARGIN_MS};
use cauce_analytics::reporter::{self, ReporterSettings};
use cauce_analytics::{LakeSource, Scope, Settings};
use cauce_exporter::catalog::{Catalog, GlueCatalog};
use cauce_exporter::embedded::{Embedded, EmbeddedConfig, CURSOR};
use cauce_ingest::api::{ApiConfig, ApiState, Backlog, FeedLag, Tenancy};
use cauce_ingest::archive::RawLine;
use cauce_ingest::auth::jwt::{JwtVerifier, UserPool};
use cauce_ingest::auth::{hash_key, KeyInfo, Role};
use cauce_ingest::config::AwsSettings;
use cauce_ingest::lambda::{api_router, handle_sqs};
use cauce_ingest::queue::sqlite::{SqliteQueue, SqliteQueueConfig};
use cauce_ingest::queue::Queue;
use cauce_ingest::writer::{poll, PollConfig};
use cauce_store::lake::local::LocalLake;
use cauce_store::lake::watermark;
use cauce_store::lake::Lake;
use cauce_store::sqlite::SqliteStore;
use harness::{Gateway, SqsMapping, StreamMapping};
use serde_json::{json, Value};

const BATCHES: usize = 200;
const BATCH: usize = 100;
const INVALID_PER_BATCH: usize = 2;
const STORIES: usize = 100;

/// Terraform, on a copy of `terraform/` whose provider points at the moto server.
struct Deployment {
    dir: tempfile::TempDir,
    vars: Vec<String>,
    outputs: Value,
}

impl Deployment {
    fn terraform(&self, args: &[&str]) -> std::process::Output {
        let cli = Command::new(root().join("terraform/mirror.sh")).output();
        let cli = cli.expect("terraform/mirror.sh runs");
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        let config = String::from_utf8(cli.stdout).unwrap();
        Command::new("terraform")
            .current_dir(self.dir.path())
            .args(args)
            .env("TF_CLI_CONFIG_FILE", config.trim())
            .env("TF_DATA_DIR", self.dir.path().join(".terraform-data"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("terraform runs")
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.terraform(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "terraform {args:?}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Applies the root module with the dev settings.
    fn apply(endpoint: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        copy(&root().join("terraform"), dir.path());
        std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
        let services = [
            "apigateway",
            "athena",
            "cloudwatch",
            "cloudwatchlogs",
            "cognitoidp",
            "dynamodb",
            "firehose",
            "glue",
            "iam",
            "kms",
            "lambda",
            "s3",
            "scheduler",
            "shield",
            "sns",
            "sqs",
            "sts",
            "wafv2",
        ];
        let endpoints: String = services
            .iter()
            .map(|s| format!("    {s} = \"{endpoint}\"\n"))
            .collect();
        let provider = format!(
            "provider \"aws\" {{\n  region = \"us-east-1\"\n  access_key = \"test\"\n  secret_key = \"test\"\n  skip_credentials_validation = true\n  skip_metadata_api_check = true\n  s3_use_path_style = true\n  endpoints {{\n{endpoints}  }}\n}}\n"
        );
        std::fs::write(dir.path().join("moto_override.tf"), provider).unwrap();
        // The functions' code runs here, in the harness: each zip only has to exist.
        let zips = dir.path().join("zips");
        std::fs::create_dir(&zips).unwrap();
        for f in [
            "api",
            "authorizer",
            "writer",
            "exporter",
            "compactor",
            "reporter",
        ] {
            std::fs::write(zips.join(format!("{f}.zip")), placeholder_zip()).unwrap();
        }
        let vars = vec![
            "-var-file=envs/dev.tfvars".to_owned(),
            format!("-var=name=cauce-e2e-{}", std::process::id()),
            format!("-var=lambda_dir={}", zips.display()),
            "-var=create_event_source_mappings=false".to_owned(),
            "-var=restrict_dlq_sources=false".to_owned(),
            "-var=queue_visibility_timeout_s=2".to_owned(),
        ];
        let mut d = Deployment {
            dir,
            vars,
            outputs: Value::Null,
        };
        d.run(&["init", "-input=false", "-no-color"]);
        let mut apply = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
        apply.extend(d.vars.iter().map(String::as_str));
        d.run(&apply);
        let outputs: Value = serde_json::from_str(&d.run(&["output", "-json"])).unwrap();
        d.outputs = outputs;
        d
    }

    fn out(&self, name: &str) -> &Value {
        &self.outputs[name]["value"]
    }

    fn text(&self, name: &str) -> String {
        self.out(name).as_str().unwrap().to_owned()
    }

    fn destroy(&self) {
        let mut destroy = vec!["destroy", "-auto-approve", "-input=false", "-no-color"];
        destroy.extend(self.vars.iter().map(String::as_str));
        let text = self.run(&destroy);
        assert!(text.contains("Destroy complete!"), "{text}");
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A zip with one stored `bootstrap` entry (a shell script that says where the code runs).
fn placeholder_zip() -> Vec<u8> {
    let data = b"#!/bin/sh\necho 'the tests run the handlers in process'\n";
    let crc = crc32(data);
    let name = b"bootstrap";
    let mut local = vec![0x50, 0x4b, 0x03, 0x04, 10, 0, 0, 0, 0, 0, 0, 0, 0x21, 0];
    local.extend(crc.to_le_bytes());
    local.extend((data.len() as u32).to_le_bytes());
    local.extend((data.len() as u32).to_le_bytes());
    local.extend((name.len() as u16).to_le_bytes());
    local.extend(0u16.to_le_bytes());
    local.extend(name);
    local.extend(data);
    let mut central = vec![
        0x50, 0x4b, 0x01, 0x02, 0x14, 3, 10, 0, 0, 0, 0, 0, 0, 0, 0x21, 0,
    ];
    central.extend(crc.to_le_bytes());
    central.extend((data.len() as u32).to_le_bytes());
    central.extend((data.len() as u32).to_le_bytes());
    central.extend((name.len() as u16).to_le_bytes());
    central.extend([0u8; 8]);
    central.extend((0o100755u32 << 16).to_le_bytes());
    central.extend(0u32.to_le_bytes());
    central.extend(name);
    let mut end = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0];
    end.extend((central.len() as u32).to_le_bytes());
    end.extend((local.len() as u32).to_le_bytes());
    end.extend(0u16.to_le_bytes());
    [local, central, end].concat()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One request of the traffic: route and body.
struct Request {
    path: &'static str,
    body: String,
}

/// The traffic, in sending order.
fn traffic(now: i64) -> Vec<Request> {
    let mut out = Vec::new();
    for b in 0..BATCHES {
        let items: Vec<Value> = (0..BATCH)
            .map(|i| {
                if i < INVALID_PER_BATCH {
                    json!({"event_id": format!("bad-{b}-{i}"), "timestamp": now}) // no name
                } else {
                    json!({"event_id": format!("e{b}-{i}"), "name": (["open", "view", "buy"][i % 3]),
                           "timestamp": now - (i as i64) * 1000, "user_id": format!("u{}", (b * 7 + i) % 150),
                           "session_id": format!("s{}", (b * 7 + i) % 150), "properties": {"i": i}})
                }
            })
            .collect();
        let body = json!({ "batch": items }).to_string();
        if b % 10 == 0 {
            out.push(Request {
                path: "/v1/events",
                body: body.clone(),
            });
        }
        out.push(Request {
            path: "/v1/events",
            body,
        });
    }
    // Story versions out of order: the newest (completed) first, then two older ones.
    for version in [3, 1, 2] {
        let items: Vec<Value> = (0..STORIES)
            .map(|s| {
                let outcome = if version == 3 { "completed" } else { "in_progress" };
                json!({"story_id": format!("st{s}"), "name": "checkout", "user_id": format!("u{s}"),
                       "started_at": now - 600_000, "updated_at": now - 300_000 + version, "outcome": outcome,
                       "steps": (0..version).map(|k| json!({"name": (["cart", "address", "pay"][k as usize]), "at": now - 500_000 + k})).collect::<Vec<_>>()})
            })
            .collect();
        out.push(Request {
            path: "/v1/stories",
            body: json!({ "batch": items }).to_string(),
        });
    }
    for converted in [false, true] {
        let items: Vec<Value> = (0..60)
            .filter(|u| !converted || u % 3 == 0)
            .map(|u| {
                json!({"experiment": "paywall", "user_id": format!("u{u}"), "variant": (["control", "annual"][u % 2]),
                       "exposed_at": now - 400_000, "updated_at": now - 400_000 + i64::from(converted),
                       "converted": converted})
            })
            .collect();
        out.push(Request {
            path: "/v1/tests",
            body: json!({ "batch": items }).to_string(),
        });
    }
    out
}

/// Sends the traffic through a gateway; returns the request ids that reached the queue, with
/// their bodies, and the items accepted.
async fn send(
    gateway: &Gateway<'_>,
    key: &str,
    requests: &[Request],
    tag: &str,
) -> (BTreeMap<String, String>, usize) {
    let mut archived = BTreeMap::new();
    let mut accepted = 0;
    for (n, r) in requests.iter().enumerate() {
        let id = format!("{tag}-{n:05}");
        let (status, body) = gateway.call("POST", r.path, key, Some(&r.body), &id).await;
        assert!([202, 207].contains(&status), "{status} {body}");
        accepted += body["accepted"].as_u64().unwrap() as usize;
        archived.insert(id, r.body.clone());
    }
    (archived, accepted)
}

/// One string column and the `updated_at` (or 0) of every row.
fn column(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column_by_name(name).unwrap();
        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..c.len()).map(|i| c.value(i).to_owned()));
    }
    out
}

fn times(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column_by_name(name).unwrap();
        let c = c
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        out.extend((0..c.len()).map(|i| c.value(i)));
    }
    out
}

/// A new member of `group` in the pool, signed in through `client`: their id token, which moto
/// signs with its own key (boto3, from the test virtualenv).
fn person_token(endpoint: &str, pool: &str, client: &str, group: &str) -> String {
    let script = r#"
import sys, boto3
endpoint, pool, client, group = sys.argv[1:5]
idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name="us-east-1")
user, password = f"{group}@example.com", "Corr3ct-horse-battery!"
idp.admin_create_user(UserPoolId=pool, Username=user, MessageAction="SUPPRESS")
idp.admin_set_user_password(UserPoolId=pool, Username=user, Password=password, Permanent=True)
idp.admin_add_user_to_group(UserPoolId=pool, Username=user, GroupName=group)
auth = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": user, "PASSWORD": password})
print(auth["AuthenticationResult"]["IdToken"])
"#;
    python_inline(script, &[endpoint, pool, client, group])
        .trim()
        .to_owned()
}

/// Runs a Python script of this file with the test virtualenv's Python; it must succeed.
/// Returns what it printed.
fn python_inline(script: &str, args: &[&str]) -> String {
    let python = std::env::var("CAUCE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let out = Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The Parquet schema of a lake file, as pyarrow reads it, in Hive's type names.
fn pyarrow_columns(file: &Path) -> Vec<(String, String)> {
    let script = r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
def hive(t):
    if pa.types.is_string(t) or pa.types.is_large_string(t): return "string"
    if pa.types.is_timestamp(t): return "timestamp"
    if pa.types.is_boolean(t): return "boolean"
    if pa.types.is_float64(t): return "double"
    if pa.types.is_int64(t): return "bigint"
    if pa.types.is_list(t): return "array<" + hive(t.value_type) + ">"
    if pa.types.is_struct(t): return "struct<" + ",".join(f.name + ":" + hive(f.type) for f in t) + ">"
    raise SystemExit(f"no Hive type for {t}")
schema = pq.read_schema(sys.argv[1])
print(json.dumps([[f.name, hive(f.type)] for f in schema]))
"#;
    serde_json::from_str(&python_inline(script, &[file.to_str().unwrap()])).unwrap()
}

/// Runs the writer and the stream mappings until a whole round finds nothing to do.
async fn drain(
    sqs: &SqsMapping,
    streams: &mut [StreamMapping],
    (queue, store): (&dyn Queue, &dyn cauce_store::RecordStore),
    lake: &dyn Lake,
    catalog: &GlueCatalog,
    settle: bool,
) {
    // Settling waits out three idle rounds (failed messages return after the visibility
    // timeout); otherwise one idle round ends it.
    let rounds = if settle { 3 } else { 1 };
    let mut idle = 0;
    while idle < rounds {
        let mut work = 0;
        loop {
            let n = sqs
                .poll(|e| async { handle_sqs(e, store, queue).await.map_err(|e| e.to_string()) })
                .await;
            work += n;
            if n == 0 {
                break;
            }
        }
        for s in streams.iter_mut() {
            work += s
                .poll(|payload| async move {
                    let catalog = Some(catalog as &dyn Catalog);
                    Ok(cauce_exporter::stream::handle(&payload, lake, catalog)
                        .await
                        .0)
                })
                .await;
        }
        idle = if work == 0 { idle + 1 } else { 0 };
        if work == 0 && settle {
            // Failed messages come back after the queue's visibility timeout (2 s here).
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
}

/// The embedded twin: the same requests through the embedded adapters; its reports.
async fn embedded_reports(
    dir: &Path,
    keys: &dyn cauce_ingest::auth::KeyLookup,
    key: &str,
    requests: &[Request],
    now: chrono::DateTime<chrono::Utc>,
) -> PathBuf {
    let queue =
        Arc::new(SqliteQueue::open(dir.join("queue.db"), SqliteQueueConfig::default()).unwrap());
    let store = Arc::new(SqliteStore::open(dir.join("store.db")).unwrap());
    let lake = Arc::new(LocalLake::new(dir.join("lake")));
    let state = ApiState::new(
        queue.clone(),
        store.clone(),
        Tenancy::Authorizer,
        None,
        ApiConfig::default(),
    );
    let gateway = Gateway {
        api: api_router(Arc::new(state)),
        admin: None,
        keys,
        people: None,
    };
    send(&gateway, key, requests, "embedded").await;
    let writer = tokio::spawn(poll(queue.clone(), store.clone(), PollConfig::default()));
    let exporter = Embedded::new((*store).clone(), lake.clone(), EmbeddedConfig::default())
        .await
        .unwrap();
    let exporter = tokio::spawn(exporter.run());
    let lag = FeedLag::new((*store).clone(), CURSOR);
    for _ in 0..600 {
        if queue.pending().await.unwrap() == 0 && lag.backlog().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lag.backlog().await.unwrap(), 0, "the embedded twin drained");
    writer.abort();
    exporter.abort();
    let scope = Scope::last_days(0, now.date_naive());
    reporter::publish(
        lake.as_ref(),
        &LakeSource::folder(lake.root()),
        &scope,
        &Settings::default(),
        now,
    )
    .await
    .unwrap();
    dir.join("lake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_on_moto_runs_the_whole_serverless_pipeline() {
    if !cauce_store::aws::emulator("terraform_on_moto_runs_the_whole_serverless_pipeline") {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let deployment = Deployment::apply(&endpoint);
    let aws = cauce_store::aws::sdk_config().await;
    // The guards came up with the pipeline: the alarms, and the web ACL on the stage.
    let alarms = deployment.out("alarms").as_object().unwrap();
    // 24 as in the module's own test, the throttles of the bad-rows table, and the errors and
    // throttles of the admin function.
    assert_eq!(alarms.len(), 27, "{alarms:?}");
    assert!(alarms
        .keys()
        .any(|a| a.ends_with("-dynamodb-throttles-bad_rows")));
    assert!(deployment.text("web_acl_arn").contains(":regional/webacl/"));
    let stream_arns = deployment.out("stream_arns").clone();
    let settings = AwsSettings {
        queue_url: deployment.text("queue_url"),
        dlq_url: deployment.text("dlq_url"),
        table_prefix: deployment.text("table_prefix"),
        clients_table: deployment.text("clients_table"),
        ttl_days: 30,
        receive_wait: Duration::ZERO,
        lake: deployment.text("lake_url"),
        raw_stream: Some(deployment.text("raw_stream_name")),
        // Fewer groups than the default 16: moto's FIFO deduplication scans every message it
        // holds on each send, and 10 messages a request make this test take a quarter hour.
        group_buckets: 2,
    };

    // An app, in the clients table that the authorizer reads.
    let keys = settings.keys(&aws);
    let key = cauce_ingest::auth::generate_key();
    let app_id = "app_e2e".to_owned();
    let info = KeyInfo {
        app_id: app_id.clone(),
        role: Role::Developer,
        disabled: false,
        rate_limit: None,
    };
    keys.put_key(&hash_key(&key), &info).await.unwrap();

    let now = chrono::Utc::now();
    let requests = traffic(now.timestamp_millis());
    // The team's user pool, its key set where moto serves it.
    let pool = deployment.text("team_user_pool_id");
    let people = JwtVerifier::for_pool(UserPool {
        issuer: deployment.text("team_issuer"),
        client_ids: vec![deployment.text("team_client_id")],
        jwks_url: Some(format!("{endpoint}/{pool}/.well-known/jwks.json")),
    })
    .unwrap();
    // The `admin` function: the `api` code with the settings Terraform gives it, managing the
    // apps of the clients table and API Gateway's keys (this test is the only one of its binary,
    // so it may set the environment).
    let plans = deployment.out("usage_plan_ids").to_string();
    for (name, value) in [
        ("CAUCE_ADMIN_TIER", "standard"),
        ("CAUCE_CLIENTS_TABLE", settings.clients_table.as_str()),
        ("CAUCE_USAGE_PLANS", plans.as_str()),
    ] {
        std::env::set_var(name, value);
    }
    let mut admin = settings.api_state(&aws).await.unwrap();
    admin.admin = Some(Arc::new(AwsSettings::app_admin().await.unwrap().unwrap()));
    let gateway = Gateway {
        api: api_router(Arc::new(settings.api_state(&aws).await.unwrap())),
        admin: Some(api_router(Arc::new(admin))),
        keys: &keys,
        people: Some(&people),
    };

    // The event source mappings, as Terraform's stream_export module sets them.
    let sqs_client = aws_sdk_sqs::Client::new(&aws);
    let writer = SqsMapping::new(sqs_client.clone(), &settings.queue_url, 10).await;
    let failures = (sqs_client.clone(), deployment.text("stream_failures_url"));
    let streams_client = aws_sdk_dynamodbstreams::Client::new(&aws);
    let mut streams: Vec<StreamMapping> = ["events", "stories", "tests"]
        .iter()
        .map(|k| {
            StreamMapping::new(
                streams_client.clone(),
                stream_arns[k].as_str().unwrap(),
                100,
                3,
                failures.clone(),
            )
        })
        .collect();
    let lake = cauce_store::lake::open(&settings.lake).await.unwrap();
    let glue = aws_sdk_glue::Client::new(&aws);
    let database = deployment.text("glue_database");
    let catalog = GlueCatalog::new(glue.clone(), &database);
    let (queue, store) = (settings.queue(&aws), settings.store(&aws));
    let ports: (&dyn Queue, &dyn cauce_store::RecordStore) = (&queue, &store);

    // The mappings consume while the clients send, as Lambda does (and moto's FIFO receive
    // slows down with the queue's depth).
    let (mut archived, mut accepted) = (BTreeMap::new(), 0);
    for (n, chunk) in requests.chunks(10).enumerate() {
        let (ids, items) = send(&gateway, &key, chunk, &format!("aws{n:03}")).await;
        archived.extend(ids);
        accepted += items;
        drain(&writer, &mut streams, ports, lake.as_ref(), &catalog, false).await;
    }
    drain(&writer, &mut streams, ports, lake.as_ref(), &catalog, true).await;
    let wrong = (BATCHES + BATCHES / 10) * INVALID_PER_BATCH;
    assert_eq!(
        accepted,
        (BATCHES + BATCHES / 10) * BATCH - wrong + 3 * STORIES + 60 + 20
    );
    assert!(
        streams.iter().all(|s| s.skipped == 0),
        "no stream batch given up"
    );

    // Every accepted event once; none of the invalid ones; the newest story and test versions.
    let events = cauce_exporter::file::decode_prefix(lake.as_ref(), "events/")
        .await
        .unwrap();
    let ids = column(&events, "event_id");
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice");
    assert_eq!(ids.len(), BATCHES * (BATCH - INVALID_PER_BATCH));
    assert!(ids.iter().all(|id| !id.starts_with("bad-")));
    let stories = cauce_exporter::file::decode_prefix(lake.as_ref(), "stories/")
        .await
        .unwrap();
    let (story_ids, outcomes, updated) = (
        column(&stories, "story_id"),
        column(&stories, "outcome"),
        times(&stories, "updated_at"),
    );
    let mut newest: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    for ((id, outcome), at) in story_ids.iter().zip(&outcomes).zip(&updated) {
        let e = newest.entry(id).or_insert((*at, outcome));
        if *at > e.0 {
            *e = (*at, outcome);
        }
    }
    assert_eq!(newest.len(), STORIES);
    assert!(
        newest.values().all(|(_, o)| *o == "completed"),
        "the newest version wins: {newest:?}"
    );
    let tests = cauce_exporter::file::decode_prefix(lake.as_ref(), "tests/")
        .await
        .unwrap();
    assert_eq!(column(&tests, "experiment").len(), 60 + 20);

    // The analytics SDKs' routes, which API Gateway leaves to the api function: a mobile SDK's
    // batch (Basic auth, text/plain) and analytics.js's single call (the key in the body only),
    // then a request with no key at all. Their events reach the lake with the new columns.
    // Another app, so that the reports below stay the embedded twin's.
    let sdk_key = cauce_ingest::auth::generate_key();
    let sdk_app = KeyInfo {
        app_id: "app_sdk".into(),
        role: Role::Ingest,
        disabled: false,
        rate_limit: None,
    };
    keys.put_key(&hash_key(&sdk_key), &sdk_app).await.unwrap();
    let basic = support::basic(&sdk_key);
    let sdk_batch = json!({
        "batch": [
            {"type": "track", "event": "Song Played", "messageId": "sdk-1", "anonymousId": "device-1",
             "originalTimestamp": cauce_store::time::format_rfc3339(now.timestamp_millis())},
            {"type": "screen", "name": "Home", "messageId": "sdk-2", "userId": "u-sdk"},
        ],
        "sentAt": cauce_store::time::format_rfc3339(now.timestamp_millis()),
    });
    let text = json!({"content-type": "text/plain", "authorization": basic});
    let (status, answer) = gateway
        .call_open("/v1/b", text, &sdk_batch.to_string(), "sdk-batch")
        .await;
    assert_eq!(
        (status, answer["accepted"].as_i64()),
        (200, Some(2)),
        "{answer}"
    );
    let browser = json!({"type": "page", "name": "Pricing", "messageId": "sdk-3", "anonymousId": "b-1", "writeKey": sdk_key});
    let plain = json!({"content-type": "text/plain"});
    let (status, answer) = gateway
        .call_open("/v1/p", plain.clone(), &browser.to_string(), "sdk-page")
        .await;
    assert_eq!(
        (status, answer["accepted"].as_i64()),
        (200, Some(1)),
        "{answer}"
    );
    let nobody = json!({"type": "page", "name": "x", "anonymousId": "b-2"});
    let (status, _) = gateway
        .call_open("/v1/p", plain, &nobody.to_string(), "sdk-nobody")
        .await;
    assert_eq!(status, 401);
    drain(&writer, &mut streams, ports, lake.as_ref(), &catalog, true).await;
    let events = cauce_exporter::file::decode_prefix(lake.as_ref(), "events/")
        .await
        .unwrap();
    let ids = column(&events, "event_id");
    for id in ["sdk-1", "sdk-2", "sdk-3"] {
        assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id}");
    }
    let anonymous = column(&events, "anonymous_id");
    assert!(
        anonymous.iter().any(|a| a == "device-1"),
        "the new columns reach the lake"
    );

    // The compactor (nothing is closed yet) registers the recent partitions again.
    cauce_exporter::compact::scheduled(lake.as_ref(), 128, Some(&catalog))
        .await
        .unwrap();

    // Glue: a partition per lake folder; the tables' columns are the files' schema.
    let folders: std::collections::BTreeSet<String> =
        cauce_exporter::compact::partitions(lake.as_ref())
            .await
            .unwrap()
            .keys()
            .map(|p| p.dir())
            .collect();
    let mut registered = BTreeSet::new();
    for kind in ["events", "stories", "tests"] {
        let out = glue
            .get_partitions()
            .database_name(&database)
            .table_name(kind)
            .send()
            .await
            .unwrap();
        for p in out.partitions() {
            registered.insert(format!(
                "{kind}/dt={}/hour={}",
                p.values()[0],
                p.values()[1]
            ));
        }
        let table = glue
            .get_table()
            .database_name(&database)
            .name(kind)
            .send()
            .await
            .unwrap();
        let glue_columns: Vec<(String, String)> = table
            .table()
            .unwrap()
            .storage_descriptor()
            .unwrap()
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.r#type().unwrap().to_owned()))
            .collect();
        let file = lake.list(&format!("{kind}/")).await.unwrap().remove(0);
        let local = tempfile::NamedTempFile::new().unwrap();
        lake.download(&file.key, local.path()).await.unwrap();
        assert_eq!(glue_columns, pyarrow_columns(local.path()), "{kind}");
    }
    assert_eq!(registered, folders);

    // The raw archive holds every body that reached the queue, byte for byte, with its app.
    let raw_url = deployment.text("raw_url");
    let raw_bucket = cauce_store::lake::open(&raw_url).await.unwrap();
    let mut found = BTreeMap::new();
    for object in raw_bucket.list("").await.unwrap() {
        let bytes = raw_bucket.get(&object.key).await.unwrap();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line: RawLine<'_> = serde_json::from_slice(line).unwrap();
            let app = if line.request_id.starts_with("sdk-") {
                "app_sdk"
            } else {
                app_id.as_str()
            };
            assert_eq!(line.app_id, app);
            let body = String::from_utf8(line.body_bytes().to_vec()).unwrap();
            let protocol = line.protocol.map(|p| p.into_owned());
            found.insert(line.request_id.into_owned(), (protocol, body));
        }
    }
    // The SDKs' bodies are archived as they were sent, with their protocol (replay translates
    // them again), and never with the write key.
    for (request, id, protocol) in [
        ("sdk-batch", "sdk-1", "segment/batch"),
        ("sdk-page", "sdk-3", "segment/page"),
    ] {
        let (kept, body) = found.remove(request).expect("the SDK's body is archived");
        assert_eq!(kept.as_deref(), Some(protocol));
        assert!(body.contains(&format!("\"messageId\":\"{id}\"")), "{body}");
        assert!(!body.contains(&sdk_key), "never the write key: {body}");
    }
    let found: BTreeMap<String, String> = found
        .into_iter()
        .map(|(request, (protocol, body))| {
            assert_eq!(protocol, None, "{request}");
            (request, body)
        })
        .collect();
    assert_eq!(found, archived);

    // The reporter on its schedule, then the reports through API Gateway; equal to the embedded
    // twin's for the same traffic.
    let schedule: EventBridgeEvent = serde_json::from_value(json!({
        "version": "0", "id": "e2e", "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": "123456789012", "time": now.to_rfc3339(), "region": "us-east-1",
        "resources": [], "detail": {},
    }))
    .unwrap();
    // The lake's watermark, from the pipeline's ages as AWS measures them. moto measures
    // neither, so the test puts what AWS would: first a queue that holds a message 40 minutes
    // old (the reporter's margin and the exporter's age come on top), then, once it is drained
    // by the writer, none.
    let pipeline = Pipeline {
        queue_url: settings.queue_url.clone(),
        exporter_function: deployment.out("functions")["exporter"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let measured = |metric: &'static str, dimension: (&'static str, String), value: f64| {
        let namespace = if metric == "IteratorAge" {
            "AWS/Lambda"
        } else {
            "AWS/SQS"
        };
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(metric)
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name(dimension.0)
                    .value(dimension.1)
                    .build(),
            )
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_millis(
                cauce_store::time::now_ms() - 60_000,
            ))
            .value(value)
            .build();
        cloudwatch
            .put_metric_data()
            .namespace(namespace)
            .metric_data(datum)
            .send()
    };
    measured(
        "IteratorAge",
        ("FunctionName", pipeline.exporter_function.clone()),
        7_000.0,
    )
    .await
    .unwrap();
    let unknown = watermark::read(lake.as_ref()).await.unwrap();
    assert_eq!(unknown, None, "nothing wrote a watermark yet");
    // Sent with the other app's key: the reports compared below are the first app's.
    let late = json!([{"event_id": "late-1", "name": "open", "timestamp": now.timestamp_millis(), "user_id": "u-late"}]);
    let (status, body) = gateway
        .call(
            "POST",
            "/v1/events",
            &sdk_key,
            Some(&json!({"batch": late}).to_string()),
            "late",
        )
        .await;
    assert_eq!(status, 202, "{body}");
    reporter::mark_complete(lake.as_ref(), &pipeline).await;
    assert_eq!(
        watermark::read(lake.as_ref()).await.unwrap(),
        None,
        "a queue that holds a message of unknown age leaves no watermark"
    );
    let queue_name = pipeline.queue_name().to_owned();
    measured(
        "ApproximateAgeOfOldestMessage",
        ("QueueName", queue_name),
        2_400.0,
    )
    .await
    .unwrap();
    let before = cauce_store::time::now_ms();
    reporter::mark_complete(lake.as_ref(), &pipeline).await;
    let mark = watermark::read(lake.as_ref())
        .await
        .unwrap()
        .expect("a watermark");
    let behind = before - mark.complete_before_ms;
    // Measured a moment after `before`: at most the ages and the margin behind it.
    let lags = 2_400_000 + 7_000 + MARGIN_MS;
    assert!(
        (lags - 60_000..=lags).contains(&behind),
        "40 min queued, 7 s in the stream, the margin: {behind} ms behind"
    );
    drain(&writer, &mut streams, ports, lake.as_ref(), &catalog, true).await;
    let before = cauce_store::time::now_ms();
    let run = ReporterSettings {
        lake: settings.lake.clone(),
        days: 0,
        max_bytes: 1 << 30,
        pipeline: Some(pipeline.clone()),
        features: true,
    };
    let published = reporter::handle(lake.as_ref(), &run, &Settings::default(), &schedule)
        .await
        .unwrap();
    // The feature table too, as of a week back (this traffic is today's: no user yet).
    let table = published.features.expect("the feature table");
    let written = lake.get(&table.table).await.unwrap();
    assert!(written.starts_with(b"PAR1"), "{table:?}");
    assert_eq!(table.rows, 0, "{table:?}");
    let mark = watermark::read(lake.as_ref())
        .await
        .unwrap()
        .expect("a watermark");
    let behind = before - mark.complete_before_ms;
    let lags = 7_000 + MARGIN_MS;
    assert!(
        (lags - 60_000..=lags).contains(&behind),
        "an empty queue needs no age: {behind} ms behind"
    );
    let index = lake
        .get(cauce_store::lake::layout::REPORTS_INDEX)
        .await
        .unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    let some_report = cauce_store::lake::layout::report_key(&app_id, "volume");
    let report: Value = serde_json::from_slice(&lake.get(&some_report).await.unwrap()).unwrap();
    assert_eq!(
        report["complete_before"].as_str(),
        Some(mark.complete_before.as_str()),
        "the reports say up to when the lake is complete: {index}"
    );
    let twin = tempfile::tempdir().unwrap();
    let twin_lake =
        LocalLake::new(embedded_reports(twin.path(), &keys, &key, &requests, now).await);
    let (status, list) = gateway.call("GET", "/v1/reports", &key, None, "list").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<String> = serde_json::from_value(list["reports"].clone()).unwrap();
    assert_eq!(names.len(), cauce_analytics::ALL.len(), "{list}");
    for name in names {
        let (status, report) = gateway
            .call("GET", &format!("/v1/reports/{name}"), &key, None, &name)
            .await;
        assert_eq!(status, 200, "{report}");
        let key = cauce_store::lake::layout::report_key(&app_id, &name);
        let twin: Value = serde_json::from_slice(&twin_lake.get(&key).await.unwrap()).unwrap();
        // Each says its own lake's watermark (the twin's lake has none).
        let mut report = report;
        assert_eq!(
            report["complete_before"],
            json!(mark.complete_before),
            "{name}"
        );
        report["complete_before"] = twin["complete_before"].clone();
        assert_eq!(report, twin, "{name}: AWS and embedded agree");
    }

    // A person of the team, signed in to the pool Terraform made (moto signs the token), reads
    // the same reports for the app they name, and must name one; a token from outside the pool
    // is refused.
    let analyst = person_token(
        &endpoint,
        &pool,
        &deployment.text("team_client_id"),
        "analyst",
    );
    let bearer = format!("Bearer {analyst}");
    let as_person = |app: Option<&str>| {
        let mut headers = json!({ "authorization": bearer });
        if let Some(app) = app {
            headers["x-cauce-app"] = json!(app);
        }
        headers
    };
    let (status, theirs) = gateway
        .call_with(
            "GET",
            "/v1/reports",
            as_person(Some(&app_id)),
            None,
            "person",
        )
        .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs, list, "the person sees what the app's key sees");
    let (status, body) = gateway
        .call_with("GET", "/v1/reports", as_person(None), None, "no-app")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("app_required")),
        "{body}"
    );
    let (status, body) = gateway
        .call_with(
            "POST",
            "/v1/admin/apps",
            as_person(None),
            Some(r#"{"name": "x"}"#),
            "analyst-admin",
        )
        .await;
    assert_eq!(status, 403, "an analyst manages no apps: {body}");

    // An admin of the team manages apps without an app key: one made, whose key works at once,
    // then disabled, whose key is refused.
    let admin = format!(
        "Bearer {}",
        person_token(
            &endpoint,
            &pool,
            &deployment.text("team_client_id"),
            "admin"
        )
    );
    let (status, made) = gateway
        .call_with(
            "POST",
            "/v1/admin/apps",
            json!({"authorization": admin}),
            Some(r#"{"name": "made-by-an-admin", "role": "analyst"}"#),
            "create",
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (new_app, new_key) = (
        made["app_id"].as_str().unwrap(),
        made["api_key"].as_str().unwrap(),
    );
    let (status, body) = gateway
        .call("GET", "/v1/reports", new_key, None, "new-key")
        .await;
    assert_eq!(
        (status, body["app_id"].as_str()),
        (200, Some(new_app)),
        "{body}"
    );
    let (status, apps) = gateway
        .call_with(
            "GET",
            "/v1/admin/apps",
            json!({"authorization": admin}),
            None,
            "list",
        )
        .await;
    assert_eq!(status, 200, "{apps}");
    assert!(apps.to_string().contains(new_app), "{apps}");
    let disable = format!("/v1/admin/apps/{new_app}/disable");
    let (status, body) = gateway
        .call_with(
            "POST",
            &disable,
            json!({"authorization": admin}),
            None,
            "disable",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        gateway
            .call("GET", "/v1/reports", new_key, None, "off")
            .await
            .0,
        403
    );

    let forged = format!("Bearer {}x", analyst.trim_end_matches(|c| c != '.'));
    let (status, _) = gateway
        .call_with(
            "GET",
            "/v1/reports",
            json!({"authorization": forged, "x-cauce-app": app_id}),
            None,
            "forged",
        )
        .await;
    assert_eq!(status, 401);

    // Nothing dead-lettered anywhere.
    for url in [&settings.dlq_url, &deployment.text("stream_failures_url")] {
        let attrs = sqs_client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n = &attrs.attributes().unwrap()
            [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages];
        assert_eq!(n, "0", "{url}");
    }
    deployment.destroy();
}
