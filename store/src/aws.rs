//! Shared AWS SDK set-up for the binaries: one HTTPS client (rustls with ring) and the standard
//! configuration chain, which honours `AWS_ENDPOINT_URL`, `AWS_REGION` and the usual credentials.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Loads the AWS configuration from the environment, once per process.
pub async fn sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}
