//! Keys, apps and roles: the domain types, and how keys are made and compared.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credentials {
    /// The tenant id.
    pub app_id: String,
    /// The API key, for the `x-api-key` header.
    pub api_key: String,
}

impl Credentials {
    /// A new app's id and key.
    pub fn new_app() -> Self {
        Credentials {
            app_id: format!("app_{}", random_hex(8)),
            api_key: generate_key(),
        }
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
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
