//! Apps and keys in SQLite: the key store of the embedded mode, with app management.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::keys::{generate_key, hash_key, hashes_match};
use super::{App, AppAdmin, Credentials, KeyInfo, KeyLookup, Role};
use crate::error::Result;

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
        let creds = Credentials::new_app();
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

    async fn set_disabled(&self, app_id: &str, disabled: bool) -> Result<bool> {
        let app_id = app_id.to_owned();
        let n = self
            .with(move |c| {
                c.execute(
                    "UPDATE apps SET disabled = ?2 WHERE app_id = ?1",
                    params![app_id, disabled],
                )
            })
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
