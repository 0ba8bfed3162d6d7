//! Typed configuration of the Lambda binaries, read once from the environment at start. A
//! missing or invalid setting fails at once with a message that names it.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use cauce_store::dynamo::{DynamoStore, Tables};
use cauce_store::env::{optional, parsed, required};

use crate::api::{ApiConfig, ApiState, LakeShelf, Tenancy};
use crate::archive::firehose::FirehoseArchive;
use crate::auth::jwt::UserPool;
use crate::auth::{CachedKeys, DynamoKeys, GatewayApps};
use crate::error::Result;
use crate::queue::sqs::SqsQueue;
use crate::queue::Packing;

/// How long the `api` function trusts a key it looked up itself (for the routes without an
/// authorizer): a disabled key works at most this long there.
pub const UNGUARDED_KEY_TTL: Duration = Duration::from_secs(60);

/// The settings of the AWS deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `CAUCE_QUEUE_URL`: the SQS FIFO queue.
    pub queue_url: String,
    /// `CAUCE_DLQ_URL`: its dead-letter queue.
    pub dlq_url: String,
    /// `CAUCE_TABLE_PREFIX`: the record tables are `{prefix}-events`, `-stories`, `-tests`, `-bad-rows`.
    pub table_prefix: String,
    /// `CAUCE_CLIENTS_TABLE`: the API-key table the authorizer reads (and the `api` function,
    /// for the analytics SDKs' routes, which have no authorizer).
    pub clients_table: String,
    /// `CAUCE_TTL_DAYS` (default 30; 0 = no TTL): how long records stay in the hot store.
    pub ttl_days: u32,
    /// `CAUCE_RECEIVE_WAIT_SECS` (default 10): the long-poll of `cauce worker`.
    pub receive_wait: Duration,
    /// `CAUCE_LAKE`: the lake (`s3://bucket/prefix`), where the API reads published reports.
    pub lake: String,
    /// `CAUCE_RAW_STREAM` (optional): the Firehose delivery stream of the raw archive.
    pub raw_stream: Option<String>,
    /// `CAUCE_GROUP_BUCKETS` (default 16): message groups per app in the queue. One user's order
    /// always holds; more groups let more writer invocations run at once for one app, fewer put
    /// more items in each message (fewer SQS requests).
    pub group_buckets: u64,
}

impl AwsSettings {
    /// Reads the settings that `needs` names from the environment.
    pub fn from_env(needs: Needs) -> Result<Self> {
        let opt = |want: bool, name: &str| {
            if want {
                required(name)
            } else {
                Ok(String::new())
            }
        };
        let whole = "a whole number";
        Ok(AwsSettings {
            queue_url: opt(needs.queue, "CAUCE_QUEUE_URL")?,
            dlq_url: opt(needs.queue, "CAUCE_DLQ_URL")?,
            table_prefix: opt(needs.tables, "CAUCE_TABLE_PREFIX")?,
            clients_table: match needs.clients {
                true => required("CAUCE_CLIENTS_TABLE")?,
                false => optional("CAUCE_CLIENTS_TABLE").unwrap_or_default(),
            },
            lake: opt(needs.lake, "CAUCE_LAKE")?,
            ttl_days: parsed("CAUCE_TTL_DAYS", 30, whole)?,
            receive_wait: Duration::from_secs(parsed("CAUCE_RECEIVE_WAIT_SECS", 10, whole)?),
            raw_stream: optional("CAUCE_RAW_STREAM"),
            group_buckets: parsed(
                "CAUCE_GROUP_BUCKETS",
                Packing::default().group_buckets,
                whole,
            )?
            .max(1),
        })
    }
}

impl AwsSettings {
    /// Reads the settings that `needs` names, and loads the AWS configuration: what every
    /// binary does first.
    pub async fn load(needs: Needs) -> Result<(Self, SdkConfig)> {
        let settings = AwsSettings::from_env(needs)?;
        Ok((settings, cauce_store::aws::sdk_config().await))
    }

    /// The SQS FIFO queue and its DLQ.
    pub fn queue(&self, aws: &SdkConfig) -> SqsQueue {
        let client = aws_sdk_sqs::Client::new(aws);
        SqsQueue::new(
            client,
            self.queue_url.clone(),
            self.dlq_url.clone(),
            self.receive_wait,
        )
    }

