//! Glue between Lambda events and the library handlers (the `aws` feature). The binaries in
//! `src/bin` only read their settings, build clients and call these.

use std::sync::Arc;

use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::event::iam::{IamPolicyEffect, IamPolicyStatement};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::extract::Request;
use axum::Router;
use serde::{Deserialize, Serialize};

use cauce_store::RecordStore;

use crate::api::{router, ApiState, Authorized, RequestId, API_KEY_HEADER, APP_HEADER};
use crate::auth::jwt::JwtVerifier;
use crate::auth::{hash_key, KeyLookup, Role};
use crate::error::{IngestError, Result};
use crate::queue::{Delivery, Queue};
use crate::writer::{write_batch, Status};

fn delivery(m: &SqsMessage) -> Result<Delivery> {
    let attr = |name: &str| m.attributes.get(name).cloned();
    let id = m.message_id.clone().unwrap_or_default();
    Ok(Delivery {
        sequence: attr("SequenceNumber").ok_or_else(|| IngestError::no_sequence(&id))?,
        id,
        receipt: m.receipt_handle.clone().unwrap_or_default(),
        group: attr("MessageGroupId").unwrap_or_default(),
        body: m.body.clone().unwrap_or_default(),
        receive_count: attr("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    })
}

/// The deliveries of an SQS event, in order. A message without a sequence number is an error:
/// the event is not from a FIFO queue, and no order could be kept.
pub fn deliveries(event: &SqsEvent) -> Result<Vec<Delivery>> {
    event.records.iter().map(delivery).collect()
}

/// The partial-batch response: every message to deliver again (a transient failure, and the
/// rest of its message group after it), so that Lambda deletes only the others.
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

/// The writer Lambda's handler: an SQS FIFO event into the store, with the rules of
/// [`crate::writer`]. Poison goes to the DLQ at once; a transient failure fails its item (and the
/// rest of its group), which SQS delivers again after the queue's visibility timeout.
pub async fn handle_sqs(
    event: SqsEvent,
    store: &dyn RecordStore,
    queue: &dyn Queue,
) -> Result<SqsBatchResponse> {
    let deliveries = deliveries(&event)?;
    let report = write_batch(&deliveries, store, queue).await;
    tracing::info!(
        messages = deliveries.len(),
        inserted = report.counts.inserted,
        replaced = report.counts.replaced,
        duplicates = report.counts.duplicates,
        stale = report.counts.stale,
        archived = report.counts.archived,
        "Batch written."
    );
    Ok(batch_response(&deliveries, &report.statuses))
}

/// What the authorizer passes to the API as `requestContext.authorizer`: the tenant, the role,
/// and for a person the token's subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    /// The tenant: the key's app, or the app a person named (empty when they named none).
    pub app_id: String,
    /// The key's role, or the person's.
    pub role: String,
    /// The person's Cognito `sub`; empty for an app key.
    #[serde(default)]
    pub subject: String,
}

/// The error API Gateway turns into a 401: the Lambda must fail with exactly this message.
pub const UNAUTHORIZED: &str = "Unauthorized";

/// The authorizer's handler for app keys only: [`authorize_with`] without a user pool.
pub async fn authorize(
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    keys: &dyn KeyLookup,
) -> Result<ApiGatewayCustomAuthorizerResponse<AuthContext>> {
    authorize_with(request, keys, None).await
}

/// The authorizer's handler. An `x-api-key` is looked up by its hash: the whole API is allowed
/// for its app (the policy may be cached per key), a disabled key is denied (403). Otherwise,
/// where a user pool is set, an `Authorization: Bearer` Cognito token is verified: the person's
/// group gives the role, and the app they act on is the one they name in [`APP_HEADER`] (or the
/// `app` query parameter), denied when their token restricts them to other apps. Anything else
/// fails with `Unauthorized` (401); the reason a token was refused goes to the log.
pub async fn authorize_with(
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    keys: &dyn KeyLookup,
    people: Option<&JwtVerifier>,
) -> Result<ApiGatewayCustomAuthorizerResponse<AuthContext>> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    let (principal, context, usage_key, allowed) = match (header(API_KEY_HEADER), bearer, people) {
        (Some(key), _, _) => {
            let info = keys
                .lookup(&hash_key(key))
                .await?
                .ok_or(IngestError::Unauthorized)?;
            let context = AuthContext {
                app_id: info.app_id.clone(),
                role: info.role.as_str().to_owned(),
                subject: String::new(),
            };
            let usage_key = (!info.disabled).then(|| key.to_owned());
            (info.app_id, context, usage_key, !info.disabled)
        }
        (None, Some(token), Some(people)) => {
            let person = people.verify(token.trim()).await.map_err(|e| match e {
                IngestError::InvalidToken(reason) => {
                    tracing::info!(%reason, "A bearer token was refused.");
                    IngestError::Unauthorized
                }
                other => other,
            })?;
            let app = header(APP_HEADER)
                .or_else(|| request.query_string_parameters.first("app"))
                .unwrap_or_default();
            let allowed = app.is_empty() || person.may_see(app);
            let context = AuthContext {
                app_id: app.to_owned(),
                role: person.role.as_str().to_owned(),
                subject: person.subject.clone(),
            };
            (person.subject, context, None, allowed)
        }
        _ => return Err(IngestError::Unauthorized),
    };
    // Allow every method of this stage: the decision depends on the credential only, so a
    // cached policy stays right for the key's other routes.
    let arn = request.method_arn.as_deref().unwrap_or("*");
    let resource = match arn.splitn(4, '/').collect::<Vec<_>>().as_slice() {
        [api, stage, _, _] | [api, stage, _] => format!("{api}/{stage}/*"),
        _ => arn.to_owned(),
    };
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = if allowed {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    statement.resource = vec![resource];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal);
    response.policy_document = policy;
    response.context = context;
    response.usage_identifier_key = usage_key;
    Ok(response)
}

/// The `api` Lambda's router: the one [`router`], behind a layer that reads the authorizer's
/// context from the API Gateway request (which `lambda_http` put in the request's extensions)
/// into [`Authorized`]. Only this Lambda installs it; `cauce serve` resolves keys itself.
pub fn api_router(state: Arc<ApiState>) -> Router {
    router(state).layer(axum::middleware::map_request(authorizer_context))
}

async fn authorizer_context(mut req: Request) -> Request {
    if let Some(who) = authorized(&req) {
        req.extensions_mut().insert(who);
    }
    if let Some(id) = gateway_request_id(&req) {
        req.extensions_mut().insert(RequestId(id));
    }
    req
}

/// API Gateway's id of the request, which its access log and the raw archive both carry.
fn gateway_request_id(req: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.clone(),
        _ => None,
    }
}

fn authorized(req: &Request) -> Option<Authorized> {
    use lambda_http::request::RequestContext;
    let Some(RequestContext::ApiGatewayV1(ctx)) = req.extensions().get::<RequestContext>() else {
        return None;
    };
    let field = |name: &str| ctx.authorizer.fields.get(name).and_then(|v| v.as_str());
    // A key always names its app; a person may name none (for the admin routes).
    let app_id = field("app_id").unwrap_or_default();
    if app_id.is_empty() && field("subject").is_none_or(str::is_empty) {
        return None;
    }
    Some(Authorized {
        app_id: app_id.to_owned(),
        role: field("role").and_then(Role::parse).unwrap_or(Role::Ingest),
    })
}
