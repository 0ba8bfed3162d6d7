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

/// Whether a test that needs an AWS emulator can run: `AWS_ENDPOINT_URL` points at one (the
/// moto server that `./test.sh` starts). When it is unset, the test says so on stderr and is
/// skipped, so that `cargo test` works before `./test.sh` has ever run; with
/// `CAUCE_REQUIRE_EMULATOR` set (as `./test.sh` sets it), a missing emulator fails the test.
pub fn emulator(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CAUCE_REQUIRE_EMULATOR").is_none(),
        "{test}: AWS_ENDPOINT_URL must point at a moto server: run ./test.sh"
    );
    eprintln!("{test}: skipped, AWS_ENDPOINT_URL is not set (./test.sh starts moto and sets it)");
    false
}
