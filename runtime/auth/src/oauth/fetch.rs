//! Calls from the auth service to OAuth/OIDC providers (discovery documents, JWKS, token and userinfo
//! endpoints), over hyper with rustls (the system's root certificates) or plain HTTP. Provider URLs
//! come only from the platform's admin API, never from a request; still every call is bounded: a
//! connect timeout, an overall deadline and a response body limit, and no redirect is followed.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// Largest provider response read (discovery documents and JWKS are a few KiB).
pub const MAX_BODY: usize = 256 * 1024;
/// Deadline of one call, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Transport(String),
    #[error("timed out")]
    Timeout,
    #[error("response too large")]
    TooLarge,
    #[error("answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("answered something other than JSON")]
    NotJson,
}

/// The client (one per auth service; connections pooled).
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for Fetcher {
    fn default() -> Fetcher {
        Fetcher::new()
    }
}

impl Fetcher {
    pub fn new() -> Fetcher {
        let https = supactl_common::https::connector(CONNECT_TIMEOUT)
            .expect("aws-lc-rs supports the default TLS versions");
        Fetcher {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
        }
    }

    /// `GET url` (with a bearer token when given), a JSON answer expected.
    pub async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, FetchError> {
        let mut req = request(Method::GET, url)?;
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::default())
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        self.json(req).await
    }

    /// `POST url` of a form (`application/x-www-form-urlencoded`), with HTTP Basic client
    /// authentication when `basic` is given (RFC 6749 §2.3.1), a JSON answer expected.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Value, FetchError> {
        let mut req = request(Method::POST, url)?.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let pair = format!("{}:{}", form_encode(id), form_encode(secret));
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            req = req.header(header::AUTHORIZATION, format!("Basic {b64}"));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        self.json(req).await
    }

    async fn json(&self, req: Request<Full<Bytes>>) -> Result<Value, FetchError> {
        let call = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| FetchError::Transport(e.to_string()))?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(FetchError::Status { status, body: text });
            }
            serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)
        };
        tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

fn request(method: Method, url: &str) -> Result<http::request::Builder, FetchError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| FetchError::Transport(format!("not a URL: {url}")))?;
    Ok(Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, HeaderValue::from_static("application/json"))
        // GitHub's API refuses requests without one.
        .header(header::USER_AGENT, HeaderValue::from_static("supactl-auth")))
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub fn form_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::service::URL_VALUE).to_string()
}
