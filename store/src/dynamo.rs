//! The AWS `RecordStore`: one DynamoDB table per kind.
//!
//! Item layout (the same in every table):
//!
//! | attribute | value |
//! |---|---|
//! | `pk` (hash key) | `{app_id}#{bucket}`: the app plus a hash bucket of the record key, so one big app spreads over [`PARTITION_BUCKETS`](crate::keys::PARTITION_BUCKETS) partitions |
//! | `sk` (range key) | the record key |
//! | `user_pk`, `user_sk` | the `user_timeline` GSI: `{app_id}#{user_id}` and the zero-padded `ts` |
//! | `kind`, `app_id`, `updated_at` | for conditions and readers |
//! | `doc` | the record as JSON, exactly as the SQLite store keeps it |
//! | `expires_at` | the TTL attribute, epoch seconds (hot store only) |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};

use crate::error::{Result, StoreError};
use crate::keys::{content_hash, partition_key, user_key, user_sort_key};
use crate::model::{Kind, Record};
use crate::port::{BadRow, PutOutcome, RecordStore};
use crate::sqlite::newest_first;

/// The name of the user-timeline GSI.
pub const TIMELINE_INDEX: &str = "user_timeline";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How many keys are written at once; writes of one key stay in order.
const WRITE_CONCURRENCY: usize = 32;

/// The tables of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Events.
    pub events: String,
    /// Stories.
    pub stories: String,
    /// Tests.
    pub tests: String,
    /// Rejected items.
    pub bad_rows: String,
}

impl Tables {
    /// Tables named `{prefix}-events`, `{prefix}-stories`, `{prefix}-tests`, `{prefix}-bad-rows`.
    pub fn with_prefix(prefix: &str) -> Self {
        Tables {
            events: format!("{prefix}-events"),
            stories: format!("{prefix}-stories"),
            tests: format!("{prefix}-tests"),
            bad_rows: format!("{prefix}-bad-rows"),
        }
    }

    /// The table of one kind.
    pub fn of(&self, kind: Kind) -> &str {
        match kind {
            Kind::Event => &self.events,
            Kind::Story => &self.stories,
            Kind::Exposure => &self.tests,
        }
    }
}

/// The DynamoDB record store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    ttl_days: u32,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()?,
    ])
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

impl DynamoStore {
    /// A store over existing tables. `ttl_days` > 0 sets `expires_at` on every item.
    pub fn new(client: Client, tables: Tables, ttl_days: u32) -> Self {
        DynamoStore {
            client,
            tables,
            ttl_days,
        }
    }

    /// The tables this store writes.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Creates the tables as the Terraform does: on-demand, streams with new and old images, the
    /// timeline GSI and TTL. For tests and development; production tables come from Terraform.
    pub async fn create_tables(&self) -> Result<()> {
        for kind in Kind::ALL {
            let table = self.tables.of(kind);
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(TIMELINE_INDEX)
                .set_key_schema(Some(key_schema("user_pk", "user_sk")?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?;
            self.client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(vec![
                    string_attribute("pk")?,
                    string_attribute("sk")?,
                    string_attribute("user_pk")?,
                    string_attribute("user_sk")?,
                ]))
                .set_key_schema(Some(key_schema("pk", "sk")?))
                .global_secondary_indexes(gsi)
                .stream_specification(
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::NewAndOldImages)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| StoreError::dynamo("CreateTable", e))?;
            self.client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTRIBUTE)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| StoreError::dynamo("UpdateTimeToLive", e))?;
        }
        self.client
            .create_table()
            .table_name(&self.tables.bad_rows)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(vec![string_attribute("pk")?, string_attribute("sk")?]))
            .set_key_schema(Some(key_schema("pk", "sk")?))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("CreateTable", e))?;
        Ok(())
    }

    fn item(&self, record: &Record) -> HashMap<String, AttributeValue> {
        let key = record.key();
        let app_id = record.app_id();
        let mut item = HashMap::from([
            ("pk".to_owned(), s(partition_key(app_id, &key))),
            ("sk".to_owned(), s(key.clone())),
            ("kind".to_owned(), s(record.kind().as_str())),
            ("app_id".to_owned(), s(app_id)),
            ("doc".to_owned(), s(record.to_json())),
        ]);
        if let Some(user_id) = record.user_id() {
            item.insert("user_pk".to_owned(), s(user_key(app_id, user_id)));
            item.insert("user_sk".to_owned(), s(user_sort_key(record.ts(), &key)));
        }
        if let Some(updated_at) = record.updated_at() {
            item.insert("updated_at".to_owned(), n(updated_at));
        }
        if self.ttl_days > 0 {
            let expires = record.received_at() / 1000 + i64::from(self.ttl_days) * 86_400;
            item.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
        }
        item
    }

    async fn put_one(&self, record: &Record) -> Result<PutOutcome> {
        let mut req = self
            .client
            .put_item()
            .table_name(self.tables.of(record.kind()))
            .set_item(Some(self.item(record)))
            .return_values(ReturnValue::AllOld);
        req = match record.updated_at() {
            None => req.condition_expression("attribute_not_exists(pk)"),
            Some(updated_at) => req
                .condition_expression("attribute_not_exists(pk) OR updated_at < :u")
                .expression_attribute_values(":u", n(updated_at)),
        };
        match req.send().await {
            Ok(out) if out.attributes().is_some_and(|a| !a.is_empty()) => Ok(PutOutcome::Replaced),
            Ok(_) => Ok(PutOutcome::Inserted),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(match record.kind() {
                    Kind::Event => PutOutcome::Duplicate,
                    _ => PutOutcome::Stale,
                })
            }
            Err(e) => Err(StoreError::dynamo("PutItem", e)),
        }
    }
}

