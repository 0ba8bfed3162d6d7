//! API keys, apps and roles.
//!
//! Keys are 256 random bits, shown once, and stored only as SHA-256 hashes. A lookup goes by the
//! hash, and the stored hash is compared in constant time. The tenant comes from the key alone.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{IngestError, Result};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manage apps and keys, and everything else.
    Admin,
    /// Send records and read the app's data.
    Developer,
    /// Read the app's data and reports.
    Analyst,
    /// Send records only.
    Ingest,
}

impl Role {
    /// Parses a lowercase role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "analyst" => Some(Role::Analyst),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Analyst => "analyst",
            Role::Ingest => "ingest",
        }
    }

    /// May send records.
    pub fn can_write(self) -> bool {
        matches!(self, Role::Admin | Role::Developer | Role::Ingest)
    }

    /// May read the app's records and reports.
    pub fn can_read(self) -> bool {
        matches!(self, Role::Admin | Role::Developer | Role::Analyst)
    }

    /// May manage apps and keys.
    pub fn can_admin(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// What a key resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The tenant.
    pub app_id: String,
    /// The key's role.
    pub role: Role,
    /// A disabled key gets 403.
    pub disabled: bool,
    /// Requests per second for this key, if the app sets its own.
    pub rate_limit: Option<u32>,
}

/// An app, as the admin commands show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// The tenant id.
    pub app_id: String,
    /// A human name.
    pub name: String,
    /// The role of the app's key.
    pub role: Role,
    /// Requests per second, if the app sets its own.
    pub rate_limit: Option<u32>,
    /// Whether the app's key is refused.
    pub disabled: bool,
    /// When it was created, epoch ms.
    pub created_at: i64,
}

/// A new app or key: the only time the key itself is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The tenant id.
    pub app_id: String,
    /// The API key, for the `x-api-key` header.
    pub api_key: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new API key: `ck_` and 256 random bits in hex.
pub fn generate_key() -> String {
    format!("ck_{}", random_hex(32))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compares two hashes in constant time.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Resolves a key hash to its app and role.
#[async_trait]
pub trait KeyLookup: Send + Sync {
    /// The key's info, or `None` for an unknown key.
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>>;
}

/// Manages apps and their keys.
#[async_trait]
pub trait AppAdmin: Send + Sync {
    /// Creates an app with a new key.
    async fn create_app(
        &self,
        name: &str,
        rate_limit: Option<u32>,
        role: Role,
    ) -> Result<Credentials>;
    /// Every app, oldest first.
    async fn list_apps(&self) -> Result<Vec<App>>;
    /// Disables an app's key; false when there is no such app.
    async fn disable_app(&self, app_id: &str) -> Result<bool>;
    /// Replaces an app's key; `None` when there is no such app.
    async fn rotate_key(&self, app_id: &str) -> Result<Option<Credentials>>;
}

/// Apps and keys in SQLite (embedded mode).
#[derive(Clone)]
pub struct SqliteKeys {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeys").finish_non_exhaustive()
    }
}

const APPS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, rate_limit INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0, key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
";

impl SqliteKeys {
    /// Opens (and creates if needed) the key store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let conn = cauce_store::sqlite::open(path.as_ref())?;
        conn.execute_batch(APPS_SCHEMA)?;
        Ok(SqliteKeys {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let out = cauce_store::sqlite::with_conn(&self.conn, move |c| Ok(f(c)?)).await?;
        Ok(out)
    }
}

#[async_trait]
impl KeyLookup for SqliteKeys {
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
        let wanted = key_hash.to_owned();
        let row = self
            .with(move |c| {
                c.prepare_cached(
                    "SELECT key_hash, app_id, role, disabled, rate_limit FROM apps WHERE key_hash = ?1",
                )?
                .query_row([&wanted], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Option<u32>>(4)?,
                    ))
                })
                .optional()
            })
            .await?;
        Ok(
            row.and_then(|(stored, app_id, role, disabled, rate_limit)| {
                hashes_match(&stored, key_hash).then(|| KeyInfo {
                    app_id,
                    role: Role::parse(&role).unwrap_or(Role::Ingest),
                    disabled,
                    rate_limit,
                })
            }),
        )
    }
}

#[async_trait]
impl AppAdmin for SqliteKeys {
    async fn create_app(
        &self,
        name: &str,
        rate_limit: Option<u32>,
        role: Role,
    ) -> Result<Credentials> {
        let creds = Credentials {
            app_id: format!("app_{}", random_hex(8)),
            api_key: generate_key(),
        };
        let (app_id, hash, name) = (
            creds.app_id.clone(),
            hash_key(&creds.api_key),
            name.to_owned(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO apps (app_id, name, role, rate_limit, key_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    app_id,
                    name,
                    role.as_str(),
                    rate_limit,
                    hash,
                    cauce_store::time::now_ms()
                ],
            )
        })
        .await?;
        Ok(creds)
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT app_id, name, role, rate_limit, disabled, created_at FROM apps ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(App {
                    app_id: r.get(0)?,
                    name: r.get(1)?,
                    role: Role::parse(&r.get::<_, String>(2)?).unwrap_or(Role::Ingest),
                    rate_limit: r.get(3)?,
                    disabled: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn disable_app(&self, app_id: &str) -> Result<bool> {
        let app_id = app_id.to_owned();
        let n = self
            .with(move |c| c.execute("UPDATE apps SET disabled = 1 WHERE app_id = ?1", [app_id]))
            .await?;
        Ok(n == 1)
    }

    async fn rotate_key(&self, app_id: &str) -> Result<Option<Credentials>> {
        let key = generate_key();
        let (id, hash) = (app_id.to_owned(), hash_key(&key));
        let n = self
            .with(move |c| {
                c.execute(
                    "UPDATE apps SET key_hash = ?2 WHERE app_id = ?1",
                    [id, hash],
                )
            })
            .await?;
        Ok((n == 1).then(|| Credentials {
            app_id: app_id.to_owned(),
            api_key: key,
        }))
    }
}

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

/// A short-lived cache in front of a [`KeyLookup`], so that the hot path reads the key store
/// about once per key and TTL, and a disabled or rotated key stops working within the TTL.
pub struct CachedKeys {
    inner: Arc<dyn KeyLookup>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<KeyInfo>)>>,
}

impl CachedKeys {
    /// Caches lookups of `inner` for `ttl`.
    pub fn new(inner: Arc<dyn KeyLookup>, ttl: Duration) -> Self {
        CachedKeys {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached entry (after an admin change in this process).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[async_trait]
impl KeyLookup for CachedKeys {
    async fn lookup(&self, key_hash: &str) -> Result<Option<KeyInfo>> {
        if let Some((at, info)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_hash)
        {
            if at.elapsed() < self.ttl {
                return Ok(info.clone());
            }
        }
        let info = self.inner.lookup(key_hash).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(key_hash.to_owned(), (Instant::now(), info.clone()));
        Ok(info)
    }
}
