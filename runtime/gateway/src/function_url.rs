//! The REST upstream of projects whose REST runs on AWS Lambda: the project's Function URL (`AWS_IAM`
//! auth), called over HTTPS and signed with SigV4 by the `aws-sigv4` crate (service `lambda`).
//!
//! - The Function URL's IAM auth consumes `Authorization` (it carries the SigV4 signature), so the minted
//!   JWT travels in [`FORWARDED_JWT_HEADER`]; the REST function reads it from there only.
//! - Signed: `host`, `content-type` (when sent), the JWT header, `x-amz-date`, `x-amz-security-token` (with
//!   temporary credentials) and the payload's SHA-256. Other forwarded headers (Prefer, Range, Accept…)
//!   ride along unsigned.
//! - The path and query are re-encoded into AWS's canonical form before signing (each component
//!   percent-decoded, `+` read as a space as the REST engine reads it, then encoded with only unreserved
//!   characters left bare), so the request sent is byte-for-byte the one signed and means the same to
//!   the engine.
//! - The region is parsed from the URL's host (`<id>.lambda-url.<region>.on.aws`), else the configured
//!   one (`AWS_REGION`).
//! - Credentials come from an injected [`SharedCredentialsProvider`] (the CLI gives aws-config's default
//!   chain; this crate depends on no AWS SDK) and are cached until five minutes before they expire.
//! - The response keeps its status, every header (Content-Range, Location, Preference-Applied,
//!   Set-Cookie…) except hop-by-hop ones and AWS's own `x-amz*`, and its body. A Lambda-level failure
//!   (an AWS error response or a non-JSON 5xx), a transport error or a timeout becomes a JSON 502/503/504
//!   for the client, with the detail in the log only.
//! - Every call is counted by outcome (`supactl_lambda_invocations_total`, with its duration), and every
//!   credentials, signing or signature-refused failure in `supactl_lambda_sigv4_errors_total`
//!   ([`supactl_common::metrics::backends`]).

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{percent_decode, AsciiSet, NON_ALPHANUMERIC};
use std::time::{Duration, Instant, SystemTime};
use supactl_common::error::HttpError;
pub use supactl_common::headers::FORWARDED_JWT_HEADER;
use supactl_common::metrics::metrics;
use tokio::sync::RwLock;

