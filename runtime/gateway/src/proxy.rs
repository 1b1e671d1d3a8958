//! The request phases: resolve project → authenticate key → choose role → mint token → forward.

use crate::access::{AccessLog, REQUEST_ID};
use crate::client_ip::{client_ip, Cidr};
use crate::cors;
use crate::function_url::{FunctionUrls, Outgoing};
use crate::service::{Access, ErrorShape, Service};
use crate::upstream::Upstream;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::Limited;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::Directory;
use supactl_common::error::HttpError;
use supactl_common::forwarded::{self, Caller, ForwardedError, RefRule};
use supactl_common::gotrue;
use supactl_common::headers::{bearer, remove_where, FORWARDED_JWT_HEADER};
use supactl_common::ident::valid_ref;
use supactl_common::jwt;
use supactl_common::keys::{self, Role};
use supactl_common::throttle::Throttle;
use supactl_common::wire::{status, ProjectConfig};

/// Path prefix under which projects are addressed where wildcard DNS is not available.
pub const PATH_PREFIX: &str = "/p/";
/// Largest body of a request to a route open without an API key ([`Access::AnonWithoutCredentials`]:
/// email links, OAuth sign-ins, the provider's form posted to the callback).
const KEYLESS_MAX_BODY: usize = 64 * 1024;
pub use supactl_common::headers::{CLIENT_IP_HEADER, PROJECT_HEADER};
/// The public path of the service's root (`/p/<ref>/storage/v1`, or `/storage/v1` by host), set by the
/// gateway only.
pub const FORWARDED_PREFIX: &str = "x-forwarded-prefix";

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Projects are also addressed as `{ref}.{base_domain}` when set.
    pub base_domain: Option<String>,
    /// Lifetime of minted tokens.
    pub token_ttl: Duration,
    /// Largest request body forwarded (read whole for REST and auth, counted as it streams for the
    /// others).
    pub max_body: usize,
    /// Peers whose `X-Forwarded-For` names the client (the load balancer's range); empty: the TCP peer
    /// is the client.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            base_domain: None,
            token_ttl: Duration::from_secs(300),
            max_body: 16 * 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

pub struct Gateway {
    config: GatewayConfig,
    directory: Arc<Directory>,
    routes: HashMap<Service, Upstream>,
    function_urls: Option<FunctionUrls>,
}

/// The route table: one upstream per service the gateway serves; a service without one answers 404.
pub struct GatewayBuilder {
    gateway: Gateway,
}

impl GatewayBuilder {
    pub fn route(mut self, service: Service, upstream: Upstream) -> GatewayBuilder {
        self.gateway.routes.insert(service, upstream);
        self
    }

    /// Forwards REST of projects on Lambda to their Function URLs, signed with SigV4. Without it such
    /// projects answer 502.
    pub fn function_urls(mut self, f: FunctionUrls) -> GatewayBuilder {
        self.gateway.function_urls = Some(f);
        self
    }

    pub fn build(self) -> Arc<Gateway> {
        Arc::new(self.gateway)
    }
}

impl Gateway {
    pub fn builder(config: GatewayConfig, directory: Arc<Directory>) -> GatewayBuilder {
        GatewayBuilder {
            gateway: Gateway {
                config,
                directory,
                routes: HashMap::new(),
                function_urls: None,
            },
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// `(project ref, path below the project)` from the Host or the path prefix.
    fn resolve<'a>(&self, host: Option<&str>, path: &'a str) -> Option<(String, &'a str)> {
        if let (Some(domain), Some(host)) = (&self.config.base_domain, host) {
            let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
            if let Some(label) = host
                .strip_suffix(domain.as_str())
                .and_then(|h| h.strip_suffix('.'))
            {
                if valid_ref(label) {
                    return Some((label.to_string(), path));
                }
            }
        }
        let rest = path.strip_prefix(PATH_PREFIX)?;
        let (r, below) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        valid_ref(r).then(|| (r.to_string(), below))
    }
}

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(handle)
        .with_state(gw)
}

