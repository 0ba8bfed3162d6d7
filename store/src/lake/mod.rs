//! The lake: the `Lake` port (whole objects under keys), its two adapters, and the lake's
//! vocabulary, which every stage that reads or writes the lake shares.
//!
//! * [`Lake`]: the port. Adapters: [`local::LocalLake`] (a folder) and `s3::S3Lake` (with the
//!   `aws` feature). A reader never sees half an object: the folder writes a temp file and
//!   renames it, S3 takes one PUT.
//! * [`layout`]: where everything is: `{kind}/dt=YYYY-MM-DD/hour=HH/{name}.parquet`, the
//!   bad-rows archive, the published reports, and the one way names are made safe for keys.
//! * [`schema`]: the columns of each kind's files, and how copies and versions of a record are
//!   told apart. The exporter builds its Arrow schemas from it, analytics its Polars schemas.

pub mod layout;
pub mod local;
#[cfg(feature = "aws")]
pub mod s3;
pub mod schema;
pub mod watermark;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Result, StoreError};

/// An object in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    /// The key, relative to the lake's root, with `/` separators.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// What changes whenever the object is rewritten, even at the same size: the S3 ETag, or a
    /// local file's modification time in nanoseconds.
    pub version: String,
}

/// A store of whole objects.
#[async_trait]
pub trait Lake: Send + Sync {
    /// Writes an object whole, replacing any object with the same key.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    /// Reads an object; [`StoreError::NotFound`] when there is none.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// Lists the objects whose keys start with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<Object>>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Copies an object into the local file `dest` and returns its size. Adapters stream it,
    /// so that an object never needs to fit in memory; this default reads it whole.
    async fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        let bytes = self.get(key).await?;
        tokio::fs::write(dest, &bytes)
            .await
            .map_err(|e| StoreError::io(dest, e))?;
        Ok(bytes.len() as u64)
    }
    /// Writes the local file `src` whole under `key`. Adapters stream it; this default reads
    /// it whole.
    async fn upload(&self, key: &str, src: &Path) -> Result<()> {
        let bytes = tokio::fs::read(src)
            .await
            .map_err(|e| StoreError::io(src, e))?;
        self.put(key, Bytes::from(bytes)).await
    }
    /// Where the lake is, for people: a folder path or `s3://bucket/prefix`.
    fn location(&self) -> String;
}

/// Opens the lake at `location`: `s3://bucket/prefix` (with the `aws` feature), or a folder.
pub async fn open(location: &str) -> Result<Arc<dyn Lake>> {
    if location.starts_with("s3://") {
        open_s3(location).await
    } else {
        Ok(Arc::new(local::LocalLake::new(location)))
    }
}

#[cfg(feature = "aws")]
async fn open_s3(location: &str) -> Result<Arc<dyn Lake>> {
    let aws = crate::aws::sdk_config().await;
    Ok(Arc::new(s3::S3Lake::from_url(s3::client(&aws), location)?))
}

#[cfg(not(feature = "aws"))]
async fn open_s3(location: &str) -> Result<Arc<dyn Lake>> {
    Err(StoreError::Unsupported(format!(
        "the lake {location:?} is in S3, and this build has no AWS support; \
         build with `--features aws`"
    )))
}

/// Reads an object, or `None` when the lake has no object under `key`.
pub async fn get_if_present(lake: &dyn Lake, key: &str) -> Result<Option<Bytes>> {
    match lake.get(key).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