fn doc_of(item: &HashMap<String, AttributeValue>, kind: Kind) -> Result<Record> {
    match item.get("doc") {
        Some(AttributeValue::S(doc)) => Ok(Record::from_json(kind, doc)?),
        _ => Err(StoreError::BadChange("item without a `doc` string".into())),
    }
}

#[async_trait]
impl RecordStore for DynamoStore {
    async fn put(&self, records: Vec<Record>) -> Result<Vec<PutOutcome>> {
        // Group by (kind, key) so that the versions of one key are written in order, while
        // different keys are written concurrently.
        let mut groups: HashMap<(Kind, String, String), Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            groups
                .entry((r.kind(), r.app_id().to_owned(), r.key()))
                .or_default()
                .push(i);
        }
        let records = &records;
        let results: Vec<Vec<(usize, Result<PutOutcome>)>> = stream::iter(groups.into_values())
            .map(|indexes| async move {
                let mut out = Vec::with_capacity(indexes.len());
                for i in indexes {
                    let res = self.put_one(&records[i]).await;
                    let failed = res.is_err();
                    out.push((i, res));
                    if failed {
                        break;
                    }
                }
                out
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut outcomes: Vec<Option<PutOutcome>> = vec![None; records.len()];
        for (i, res) in results.into_iter().flatten() {
            outcomes[i] = Some(res?);
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::BadChange("a write was skipped".into())))
            .collect()
    }

    async fn get(&self, kind: Kind, app_id: &str, key: &str) -> Result<Option<Record>> {
        let out = self
            .client
            .get_item()
            .table_name(self.tables.of(kind))
            .key("pk", s(partition_key(app_id, key)))
            .key("sk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item().map(|item| doc_of(item, kind)).transpose()
    }

    async fn timeline(&self, app_id: &str, user_id: &str, limit: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let page = self
                .client
                .query()
                .table_name(self.tables.of(kind))
                .index_name(TIMELINE_INDEX)
                .key_condition_expression("user_pk = :u")
                .expression_attribute_values(":u", s(user_key(app_id, user_id)))
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            for item in page.items() {
                out.push(doc_of(item, kind)?);
            }
        }
        Ok(newest_first(out, limit))
    }

    async fn archive_rejected(&self, rows: Vec<BadRow>) -> Result<()> {
        for row in rows {
            let json = serde_json::to_string(&row)?;
            let sk = format!("{:015}#{}", row.received_at, content_hash(json.as_bytes()));
            self.client
                .put_item()
                .table_name(&self.tables.bad_rows)
                .item("pk", s(&row.app_id))
                .item("sk", s(sk))
                .item("doc", s(json))
                .send()
                .await
                .map_err(|e| StoreError::dynamo("PutItem", e))?;
        }
        Ok(())
    }
}
