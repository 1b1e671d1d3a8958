//! The request phases: resolve project → authenticate key → choose role → mint token → forward.

use crate::cors;
use crate::function_url::{FunctionUrls, Outgoing, FUNCTION_URL_JWT_HEADER};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{json, Map};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::Directory;
use supactl_common::error::HttpError;
use supactl_common::forwarded::{self, Caller, RefRule};
use supactl_common::headers::bearer;
use supactl_common::ident::valid_ref;
use supactl_common::jwt;
use supactl_common::keys::{self, Role};
use supactl_common::throttle::Throttle;
use supactl_common::wire::{status, ProjectConfig};
use tower::ServiceExt;

/// Path prefix under which projects are addressed where wildcard DNS is not available.
pub const PATH_PREFIX: &str = "/p/";
pub use supactl_common::headers::{CLIENT_IP_HEADER, PROJECT_HEADER};
/// Largest body forwarded.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Where a service runs: in the gateway's process (`supactl up`, `supactl serve gateway`). REST of a
/// project whose config names a Function URL goes there instead ([`FunctionUrls`]).
#[derive(Clone)]
pub enum Upstream {
    InProcess(Router),
}

impl Upstream {
    async fn call(&self, req: Request) -> Result<Response, HttpError> {
        match self {
            Upstream::InProcess(router) => Ok(router
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {})),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Projects are also addressed as `{ref}.{base_domain}` when set.
    pub base_domain: Option<String>,
    /// Lifetime of minted tokens.
    pub token_ttl: Duration,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            base_domain: None,
            token_ttl: Duration::from_secs(300),
        }
    }
}

pub struct Gateway {
    config: GatewayConfig,
    directory: Arc<Directory>,
    rest: Upstream,
    auth: Option<Upstream>,
    function_urls: Option<FunctionUrls>,
}

impl Gateway {
    pub fn new(config: GatewayConfig, directory: Arc<Directory>, rest: Upstream) -> Arc<Gateway> {
        Gateway::with_auth(config, directory, rest, None)
    }

    /// A gateway that also routes `/auth/v1` to the auth service.
    pub fn with_auth(
        config: GatewayConfig,
        directory: Arc<Directory>,
        rest: Upstream,
        auth: Option<Upstream>,
    ) -> Arc<Gateway> {
        Gateway::with_function_urls(config, directory, rest, auth, None)
    }

    /// A gateway that also forwards REST of projects on Lambda to their Function URLs, signed with
    /// SigV4. Without it such projects answer 502.
    pub fn with_function_urls(
        config: GatewayConfig,
        directory: Arc<Directory>,
        rest: Upstream,
        auth: Option<Upstream>,
        function_urls: Option<FunctionUrls>,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            config,
            directory,
            rest,
            auth,
            function_urls,
        })
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

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let mut res = if req.method() == Method::OPTIONS {
        cors::preflight(req.headers())
    } else {
        match serve(&gw, req).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    };
    cors::decorate(res.headers_mut());
    res
}

fn unauthorized(code: &str, message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// The opaque key of the request: the `apikey` header, or an `Authorization: Bearer sb_…` equal to it.
fn api_key(headers: &HeaderMap) -> Result<&str, HttpError> {
    let apikey = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
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

async fn serve(gw: &Gateway, req: Request) -> Result<Response, HttpError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host());
    let (project_ref, below) = gw.resolve(host, req.uri().path()).ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no project in the request path or host",
        )
    })?;
    let below_service = |prefix: &str| {
        below
            .strip_prefix(prefix)
            .filter(|p| p.is_empty() || p.starts_with('/'))
            .map(|p| if p.is_empty() { "/" } else { p }.to_string())
    };
    let (upstream, service_path, open, is_rest) = match (below_service("/rest/v1"), &gw.auth) {
        (Some(p), _) => (&gw.rest, p, false, true),
        (None, Some(auth)) => match below_service("/auth/v1") {
            // Email links (`GET /auth/v1/verify`) are opened by browsers, which send no API key;
            // Supabase leaves that route open too. They run as anon.
            Some(p) => {
                let open = p == "/verify" && req.method() == Method::GET;
                (auth, p, open, false)
            }
            None => return Err(no_service(below)),
        },
        (None, None) => return Err(no_service(below)),
    };

    // Authenticate the key.
    let key_role = match api_key(req.headers()) {
        Err(_) if open && bearer(req.headers()).is_none() => Role::Anon,
        key => {
            let key = key?;
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
            info.role
        }
    };
    let project = project_config(gw, &project_ref).await?;

    // Role: a user JWT decides when present; otherwise the key type does.
    let now = jwt::now();
    let (claims, role) = match bearer(req.headers()).filter(|t| !keys::is_opaque(t)) {
        Some(token) => {
            let user = forwarded::verify(&project, token, RefRule::Optional)
                .map_err(|e| unauthorized("invalid_jwt", &format!("Invalid JWT: {e}")))?;
            (user.claims.into_map(), user.role)
        }
        None => (Map::new(), key_role),
    };
    let (minted, claims) = forwarded::mint(
        &project,
        role,
        claims,
        now,
        gw.config.token_ttl.as_secs() as i64,
    );

    // Forward.
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    })?;
    let mut h = HeaderMap::new();
    for (name, value) in parts.headers.iter() {
        if forwardable(name) {
            h.append(name.clone(), value.clone());
        }
    }
    h.insert(
        PROJECT_HEADER,
        HeaderValue::from_str(&project_ref).expect("refs are header-safe"),
    );
    if let Some(ip) = client_ip {
        h.insert(
            CLIENT_IP_HEADER,
            HeaderValue::from_str(&ip).expect("an IP address is header-safe"),
        );
    }

    // REST on Lambda: the project's Function URL, signed; the JWT in its own header.
    if let Some(url) = project.rest_function_url.as_deref().filter(|_| is_rest) {
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
            path: &service_path,
            query: parts.uri.query(),
            headers: h,
            body,
            jwt: &minted,
        };
        return function_urls.forward(url, request).await;
    }

    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {minted}")).expect("a JWT is a valid header value"),
    );
    let uri = match parts.uri.query() {
        Some(q) => format!("{service_path}?{q}"),
        None => service_path,
    };
    let mut out = http::Request::builder()
        .method(parts.method)
        .uri(uri)
        .body(Body::from(body))
        .map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, "bad_request", "malformed request"))?;
    *out.headers_mut() = h;
    if is_rest {
        out.extensions_mut().insert(Caller {
            project,
            project_ref,
            role,
            claims,
        });
    }
    upstream.call(out).await
}

/// Hop-by-hop headers, credentials, our own routing headers and AWS signing headers are not passed on
/// (the gateway sets the ones it needs itself).
fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
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
    ) && name.as_str() != PROJECT_HEADER
        && name.as_str() != CLIENT_IP_HEADER
        && name.as_str() != FUNCTION_URL_JWT_HEADER
        && !name.as_str().starts_with("x-amz")
}

fn no_service(below: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no service at {below}"),
    )
}
