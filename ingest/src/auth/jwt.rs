//! People in AWS mode: Cognito JWTs (`Authorization: Bearer …`), verified against the user
//! pool's JSON Web Key Set, which is fetched once and again only when a token names a key it
//! does not hold (a rotation), at most every [`REFETCH_AFTER`].
//!
//! A token passes when its signature is RS256 by a key of the set, its issuer is the pool's,
//! it has not expired (60 s of leeway), and it is an `id` token for one of the app clients
//! (`aud`) or an `access` token of one (`client_id`). The user's Cognito groups give the role:
//! `admin`, then `developer`, then `analyst`, the strongest wins; a user in none is refused.
//! An `id` token may carry `custom:apps`, the comma-separated apps the person may read; without
//! it they may read every app of the deployment.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::Uri;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::Role;
use crate::error::{IngestError, Result};

/// The least time between two fetches of the key set.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// The groups that give a role, strongest first.
const GROUPS: [(&str, Role); 3] = [
    ("admin", Role::Admin),
    ("developer", Role::Developer),
    ("analyst", Role::Analyst),
];

/// Where a user pool's key set comes from.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The current key set.
    async fn fetch(&self) -> Result<JwkSet>;
}

/// A key set served over HTTP(S): the pool's `{issuer}/.well-known/jwks.json`.
pub struct HttpJwks {
    url: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpJwks {
    /// The key set at `url` (HTTPS with the system's roots; plain HTTP for a local pool).
    pub fn new(url: &str) -> Result<Self> {
        let url = url
            .parse()
            .map_err(|e| IngestError::Config(format!("JWKS URL {url:?}: {e}")))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| IngestError::Config(format!("the system's TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpJwks {
            url,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet> {
        let failed = |e: String| IngestError::Jwks(format!("{}: {e}", self.url));
        let get = self.client.get(self.url.clone());
        let response = tokio::time::timeout(Duration::from_secs(5), get)
            .await
            .map_err(|_| failed("timed out after 5 s".into()))?
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| failed(format!("not a JWK set: {e}")))
    }
}

/// The user pool whose tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPool {
    /// `https://cognito-idp.{region}.amazonaws.com/{pool id}`: the tokens' `iss`.
    pub issuer: String,
    /// The app clients whose tokens are accepted.
    pub client_ids: Vec<String>,
    /// Where the key set is, when not at the issuer's `/.well-known/jwks.json` (an emulator).
    pub jwks_url: Option<String>,
}

impl UserPool {
    /// The pool's key set URL.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks.json",
                self.issuer.trim_end_matches('/')
            )
        })
    }
}

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The user's `sub`.
    pub subject: String,
    /// From the strongest of the user's groups.
    pub role: Role,
    /// The apps the person may read, when the token restricts them.
    pub apps: Option<Vec<String>>,
}

impl Person {
    /// Whether the person may act on `app_id`.
    pub fn may_see(&self, app_id: &str) -> bool {
        self.apps
            .as_ref()
            .is_none_or(|apps| apps.iter().any(|a| a == app_id))
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    token_use: Option<String>,
    aud: Option<String>,
    client_id: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
    #[serde(rename = "custom:apps")]
    apps: Option<String>,
}

struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// Verifies a pool's tokens, with its key set cached.
pub struct JwtVerifier {
    pool: UserPool,
    source: Arc<dyn JwksSource>,
    cache: Mutex<Cached>,
}

impl JwtVerifier {
    /// A verifier for `pool`'s tokens, its keys read from `source`.
    pub fn new(pool: UserPool, source: Arc<dyn JwksSource>) -> Self {
        JwtVerifier {
            pool,
            source,
            cache: Mutex::new(Cached {
                keys: HashMap::new(),
                fetched: None,
            }),
        }
    }

    /// A verifier for `pool`'s tokens, its keys fetched from the pool's JWKS URL.
    pub fn for_pool(pool: UserPool) -> Result<Self> {
        let source = Arc::new(HttpJwks::new(&pool.jwks_url())?);
        Ok(JwtVerifier::new(pool, source))
    }

    /// The person a token names, or [`IngestError::InvalidToken`] with the reason.
    pub async fn verify(&self, token: &str) -> Result<Person> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid(format!(
                "algorithm {:?}; RS256 expected",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.pool.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| {
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".into(),
                    ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
                    ErrorKind::InvalidSignature => "the signature does not verify".into(),
                    _ => format!("the token does not verify: {e}"),
                })
            })?
            .claims;
        let client = match claims.token_use.as_deref() {
            Some("id") => claims.aud.as_deref(),
            Some("access") => claims.client_id.as_deref(),
            other => {
                return Err(invalid(format!(
                    "token_use {other:?}; id or access expected"
                )))
            }
        };
        if !client.is_some_and(|c| self.pool.client_ids.iter().any(|k| k == c)) {
            return Err(invalid(format!(
                "the token is for another app client ({client:?})"
            )));
        }
        let role = GROUPS
            .iter()
            .find(|(g, _)| claims.groups.iter().any(|c| c == g))
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                invalid("the user is in none of the groups admin, developer, analyst".into())
            })?;
        let apps = claims.apps.map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        });
        Ok(Person {
            subject: claims.sub,
            role,
            apps,
        })
    }

    /// The key `kid`, fetching the set again when it is not held and the last fetch is old
    /// enough.
    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        if cache.fetched.is_none_or(|at| at.elapsed() >= REFETCH_AFTER) {
            let set = self.source.fetch().await?;
            cache.fetched = Some(Instant::now());
            cache.keys = set
                .keys
                .iter()
                .filter_map(|jwk| {
                    let kid = jwk.common.key_id.clone()?;
                    DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
                })
                .collect();
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| invalid(format!("the pool has no key {kid:?}")))
    }
}

fn invalid(reason: String) -> IngestError {
    IngestError::InvalidToken(reason)
}
