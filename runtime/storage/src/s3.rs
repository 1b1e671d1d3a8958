//! The S3 object store: `object_store`'s `AmazonS3` (its `aws-base` implementation, without reqwest) over
//! the runtime's own hyper + rustls client ([`supactl_common::https`]), so storage adds no second HTTP or
//! TLS stack.
//!
//! Credentials come from the environment the way the AWS SDKs read it (`AmazonS3Builder::from_env`):
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else the ECS task role through the
//! container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, which ECS sets), else web
//! identity or the instance metadata service. An `endpoint` (the emulator in tests) is reached by path
//! style, over plain HTTP only when it is an `http://` URL.
//!
//! Each call gets [`REQUEST_TIMEOUT`] until the response head (a part upload's bytes are sent within it)
//! and then [`BODY_IDLE_TIMEOUT`] between chunks of the response body; object_store retries what may
//! be retried.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use supactl_common::https::HttpsConnector;
use tokio::time::{Instant, Sleep};

/// Where the bucket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The bucket's region; None: `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Another S3 endpoint than AWS's (the emulator in tests), e.g. `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    /// Keys are stored below this prefix of the bucket (`<prefix>/<ref>/<version>`).
    pub prefix: Option<String>,
}

/// TCP connect to S3.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A request until its response head: covers sending a whole part (5 MiB at ≥ 175 KB/s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the next chunk of a response body (a download from S3).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections to S3 are kept this long (below S3's own idle close).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The bucket as an [`ObjectStore`], below its prefix when there is one.
pub fn store(location: &S3Location) -> Result<Arc<dyn ObjectStore>, String> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&location.bucket)
        .with_http_connector(HyperConnector::new()?);
    if let Some(region) = &location.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &location.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let s3 = builder
        .build()
        .map_err(|e| format!("s3 bucket {}: {e}", location.bucket))?;
    Ok(
        match location.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => Arc::new(PrefixStore::new(s3, p)),
            _ => Arc::new(s3),
        },
    )
}

/// Gives object_store a client over [`supactl_common::https`].
#[derive(Debug, Clone)]
struct HyperConnector {
    client: Client<HttpsConnector, HttpRequestBody>,
}

impl HyperConnector {
    fn new() -> Result<HyperConnector, String> {
        let https = supactl_common::https::connector(CONNECT_TIMEOUT)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(https);
        Ok(HyperConnector { client })
    }
}

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        Ok(HttpClient::new(HyperService {
            client: self.client.clone(),
            allow_http,
        }))
    }
}

struct HyperService {
    client: Client<HttpsConnector, HttpRequestBody>,
    /// Plain `http://` URLs are refused unless the store allows them (an `http://` endpoint, the ECS
    /// credentials endpoint).
    allow_http: bool,
}

impl std::fmt::Debug for HyperService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperService")
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

fn http_error(kind: HttpErrorKind, message: &'static str) -> HttpError {
    HttpError::new(kind, std::io::Error::other(message))
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if !self.allow_http && req.uri().scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(http_error(
                HttpErrorKind::Connect,
                "refusing a plain http:// request to S3",
            ));
        }
        let res = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| http_error(HttpErrorKind::Timeout, "s3 request timed out"))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = res.into_parts();
        let body = IdleBody {
            inner: body,
            timer: Box::pin(tokio::time::sleep(BODY_IDLE_TIMEOUT)),
            waiting: false,
        };
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// A response body that fails when no chunk arrives for [`BODY_IDLE_TIMEOUT`] while it is read (time the
/// reader itself spends elsewhere, e.g. a slow client downstream, does not count).
struct IdleBody {
    inner: hyper::body::Incoming,
    timer: Pin<Box<Sleep>>,
    /// The last poll found nothing: the timer is running.
    waiting: bool,
}

impl Body for IdleBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if !self.waiting {
            let deadline = Instant::now() + BODY_IDLE_TIMEOUT;
            self.timer.as_mut().reset(deadline);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.waiting = polled.is_pending();
        match polled {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(HttpError::new(HttpErrorKind::Interrupted, e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(http_error(
                    HttpErrorKind::Timeout,
                    "s3 response body stalled",
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