    /// The DynamoDB record store.
    pub fn store(&self, aws: &SdkConfig) -> DynamoStore {
        let client = aws_sdk_dynamodb::Client::new(aws);
        DynamoStore::new(
            client,
            Tables::with_prefix(&self.table_prefix),
            self.ttl_days,
        )
    }

    /// The `api` Lambda's state: the queue, the tables, the tenant from the authorizer, the
    /// reports published in the lake, and the raw archive when `CAUCE_RAW_STREAM` names one.
    pub async fn api_state(&self, aws: &SdkConfig) -> Result<ApiState> {
        let lake = cauce_store::lake::open(&self.lake).await?;
        let mut config = ApiConfig::default();
        config.packing.group_buckets = self.group_buckets;
        let state = ApiState::new(
            Arc::new(self.queue(aws)),
            Arc::new(self.store(aws)),
            Tenancy::Authorizer,
            None,
            config,
        );
        let mut state = state.with_reports(Arc::new(LakeShelf::new(lake)));
        if !self.clients_table.is_empty() {
            let keys = CachedKeys::new(Arc::new(self.keys(aws)), UNGUARDED_KEY_TTL);
            state = state.with_unguarded_keys(Arc::new(keys));
        }
        Ok(match &self.raw_stream {
            Some(stream) => {
                let client = aws_sdk_firehose::Client::new(aws);
                state.with_archive(Arc::new(FirehoseArchive::new(client, stream)))
            }
            None => state,
        })
    }

    /// The user pool whose people the authorizer lets in, when `CAUCE_COGNITO_ISSUER` names
    /// one (`https://cognito-idp.{region}.amazonaws.com/{pool id}`), with the app clients of
    /// `CAUCE_COGNITO_CLIENT_IDS` (comma-separated, required then). Without it only app keys
    /// pass. `CAUCE_COGNITO_JWKS_URL` moves the key set from the issuer's
    /// `/.well-known/jwks.json` (for an emulator).
    pub fn user_pool() -> Result<Option<UserPool>> {
        let Some(issuer) = optional("CAUCE_COGNITO_ISSUER") else {
            return Ok(None);
        };
        let client_ids: Vec<String> = required("CAUCE_COGNITO_CLIENT_IDS")?
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Some(UserPool {
            issuer,
            client_ids,
            jwks_url: optional("CAUCE_COGNITO_JWKS_URL"),
        }))
    }

    /// The apps this function manages through `/v1/admin/…`: where `CAUCE_ADMIN_TIER` names
    /// the usage-plan tier that new apps join (the `admin` function, the `api` code with admin
    /// rights), the clients table and API Gateway's keys (`CAUCE_CLIENTS_TABLE`,
    /// `CAUCE_USAGE_PLANS`); without it, none (the `api` function).
    pub async fn app_admin() -> Result<Option<GatewayApps>> {
        match optional("CAUCE_ADMIN_TIER") {
            Some(tier) => Ok(Some(GatewayApps::from_env(&tier).await?)),
            None => Ok(None),
        }
    }

    /// The clients (API key) table.
    pub fn keys(&self, aws: &SdkConfig) -> DynamoKeys {
        let client = aws_sdk_dynamodb::Client::new(aws);
        DynamoKeys::new(client, self.clients_table.clone())
    }
}

/// Which settings a binary needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The queue and its DLQ.
    pub queue: bool,
    /// The record tables.
    pub tables: bool,
    /// The clients table.
    pub clients: bool,
    /// The lake.
    pub lake: bool,
}

impl Needs {
    /// The API: the queue, the record tables and the lake (for the published reports).
    pub const API: Needs = Needs {
        queue: true,
        tables: true,
        clients: false,
        lake: true,
    };
    /// The writer: the queue and the record tables.
    pub const QUEUE_AND_TABLES: Needs = Needs {
        queue: true,
        tables: true,
        clients: false,
        lake: false,
    };
    /// The authorizer: the clients table.
    pub const CLIENTS: Needs = Needs {
        queue: false,
        tables: false,
        clients: true,
        lake: false,
    };
}
