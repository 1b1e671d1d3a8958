//! The HTTP face of the engine: one axum `Router` serving every project (server mode). The in-process
//! gateway attaches the [`Caller`] it authenticated; otherwise the gateway names the project in
//! [`PROJECT_HEADER`] and proves the caller's role with a JWT signed by that project's secret, which is
//! verified here again.
//!
//! Per request (this module orchestrates): authenticate → parse ([`crate::parse`]) → resolve against
//! the schema cache and render SQL ([`crate::sql`]) → run in one round trip ([`crate::exec`]) → shape
//! the response (status, headers, media type) as PostgREST does (`response`, with the media type
//! negotiated in `media`). Requests on relations are in `relation`, function calls in `rpc`.

mod media;
mod plan;
mod relation;
mod response;
mod rpc;

use crate::error::RestError;
use crate::exec::{Outcome, Pools};
use crate::parse::parse_prefer;
use crate::request::*;
use crate::schema::{SchemaCache, Table};
use crate::session::{timeout_setting, RowCheck, TxContext, TxEnd};
use crate::sql::Statement;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderMap, Method, StatusCode};
use response::Media;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::Directory;
use supactl_common::forwarded::{from_forwarded, ForwardedError};
use supactl_common::ident::{quote_ident, quote_literal};
use supactl_common::wire::status;

pub use supactl_common::forwarded::Caller;
pub use supactl_common::headers::PROJECT_HEADER;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Schemas clients may address with Accept-Profile / Content-Profile, the default first (a project
    /// may override them with `pgrst.db_schemas`).
    pub schemas: Vec<String>,
    /// Connections per project pool.
    pub pool_size: usize,
    /// Connections open across all projects before idle ones of other projects are closed (keep it
    /// below the database servers' `max_connections`): the budget of the registry [`Rest::new`]
    /// makes; [`Rest::with_registry`] uses its registry's budget instead.
    pub max_connections: usize,
    /// A project's pool and schema cache are dropped after this long without requests.
    pub idle_timeout: Duration,
    /// A pooled connection is closed after this long unused.
    pub connection_idle_timeout: Duration,
}

