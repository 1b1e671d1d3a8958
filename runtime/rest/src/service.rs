//! The HTTP face of the engine: one axum `Router` serving every project (server mode). The gateway tells
//! which project a request is for in [`PROJECT_HEADER`] and proves the caller's role with a JWT signed
//! by that project's secret, which is verified here again.

use crate::error::RestError;
use crate::exec::Pools;
use crate::parse::parse_request;
use crate::plan::{Action, Return};
use crate::sql;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::Directory;
use supactl_common::ident::quote_ident;
use supactl_common::jwt;
use supactl_common::keys::Role;
use supactl_common::wire::status;

/// The header carrying the project ref from the gateway.
pub const PROJECT_HEADER: &str = "x-supactl-project";
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Schemas clients may address with Accept-Profile / Content-Profile, the default first.
    pub schemas: Vec<String>,
    /// Connections per project pool.
    pub pool_size: usize,
    /// A project's pool is dropped after this long without requests.
    pub idle_timeout: Duration,
}

impl Default for RestConfig {
    fn default() -> RestConfig {
        RestConfig {
            schemas: vec!["public".to_string()],
            pool_size: 10,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

pub struct Rest {
    directory: Arc<Directory>,
    pools: Arc<Pools>,
    config: RestConfig,
}

impl Rest {
    pub fn new(directory: Arc<Directory>, config: RestConfig) -> Arc<Rest> {
        Arc::new(Rest {
            pools: Pools::new(config.pool_size, config.idle_timeout),
            directory,
            config,
        })
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }
}

pub fn router(rest: Arc<Rest>) -> Router {
    Router::new().fallback(handle).with_state(rest)
}

async fn handle(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    match serve(&rest, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn serve(rest: &Rest, req: Request) -> Result<Response, RestError> {
    let (parts, body) = req.into_parts();
    let project_ref = parts
        .headers
        .get(PROJECT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RestError::NotFound("no project given".into()))?
        .to_string();
    let project = rest
        .directory
        .project(&project_ref)
        .await
        .map_err(|e| RestError::Unavailable(e.to_string()))?
        .ok_or_else(|| RestError::NotFound(format!("project {project_ref} not found")))?;
    if project.status != status::ACTIVE {
        rest.pools.remove(&project_ref);
        return Err(RestError::Unavailable(format!(
            "project is {}",
            project.status
        )));
    }

    // Defence in depth: the gateway's token must verify with this project's secret and name it.
    let token = bearer(&parts.headers).ok_or_else(|| RestError::Jwt("No JWT provided".into()))?;
    let claims = jwt::verify(token, &project.verification_secrets(), jwt::now())
        .map_err(|e| RestError::Jwt(format!("JWT invalid: {e}")))?;
    if claims.get("ref").and_then(|v| v.as_str()) != Some(project_ref.as_str()) {
        return Err(RestError::Jwt(
            "JWT invalid: issued for another project".into(),
        ));
    }
    let role = claims
        .get("role")
        .and_then(|v| v.as_str())
        .and_then(Role::parse)
        .ok_or_else(|| RestError::Jwt("JWT invalid: unknown role".into()))?;

    let write = !matches!(parts.method, Method::GET | Method::HEAD);
    let profile = if write {
        "content-profile"
    } else {
        "accept-profile"
    };
    let schema = match parts.headers.get(profile).and_then(|v| v.to_str().ok()) {
        Some(s) if rest.config.schemas.iter().any(|x| x == s) => s.to_string(),
        Some(_) => return Err(RestError::Schema(rest.config.schemas.join(", "))),
        None => rest.config.schemas[0].clone(),
    };

    let relation = parts.uri.path().trim_start_matches('/');
    let relation = percent_encoding::percent_decode_str(relation).decode_utf8_lossy();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| RestError::InvalidBody("request body too large or unreadable".into()))?;
    let prefer = parts.headers.get("prefer").and_then(|v| v.to_str().ok());
    let api = parse_request(
        &parts.method,
        &relation,
        parts.uri.query().unwrap_or(""),
        prefer,
        schema,
        &body,
    )?;

    let primary_key = match (&api.action, api.prefer.resolution, &api.on_conflict) {
        (Action::Insert { .. }, Some(_), None) => {
            let qualified = format!(
                "{}.{}",
                quote_ident(&api.schema),
                quote_ident(&api.relation)
            );
            rest.pools
                .primary_key(&project_ref, &project.db, &qualified)
                .await?
        }
        _ => Arc::new(Vec::new()),
    };
    let stmt = sql::build(&api, &primary_key)?;
    let claims_json = serde_json::Value::Object(claims).to_string();
    let out = rest
        .pools
        .run(&project_ref, &project.db, role, &claims_json, &stmt)
        .await?;

    let representation = api.prefer.ret == Return::Representation;
    let (status, body, range) = match api.action {
        Action::Read { head } => {
            let offset = api.offset.unwrap_or(0);
            let range = if out.page == 0 {
                "*".to_string()
            } else {
                format!("{}-{}", offset, offset + out.page - 1)
            };
            let total = out
                .total
                .map(|t| t.to_string())
                .unwrap_or_else(|| "*".into());
            let partial = out.total.is_some_and(|t| out.page < t);
            let status = if partial {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            (
                status,
                (!head).then_some(out.body),
                format!("{range}/{total}"),
            )
        }
        Action::Insert { .. } => (
            StatusCode::CREATED,
            representation.then_some(out.body),
            "*/*".to_string(),
        ),
        Action::Update { .. } | Action::Delete => {
            let status = if representation {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            (
                status,
                representation.then_some(out.body),
                format!("0-{}/*", out.page - 1),
            )
        }
    };
    let mut res = match body {
        Some(b) => {
            let mut r = Response::new(Body::from(b));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
        None => Response::new(Body::empty()),
    };
    *res.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&range) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(res)
}
