//! The HTTP face of the engine: one axum `Router` serving every project (server mode). The gateway tells
//! which project a request is for in [`PROJECT_HEADER`] and proves the caller's role with a JWT signed
//! by that project's secret, which is verified here again.
//!
//! Per request: authenticate → parse ([`crate::parse`]) → resolve against the schema cache and render SQL
//! ([`crate::sql`]) → run in one round trip ([`crate::exec`]) → shape the response (status, headers,
//! media type) as PostgREST does.

use crate::error::RestError;
use crate::exec::{Outcome, Pools, RowCheck, TxContext, TxEnd};
use crate::parse::{parse_csv_payload, parse_json_payload, parse_prefer, parse_query, Payload};
use crate::plan::*;
use crate::schema::{Function, SchemaCache, Table};
use crate::session::timeout_setting;
use crate::sql::{Builder, Render, RpcArgs, Statement, Write_};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::Directory;
use supactl_common::headers::bearer;
use supactl_common::ident::{quote_ident, quote_literal};
use supactl_common::jwt;
use supactl_common::keys::Role;
use supactl_common::wire::{status, ProjectConfig};

/// The header carrying the project ref from the gateway.
pub const PROJECT_HEADER: &str = "x-supactl-project";
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
    /// below the database servers' `max_connections`).
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
    pub fn new(directory: Arc<Directory>, config: RestConfig) -> Arc<Rest> {
        Arc::new(Rest {
            pools: Pools::new(
                config.pool_size,
                config.max_connections,
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

/// The response media type asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    Object,
    Csv,
    OpenApi,
    /// `application/vnd.pgrst.array+json;nulls=stripped`.
    JsonStripped,
    /// `application/vnd.pgrst.object+json;nulls=stripped`.
    ObjectStripped,
}

impl Media {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json; charset=utf-8",
            Media::Object => "application/vnd.pgrst.object+json; charset=utf-8",
            Media::Csv => "text/csv; charset=utf-8",
            Media::OpenApi => "application/openapi+json; charset=utf-8",
            Media::JsonStripped => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            Media::ObjectStripped => {
                "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
            }
        }
    }

    /// The singular (one object) flavours.
    pub(crate) fn singular(self) -> bool {
        matches!(self, Media::Object | Media::ObjectStripped)
    }

    fn render(self) -> Render {
        match self {
            Media::Csv => Render::Csv,
            Media::JsonStripped | Media::ObjectStripped => Render::JsonStripped,
            _ => Render::Json,
        }
    }
}

fn accept(headers: &HeaderMap) -> Result<Media, RestError> {
    let Some(v) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Media::Json);
    };
    for item in v.split(',') {
        let m = item.split(';').next().unwrap_or("").trim();
        let stripped = item.replace(' ', "").contains(";nulls=stripped");
        match m {
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" if stripped => {
                return Ok(Media::JsonStripped)
            }
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => {
                return Ok(Media::Json)
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" if stripped => {
                return Ok(Media::ObjectStripped)
            }
            "" | "*/*" | "application/*" | "application/json" => return Ok(Media::Json),
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                return Ok(Media::Object)
            }
            "text/csv" | "text/*" => return Ok(Media::Csv),
            "application/openapi+json" => return Ok(Media::OpenApi),
            _ => {}
        }
    }
    Err(RestError::api(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {v}"),
        None,
        None,
    ))
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

