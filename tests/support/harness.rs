//! A local stand-in for what AWS does between the resources and the functions, where the moto
//! server cannot (it would run Lambda functions in Docker): the handlers run in this process, on
//! the resources that Terraform made, with Lambda's semantics.
//!
//! * [`Gateway`]: API Gateway's REST proxy. The REQUEST authorizer handler decides (401 or a
//!   policy with its context); then the `api` handler gets the proxy event, as `lambda_http`
//!   converts it in Lambda.
//! * [`SqsMapping`]: an SQS event source mapping: batches of up to `batch_size` messages as
//!   Lambda's SQS event; a partial batch response deletes every message but the failed ones
//!   (which come back after the visibility timeout); a function error deletes none.
//! * [`StreamMapping`]: a DynamoDB Streams event source mapping: shards in lineage order (a
//!   child after its parent has ended), batches from the checkpoint, `ReportBatchItemFailures`
//!   (the next try starts at the failed record), bisection on a function error,
//!   `maximum_retry_attempts`, then the on-failure destination (an SQS message naming the
//!   skipped range), and on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::body::Body;
use cauce_ingest::auth::jwt::JwtVerifier;
use cauce_ingest::auth::KeyLookup;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

/// API Gateway in front of the `api` and `authorizer` handlers.
pub struct Gateway<'a> {
    /// The `api` Lambda's router.
    pub api: axum::Router,
    /// The `admin` Lambda's router, behind `/v1/admin/…`, where the deployment has one.
    pub admin: Option<axum::Router>,
    /// The clients table, as the authorizer reads it.
    pub keys: &'a dyn KeyLookup,
    /// The team's user pool, where the authorizer has one.
    pub people: Option<&'a JwtVerifier>,
}

