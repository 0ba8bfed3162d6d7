//! Apps in AWS mode: the clients table (what the `authorizer` reads) together with API Gateway's
//! own key for each app, a member of the app's usage-plan tier. The key's value is the app's API
//! key itself, and the authorizer returns it as `usageIdentifierKey`, so API Gateway throttles
//! and meters each app by its plan.
//!
//! Each clients item keeps, beside the key's hash and what it resolves to, the app's name,
//! creation time, usage plan and API Gateway key id. Listing and finding an app scan the table:
//! these are admin commands over a table of one item per app.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{generate_key, hash_key, random_hex};
use super::{App, AppAdmin, Credentials, Role};
use crate::error::{IngestError, Result};

type Item = HashMap<String, AttributeValue>;

/// The apps of an AWS deployment.
#[derive(Debug, Clone)]
pub struct GatewayApps {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    gateway: aws_sdk_apigateway::Client,
    /// The usage plan new apps join (their tier).
    usage_plan: String,
}

impl GatewayApps {
    /// The apps in the clients table `table`; new ones join the usage plan `usage_plan`.
    pub fn new(
        dynamo: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        gateway: aws_sdk_apigateway::Client,
        usage_plan: impl Into<String>,
    ) -> Self {
        GatewayApps {
            dynamo,
            table: table.into(),
            gateway,
            usage_plan: usage_plan.into(),
        }
    }

    /// The apps of the deployment that the environment names: the clients table
    /// `CAUCE_CLIENTS_TABLE`, and `CAUCE_USAGE_PLANS`, the tiers' usage plans as JSON
    /// (`{"free": "plan id", …}`, Terraform's `usage_plan_ids` output), of which new apps join
    /// `tier`'s.
    pub async fn from_env(tier: &str) -> Result<Self> {
        let table = cauce_store::env::required("CAUCE_CLIENTS_TABLE")?;
        let plans = cauce_store::env::required("CAUCE_USAGE_PLANS")?;
        let plans: HashMap<String, String> = serde_json::from_str(&plans).map_err(|e| {
            IngestError::Config(format!(
                "CAUCE_USAGE_PLANS must be a JSON object of tier names to usage plan ids \
                 (terraform output -json usage_plan_ids): {e}"
            ))
        })?;
        let Some(plan) = plans.get(tier) else {
            let mut known: Vec<&String> = plans.keys().collect();
            known.sort();
            return Err(IngestError::Config(format!(
                "no usage-plan tier {tier:?}; CAUCE_USAGE_PLANS has {known:?}"
            )));
        };
        let aws = cauce_store::aws::sdk_config().await;
        Ok(GatewayApps::new(
            aws_sdk_dynamodb::Client::new(&aws),
            table,
            aws_sdk_apigateway::Client::new(&aws),
            plan,
        ))
    }

    /// Makes API Gateway's key for `app_id` with `value`, in `plan`; returns its id.
    async fn gateway_key(&self, app_id: &str, value: &str, plan: &str) -> Result<String> {
        let key = self
            .gateway
            .create_api_key()
            .name(format!("{app_id}-{}", random_hex(4)))
            .description(format!("Cauce app {app_id}"))
            .value(value)
            .enabled(true)
            .send()
            .await
            .map_err(|e| IngestError::aws("API Gateway", "CreateApiKey", e))?;
        let id = key.id().unwrap_or_default().to_owned();
        self.gateway
            .create_usage_plan_key()
            .usage_plan_id(plan)
            .key_id(&id)
            .key_type("API_KEY")
            .send()
            .await
            .map_err(|e| IngestError::aws("API Gateway", "CreateUsagePlanKey", e))?;
        Ok(id)
    }

    async fn scan(&self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamo
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| IngestError::aws("DynamoDB", "Scan", e))?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The clients item of an app.
    async fn find(&self, app_id: &str) -> Result<Option<Item>> {
        Ok(self
            .scan()
            .await?
            .into_iter()
            .find(|item| text(item, "app_id").as_deref() == Some(app_id)))
    }

