//! Who is calling: the [`Caller`] extractor resolves the tenant and role once per request, and
//! refuses a role that may not do what the route does.
//!
//! * Embedded mode ([`Tenancy::Keys`]): the `x-api-key` header, hashed and looked up in the key
//!   store (cached), then the key's rate limit.
//! * AWS mode ([`Tenancy::Authorizer`]): API Gateway's authorizer has checked the key; the
//!   `api` Lambda's layer (`crate::lambda::api_router`) puts what it resolved in the request's
//!   extensions as [`Authorized`]. Nothing else inserts it.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;

use super::{ApiError, ApiState, Tenancy};
use crate::auth::{hash_key, CachedKeys, KeyLookup, Role};

/// The header that carries the API key (API Gateway's own).
pub const API_KEY_HEADER: &str = "x-api-key";

/// The header in which an admin key, or a person, names the app whose data they read (the
/// `app` query parameter does the same, for a browser).
pub const APP_HEADER: &str = "x-cauce-app";

/// The caller as API Gateway's authorizer resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The tenant.
    pub app_id: String,
    /// What the key may do.
    pub role: Role,
}

/// What a route needs the caller's role to allow.
pub trait Permission: Send + Sync + 'static {
    /// Whether `role` may.
    fn allows(role: Role) -> bool;
    /// Whether the route acts on one app's data (so the caller must name one).
    const ON_AN_APP: bool = true;
    /// Whether an admin key may act on another app than its own, the one it names.
    const ANY_APP_FOR_ADMINS: bool = false;
}

/// Sending records.
#[derive(Debug)]
pub enum Write {}
/// Reading the app's records and reports.
#[derive(Debug)]
pub enum Read {}
/// Managing apps and keys.
#[derive(Debug)]
pub enum Manage {}

impl Permission for Write {
    fn allows(role: Role) -> bool {
        role.can_write()
    }
}
impl Permission for Read {
    fn allows(role: Role) -> bool {
        role.can_read()
    }
    const ANY_APP_FOR_ADMINS: bool = true;
}
impl Permission for Manage {
    fn allows(role: Role) -> bool {
        role.can_admin()
    }
    const ON_AN_APP: bool = false;
}

/// The caller of a route that needs the permission `P`.
#[derive(Debug)]
pub struct Caller<P: Permission> {
    /// The tenant: from the key, never from the body.
    pub app_id: String,
    /// What the key may do.
    pub role: Role,
    may: PhantomData<fn() -> P>,
}

impl<P: Permission> FromRequestParts<Arc<ApiState>> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let who = match &api.tenancy {
            Tenancy::Keys(keys) => {
                let mut who = by_key(api, keys, parts).await?;
                // An admin key reads any app's data, the one it names.
                if P::ANY_APP_FOR_ADMINS && who.role.can_admin() {
                    if let Some(app) = named_app(parts) {
                        who.app_id = app;
                    }
                }
                who
            }
            Tenancy::Authorizer => {
                let found = parts.extensions.get::<Authorized>().cloned();
                match (found, &api.unguarded_keys) {
                    (Some(who), _) => who,
                    // A route that API Gateway leaves to the API: its key, looked up here.
                    (None, Some(keys)) => by_key(api, keys, parts).await?,
                    (None, None) => {
                        return Err(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "missing_authorizer_context",
                            "the request carries no authorizer context with an app_id",
                        ))
                    }
                }
            }
        };
        if P::ON_AN_APP && who.app_id.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "app_required",
                format!("name the app whose data you read in the {APP_HEADER} header (or ?app=)"),
            ));
        }
        super::access::AccessNote::app(&parts.extensions, &who.app_id);
        if !P::allows(who.role) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a key with role `{}` may not do this", who.role.as_str()),
            ));
        }
        Ok(Caller {
            app_id: who.app_id,
            role: who.role,
            may: PhantomData,
        })
    }
}

/// The client's address, where the server put it (`cauce serve` does, per connection).
fn client_addr(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The app the request names, in [`APP_HEADER`] or the `app` query parameter.
fn named_app(parts: &Parts) -> Option<String> {
    if let Some(app) = parts.headers.get(APP_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(app.to_owned()).filter(|a| !a.is_empty());
    }
    parts.uri.query()?.split('&').find_map(|pair| {
        let app = pair.strip_prefix("app=")?;
        Some(app.to_owned()).filter(|a| !a.is_empty() && !a.contains('%'))
    })
}

/// The key a request presents: the `x-api-key` header, or HTTP Basic credentials whose user
/// name (or, with an empty user name, password) is the key, as a browser or an analytics SDK
/// sends it.
fn presented_key(parts: &Parts) -> Option<String> {
    if let Some(key) = parts.headers.get(API_KEY_HEADER) {
        return key
            .to_str()
            .ok()
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
    }
    let basic = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let key = if user.is_empty() { password } else { user };
    Some(key.to_owned()).filter(|k| !k.is_empty())
}

/// Resolves the `x-api-key` header, then applies the key's rate limit. An address that has
/// failed authentication too often gets 429, before the key store is asked, for any key that
/// the cache has not seen valid: a good client behind the same address keeps working.
async fn by_key(api: &ApiState, keys: &CachedKeys, parts: &Parts) -> Result<Authorized, ApiError> {
    let key = presented_key(parts).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "the x-api-key header (or HTTP Basic credentials with the key) is required",
        )
    })?;
    let hash = hash_key(&key);
    let addr = client_addr(parts);
    if let Some(Err(wait)) = addr.map(|a| api.auth_failures.check(a)) {
        if !keys.is_known(&hash) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_auth_failures",
                "too many requests with invalid API keys from this address; retry after the Retry-After delay",
            )
            .retry_after(wait.as_secs_f64().ceil() as u64));
        }
    }
    let Some(info) = keys.lookup(&hash).await? else {
        if let Some(a) = addr {
            api.auth_failures.failed(a);
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the API key is not valid",
        ));
    };
    if info.disabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "disabled_key",
            "the API key is disabled",
        ));
    }
    if let Err(wait) = api.rate.check(&hash, info.rate_limit) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this key; retry after the Retry-After delay",
        )
        .retry_after(wait.as_secs_f64().ceil() as u64));
    }
    Ok(Authorized {
        app_id: info.app_id,
        role: info.role,
    })
}
