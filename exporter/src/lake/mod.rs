//! The `Lake` port: whole objects under keys. Adapters: [`local::LocalLake`] (a folder) and
//! [`s3::S3Lake`]. A reader never sees half an object: the folder writes a temp file and renames
//! it, S3 takes one PUT.

pub mod local;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// An object in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    /// The key, relative to the lake's root, with `/` separators.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
}

/// A store of whole objects.
#[async_trait]
pub trait Lake: Send + Sync {
    /// Writes an object whole, replacing any object with the same key.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    /// Reads an object.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// Lists the objects whose keys start with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<Object>>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Where the lake is, for people: a folder path or `s3://bucket/prefix`.
    fn location(&self) -> String;
}
