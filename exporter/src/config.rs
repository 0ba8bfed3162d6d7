//! Where the lake is: a local folder, or `s3://bucket/prefix`.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::error::Result;
use crate::lake::local::LocalLake;
use crate::lake::s3::S3Lake;
use crate::lake::Lake;

/// An S3 client for the lake. With an endpoint override (`AWS_ENDPOINT_URL`: moto, MinIO) it
/// addresses buckets by path, which such endpoints need.
pub fn s3_client(aws: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Opens the lake at `location`: `s3://bucket/prefix`, or a folder path.
pub async fn open_lake(location: &str) -> Result<Arc<dyn Lake>> {
    if location.starts_with("s3://") {
        let aws = cauce_store::aws::sdk_config().await;
        Ok(Arc::new(S3Lake::from_url(s3_client(&aws), location)?))
    } else {
        Ok(Arc::new(LocalLake::new(location)))
    }
}