/// Every request: its id in and out, the phases of [`serve`], CORS, and one access-log line (latency to
/// the response's head: a streamed body or a WebSocket goes on after it).
async fn handle(State(gw): State<Arc<Gateway>>, mut req: Request) -> Response {
    let mut log = AccessLog::begin(req.headers());
    req.headers_mut().insert(REQUEST_ID, log.id.clone());
    let method = req.method().clone();
    let preflight = method == Method::OPTIONS
        && !crate::service::tus_discovery(&method, req.headers(), req.uri().path());
    let mut res = if preflight {
        cors::preflight(req.headers())
    } else {
        let modern = gotrue::is_modern(req.headers().get(gotrue::API_VERSION_HEADER));
        match serve(&gw, req, &mut log).await {
            Ok(r) => r,
            // in the shape of the service the request is addressed to
            Err(e) => log
                .service
                .map_or(ErrorShape::PostgRest, Service::error_shape)
                .render(e, modern),
        }
    };
    cors::decorate(res.headers_mut());
    res.headers_mut().insert(REQUEST_ID, log.id.clone());
    log.end(&method, res.status());
    res
}

/// The request's host: its `Host` header, or the authority of an absolute URI.
fn host(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
}

fn unauthorized(code: &str, message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// The opaque key of the request: the `apikey` header, or an `Authorization: Bearer sb_…` equal to it,
/// or (where the service allows it) the `apikey` query parameter.
fn api_key<'a>(headers: &'a HeaderMap, query_key: Option<&'a str>) -> Result<&'a str, HttpError> {
    let apikey = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(query_key);
    let bearer_key = bearer(headers).filter(|t| keys::is_opaque(t));
    match (apikey, bearer_key) {
        (Some(a), Some(b)) if a != b => Err(unauthorized(
            "invalid_api_key",
            "the key in Authorization must equal the apikey header",
        )),
        (Some(a), _) if !a.is_empty() => Ok(a),
        (_, Some(b)) => Ok(b),
        _ => Err(unauthorized("no_api_key", "No API key found in request")),
    }
}

/// The `apikey` query parameter, percent-decoded.
fn query_api_key(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .take(64)
        .find_map(|pair| pair.strip_prefix("apikey="))
        .map(|v| percent_decode_str(v).decode_utf8_lossy().trim().to_string())
}

async fn project_config(gw: &Gateway, project_ref: &str) -> Result<Arc<ProjectConfig>, HttpError> {
    let project = gw
        .directory
        .project(project_ref)
        .await
        .map_err(directory_down)?
        .ok_or_else(|| {
            HttpError::new(
                StatusCode::NOT_FOUND,
                "project_not_found",
                format!("project {project_ref} not found"),
            )
        })?;
    match project.status.as_str() {
        status::ACTIVE => Ok(project),
        status::PAUSED => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "project_paused",
            format!("project {project_ref} is paused; restore it to serve requests"),
        )),
        other => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "project_unavailable",
            format!("project {project_ref} is not serving requests ({other})"),
        )),
    }
}

fn directory_down(e: supactl_common::directory::DirectoryError) -> HttpError {
    // Every request fails the same way while the control plane is away: one line per 10 s.
    static LOG: Throttle = Throttle::new(Duration::from_secs(10));
    if let Some(n) = LOG.tick(std::time::Instant::now()) {
        tracing::error!(error = %e, requests = n, "project directory unavailable");
    }
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "directory_unavailable",
        "the platform cannot look up projects right now; retry shortly",
    )
}

