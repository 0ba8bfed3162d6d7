//! API keys, apps and roles.
//!
//! Keys are 256 random bits, shown once, and stored only as SHA-256 hashes. A lookup goes by the
//! hash, and the stored hash is compared in constant time. The tenant comes from the key alone.
//!
//! * [`keys`]: the domain types, and how keys are made, hashed and compared.
//! * The ports [`KeyLookup`] and [`AppAdmin`], with their adapters: [`sqlite::SqliteKeys`]
//!   (embedded), `dynamo::DynamoKeys` (the clients table, with the `aws` feature),
//!   `gateway::GatewayApps` (the clients table and API Gateway's keys and usage plans), and
//!   [`cache::CachedKeys`] in front of either.
//! * `jwt::JwtVerifier` (with the `aws` feature): people's Cognito tokens, for the `authorizer`
//!   Lambda; in embedded mode keys stay the only identity.

pub mod cache;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "aws")]
pub mod gateway;
#[cfg(feature = "aws")]
pub mod jwt;
pub mod keys;
pub mod sqlite;

use async_trait::async_trait;

use crate::error::Result;

pub use cache::CachedKeys;
#[cfg(feature = "aws")]
pub use dynamo::DynamoKeys;
#[cfg(feature = "aws")]
pub use gateway::GatewayApps;
pub use keys::{generate_key, hash_key, hashes_match, App, Credentials, KeyInfo, Role};
pub use sqlite::SqliteKeys;

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
    async fn disable_app(&self, app_id: &str) -> Result<bool> {
        self.set_disabled(app_id, true).await
    }
    /// Disables (403 from then on) or enables again an app's key; false when there is no such
    /// app.
    async fn set_disabled(&self, app_id: &str, disabled: bool) -> Result<bool>;
    /// Replaces an app's key; `None` when there is no such app.
    async fn rotate_key(&self, app_id: &str) -> Result<Option<Credentials>>;
}