    async fn put(&self, item: Item) -> Result<()> {
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| IngestError::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn app_of(item: &Item) -> Option<App> {
    Some(App {
        app_id: text(item, "app_id")?,
        name: text(item, "name").unwrap_or_default(),
        role: text(item, "role")
            .and_then(|r| Role::parse(&r))
            .unwrap_or(Role::Ingest),
        rate_limit: item
            .get("rate_limit")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        disabled: item
            .get("disabled")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        created_at: item
            .get("created_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

#[async_trait]
impl AppAdmin for GatewayApps {
    async fn create_app(
        &self,
        name: &str,
        rate_limit: Option<u32>,
        role: Role,
    ) -> Result<Credentials> {
        let creds = Credentials::new_app();
        let key_id = self
            .gateway_key(&creds.app_id, &creds.api_key, &self.usage_plan)
            .await?;
        let mut item: Item = HashMap::from([
            ("key_hash".into(), s(hash_key(&creds.api_key))),
            ("app_id".into(), s(&creds.app_id)),
            ("name".into(), s(name)),
            ("role".into(), s(role.as_str())),
            ("disabled".into(), AttributeValue::Bool(false)),
            (
                "created_at".into(),
                AttributeValue::N(cauce_store::time::now_ms().to_string()),
            ),
            ("usage_plan".into(), s(&self.usage_plan)),
            ("gateway_key_id".into(), s(key_id)),
        ]);
        if let Some(rate) = rate_limit {
            item.insert("rate_limit".into(), AttributeValue::N(rate.to_string()));
        }
        self.put(item).await?;
        Ok(creds)
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        let mut apps: Vec<App> = self.scan().await?.iter().filter_map(app_of).collect();
        apps.sort_by(|a, b| (a.created_at, &a.app_id).cmp(&(b.created_at, &b.app_id)));
        Ok(apps)
    }

    async fn set_disabled(&self, app_id: &str, disabled: bool) -> Result<bool> {
        let Some(mut item) = self.find(app_id).await? else {
            return Ok(false);
        };
        if let Some(key_id) = text(&item, "gateway_key_id") {
            let patch = PatchOperation::builder()
                .op(Op::Replace)
                .path("/enabled")
                .value((!disabled).to_string())
                .build();
            self.gateway
                .update_api_key()
                .api_key(key_id)
                .patch_operations(patch)
                .send()
                .await
                .map_err(|e| IngestError::aws("API Gateway", "UpdateApiKey", e))?;
        }
        item.insert("disabled".into(), AttributeValue::Bool(disabled));
        self.put(item).await?;
        Ok(true)
    }

    async fn rotate_key(&self, app_id: &str) -> Result<Option<Credentials>> {
        let Some(old) = self.find(app_id).await? else {
            return Ok(None);
        };
        let api_key = generate_key();
        let plan = text(&old, "usage_plan").unwrap_or_else(|| self.usage_plan.clone());
        let key_id = self.gateway_key(app_id, &api_key, &plan).await?;
        let mut item = old.clone();
        item.insert("key_hash".into(), s(hash_key(&api_key)));
        item.insert("gateway_key_id".into(), s(key_id));
        self.put(item).await?;
        let old_hash = text(&old, "key_hash").unwrap_or_default();
        self.dynamo
            .delete_item()
            .table_name(&self.table)
            .key("key_hash", s(old_hash))
            .send()
            .await
            .map_err(|e| IngestError::aws("DynamoDB", "DeleteItem", e))?;
        if let Some(old_id) = text(&old, "gateway_key_id") {
            self.gateway
                .delete_usage_plan_key()
                .usage_plan_id(&plan)
                .key_id(&old_id)
                .send()
                .await
                .map_err(|e| IngestError::aws("API Gateway", "DeleteUsagePlanKey", e))?;
            self.gateway
                .delete_api_key()
                .api_key(old_id)
                .send()
                .await
                .map_err(|e| IngestError::aws("API Gateway", "DeleteApiKey", e))?;
        }
        Ok(Some(Credentials {
            app_id: app_id.to_owned(),
            api_key,
        }))
    }
}