async fn serve(gw: &Gateway, req: Request, log: &mut AccessLog) -> Result<Response, HttpError> {
    let (project_ref, below) = gw.resolve(host(&req), req.uri().path()).ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no project in the request path or host",
        )
    })?;
    let found = Service::find(below);
    log.service = found.map(|(s, _)| s);
    let (service, service_path) = found
        .filter(|(s, _)| gw.routes.contains_key(s))
        .ok_or_else(|| no_service(below))?;
    let service_path = service_path.to_string();
    // the public path of the service's root, for the links a service makes (a TUS upload's Location)
    let public_prefix = service.makes_links().then(|| {
        format!(
            "{}{}",
            &req.uri().path()[..req.uri().path().len() - below.len()],
            service.prefix()
        )
    });
    let access = service.access(req.method(), &service_path);
    let query_key = service
        .key_in_query()
        .then(|| query_api_key(req.uri().query()))
        .flatten();
    let key_role = authenticate(
        gw,
        access,
        req.headers(),
        query_key.as_deref(),
        &project_ref,
    )
    .await?;
    let project = project_config(gw, &project_ref).await?;
    // Only now, once the key authenticated and the project exists: a ref taken from the path alone would let
    // anyone fill the metrics' bounded set of project labels with made-up refs.
    log.project = Some(project_ref.clone());
    let headers = req.headers();
    let identity = match key_role {
        Some(role) if access != Access::Optional => {
            Some(verify_user(&project, headers, role).map_err(|e| service.bad_user_jwt(&e))?)
        }
        // Open services take what verifies and pass the rest on unauthenticated.
        Some(role) => verify_user(&project, headers, role).ok(),
        None => user_token(headers).and_then(|_| verify_user(&project, headers, Role::Anon).ok()),
    };
    let minted = identity.map(|(role, claims)| {
        let (token, claims) = crate::mint::token(
            &project,
            role,
            claims,
            jwt::now(),
            gw.config.token_ttl.as_secs() as i64,
        );
        (token, role, claims)
    });

    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client_ip = client_ip(peer, req.headers(), &gw.config.trusted_proxies);
    let (mut parts, body) = req.into_parts();
    let mut h = std::mem::take(&mut parts.headers);
    let length = content_length(&h);
    forward_headers(service, &mut h);
    if let Some(Ok(v)) = public_prefix.as_deref().map(HeaderValue::from_str) {
        h.insert(FORWARDED_PREFIX, v);
    }
    h.insert(
        PROJECT_HEADER,
        HeaderValue::from_str(&project_ref).expect("refs are header-safe"),
    );
    if let Some(ip) = client_ip {
        h.insert(
            CLIENT_IP_HEADER,
            HeaderValue::from_str(&ip.to_string()).expect("an IP address is header-safe"),
        );
    }
    let upstream = &gw.routes[&service];

    if !service.streams_body() {
        // Routes open without a key (browser links, the OAuth callback) take small bodies only.
        let limit = match access {
            Access::AnonWithoutCredentials => KEYLESS_MAX_BODY.min(gw.config.max_body),
            _ => gw.config.max_body,
        };
        let body = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| too_large())?;
        // REST on Lambda: the project's Function URL, signed; the JWT in its own header.
        if let Some(url) = project
            .rest_function_url
            .as_deref()
            .filter(|_| service == Service::Rest)
        {
            let (token, _, _) = minted.as_ref().expect("REST requires credentials");
            return forward_to_function_url(
                gw,
                &project_ref,
                url,
                parts,
                &service_path,
                h,
                body,
                token,
            )
            .await;
        }
        parts.uri = service_uri(&service_path, parts.uri.query())?;
        parts.headers = h;
        return call(
            upstream,
            service,
            parts,
            Body::from(body),
            minted,
            project,
            project_ref,
        )
        .await;
    }
    if let Some(len) = length {
        if len > gw.config.max_body as u64 && !service.bounds_own_body() {
            return Err(too_large());
        }
        h.insert(header::CONTENT_LENGTH, len.into());
    }
    parts.uri = service_uri(&service_path, parts.uri.query())?;
    parts.headers = h;
    let body = if service.bounds_own_body() {
        body
    } else {
        Body::new(Limited::new(body, gw.config.max_body))
    };
    call(upstream, service, parts, body, minted, project, project_ref).await
}

/// The role of the request's key for `project_ref`, as `access` requires: `None` only where the
/// service is open and the key is missing or not the project's.
async fn authenticate(
    gw: &Gateway,
    access: Access,
    headers: &HeaderMap,
    query_key: Option<&str>,
    project_ref: &str,
) -> Result<Option<Role>, HttpError> {
    let found = match api_key(headers, query_key) {
        Ok(key) => key_role(gw, key, project_ref).await,
        Err(e) => Err(e),
    };
    match (access, found) {
        (_, Ok(role)) => Ok(Some(role)),
        (Access::Optional, Err(e)) if e.status == StatusCode::UNAUTHORIZED => Ok(None),
        (Access::AnonWithoutCredentials, Err(_))
            if !headers.contains_key("apikey") && bearer(headers).is_none() =>
        {
            Ok(Some(Role::Anon))
        }
        (_, Err(e)) => Err(e),
    }
}

