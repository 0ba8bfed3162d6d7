//! The lake in S3: one PUT per object (whole, atomic for readers), paginated listing, and
//! downloads and uploads streamed between S3 and local files.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use aws_config::SdkConfig;

use super::{Lake, Object};
use crate::error::{Result, StoreError};

/// An S3 client for the lake. With an endpoint override (`AWS_ENDPOINT_URL`: moto, MinIO) it
/// addresses buckets by path, which such endpoints need.
pub fn client(aws: &SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    Client::from_conf(conf)
}

/// An S3 lake: a bucket and a key prefix.
#[derive(Debug, Clone)]
pub struct S3Lake {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Lake {
    /// A lake under `s3://bucket/prefix`.
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into().trim_matches('/').to_owned();
        S3Lake {
            client,
            bucket: bucket.into(),
            prefix,
        }
    }

    /// Parses `s3://bucket/prefix` into a lake.
    pub fn from_url(client: Client, url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::Config(format!("{url:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Config(format!("{url:?} names no bucket")));
        }
        Ok(S3Lake::new(client, bucket, prefix))
    }

    /// Creates the bucket (tests and development).
    pub async fn create_bucket(&self) -> Result<()> {
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| StoreError::s3("CreateBucket", &self.bucket, e))?;
        Ok(())
    }

    async fn get_object(
        &self,
        key: &str,
        full: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    StoreError::NotFound(key.to_owned())
                } else {
                    StoreError::s3("GetObject", full, e)
                }
            })
    }

    fn full(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

#[async_trait]
impl Lake for S3Lake {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let full = self.full(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| StoreError::s3("PutObject", &full, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let full = self.full(key);
        let out = self.get_object(key, &full).await?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::s3("GetObject", &full, e))?;
        Ok(data.into_bytes())
    }

    async fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let full = self.full(key);
        let mut out = self.get_object(key, &full).await?.body;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| StoreError::io(dest, e))?;
        let mut size = 0;
        while let Some(chunk) = out
            .try_next()
            .await
            .map_err(|e| StoreError::s3("GetObject", &full, e))?
        {
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io(dest, e))?;
        }
        file.flush().await.map_err(|e| StoreError::io(dest, e))?;
        Ok(size)
    }

    async fn upload(&self, key: &str, src: &Path) -> Result<()> {
        let full = self.full(key);
        let body = ByteStream::from_path(src)
            .await
            .map_err(|e| StoreError::s3("PutObject", &full, e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError::s3("PutObject", &full, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        let full = self.full(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError::s3("ListObjectsV2", &full, e))?;
            for o in page.contents() {
                let key = o.key().unwrap_or_default();
                out.push(Object {
                    key: key.get(strip..).unwrap_or_default().to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    version: o.e_tag().unwrap_or_default().to_owned(),
                });
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full(key);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| StoreError::s3("DeleteObject", &full, e))?;
        Ok(())
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