/// Largest response body taken from a function (Lambda's own limit for buffered responses is 6 MB).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Lambda's limit on a synchronous invocation's payload (the Function URL's event: the body, base64
/// when it is not text, with the request's headers and context around it).
const LAMBDA_PAYLOAD: usize = 6 * 1024 * 1024;
/// What the event's envelope may take besides the body (the gateway forwards at most 64 headers of
/// a few hundred bytes each, plus Lambda's request context).
const EVENT_ENVELOPE: usize = 128 * 1024;
/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Everything but RFC 3986's unreserved characters is percent-encoded (SigV4's URI encoding).
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone)]
pub struct FunctionUrlConfig {
    /// Region to sign for when the URL's host does not name one (`AWS_REGION`).
    pub region: Option<String>,
    /// Longest wait for a function's answer (above the functions' own timeout, 30 s by default).
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for FunctionUrlConfig {
    fn default() -> FunctionUrlConfig {
        FunctionUrlConfig {
            region: None,
            timeout: Duration::from_secs(35),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionUrlError {
    #[error("function url client: tls setup failed: {0}")]
    Tls(String),
}

/// A REST request on its way to a function.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    /// The path below `/rest/v1`, as the client sent it.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The forwardable client headers plus the gateway's own.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The minted JWT.
    pub jwt: &'a str,
}

/// The Function URL upstream (see the module docs).
pub struct FunctionUrls {
    client: Client<supactl_common::https::HttpsConnector, Full<Bytes>>,
    provider: SharedCredentialsProvider,
    cached: RwLock<Option<Credentials>>,
    config: FunctionUrlConfig,
}

impl FunctionUrls {
    pub fn new(
        provider: SharedCredentialsProvider,
        config: FunctionUrlConfig,
    ) -> Result<FunctionUrls, FunctionUrlError> {
        let https = supactl_common::https::connector(config.connect_timeout)
            .map_err(FunctionUrlError::Tls)?;
        Ok(FunctionUrls {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(https),
            provider,
            cached: RwLock::new(None),
            config,
        })
    }

    /// Current credentials, from the cache while they are fresh.
    async fn credentials(&self) -> Result<Credentials, HttpError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(c) = self.cached.read().await.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let mut slot = self.cached.write().await;
        if let Some(c) = slot.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = self.provider.provide_credentials().await.map_err(|e| {
            metrics().backends.sigv4_error("credentials");
            tracing::error!(error = %e, "no AWS credentials to sign Function URL requests");
            failed(
                StatusCode::BAD_GATEWAY,
                "rest_function_unavailable",
                "the gateway cannot call the project's REST function right now",
            )
        })?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forwards one REST request to `function_url` with the minted JWT, signed.
    pub(crate) async fn forward(
        &self,
        function_url: &str,
        request: Outgoing<'_>,
    ) -> Result<Response, HttpError> {
        let Outgoing {
            method,
            path,
            query,
            mut headers,
            body,
            jwt,
        } = request;
        if !fits_lambda_payload(&body) {
            return Err(failed(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large: a project whose REST runs on AWS Lambda takes at most 6 MB per request",
            ));
        }
        let misconfigured = |what: &str| {
            tracing::error!(url = %function_url, %what, "bad REST function URL");
            failed(
                StatusCode::BAD_GATEWAY,
                "rest_function_unavailable",
                "the project's REST function is not reachable",
            )
        };
        let base: Uri = function_url
            .parse()
            .map_err(|_| misconfigured("not a URL"))?;
        let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) else {
            return Err(misconfigured("not an absolute URL"));
        };
        if scheme != "https" && scheme != "http" {
            return Err(misconfigured("not http(s)"));
        }
        let region = region_of(authority.host())
            .map(str::to_string)
            .or_else(|| self.config.region.clone())
            .ok_or_else(|| misconfigured("no region in the host and none configured"))?;
        let mut target = format!(
            "{scheme}://{authority}{}{}",
            base.path().trim_end_matches('/'),
            aws_path(path)
        );
        if let Some(q) = query.map(aws_query).filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(&q);
        }
        let uri: Uri = target.parse().map_err(|_| {
            failed(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request path cannot be forwarded",
            )
        })?;

        headers.remove(header::AUTHORIZATION);
        headers.insert(
            HeaderName::from_static(FORWARDED_JWT_HEADER),
            HeaderValue::from_str(&format!("Bearer {jwt}")).expect("a JWT is a valid header value"),
        );
        headers.insert(
            header::HOST,
            HeaderValue::from_str(authority.as_str()).expect("an authority is header-safe"),
        );

        let credentials = self.credentials().await?;
        sign_request(
            &method,
            &uri,
            &mut headers,
            &body,
            &credentials,
            &region,
            SystemTime::now(),
        )
        .map_err(|e| {
            metrics().backends.sigv4_error("signing");
            tracing::error!(error = %e, "SigV4 signing failed");
            failed(
                StatusCode::BAD_GATEWAY,
                "rest_function_unavailable",
                "the gateway cannot call the project's REST function right now",
            )
        })?;

        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|_| {
                failed(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the request cannot be forwarded",
                )
            })?;
        *req.headers_mut() = headers;
        let call = async {
            let res = self.client.request(req).await.map_err(|e| {
                tracing::error!(url = %function_url, error = %e, "REST function call failed");
                unreachable_function()
            })?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    tracing::error!(url = %function_url, error = %e, "REST function response unreadable");
                    unreachable_function()
                })?
                .to_bytes();
            Ok::<_, HttpError>((parts, body))
        };
        let started = Instant::now();
        let called = tokio::time::timeout(self.config.timeout, call).await;
        let seconds = started.elapsed().as_secs_f64();
        let (parts, body) = match called {
            Ok(Ok(answer)) => answer,
            Ok(Err(unreachable)) => {
                metrics().backends.lambda_invocation("unreachable", seconds);
                return Err(unreachable);
            }
            Err(_) => {
                metrics().backends.lambda_invocation("timeout", seconds);
                tracing::error!(url = %function_url, timeout = ?self.config.timeout, "REST function timed out");
                return Err(failed(
                    StatusCode::GATEWAY_TIMEOUT,
                    "rest_function_timeout",
                    "the project's REST function did not answer in time",
                ));
            }
        };
        let outcome = invocation_outcome(parts.status, &parts.headers);
        metrics().backends.lambda_invocation(outcome, seconds);
        if outcome == "rejected" {
            metrics().backends.sigv4_error("rejected");
        }
        if let Some(e) = lambda_failure(parts.status, &parts.headers) {
            tracing::error!(
                url = %function_url,
                status = %parts.status,
                error_type = ?parts.headers.get("x-amzn-errortype"),
                body = %String::from_utf8_lossy(&body[..body.len().min(512)]),
                "REST function failed"
            );
            return Err(e);
        }
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = parts.status;
        let h = res.headers_mut();
        for (name, value) in parts.headers.iter() {
            if passes_back(name) {
                h.append(name.clone(), value.clone());
            }
        }
        Ok(res)
    }
}