impl Default for RestConfig {
    fn default() -> RestConfig {
        RestConfig {
            schemas: vec!["public".to_string()],
            pool_size: 10,
            max_connections: 200,
            idle_timeout: Duration::from_secs(300),
            connection_idle_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Rest {
    pub(crate) directory: Arc<Directory>,
    pub(crate) pools: Arc<Pools>,
    pub(crate) config: RestConfig,
}

impl Rest {
    /// An engine with a connection registry of its own (`config.max_connections` connections).
    pub fn new(directory: Arc<Directory>, config: RestConfig) -> Arc<Rest> {
        let registry = Registry::new(config.max_connections);
        Rest::with_registry(directory, config, &registry)
    }

    /// An engine taking its connections from `registry`, whose budget it shares with other services.
    pub fn with_registry(
        directory: Arc<Directory>,
        config: RestConfig,
        registry: &Registry,
    ) -> Arc<Rest> {
        Arc::new(Rest {
            pools: Pools::new(
                registry,
                config.pool_size,
                config.idle_timeout,
                config.connection_idle_timeout,
            ),
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

/// `Range: 0-9` (items) → (offset, limit).
fn range_header(headers: &HeaderMap) -> Option<(i64, Option<i64>)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let v = v.trim().strip_prefix("items=").unwrap_or(v.trim());
    let (a, b) = v.split_once('-')?;
    let from: i64 = a.trim().parse().ok()?;
    let to: Option<i64> = match b.trim() {
        "" => None,
        b => Some(b.parse().ok()?),
    };
    match to {
        Some(t) if t < from => None,
        Some(t) => Some((from, Some(t - from + 1))),
        None => Some((from, None)),
    }
}

/// `request.headers`: one member per header name (the last value of a repeated header), written
/// straight out rather than through a map, since this runs on every request.
fn headers_json(headers: &HeaderMap) -> String {
    let mut out = Vec::with_capacity(64 + headers.len() * 48);
    out.push(b'{');
    for name in headers.keys() {
        let Some(v) = headers
            .get_all(name)
            .iter()
            .rev()
            .find_map(|v| v.to_str().ok())
        else {
            continue;
        };
        if out.len() > 1 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name.as_str()).expect("a string always serialises");
        out.push(b':');
        serde_json::to_writer(&mut out, v).expect("a string always serialises");
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON strings and punctuation are UTF-8")
}

fn cookies_json(headers: &HeaderMap) -> String {
    let mut m = serde_json::Map::new();
    for v in headers.get_all(header::COOKIE) {
        if let Ok(v) = v.to_str() {
            for c in v.split(';') {
                if let Some((k, val)) = c.trim().split_once('=') {
                    m.insert(k.to_string(), Value::String(val.to_string()));
                }
            }
        }
    }
    Value::Object(m).to_string()
}

async fn authenticate(rest: &Rest, headers: &HeaderMap) -> Result<Caller, RestError> {
    let project_ref = headers
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
    let forwarded = from_forwarded(&project, headers).map_err(|e| match e {
        ForwardedError::NoToken => RestError::Jwt("No JWT provided".into()),
        e => RestError::Jwt(format!("JWT invalid: {e}")),
    })?;
    Ok(Caller {
        project,
        project_ref,
        role: forwarded.role,
        claims: forwarded.claims.to_json(),
    })
}

/// The target of a request path.
enum Target {
    Root,
    Relation(String),
    Rpc(String),
}

fn target(path: &str) -> Result<Target, RestError> {
    let p = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        return Ok(Target::Root);
    }
    let p = p.trim_end_matches('/');
    if let Some(f) = p.strip_prefix("rpc/") {
        if !f.is_empty() && !f.contains('/') {
            return Ok(Target::Rpc(f.to_string()));
        }
    }
    if !p.contains('/') {
        return Ok(Target::Relation(p.to_string()));
    }
    Err(RestError::api(
        StatusCode::NOT_FOUND,
        "PGRST125",
        format!("Invalid path specified in request URL: /{p}"),
        None,
        None,
    ))
}

async fn serve(rest: &Rest, req: Request) -> Result<Response, RestError> {
    let (mut parts, body) = req.into_parts();
    let caller = match parts.extensions.remove::<Caller>() {
        Some(c) => c,
        None => authenticate(rest, &parts.headers).await?,
    };
    let target = target(parts.uri.path())?;
    let cache = rest
        .pools
        .schema(
            &caller.project_ref,
            &caller.project.db,
            &rest.config.schemas,
        )
        .await?;

    let write = !matches!(parts.method, Method::GET | Method::HEAD);
    let profile = if write {
        "content-profile"
    } else {
        "accept-profile"
    };
    let schema = match parts.headers.get(profile).and_then(|v| v.to_str().ok()) {
        Some(s) if cache.schemas.iter().any(|x| x == s) => s.to_string(),
        Some(_) => return Err(RestError::Schema(cache.schemas.join(", "))),
        None => cache.schemas.first().cloned().unwrap_or_default(),
    };
    let accepts = media::parse_accept(&parts.headers);

    let prefer_joined: Vec<&str> = parts
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut prefer = parse_prefer(Some(&prefer_joined.join(",")));
    // PostgREST accepts the names of `pg_timezone_names`; any other is an invalid preference.
    if let Some(tz) = prefer.timezone.take() {
        let known = rest
            .pools
            .timezones(&caller.project_ref, &caller.project.db)
            .await?;
        if known.contains(&tz) {
            prefer.timezone = Some(tz);
        } else {
            prefer.invalid.push(format!("timezone={tz}"));
        }
    }
    if prefer.strict && !prefer.invalid.is_empty() {
        return Err(RestError::api(
            StatusCode::BAD_REQUEST,
            "PGRST122",
            "Invalid preferences given with handling=strict",
            Some(format!(
                "Invalid preferences: {}",
                prefer.invalid.join(", ")
            )),
            None,
        ));
    }

    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| RestError::InvalidBody("request body too large or unreadable".into()))?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();

    let ctx = RequestCtx {
        rest,
        caller: &caller,
        cache: &cache,
        schema: &schema,
        method: &parts.method,
        headers: &parts.headers,
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        prefer: &prefer,
        accepts: &accepts,
        // Chosen once the target is known (`negotiated`).
        media: Media::Json,
        body: &body,
        content_type: &content_type,
        rpc: matches!(target, Target::Rpc(_)),
    };
    match target {
        Target::Root => ctx.negotiated_root()?.root(),
        Target::Relation(name) => ctx.relation(&name).await,
        Target::Rpc(name) => ctx.rpc(&name).await,
    }
}

/// One request, resolved.
pub(crate) struct RequestCtx<'a> {
    rest: &'a Rest,
    caller: &'a Caller,
    pub(crate) cache: &'a SchemaCache,
    pub(crate) schema: &'a str,
    pub(crate) method: &'a Method,
    headers: &'a HeaderMap,
    path: &'a str,
    query: &'a str,
    prefer: &'a Preferences,
    accepts: &'a [media::Accepted],
    pub(crate) media: Media,
    body: &'a [u8],
    content_type: &'a str,
    /// A function call (`/rpc/…`) rather than a relation.
    rpc: bool,
}

impl RequestCtx<'_> {
    fn table(&self, name: &str) -> Result<&Table, RestError> {
        self.cache
            .table(self.schema, name)
            .ok_or_else(|| RestError::no_table(self.schema, name))
    }

    /// `Prefer: max-affected=N`, honoured under `handling=strict` by PATCH, DELETE and RPC.
    fn max_affected(&self) -> Option<i64> {
        let applies = self.rpc || matches!(*self.method, Method::PATCH | Method::DELETE);
        self.prefer
            .max_affected
            .filter(|_| self.prefer.strict && applies)
    }

    /// PGRST124 when a statement affected more rows than `max-affected` allows (it was rolled back).
    fn check_max_affected(&self, rows: i64) -> Result<(), RestError> {
        match self.max_affected() {
            Some(max) if rows > max => Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                Some(format!("The query affects {rows} rows")),
                None,
            )),
            _ => Ok(()),
        }
    }

