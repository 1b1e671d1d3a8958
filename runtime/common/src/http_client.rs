//! A small HTTP/1 client over hyper for service-to-service calls on the private network (plain HTTP; the
//! platform's internal endpoints are never exposed publicly), and the HTTPS connector of the services'
//! calls out of the platform (Lambda Function URLs, OAuth providers).

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// A connector for `https` (rustls on aws-lc-rs, the system's root certificates) and plain `http` URLs,
/// with `connect_timeout`. Without system root certificates it still builds, and warns that HTTPS calls
/// to `what` will fail to verify.
pub fn https_connector(
    connect_timeout: Duration,
    what: &str,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, rustls::Error> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let tls = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(tls.clone())
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no native root certificates; {what} calls over HTTPS will fail");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(tls)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("request timed out")]
    Timeout,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient { inner, timeout }
    }

    /// Sends a request and collects the whole response body.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let fut = async {
            let res = self
                .inner
                .request(req)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}
