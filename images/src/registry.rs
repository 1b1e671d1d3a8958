//! A client of the OCI distribution API, enough to push: `GET /v2/` (reachability), `HEAD` blob (skip what
//! the registry has), cross-repository mount, `POST` + `PUT` monolithic upload or `PATCH` chunks + `PUT` for
//! large blobs, `PUT` manifest per tag. Auth: none, Basic, or Bearer tokens fetched from the realm named in
//! the `WWW-Authenticate` challenge (with the Basic credentials, when given). ECR takes Basic credentials
//! from GetAuthorizationToken, which the CLI gets through the `stacks` crate.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    HeaderName, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::oci::Layout;
use crate::Error;

/// Blobs larger than this go up in chunks of this size (ECR wants parts of at least 5 MiB).
pub const CHUNK: usize = 8 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// `[http://|https://]HOST[:PORT][/PREFIX]`. Plain HTTP is used for loopback hosts (as Docker does) or
/// when asked for with `http://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub scheme: &'static str,
    /// `host[:port]`.
    pub host: String,
    /// Repository prefix, without slashes at either end; may be empty.
    pub prefix: String,
}

impl FromStr for Registry {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadRegistry {
            given: s.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = if let Some(r) = s.strip_prefix("https://") {
            (Some("https"), r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Some("http"), r)
        } else if s.contains("://") {
            return Err(bad("only http:// and https:// are supported"));
        } else {
            (None, s)
        };
        let rest = rest.trim_end_matches('/');
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let valid_host = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !valid_host {
            return Err(bad(
                "the host may hold only letters, digits, '.', '-' and a :port",
            ));
        }
        let valid_prefix = prefix.split('/').all(|seg| {
            prefix.is_empty()
                || (!seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)))
        });
        if !valid_prefix {
            return Err(bad(
                "the repository prefix may hold only lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = name == "localhost" || name.starts_with("127.") || name == "[::1]";
        Ok(Registry {
            scheme: scheme.unwrap_or(if loopback { "http" } else { "https" }),
            host: host.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{}", self.host)
        } else {
            write!(f, "{}/{}", self.host, self.prefix)
        }
    }
}

impl Registry {
    /// The repository of a service: `<prefix>/<service>`.
    pub fn repository(&self, service: &str) -> String {
        if self.prefix.is_empty() {
            service.to_string()
        } else {
            format!("{}/{service}", self.prefix)
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.host)
    }
}

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The registry had it already (HEAD answered 200).
    Present,
    /// Mounted from another repository of the same registry, without sending it.
    Mounted,
    Uploaded,
}

/// Progress of a push, for bars or plain lines.
#[derive(Debug, Clone)]
pub enum Event {
    BlobStart {
        digest: String,
        size: u64,
    },
    BlobProgress {
        digest: String,
        sent: u64,
    },
    BlobDone {
        digest: String,
        outcome: BlobOutcome,
    },
    Tagged {
        reference: String,
        digest: String,
    },
}

pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

/// Ignores every event.
pub struct Silent;
impl Observer for Silent {
    fn event(&self, _: Event) {}
}

#[derive(Debug, Clone, Default)]
pub struct PushReport {
    pub repository: String,
    pub manifest_digest: String,
    pub uploaded: Vec<String>,
    pub present: Vec<String>,
    pub mounted: Vec<String>,
    /// Bytes of blobs sent.
    pub bytes_sent: u64,
    /// `host/repo:tag` pushed.
    pub references: Vec<String>,
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The distribution API client of one registry.
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    registry: Registry,
    credentials: Option<Credentials>,
    /// `Authorization` value per repository ("" for registry-wide requests).
    auth: Mutex<HashMap<String, HeaderValue>>,
}

struct Challenge {
    scheme: String,
    params: HashMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
fn parse_challenge(v: &str) -> Option<Challenge> {
    let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

fn basic(c: &Credentials) -> Result<HeaderValue, Error> {
    let raw = format!("{}:{}", c.username, c.password);
    HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .map_err(|_| Error::Internal("credentials hold characters not allowed in a header".into()))
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Client {
    pub fn new(registry: Registry, credentials: Option<Credentials>) -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.enforce_http(false);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            // no system CA certificates: plain-HTTP registries still work, HTTPS ones fail to verify
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Internal(format!("tls: {e}")))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
        };
        let https = builder.https_or_http().enable_http1().wrap_connector(http);
        Ok(Client {
            http: HyperClient::builder(TokioExecutor::new()).build(https),
            registry,
            credentials,
            auth: Mutex::new(HashMap::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    async fn raw(
        &self,
        method: &Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<Response, Error> {
        let mut req = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if !body.is_empty()
            || *method == Method::PUT
            || *method == Method::PATCH
            || *method == Method::POST
        {
            req = req.header(CONTENT_LENGTH, body.len());
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| Error::Internal(format!("request {url}: {e}")))?;
        let unreachable = |detail: String| Error::Unreachable {
            registry: self.registry.host.clone(),
            detail,
        };
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| {
                let mut detail = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    detail = format!("{detail}: {s}");
                    src = s.source();
                }
                unreachable(detail)
            })?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends a request for `repo` ("" for `/v2/`), answering an auth challenge once.
    async fn send(
        &self,
        repo: &str,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response, Error> {
        let cached = self.auth.lock().ok().and_then(|m| m.get(repo).cloned());
        let mut hs = headers.to_vec();
        if let Some(a) = &cached {
            hs.push((AUTHORIZATION, a.clone()));
        }
        let resp = self.raw(&method, url, &hs, &body).await?;
        if resp.status != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let header = match challenge {
            Some(c) if c.scheme == "bearer" => self.token(repo, &c).await?,
            Some(c) if c.scheme == "basic" => match &self.credentials {
                Some(cr) => basic(cr)?,
                None => return Err(self.unauthorized(repo)),
            },
            _ if cached.is_none() && self.credentials.is_some() => {
                basic(self.credentials.as_ref().expect("checked"))?
            }
            _ => return Err(self.unauthorized(repo)),
        };
        if let Ok(mut m) = self.auth.lock() {
            m.insert(repo.to_string(), header.clone());
        }
        let mut hs = headers.to_vec();
        hs.push((AUTHORIZATION, header));
        let resp = self.raw(&method, url, &hs, &body).await?;
        if resp.status == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(repo));
        }
        Ok(resp)
    }

    fn unauthorized(&self, repo: &str) -> Error {
        Error::Unauthorized {
            registry: self.registry.host.clone(),
            repository: repo.to_string(),
            had_credentials: self.credentials.is_some(),
        }
    }

    /// A Bearer token for pushing to `repo`, from the realm of the challenge.
    async fn token(&self, repo: &str, c: &Challenge) -> Result<HeaderValue, Error> {
        let realm = c.params.get("realm").ok_or_else(|| Error::Registry {
            registry: self.registry.host.clone(),
            op: "auth".into(),
            status: 401,
            code: "CHALLENGE".into(),
            message: "bearer challenge without a realm".into(),
        })?;
        let mut query = Vec::new();
        if let Some(s) = c.params.get("service") {
            query.push(format!("service={}", enc(s)));
        }
        let scope = if repo.is_empty() {
            c.params.get("scope").cloned()
        } else {
            Some(format!("repository:{repo}:pull,push"))
        };
        if let Some(s) = scope {
            query.push(format!("scope={}", enc(&s)));
        }
        let url = if query.is_empty() {
            realm.clone()
        } else {
            format!(
                "{realm}{}{}",
                if realm.contains('?') { "&" } else { "?" },
                query.join("&")
            )
        };
        let mut hs = Vec::new();
        if let Some(cr) = &self.credentials {
            hs.push((AUTHORIZATION, basic(cr)?));
        }
        let resp = self.raw(&Method::GET, &url, &hs, &Bytes::new()).await?;
        if resp.status == StatusCode::UNAUTHORIZED || resp.status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(repo));
        }
        if !resp.status.is_success() {
            return Err(self.error("token", &resp));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&resp.body).map_err(|e| Error::Registry {
            registry: self.registry.host.clone(),
            op: "token".into(),
            status: resp.status.as_u16(),
            code: "BAD_TOKEN".into(),
            message: format!("the token endpoint answered no JSON token: {e}"),
        })?;
        let token = t.token.or(t.access_token).ok_or_else(|| Error::Registry {
            registry: self.registry.host.clone(),
            op: "token".into(),
            status: resp.status.as_u16(),
            code: "BAD_TOKEN".into(),
            message: "the token endpoint answered no token".into(),
        })?;
        HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Internal("token holds characters not allowed in a header".into()))
    }

    /// An error from a registry answer: the distribution API's `errors[0]` when there is one.
    fn error(&self, op: &str, resp: &Response) -> Error {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ApiError>,
        }
        #[derive(serde::Deserialize)]
        struct ApiError {
            code: String,
            #[serde(default)]
            message: String,
        }
        let (code, message) = serde_json::from_slice::<Errors>(&resp.body)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| (e.code, e.message))
            .unwrap_or_else(|| {
                (
                    String::new(),
                    String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).into_owned(),
                )
            });
        if code == "NAME_UNKNOWN" || code == "REPOSITORY_NOT_FOUND" {
            return Error::NoRepository {
                registry: self.registry.host.clone(),
                detail: message,
            };
        }
        Error::Registry {
            registry: self.registry.host.clone(),
            op: op.to_string(),
            status: resp.status.as_u16(),
            code,
            message,
        }
    }

    /// `GET /v2/`: is there a registry, and do the credentials work.
    pub async fn ping(&self) -> Result<(), Error> {
        let resp = self
            .send(
                "",
                Method::GET,
                &self.registry.url("/v2/"),
                &[],
                Bytes::new(),
            )
            .await?;
        if resp.status.is_success() {
            Ok(())
        } else if resp.status == StatusCode::NOT_FOUND {
            Err(Error::Unreachable {
                registry: self.registry.host.clone(),
                detail: "it answers but /v2/ is not there: this is not an OCI registry".into(),
            })
        } else {
            Err(self.error("ping", &resp))
        }
    }

    /// Whether `repo` has the blob.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, Error> {
        let url = self.registry.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(repo, Method::HEAD, &url, &[], Bytes::new())
            .await?;
        match resp.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.error("HEAD blob", &resp)),
        }
    }

    fn location(&self, resp: &Response, op: &str) -> Result<String, Error> {
        let loc = resp
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Registry {
                registry: self.registry.host.clone(),
                op: op.into(),
                status: resp.status.as_u16(),
                code: "NO_LOCATION".into(),
                message: "upload answer without a Location header".into(),
            })?;
        Ok(if loc.starts_with('/') {
            self.registry.url(loc)
        } else {
            loc.to_string()
        })
    }

    /// Uploads one blob; `mount_from` names a repository of this registry that may hold it already.
    pub async fn upload_blob(
        &self,
        repo: &str,
        digest: &str,
        data: Bytes,
        mount_from: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<BlobOutcome, Error> {
        let mut url = self.registry.url(&format!("/v2/{repo}/blobs/uploads/"));
        if let Some(from) = mount_from.filter(|f| *f != repo) {
            url = format!("{url}?mount={digest}&from={}", enc(from));
        }
        let resp = self
            .send(repo, Method::POST, &url, &[], Bytes::new())
            .await?;
        if resp.status == StatusCode::CREATED && mount_from.is_some() {
            return Ok(BlobOutcome::Mounted);
        }
        if resp.status != StatusCode::ACCEPTED {
            return Err(self.error("start upload", &resp));
        }
        let mut location = self.location(&resp, "start upload")?;
        let octet = (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let mut sent = 0usize;
        if data.len() > CHUNK {
            while sent < data.len() {
                let end = (sent + CHUNK).min(data.len());
                let range = HeaderValue::from_str(&format!("{sent}-{}", end - 1))
                    .map_err(|e| Error::Internal(e.to_string()))?;
                let resp = self
                    .send(
                        repo,
                        Method::PATCH,
                        &location,
                        &[octet.clone(), (http::header::CONTENT_RANGE, range)],
                        data.slice(sent..end),
                    )
                    .await?;
                if resp.status != StatusCode::ACCEPTED {
                    return Err(self.error("upload chunk", &resp));
                }
                location = self.location(&resp, "upload chunk")?;
                sent = end;
                observer.event(Event::BlobProgress {
                    digest: digest.to_string(),
                    sent: sent as u64,
                });
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let body = data.slice(sent..);
        let resp = self.send(repo, Method::PUT, &put, &[octet], body).await?;
        if resp.status != StatusCode::CREATED {
            return Err(self.error("finish upload", &resp));
        }
        observer.event(Event::BlobProgress {
            digest: digest.to_string(),
            sent: data.len() as u64,
        });
        Ok(BlobOutcome::Uploaded)
    }

    /// `PUT` a manifest under a tag; returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Option<String>, Error> {
        let url = self
            .registry
            .url(&format!("/v2/{repo}/manifests/{reference}"));
        let ct = HeaderValue::from_str(media_type).map_err(|e| Error::Internal(e.to_string()))?;
        let resp = self
            .send(repo, Method::PUT, &url, &[(CONTENT_TYPE, ct)], bytes)
            .await?;
        if resp.status != StatusCode::CREATED && !resp.status.is_success() {
            return Err(self.error("put manifest", &resp));
        }
        Ok(resp
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// Pushes the image `name` of `layout` to `repo` under each of `tags`: blobs the registry has are
    /// skipped, blobs of `mount_from` are mounted, the rest uploaded; then the manifest.
    pub async fn push(
        &self,
        layout: &Layout,
        name: &str,
        repo: &str,
        tags: &[String],
        mount_from: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<PushReport, Error> {
        let (desc, manifest, manifest_bytes) = layout.image(name)?;
        let mut report = PushReport {
            repository: repo.to_string(),
            manifest_digest: desc.digest.clone(),
            ..Default::default()
        };
        let blobs = manifest
            .layers
            .iter()
            .chain(std::iter::once(&manifest.config));
        for blob in blobs {
            observer.event(Event::BlobStart {
                digest: blob.digest.clone(),
                size: blob.size,
            });
            let outcome = if self.has_blob(repo, &blob.digest).await? {
                BlobOutcome::Present
            } else {
                let data = Bytes::from(layout.read_blob(&blob.digest)?);
                let o = self
                    .upload_blob(repo, &blob.digest, data, mount_from, observer)
                    .await?;
                if o == BlobOutcome::Uploaded {
                    report.bytes_sent += blob.size;
                }
                o
            };
            match outcome {
                BlobOutcome::Present => report.present.push(blob.digest.clone()),
                BlobOutcome::Mounted => report.mounted.push(blob.digest.clone()),
                BlobOutcome::Uploaded => report.uploaded.push(blob.digest.clone()),
            }
            observer.event(Event::BlobDone {
                digest: blob.digest.clone(),
                outcome,
            });
        }
        let bytes = Bytes::from(manifest_bytes);
        for tag in tags {
            let got = self
                .put_manifest(repo, tag, &desc.media_type, bytes.clone())
                .await?;
            if let Some(d) = got.filter(|d| *d != desc.digest) {
                return Err(Error::Registry {
                    registry: self.registry.host.clone(),
                    op: "put manifest".into(),
                    status: 201,
                    code: "DIGEST_MISMATCH".into(),
                    message: format!("stored the manifest as {d}, expected {}", desc.digest),
                });
            }
            let reference = format!("{}/{repo}:{tag}", self.registry.host);
            observer.event(Event::Tagged {
                reference: reference.clone(),
                digest: desc.digest.clone(),
            });
            report.references.push(reference);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_strings() {
        let r: Registry = "127.0.0.1:5000/supactl".parse().unwrap();
        assert_eq!(r.scheme, "http");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository("gateway"), "supactl/gateway");
        let r: Registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme-prod"
            .parse()
            .unwrap();
        assert_eq!(r.scheme, "https");
        assert_eq!(r.repository("gateway"), "acme-prod/gateway");
        let r: Registry = "http://registry.internal:5000".parse().unwrap();
        assert_eq!((r.scheme, r.prefix.as_str()), ("http", ""));
        assert_eq!(r.repository("gateway"), "gateway");
        for bad in ["", "/x", "ftp://h/x", "host/UPPER", "host//x", "ho st/x"] {
            let e = bad.parse::<Registry>().unwrap_err().to_string();
            assert!(e.contains("--registry"), "{bad}: {e}");
        }
    }

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
    }
}