/// The role of a key of `project_ref`.
async fn key_role(gw: &Gateway, key: &str, project_ref: &str) -> Result<Role, HttpError> {
    if keys::parse_type(key).is_none() {
        return Err(unauthorized("invalid_api_key", "Invalid API key"));
    }
    let info = gw
        .directory
        .key(&keys::hash(key))
        .await
        .map_err(directory_down)?
        .ok_or_else(|| unauthorized("invalid_api_key", "Invalid API key"))?;
    if info.project_ref != project_ref {
        return Err(unauthorized(
            "invalid_api_key",
            "API key does not belong to this project",
        ));
    }
    Ok(info.role)
}

/// A user JWT in `Authorization` (not an opaque key).
fn user_token(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).filter(|t| !keys::is_opaque(t))
}

/// Role and claims: a user JWT decides when present; otherwise the key's role.
fn verify_user(
    project: &ProjectConfig,
    headers: &HeaderMap,
    key_role: Role,
) -> Result<(Role, Map<String, Value>), ForwardedError> {
    match user_token(headers) {
        Some(token) => {
            let user = forwarded::verify(project, token, RefRule::Optional)?;
            Ok((user.role, user.claims.into_map()))
        }
        None => Ok((key_role, Map::new())),
    }
}

/// Calls the service with the minted token where it reads it.
async fn call(
    upstream: &Upstream,
    service: Service,
    mut parts: http::request::Parts,
    body: Body,
    minted: Option<(String, Role, String)>,
    project: Arc<ProjectConfig>,
    project_ref: String,
) -> Result<Response, HttpError> {
    if let Some((token, role, claims)) = minted {
        let name = if service.sees_client_credentials() {
            HeaderName::from_static(FORWARDED_JWT_HEADER)
        } else {
            header::AUTHORIZATION
        };
        parts.headers.insert(
            name,
            HeaderValue::from_str(&format!("Bearer {token}"))
                .expect("a JWT is a valid header value"),
        );
        if service.takes_caller() {
            parts.extensions.insert(Caller {
                project,
                project_ref,
                role,
                claims,
            });
        }
    }
    upstream.call(Request::from_parts(parts, body)).await
}

#[allow(clippy::too_many_arguments)]
async fn forward_to_function_url(
    gw: &Gateway,
    project_ref: &str,
    url: &str,
    parts: http::request::Parts,
    service_path: &str,
    headers: HeaderMap,
    body: Bytes,
    token: &str,
) -> Result<Response, HttpError> {
    let Some(function_urls) = &gw.function_urls else {
        tracing::error!(project = %project_ref, "project's REST runs on Lambda but this gateway has no Function URL upstream");
        return Err(HttpError::new(
            StatusCode::BAD_GATEWAY,
            "rest_function_unavailable",
            "the project's REST function is not reachable from this gateway",
        ));
    };
    let request = Outgoing {
        method: parts.method,
        path: service_path,
        query: parts.uri.query(),
        headers,
        body,
        jwt: token,
    };
    function_urls.forward(url, request).await
}

fn service_uri(path: &str, query: Option<&str>) -> Result<Uri, HttpError> {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
    .parse()
    .map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, "bad_request", "malformed request"))
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn too_large() -> HttpError {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body too large",
    )
}

/// Drops from the client's headers what the service must not receive: hop-by-hop headers, credentials,
/// our own routing headers and AWS signing headers (the gateway sets the ones it needs itself), except
/// what the service takes as it was sent (a function's `Authorization`, a WebSocket's
/// `Connection: upgrade`). In place: most requests lose two or three headers.
fn forward_headers(service: Service, h: &mut HeaderMap) {
    let upgrade = service.upgrades() && h.contains_key(header::UPGRADE);
    remove_where(h, |name| !match name.as_str() {
        "authorization" | "apikey" => service.sees_client_credentials(),
        "connection" | "upgrade" => upgrade,
        n => forwardable(n),
    });
}

fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "host"
            | "authorization"
            | "apikey"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-connection"
            | "content-length"
            | PROJECT_HEADER
            | CLIENT_IP_HEADER
            | FORWARDED_JWT_HEADER
            | FORWARDED_PREFIX
    ) && !name.starts_with("x-amz")
}

fn no_service(below: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no service at {below}"),
    )
}