/// Whether `body` fits Lambda's payload limit once in the event: text as a JSON string (quotes,
/// backslashes and control characters escaped), anything else base64-encoded (4 bytes for every 3).
fn fits_lambda_payload(body: &[u8]) -> bool {
    let room = LAMBDA_PAYLOAD - EVENT_ENVELOPE;
    if body.len() > room {
        return false;
    }
    let in_event = match std::str::from_utf8(body) {
        Ok(_) => body
            .iter()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..=0x1f => 6,
                _ => 1,
            })
            .sum(),
        Err(_) => body.len().div_ceil(3) * 4,
    };
    in_event <= room
}

fn failed(status: StatusCode, code: &str, message: &str) -> HttpError {
    HttpError::new(status, code, message)
}

fn unreachable_function() -> HttpError {
    failed(
        StatusCode::BAD_GATEWAY,
        "rest_function_unavailable",
        "the project's REST function could not be reached",
    )
}

/// A response produced by Lambda or IAM rather than by the REST engine (which always answers JSON):
/// throttling → 503, anything else → 502.
fn lambda_failure(status: StatusCode, headers: &HeaderMap) -> Option<HttpError> {
    let aws_error = headers.contains_key("x-amzn-errortype");
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if !(aws_error || (status.is_server_error() && !json)) {
        return None;
    }
    Some(if status == StatusCode::TOO_MANY_REQUESTS {
        failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "rest_function_busy",
            "the project's REST function is busy; retry shortly",
        )
    } else {
        failed(
            StatusCode::BAD_GATEWAY,
            "rest_function_failed",
            "the project's REST function failed to answer",
        )
    })
}

/// The `outcome` label of a call that was answered: `ok` for anything the REST engine answered (its own
/// errors included), else `throttled` (429), `rejected` (403 from IAM: the signature or the credentials
/// refused) or `function_error`.
fn invocation_outcome(status: StatusCode, headers: &HeaderMap) -> &'static str {
    if lambda_failure(status, headers).is_none() {
        "ok"
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        "throttled"
    } else if status == StatusCode::FORBIDDEN && headers.contains_key("x-amzn-errortype") {
        "rejected"
    } else {
        "function_error"
    }
}

/// Response headers handed back to the client: all but hop-by-hop ones, the length (recomputed) and
/// AWS's own (`x-amz*`: request ids, trace ids, error types).
fn passes_back(name: &HeaderName) -> bool {
    let n = name.as_str();
    !matches!(
        n,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-connection"
            | "content-length"
    ) && !n.starts_with("x-amz")
}

/// The region of a Function URL host, `<url-id>.lambda-url.<region>.on.aws`.
pub fn region_of(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(".on.aws")?;
    let (_, region) = rest.split_once(".lambda-url.")?;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

/// Decodes a path or query component (`+` as a space when `plus_is_space`) and encodes it again in
/// SigV4's canonical form.
fn reencode(component: &str, plus_is_space: bool) -> String {
    let spaced;
    let s = if plus_is_space && component.contains('+') {
        spaced = component.replace('+', " ");
        &spaced
    } else {
        component
    };
    let bytes: Vec<u8> = percent_decode(s.as_bytes()).collect();
    // Encoding works on bytes: invalid UTF-8 is kept as it came, byte for byte.
    percent_encoding::percent_encode(&bytes, AWS_ENCODE).to_string()
}

/// The path in canonical form, segment by segment (`/` kept).
pub fn aws_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| reencode(seg, false))
        .collect::<Vec<_>>()
        .join("/")
}

