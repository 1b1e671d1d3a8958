//! The one outbound HTTPS connector of the runtime services: hyper-rustls over the rustls + aws-lc-rs stack
//! every service already links (no second TLS library), with the system's root certificates. It also
//! speaks plain `http://` (the AWS emulator in tests, the ECS container-credentials endpoint); callers that
//! must refuse plain HTTP check the scheme themselves.

use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP/1 connector for `https://` and `http://` URLs.
pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The connector, with `connect_timeout` on the TCP connect. Without system CA certificates it is still
/// built (a warning says every HTTPS call will fail to verify), so a service that never calls out over
/// HTTPS still starts.
pub fn connector(connect_timeout: Duration) -> Result<HttpsConnector, String> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no native root certificates; HTTPS calls will fail to verify");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}