impl Gateway<'_> {
    /// One request with an app key through the authorizer and the proxy integration: (status,
    /// JSON body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&str>,
        request_id: &str,
    ) -> (u16, Value) {
        let headers = json!({"x-api-key": key});
        self.call_with(method, path, headers, body, request_id)
            .await
    }

    /// One request on a route without an authorizer (the analytics SDKs'): straight to the
    /// `api` handler with `headers` and a raw body, as API Gateway passes it.
    pub async fn call_open(
        &self,
        path: &str,
        headers: Value,
        body: &str,
        request_id: &str,
    ) -> (u16, Value) {
        self.proxy("POST", path, headers, Some(body), Value::Null, request_id)
            .await
    }

    /// One request with these credential headers: (status, JSON body).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        mut headers: Value,
        body: Option<&str>,
        request_id: &str,
    ) -> (u16, Value) {
        headers["content-type"] = json!("application/json");
        let auth: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_value(json!({
            "type": "REQUEST", "methodArn": format!("arn:aws:execute-api:us-east-1:123456789012:moto/v1/{method}{path}"),
            "resource": path, "path": path, "httpMethod": method, "headers": headers,
            "requestContext": {"requestId": request_id, "stage": "v1"},
        }))
        .unwrap();
        let decision = cauce_ingest::lambda::authorize_with(&auth, self.keys, self.people);
        let Ok(policy) = decision.await else {
            return (401, json!({"message": "Unauthorized"}));
        };
        let policy = serde_json::to_value(&policy).unwrap();
        if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow" {
            return (
                403,
                json!({"message": "User is not authorized to access this resource"}),
            );
        }
        let mut authorizer = policy["context"].as_object().cloned().unwrap_or_default();
        authorizer.insert("principalId".into(), policy["principalId"].clone());
        let authorizer = Value::Object(authorizer);
        self.proxy(method, path, headers, body, authorizer, request_id)
            .await
    }

    /// The proxy integration: the `api` (or `admin`) handler gets the request as API Gateway
    /// passes it, with the authorizer's context if one ran.
    async fn proxy(
        &self,
        method: &str,
        path: &str,
        headers: Value,
        body: Option<&str>,
        authorizer: Value,
        request_id: &str,
    ) -> (u16, Value) {
        let key = headers["x-api-key"].as_str().unwrap_or_default().to_owned();
        let multi: Map<String, Value> = headers
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect();
        let mut event = json!({
            "resource": path, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": multi, "queryStringParameters": null, "pathParameters": null,
            "body": body, "isBase64Encoded": false,
            "requestContext": {
                "accountId": "123456789012", "resourceId": "r1", "stage": "v1", "requestId": request_id,
                "identity": {"sourceIp": "203.0.113.9", "apiKey": key},
                "resourcePath": path, "path": format!("/v1{path}"), "httpMethod": method,
                "apiId": "moto", "protocol": "HTTP/1.1",
            },
        });
        if !authorizer.is_null() {
            event["requestContext"]["authorizer"] = authorizer;
        }
        let req = lambda_http::request::from_str(&event.to_string()).expect("a proxy event");
        let function = match &self.admin {
            Some(admin) if path.starts_with("/v1/admin/") => admin,
            _ => &self.api,
        };
        let res = function.clone().oneshot(req.map(Body::new)).await.unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// An SQS event source mapping.
pub struct SqsMapping {
    client: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    batch_size: i32,
}

impl SqsMapping {
    /// The mapping of the queue at `url`.
    pub async fn new(client: aws_sdk_sqs::Client, url: &str, batch_size: i32) -> Self {
        let attrs = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let arn =
            attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        SqsMapping {
            client,
            url: url.to_owned(),
            arn,
            batch_size,
        }
    }

    /// One poll: a batch to the handler, then what Lambda does with its answer. Returns how
    /// many messages the batch had.
    pub async fn poll<F, Fut>(&self, handler: F) -> usize
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Result<SqsBatchResponse, String>>,
    {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.batch_size)
            // Lambda's pollers wait (long polling); the harness is driven in rounds by the test,
            // and an empty round ends at once.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            return 0;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: Map<String, Value> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                    "body": m.body(), "attributes": attributes, "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn, "awsRegion": "us-east-1",
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        let Ok(response) = handler(event).await else {
            return messages.len(); // a function error: the whole batch comes back
        };
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for m in messages {
            if !failed.contains(&m.message_id().unwrap_or_default()) {
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        messages.len()
    }
}

/// Where a stream shard stands.
#[derive(Debug, Default)]
struct Shard {
    parent: Option<String>,
    /// The last sequence number handed over for good (done, or sent to the on-failure
    /// destination).
    checkpoint: Option<String>,
    /// The shard has ended and every record was read.
    done: bool,
}

/// A DynamoDB Streams event source mapping.
pub struct StreamMapping {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    batch_size: i32,
    max_retries: usize,
    on_failure: (aws_sdk_sqs::Client, String),
    shards: BTreeMap<String, Shard>,
    /// Batches that went to the on-failure destination.
    pub skipped: usize,
}

impl StreamMapping {
    /// The mapping of the stream `arn`; batches that fail `max_retries` times more go to the
    /// SQS queue `on_failure`.
    pub fn new(
        client: aws_sdk_dynamodbstreams::Client,
        arn: &str,
        batch_size: i32,
        max_retries: usize,
        on_failure: (aws_sdk_sqs::Client, String),
    ) -> Self {
        StreamMapping {
            client,
            arn: arn.to_owned(),
            batch_size,
            max_retries,
            on_failure,
            shards: BTreeMap::new(),
            skipped: 0,
        }
    }

    /// One round over the shards that may be read (parents first): a batch each from its
    /// checkpoint. Returns how many records were handed to the handler.
    pub async fn poll<F, Fut>(&mut self, handler: F) -> usize
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, String>>,
    {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .unwrap();
        let description = described.stream_description().unwrap();
        for s in description.shards() {
            let id = s.shard_id().unwrap().to_owned();
            self.shards.entry(id).or_insert_with(|| Shard {
                parent: s.parent_shard_id().map(str::to_owned),
                ..Shard::default()
            });
        }
        let ended: HashMap<String, bool> = description
            .shards()
            .iter()
            .map(|s| {
                let range = s.sequence_number_range();
                let ended = range.and_then(|r| r.ending_sequence_number()).is_some();
                (s.shard_id().unwrap().to_owned(), ended)
            })
            .collect();
        let ready: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| !s.done)
            .filter(|(_, s)| {
                let parent = s.parent.as_ref().and_then(|p| self.shards.get(p));
                parent.is_none_or(|p| p.done)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut handed = 0;
        for id in ready {
            let shard = &self.shards[&id];
            let mut iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(&id);
            iterator = match &shard.checkpoint {
                Some(seq) => iterator
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => iterator.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = iterator.send().await.unwrap();
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator.shard_iterator().unwrap())
                .limit(self.batch_size)
                .send()
                .await
                .unwrap();
            let records: Vec<Value> = out
                .records()
                .iter()
                .map(|r| lambda_record(r, &self.arn))
                .collect();
            if records.is_empty() {
                if ended.get(&id).copied().unwrap_or(false) || out.next_shard_iterator().is_none() {
                    self.shards.get_mut(&id).unwrap().done = true;
                }
                continue;
            }
            handed += records.len();
            self.deliver(&id, records, &handler).await;
        }
        handed
    }

    /// Hands `records` to the handler until each part succeeds or runs out of retries.
    async fn deliver<F, Fut>(&mut self, shard: &str, records: Vec<Value>, handler: &F)
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<DynamoDbEventResponse, String>>,
    {
        let seq = |r: &Value| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned();
        // Parts still to hand over, in order, each with the tries it has had.
        let mut parts: VecDeque<(Vec<Value>, usize)> = VecDeque::from([(records, 0)]);
        while let Some((part, tries)) = parts.pop_front() {
            let payload = json!({ "Records": part }).to_string();
            let retry = match handler(payload).await {
                Ok(r) if r.batch_item_failures.is_empty() => None,
                Ok(r) => {
                    // Records before the first failed one are done.
                    let failed = r.batch_item_failures[0].item_identifier.clone();
                    let at = part
                        .iter()
                        .position(|x| Some(seq(x)) == failed)
                        .unwrap_or(0);
                    if at > 0 {
                        self.shards.get_mut(shard).unwrap().checkpoint = Some(seq(&part[at - 1]));
                    }
                    Some(part[at..].to_vec())
                }
                Err(_) if part.len() > 1 => {
                    // Bisect: each half is tried on its own.
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push_front((b.to_vec(), tries + 1));
                    parts.push_front((a.to_vec(), tries + 1));
                    continue;
                }
                Err(_) => Some(part.clone()),
            };
            match retry {
                None => {
                    self.shards.get_mut(shard).unwrap().checkpoint = part.last().map(seq);
                }
                Some(rest) if tries < self.max_retries => parts.push_front((rest, tries + 1)),
                Some(rest) => {
                    let info = json!({"DDBStreamBatchInfo": {
                        "shardId": shard, "streamArn": self.arn, "batchSize": rest.len(),
                        "startSequenceNumber": seq(&rest[0]), "endSequenceNumber": seq(rest.last().unwrap()),
                    }});
                    let (sqs, url) = &self.on_failure;
                    sqs.send_message()
                        .queue_url(url)
                        .message_body(info.to_string())
                        .send()
                        .await
                        .unwrap();
                    self.skipped += 1;
                    self.shards.get_mut(shard).unwrap().checkpoint = rest.last().map(seq);
                }
            }
        }
    }
}

/// A stream record as Lambda's DynamoDB event carries it.
fn lambda_record(r: &Record, arn: &str) -> Value {
    let change = r.dynamodb().unwrap();
    let image = |m: Option<&HashMap<String, AttributeValue>>| m.map(attribute_map);
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.as_secs_f64()),
        "Keys": image(change.keys()), "SequenceNumber": change.sequence_number(),
        "SizeBytes": change.size_bytes(), "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(new) = image(change.new_image()) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(change.old_image()) {
        dynamodb["OldImage"] = old;
    }
    let mut record = json!({
        "eventID": r.event_id(), "eventName": r.event_name().map(|e| e.as_str()),
        "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": dynamodb, "eventSourceARN": arn,
    });
    if let Some(who) = r.user_identity() {
        record["userIdentity"] = json!({"type": who.r#type(), "principalId": who.principal_id()});
    }
    record
}

fn attribute_map(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

/// DynamoDB's JSON of one attribute value, as stream events spell it.
fn attribute(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(s) => json!({ "SS": s }),
        AttributeValue::Ns(n) => json!({ "NS": n }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": attribute_map(m) }),
        other => panic!("the tables hold no binary attributes: {other:?}"),
    }
}
