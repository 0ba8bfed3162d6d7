//! Glue between Lambda events and the library handlers. The binaries in `src/bin` only build
//! clients and call these.

use aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};

use cauce_store::RecordStore;

use crate::auth::{hash_key, KeyLookup};
use crate::error::{IngestError, Result};
use crate::queue::{Delivery, Queue};
use crate::writer::{write_batch, Status};

fn delivery(m: &SqsMessage) -> Delivery {
    let attr = |name: &str| m.attributes.get(name).cloned().unwrap_or_default();
    Delivery {
        id: m.message_id.clone().unwrap_or_default(),
        receipt: m.receipt_handle.clone().unwrap_or_default(),
        group: attr("MessageGroupId"),
        body: m.body.clone().unwrap_or_default(),
        sequence: attr("SequenceNumber"),
        receive_count: attr("ApproximateReceiveCount").parse().unwrap_or(1),
    }
}

/// The deliveries of an SQS event, in order.
pub fn deliveries(event: &SqsEvent) -> Vec<Delivery> {
    event.records.iter().map(delivery).collect()
}

/// The partial-batch response: every message not done (on FIFO, the first failure and all
/// after it), so that Lambda deletes only the rest.
pub fn batch_response(deliveries: &[Delivery], statuses: &[Status]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = deliveries
        .iter()
        .zip(statuses)
        .filter(|(_, s)| **s == Status::Failed)
        .map(|(d, _)| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = d.id.clone();
            f
        })
        .collect();
    response
}

/// The writer Lambda's handler: an SQS FIFO event into the store.
pub async fn handle_sqs(
    event: SqsEvent,
    store: &dyn RecordStore,
    queue: &dyn Queue,
    max_receives: u32,
) -> SqsBatchResponse {
    let deliveries = deliveries(&event);
    let report = write_batch(&deliveries, store, queue, max_receives).await;
    tracing::info!(
        messages = deliveries.len(),
        inserted = report.counts.inserted,
        replaced = report.counts.replaced,
        duplicates = report.counts.duplicates,
        stale = report.counts.stale,
        archived = report.counts.archived,
        "Batch written."
    );
    batch_response(&deliveries, &report.statuses)
}

/// One statement of an IAM policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    /// `execute-api:Invoke`.
    pub action: String,
    /// `Allow` or `Deny`.
    pub effect: String,
    /// The method ARNs.
    pub resource: Vec<String>,
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// `2012-10-17`.
    pub version: String,
    /// The statements.
    pub statement: Vec<Statement>,
}

/// What the authorizer passes to the API: the tenant and the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    /// The tenant.
    pub app_id: String,
    /// The key's role.
    pub role: String,
}

/// A REST API Lambda authorizer's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    /// The app id.
    pub principal_id: String,
    /// Allow or deny.
    pub policy_document: PolicyDocument,
    /// Passed to the API as `requestContext.authorizer`.
    pub context: AuthContext,
    /// The API key, for API Gateway's usage plans (quotas and throttling per key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_identifier_key: Option<String>,
}

/// The error API Gateway turns into a 401: the Lambda must fail with exactly this message.
pub const UNAUTHORIZED: &str = "Unauthorized";

/// The authorizer's handler: looks the hashed `x-api-key` up and allows the whole API for its
/// app (the policy is cached per key), denies a disabled key (403), and fails with
/// `Unauthorized` (401) for a missing or unknown key.
pub async fn authorize(
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    keys: &dyn KeyLookup,
) -> Result<AuthorizerResponse> {
    let unauthorized = || IngestError::Unauthorized;
    let key = request
        .headers
        .get(crate::api::API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(unauthorized)?;
    let info = keys
        .lookup(&hash_key(key))
        .await?
        .ok_or_else(unauthorized)?;
    // Allow every method of this stage: the decision depends on the key only, so a cached
    // policy stays right for the key's other routes.
    let arn = request.method_arn.as_deref().unwrap_or("*");
    let resource = match arn.splitn(4, '/').collect::<Vec<_>>().as_slice() {
        [api, stage, _, _] | [api, stage, _] => format!("{api}/{stage}/*"),
        _ => arn.to_owned(),
    };
    Ok(AuthorizerResponse {
        principal_id: info.app_id.clone(),
        policy_document: PolicyDocument {
            version: "2012-10-17".into(),
            statement: vec![Statement {
                action: "execute-api:Invoke".into(),
                effect: if info.disabled { "Deny" } else { "Allow" }.into(),
                resource: vec![resource],
            }],
        },
        context: AuthContext {
            app_id: info.app_id,
            role: info.role.as_str().to_owned(),
        },
        usage_identifier_key: (!info.disabled).then(|| key.to_owned()),
    })
}