/// Everything resolved about the caller before the request proper. The in-process gateway, which has
/// just authenticated the caller and minted its token, attaches one to the request as an extension
/// (which no client can send), so the token is not verified and parsed a second time.
#[derive(Clone)]
pub struct Caller {
    pub project: Arc<ProjectConfig>,
    pub project_ref: String,
    pub role: Role,
    /// The minted token's claims, as JSON (`request.jwt.claims`).
    pub claims: String,
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
    let token = bearer(headers).ok_or_else(|| RestError::Jwt("No JWT provided".into()))?;
    let claims = jwt::verify(token, &project.verification_secrets(), jwt::now())
        .map_err(|e| RestError::Jwt(format!("JWT invalid: {e}")))?;
    if claims.get("ref").and_then(|v| v.as_str()) != Some(project_ref.as_str()) {
        return Err(RestError::Jwt(
            "JWT invalid: issued for another project".into(),
        ));
    }
    let role = supactl_common::claims::role(&claims)
        .map_err(|e| RestError::Jwt(format!("JWT invalid: {e}")))?;
    Ok(Caller {
        project,
        project_ref,
        role,
        claims: Value::Object(claims).to_string(),
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
    let media = accept(&parts.headers)?;

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
        media,
        body: &body,
        content_type: &content_type,
        rpc: matches!(target, Target::Rpc(_)),
    };
    match target {
        Target::Root => crate::openapi::serve(&ctx),
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
    pub(crate) media: Media,
    body: &'a [u8],
    content_type: &'a str,
    /// A function call (`/rpc/…`) rather than a relation.
    rpc: bool,
}

/// Preferences echoed in `Preference-Applied`.
fn applied(
    prefer: &Preferences,
    write: bool,
    tx_override: bool,
    max_affected: Option<i64>,
) -> Vec<Cow<'static, str>> {
    let mut out: Vec<Cow<'static, str>> = Vec::new();
    if write {
        match prefer.ret {
            Some(Return::Representation) => out.push("return=representation".into()),
            Some(Return::Minimal) => out.push("return=minimal".into()),
            Some(Return::HeadersOnly) => out.push("return=headers-only".into()),
            None => {}
        }
        match prefer.resolution {
            Some(Resolution::MergeDuplicates) => out.push("resolution=merge-duplicates".into()),
            Some(Resolution::IgnoreDuplicates) => out.push("resolution=ignore-duplicates".into()),
            None => {}
        }
        if prefer.missing_default {
            out.push("missing=default".into());
        }
    }
    match prefer.count {
        Some(Count::Exact) => out.push("count=exact".into()),
        Some(Count::Planned) => out.push("count=planned".into()),
        Some(Count::Estimated) => out.push("count=estimated".into()),
        None => {}
    }
    if tx_override {
        match prefer.tx {
            Some(true) => out.push("tx=commit".into()),
            Some(false) => out.push("tx=rollback".into()),
            None => {}
        }
    }
    if let Some(tz) = &prefer.timezone {
        out.push(format!("timezone={tz}").into());
    }
    if prefer.strict {
        out.push("handling=strict".into());
        if let Some(n) = max_affected {
            out.push(format!("max-affected={n}").into());
        }
    } else if !prefer.invalid.is_empty() {
        out.push("handling=lenient".into());
    }
    out
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
        if rollback {
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
        for extra in ["public", "extensions"] {
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

    async fn relation(&self, name: &str) -> Result<Response, RestError> {
        let table = self.table(name)?;
        let (query, extras) = parse_query(self.query, false)?;
        let (limit, offset) = self.window(&query);
        let b = Builder::new(self.cache, &query);
        let media = self.media;
        match *self.method {
            Method::GET | Method::HEAD => {
                let head = *self.method == Method::HEAD;
                let render = if head { Render::None } else { media.render() };
                let stmt = b.read(table, render, self.prefer.count, limit, offset)?;
                let out = self.run(&stmt, true, self.tx_end(false)).await?;
                self.read_response(out, offset.unwrap_or(0), head, false)
            }
            Method::POST | Method::PATCH | Method::PUT | Method::DELETE => {
                let ret = self.prefer.ret.unwrap_or(Return::Minimal);
                let payload = match *self.method {
                    Method::DELETE => None,
                    _ => Some(self.payload(extras.columns.is_none())?),
                };
                let write = match *self.method {
                    Method::POST => {
                        let p = payload.as_ref().expect("POST has a body");
                        let columns = extras.columns.clone().unwrap_or_else(|| p.keys.clone());
                        let complete = if extras.columns.is_some() {
                            p.complete.clone()
                        } else {
                            columns.clone()
                        };
                        Write_::Insert {
                            json: p.json.clone(),
                            columns,
                            complete,
                            on_conflict: extras.on_conflict.clone(),
                        }
                    }
                    Method::PUT => {
                        self.put_write(table, &query, payload.as_ref().expect("PUT has a body"))?
                    }
                    Method::PATCH => {
                        let p = payload.as_ref().expect("PATCH has a body");
                        let obj: Value = serde_json::from_str(&p.json).unwrap_or(Value::Null);
                        Write_::Update {
                            json: obj.get(0).cloned().unwrap_or(Value::Null).to_string(),
                            columns: p.keys.clone(),
                        }
                    }
                    _ => Write_::Delete,
                };
                let resolution = match *self.method {
                    Method::PUT => Some(Resolution::MergeDuplicates),
                    Method::POST => self.prefer.resolution,
                    _ => None,
                };
                if let Some(cols) = &extras.on_conflict {
                    for c in cols {
                        if table.column(c).is_none() {
                            return Err(RestError::no_column(c, &table.name));
                        }
                    }
                }
                let singular = media.singular();
                let render = match ret {
                    Return::Representation => media.render(),
                    _ => Render::None,
                };
                let stmt = b.write(
                    table,
                    &write,
                    render,
                    self.prefer.missing_default,
                    resolution,
                    ret == Return::HeadersOnly,
                )?;
                let out = self.run(&stmt, false, self.tx_end(singular)).await?;
                self.write_response(out, table, ret)
            }
            ref m => Err(RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                format!("Unsupported HTTP method: {m}"),
                None,
                None,
            )),
        }
    }

    fn payload(&self, uniform: bool) -> Result<Payload, RestError> {
        if self.content_type == "text/csv" {
            parse_csv_payload(self.body)
        } else {
            parse_json_payload(self.body, uniform)
        }
    }

    /// PUT: a single-row upsert addressed by every primary-key column with `eq`.
    fn put_write(&self, table: &Table, q: &Query, p: &Payload) -> Result<Write_, RestError> {
        let invalid = || {
            RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST105",
                "Filters must include all and only primary key columns with 'eq' operators",
                None,
                None,
            )
        };
        if q.limit_at(&[]).is_some() || q.offset_at(&[]).is_some() {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST114",
                "limit/offset querystring parameters are not allowed for PUT",
                None,
                None,
            ));
        }
        let mut keyed = Vec::new();
        for (path, c) in &q.filters {
            match c {
                Cond::Filter(Filter {
                    field,
                    negated: false,
                    predicate:
                        Predicate::Compare {
                            op: Op::Eq,
                            quantifier: None,
                            value,
                        },
                }) if path.is_empty() && field.json.is_empty() => {
                    keyed.push((field.name.clone(), value.clone()))
                }
                _ => return Err(invalid()),
            }
        }
        if table.pk.is_empty()
            || keyed.len() != table.pk.len()
            || !table.pk.iter().all(|k| keyed.iter().any(|(n, _)| n == k))
        {
            return Err(invalid());
        }
        let rows: Value = serde_json::from_str(&p.json).unwrap_or(Value::Null);
        let row = match rows.as_array().map(Vec::as_slice) {
            Some([row]) => row,
            _ => {
                return Err(RestError::InvalidBody(
                    "PUT payload must contain a single row".into(),
                ))
            }
        };
        let mismatch = keyed.iter().any(|(k, v)| {
            let given = match row.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => return true,
                Some(other) => other.to_string(),
            };
            &given != v
        });
        if mismatch {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST115",
                "Payload values do not match URL in primary key column(s)",
                None,
                None,
            ));
        }
        Ok(Write_::Insert {
            json: p.json.clone(),
            columns: p.keys.clone(),
            complete: p.keys.clone(),
            on_conflict: Some(table.pk.clone()),
        })
    }

    /// Chooses the overload and the way arguments are passed.
    fn choose<'f>(
        &self,
        name: &str,
        overloads: &'f [Function],
        keys: &[String],
        body_json: &str,
    ) -> Result<(&'f Function, RpcArgs<'f>), RestError> {
        let is_json = |t: &str| t == "json" || t == "jsonb";
        if self.prefer.params_single_object {
            if let Some(f) = overloads.iter().find(|f| {
                let ins: Vec<_> = f.inputs().collect();
                ins.len() == 1 && is_json(&ins[0].data_type)
            }) {
                return Ok((f, RpcArgs::Single(body_json.to_string())));
            }
        }
        let mut matches: Vec<&Function> = overloads
            .iter()
            .filter(|f| {
                let names: Vec<&str> = f.inputs().map(|a| a.name.as_str()).collect();
                let required: Vec<&str> = names[..f.required_inputs().min(names.len())].to_vec();
                keys.iter().all(|k| names.contains(&k.as_str()))
                    && required
                        .iter()
                        .all(|r| !r.is_empty() && keys.iter().any(|k| k == r))
                    && !names.iter().any(|n| n.is_empty())
            })
            .collect();
        if matches.len() > 1 {
            let exact: Vec<&Function> = matches
                .iter()
                .copied()
                .filter(|f| f.inputs().count() == keys.len())
                .collect();
            if !exact.is_empty() {
                matches = exact;
            }
        }
        match matches.as_slice() {
            [f] => {
                let chosen: Vec<_> = f
                    .inputs()
                    .filter(|a| keys.contains(&a.name))
                    .collect();
                return Ok((f, RpcArgs::Named(body_json.to_string(), chosen)));
            }
            [_, _, ..] => {
                return Err(RestError::api(
                    StatusCode::MULTIPLE_CHOICES,
                    "PGRST203",
                    format!(
                        "Could not choose the best candidate function between: {}",
                        matches
                            .iter()
                            .map(|f| format!(
                                "{}.{}({})",
                                f.schema,
                                f.name,
                                f.inputs()
                                    .map(|a| format!("{} => {}", a.name, a.data_type))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                    Some("Try renaming the parameters or the function itself in the database so function overloading can be resolved".into()),
                ))
            }
            [] => {}
        }
        // A single unnamed json/jsonb parameter takes the whole body.
        if *self.method == Method::POST {
            if let Some(f) = overloads.iter().find(|f| {
                let ins: Vec<_> = f.inputs().collect();
                ins.len() == 1 && ins[0].name.is_empty() && is_json(&ins[0].data_type)
            }) {
                return Ok((f, RpcArgs::Single(body_json.to_string())));
            }
        }
        Err(no_function(self.schema, name, keys))
    }

    async fn rpc(&self, name: &str) -> Result<Response, RestError> {
        let get = matches!(*self.method, Method::GET | Method::HEAD);
        if !get && *self.method != Method::POST {
            return Err(RestError::api(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST101",
                format!("Cannot use the {} method on RPC", self.method),
                None,
                None,
            ));
        }
        let (mut query, _) = parse_query(self.query, get)?;
        let overloads = self
            .cache
            .functions
            .get(&(self.schema.to_string(), name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (keys, body_json) = if get {
            // Query parameters named like an argument are arguments; the others filter the result.
            let arg_names: Vec<&str> = overloads
                .iter()
                .flat_map(|f| f.inputs().map(|a| a.name.as_str()))
                .collect();
            let mut args = serde_json::Map::new();
            for (k, v) in std::mem::take(&mut query.extra) {
                if arg_names.contains(&k.as_str()) {
                    match args.get_mut(&k) {
                        Some(Value::Array(a)) => a.push(Value::String(v)),
                        Some(prev) => *prev = Value::Array(vec![prev.clone(), Value::String(v)]),
                        None => {
                            args.insert(k, Value::String(v));
                        }
                    }
                } else {
                    let field = crate::parse::parse_field(&k)?;
                    query.filters.push((
                        Vec::new(),
                        Cond::Filter(crate::parse::parse_filter(field, &v, false)?),
                    ));
                }
            }
            // A variadic argument given once is still a list.
            for f in overloads {
                for a in f.inputs().filter(|a| a.mode == "v") {
                    if let Some(v @ Value::String(_)) = args.get_mut(&a.name) {
                        if !v.as_str().is_some_and(|s| s.starts_with('{')) {
                            *v = Value::Array(vec![v.clone()]);
                        }
                    }
                }
            }
            (
                args.keys().cloned().collect::<Vec<_>>(),
                Value::Object(args).to_string(),
            )
        } else {
            let text = if self.body.iter().all(u8::is_ascii_whitespace) {
                "{}".to_string()
            } else {
                let v: Value = serde_json::from_slice(self.body)
                    .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
                v.to_string()
            };
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let keys = match &v {
                Value::Object(o) if !self.prefer.params_single_object => {
                    o.keys().cloned().collect()
                }
                _ => Vec::new(),
            };
            (keys, text)
        };
        if overloads.is_empty() {
            return Err(no_function(self.schema, name, &keys));
        }
        let (f, args) = self.choose(name, overloads, &keys, &body_json)?;
        if !get
            && matches!(args, RpcArgs::Named(..))
            && !serde_json::from_str::<Value>(&body_json).is_ok_and(|v| v.is_object())
        {
            return Err(RestError::InvalidBody(
                "Empty or invalid json: expected an object of arguments".into(),
            ));
        }
        let (limit, offset) = self.window(&query);
        let head = *self.method == Method::HEAD;
        let render = if head {
            Render::None
        } else {
            self.media.render()
        };
        let single_row = f.returns_rows() && !f.retset;
        if self.max_affected().is_some() && !f.retset {
            return Err(RestError::api(
                StatusCode::BAD_REQUEST,
                "PGRST128",
                "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
                None,
                None,
            ));
        }
        let b = Builder::new(self.cache, &query);
        let stmt = b.rpc(f, &args, render, self.prefer.count, limit, offset)?;
        let out = self.run(&stmt, get, self.tx_end(false)).await?;
        self.check_max_affected(out.page)?;
        if f.returns_void() {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            self.apply_guc_headers(&mut res, &out)?;
            return Ok(res);
        }
        if f.returns_rows() {
            if single_row && !self.media.singular() {
                // A function returning one composite answers with that object.
                let mut out = out;
                out.body = unwrap_single(&out.body).unwrap_or_else(|| "null".into());
                return self.read_response(out, offset.unwrap_or(0), head, true);
            }
            return self.read_response(out, offset.unwrap_or(0), head, false);
        }
        self.read_response(out, 0, head, true)
    }

    fn apply_guc_headers(&self, res: &mut Response, out: &Outcome) -> Result<(), RestError> {
        if let Some(h) = &out.headers {
            let parsed: Value = serde_json::from_str(h).map_err(|_| invalid_guc_headers())?;
            let list = parsed.as_array().ok_or_else(invalid_guc_headers)?;
            for item in list {
                let obj = item.as_object().ok_or_else(invalid_guc_headers)?;
                for (k, v) in obj {
                    let name =
                        HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid_guc_headers())?;
                    let value = v
                        .as_str()
                        .and_then(|s| HeaderValue::from_str(s).ok())
                        .ok_or_else(invalid_guc_headers)?;
                    res.headers_mut().insert(name, value);
                }
            }
        }
        if let Some(s) = &out.status {
            let code = s
                .trim()
                .parse::<u16>()
                .ok()
                .and_then(|n| StatusCode::from_u16(n).ok())
                .ok_or_else(|| {
                    RestError::api(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "PGRST112",
                        "Invalid response.status",
                        Some(format!("The status code must be a positive integer: {s}")),
                        None,
                    )
                })?;
            *res.status_mut() = code;
        }
        Ok(())
    }

    fn singular_error(page: i64) -> RestError {
        RestError::api(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST116",
            "JSON object requested, multiple (or no) rows returned",
            Some(format!("The result contains {page} rows")),
            None,
        )
    }

    pub(crate) fn finish(
        &self,
        status: StatusCode,
        body: Option<String>,
        out: &Outcome,
    ) -> Result<Response, RestError> {
        let mut res = match body {
            Some(b) => {
                let media = match self.media {
                    Media::OpenApi => Media::Json,
                    m => m,
                };
                let mut r = Response::new(Body::from(b));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media.content_type()),
                );
                r
            }
            None => Response::new(Body::empty()),
        };
        *res.status_mut() = status;
        let write = !matches!(*self.method, Method::GET | Method::HEAD);
        let ap = applied(
            self.prefer,
            write,
            self.cache.settings.tx_override(),
            self.max_affected(),
        );
        if !ap.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&ap.join(", ")) {
                res.headers_mut()
                    .insert(HeaderName::from_static("preference-applied"), v);
            }
        }
        self.apply_guc_headers(&mut res, out)?;
        Ok(res)
    }

    fn read_response(
        &self,
        mut out: Outcome,
        offset: i64,
        head: bool,
        scalar: bool,
    ) -> Result<Response, RestError> {
        if let (Some(total), true) = (out.total, out.page == 0 && offset > 0) {
            if offset > total {
                return Err(RestError::api(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "PGRST103",
                    "Requested range not satisfiable",
                    Some(format!(
                        "An offset of {offset} was requested, but there are only {total} rows."
                    )),
                    None,
                ));
            }
        }
        let mut body = std::mem::take(&mut out.body);
        if self.media.singular() && !scalar {
            if out.page != 1 {
                return Err(Self::singular_error(out.page));
            }
            body = unwrap_single(&body).unwrap_or(body);
        }
        let range = if out.page == 0 {
            "*".to_string()
        } else {
            format!("{}-{}", offset, offset + out.page - 1)
        };
        let total = out
            .total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "*".into());
        let partial = out
            .total
            .is_some_and(|t| out.page > 0 && out.page < t && offset + out.page <= t);
        let status = if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let mut res = self.finish(status, (!head).then_some(body), &out)?;
        if !scalar {
            if let Ok(v) = HeaderValue::from_str(&format!("{range}/{total}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        Ok(res)
    }

    fn write_response(
        &self,
        mut out: Outcome,
        table: &Table,
        ret: Return,
    ) -> Result<Response, RestError> {
        if self.media.singular() && out.page != 1 {
            return Err(Self::singular_error(out.page));
        }
        self.check_max_affected(out.page)?;
        let representation = ret == Return::Representation;
        let mut body = std::mem::take(&mut out.body);
        if representation && self.media.singular() {
            body = unwrap_single(&body).unwrap_or(body);
        }
        let (status, range) = match *self.method {
            Method::POST => (StatusCode::CREATED, "*/*".to_string()),
            _ => (
                if representation {
                    StatusCode::OK
                } else {
                    StatusCode::NO_CONTENT
                },
                if out.page == 0 {
                    "*/*".to_string()
                } else {
                    format!("0-{}/*", out.page - 1)
                },
            ),
        };
        let mut res = self.finish(status, representation.then_some(body), &out)?;
        if let Ok(v) = HeaderValue::from_str(&range) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if *self.method == Method::POST && ret == Return::HeadersOnly {
            if let Some(loc) = out
                .location
                .as_deref()
                .and_then(|l| location(&table.name, l))
            {
                if let Ok(v) = HeaderValue::from_str(&loc) {
                    res.headers_mut().insert(header::LOCATION, v);
                }
            }
        }
        Ok(res)
    }
}

fn invalid_guc_headers() -> RestError {
    RestError::api(
        StatusCode::INTERNAL_SERVER_ERROR,
        "PGRST111",
        "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        None,
        None,
    )
}

/// `[ {…} ]` → `{…}` without re-encoding (json_agg's output is `[` elements `]`).
fn unwrap_single(body: &str) -> Option<String> {
    let inner = body.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.trim().to_string())
}

/// `/books?id=eq.1` from the first written row's primary key.
fn location(table: &str, pk_json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(pk_json).ok()?;
    let obj = v.as_object()?;
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let parts: Vec<String> = obj
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}=eq.{}", enc(k), enc(&v))
        })
        .collect();
    Some(format!("/{}?{}", enc(table), parts.join("&")))
}

fn no_function(schema: &str, name: &str, keys: &[String]) -> RestError {
    let (msg, details) = if keys.is_empty() {
        (
            format!("Could not find the function {schema}.{name} without parameters in the schema cache"),
            format!("Searched for the function {schema}.{name} without parameters or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."),
        )
    } else {
        let mut sorted = keys.to_vec();
        sorted.sort();
        let list = sorted.join(", ");
        (
            format!("Could not find the function {schema}.{name}({list}) in the schema cache"),
            format!("Searched for the function {schema}.{name} with parameters {list} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."),
        )
    };
    RestError::api(StatusCode::NOT_FOUND, "PGRST202", msg, Some(details), None)
}

#[cfg(test)]
mod tests {
    use super::*;

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