/// The query in canonical form, in its original order (SigV4 sorts for signing only).
pub fn aws_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            format!("{}={}", reencode(k, true), reencode(v, true))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs the request in place with SigV4 (service `lambda`): `Authorization`, `X-Amz-Date` and, with
/// temporary credentials, `X-Amz-Security-Token` are added. Signed headers: `host`, `content-type` when
/// present and [`FORWARDED_JWT_HEADER`]; the payload's SHA-256 is part of the signature.
pub fn sign_request(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), aws_sigv4::http_request::SigningError> {
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("identity, region, name, time and settings are set")
        .into();
    let signed_names = [
        header::HOST.as_str(),
        header::CONTENT_TYPE.as_str(),
        FORWARDED_JWT_HEADER,
    ];
    let signed: Vec<(&str, &str)> = signed_names
        .iter()
        .filter_map(|n| Some((*n, headers.get(*n)?.to_str().ok()?)))
        .collect();
    let uri_text = uri.to_string();
    let signable = SignableRequest::new(
        method.as_str(),
        uri_text.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let (new_headers, _params) = instructions.into_parts();
    for h in new_headers {
        let mut value = HeaderValue::from_str(h.value()).expect("SigV4 headers are header-safe");
        value.set_sensitive(h.sensitive());
        headers.insert(HeaderName::from_static(h.name()), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn bodies_are_measured_as_lambda_sees_them() {
        let room = LAMBDA_PAYLOAD - EVENT_ENVELOPE;
        assert!(fits_lambda_payload(&vec![b'a'; room]));
        assert!(!fits_lambda_payload(&vec![b'a'; room + 1]));
        // escaped quotes double in the event
        assert!(!fits_lambda_payload(&vec![b'"'; room / 2 + 1]));
        assert!(fits_lambda_payload(&vec![b'"'; room / 2]));
        // binary goes base64
        let binary = vec![0xff; room / 4 * 3 + 3];
        assert!(!fits_lambda_payload(&binary));
        assert!(fits_lambda_payload(&binary[..room / 4 * 3]));
    }

    use super::*;

    #[test]
    fn regions_from_hosts() {
        assert_eq!(
            region_of("abcdef0123.lambda-url.eu-west-1.on.aws"),
            Some("eu-west-1")
        );
        assert_eq!(region_of("127.0.0.1"), None);
        assert_eq!(region_of("x.lambda-url..on.aws"), None);
        assert_eq!(region_of("example.com"), None);
    }

    #[test]
    fn canonical_path_and_query() {
        assert_eq!(aws_path("/todos"), "/todos");
        assert_eq!(aws_path("/rpc/hello%20world"), "/rpc/hello%20world");
        assert_eq!(aws_path("/t%C3%A4ble"), "/t%C3%A4ble");
        assert_eq!(aws_path("/a(b)"), "/a%28b%29");
        assert_eq!(aws_path(""), "/");
        assert_eq!(
            aws_query("select=id,title&title=like.*cold*&order=id.desc"),
            "select=id%2Ctitle&title=like.%2Acold%2A&order=id.desc"
        );
        // `+` means a space to the REST engine, `%2B` a plus: both survive re-encoding.
        assert_eq!(aws_query("name=eq.a+b&x=1%2B1"), "name=eq.a%20b&x=1%2B1");
        assert_eq!(aws_query("a&&b="), "a=&b=");
        assert_eq!(aws_query("q=%E2%9C%93"), "q=%E2%9C%93");
    }

    #[test]
    fn lambda_failures_are_told_apart_from_rest_errors() {
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(lambda_failure(StatusCode::INTERNAL_SERVER_ERROR, &json).is_none());
        assert!(lambda_failure(StatusCode::FORBIDDEN, &json).is_none());
        let text = HeaderMap::new();
        assert_eq!(
            lambda_failure(StatusCode::BAD_GATEWAY, &text)
                .unwrap()
                .status,
            StatusCode::BAD_GATEWAY
        );
        let mut aws = json.clone();
        aws.insert("x-amzn-errortype", "AccessDeniedException".parse().unwrap());
        assert_eq!(
            lambda_failure(StatusCode::FORBIDDEN, &aws).unwrap().status,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            lambda_failure(StatusCode::TOO_MANY_REQUESTS, &aws)
                .unwrap()
                .status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(invocation_outcome(StatusCode::FORBIDDEN, &json), "ok");
        assert_eq!(invocation_outcome(StatusCode::FORBIDDEN, &aws), "rejected");
        assert_eq!(
            invocation_outcome(StatusCode::TOO_MANY_REQUESTS, &aws),
            "throttled"
        );
        assert_eq!(
            invocation_outcome(StatusCode::BAD_GATEWAY, &text),
            "function_error"
        );
    }
}
