//! Keys in the DynamoDB clients table: what the `authorizer` Lambda reads.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::hashes_match;
use super::{KeyInfo, KeyLookup, Role};
use crate::error::{IngestError, Result};

/// Keys in the DynamoDB clients table (AWS mode), keyed by `key_hash`.
#[derive(Debug, Clone)]
pub struct DynamoKeys {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoKeys {
    /// A key store over the clients table.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoKeys { client, table }
    }

    /// Creates the clients table, as the Terraform does; for tests and development.
    pub async fn create_table(&self) -> Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("key_hash")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("key_hash")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| IngestError::aws("DynamoDB", "CreateTable", e))?;
        Ok(())
    }

    /// Stores a key's hash and what it resolves to (provisioning).
    pub async fn put_key(&self, key_hash: &str, info: &KeyInfo) -> Result<()> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("key_hash", AttributeValue::S(key_hash.to_owned()))
            .item("app_id", AttributeValue::S(info.app_id.clone()))
            .item("role", AttributeValue::S(info.role.as_str().to_owned()))
            .item("disabled", AttributeValue::Bool(info.disabled));
        if let Some(rate) = info.rate_limit {
            req = req.item("rate_limit", AttributeValue::N(rate.to_string()));
        }
        req.send()
            .await
            .map_err(|e| IngestError::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl KeyLookup for DynamoKeys {
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("key_hash", AttributeValue::S(key_hash.to_owned()))
            .send()
            .await
            .map_err(|e| IngestError::aws("DynamoDB", "GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let (Some(stored), Some(app_id)) = (text("key_hash"), text("app_id")) else {
            return Ok(None);
        };
        if !hashes_match(&stored, key_hash) {
            return Ok(None);
        }
        Ok(Some(KeyInfo {
            app_id,
            role: text("role")
                .and_then(|r| Role::parse(&r))
                .unwrap_or(Role::Ingest),
            disabled: item
                .get("disabled")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            rate_limit: item
                .get("rate_limit")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok()),
        }))
    }
}