    fn tx_end(&self, singular_write: bool) -> TxEnd {
        let settings = &self.cache.settings;
        let rollback = match (settings.tx_override(), self.prefer.tx) {
            (true, Some(commit)) => !commit,
            _ => settings.rollback_default(),
        };
        let at_most = self.max_affected();
        // An analyzed plan of anything but a read runs the statement: never for real.
        let analyzed_write = self.plan().is_some_and(|p| p.analyze())
            && !matches!(*self.method, Method::GET | Method::HEAD);
        if rollback || analyzed_write {
            TxEnd::Rollback
        } else if singular_write || at_most.is_some() {
            TxEnd::CommitIf(RowCheck {
                exactly_one: singular_write,
                at_most,
            })
        } else {
            TxEnd::Commit
        }
    }

    async fn run(
        &self,
        stmt: &Statement,
        read_only: bool,
        end: TxEnd,
    ) -> Result<Outcome, RestError> {
        let mut search_path = vec![quote_ident(self.schema)];
        for extra in self.cache.settings.extra_search_path() {
            if extra != self.schema {
                search_path.push(quote_ident(extra));
            }
        }
        let timezone = self.prefer.timezone.as_ref().map(|tz| {
            format!(
                "SELECT pg_catalog.set_config('timezone', {}, true)",
                quote_literal(tz)
            )
        });
        let function = self.cache.settings.db_pre_request.as_ref().map(|f| {
            let quoted: Vec<String> = f.split('.').map(|p| quote_ident(p.trim())).collect();
            format!("SELECT {}()", quoted.join("."))
        });
        let pre_request = match (timezone, function) {
            (Some(tz), Some(f)) => Some(format!("{tz}; {f}")),
            (tz, f) => tz.or(f),
        };
        let ctx = TxContext {
            role: self.caller.role,
            claims: &self.caller.claims,
            method: self.method.as_str(),
            path: self.path,
            headers: &headers_json(self.headers),
            cookies: &cookies_json(self.headers),
            search_path: &search_path.join(", "),
            statement_timeout: &timeout_setting(
                self.caller
                    .project
                    .limits
                    .statement_timeout_ms(self.caller.role),
            ),
            read_only,
            pre_request,
            end,
        };
        self.rest
            .pools
            .run(
                &self.caller.project_ref,
                &self.caller.project.db,
                &ctx,
                stmt,
            )
            .await
    }

    /// `limit`/`offset` from the query string combined with a `Range` header.
    fn window(&self, q: &Query) -> (Option<i64>, Option<i64>) {
        let (mut limit, mut offset) = (q.limit_at(&[]), q.offset_at(&[]));
        if let Some((from, n)) = range_header(self.headers) {
            offset = Some(offset.unwrap_or(0) + from);
            limit = match (limit, n) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // `db-max-rows` caps every read, whatever the client asked for.
        if let Some(max) = self.cache.settings.db_max_rows {
            limit = Some(limit.map_or(max, |l| l.min(max)));
        }
        (limit, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn headers_json_escapes_and_keeps_the_last_of_repeated_headers() {
        let mut h = HeaderMap::new();
        h.append("x-quote", HeaderValue::from_static(r#"a "b" \c"#));
        h.append("x-twice", HeaderValue::from_static("first"));
        h.append("x-twice", HeaderValue::from_static("second"));
        h.append("x-bytes", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let v: Value = serde_json::from_str(&headers_json(&h)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"x-quote": r#"a "b" \c"#, "x-twice": "second"}),
            "non-ASCII values are not text to `to_str` and are left out, as before"
        );
        assert_eq!(headers_json(&HeaderMap::new()), "{}");
    }
}
