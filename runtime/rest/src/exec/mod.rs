//! Running statements: the project's pool from the shared connection registry
//! ([`supactl_common::connections`], which also keeps the connection budget across projects and
//! services) with the project's schema cache beside it, and one pipelined round trip per request —
//! `BEGIN`, the GUCs (`set_config`), the optional pre-request function, the statement and `COMMIT` are
//! written together and their replies read together (a plain read needs only the GUCs and the
//! statement; see [`Pools::run`]).
//! Statements are prepared once per connection (PostgreSQL infers each parameter's type) and reused by
//! every request of the same shape; each connection keeps at most [`MAX_STATEMENTS`] of them.
//! Every statement runs under its role's statement timeout from the project's limits (set with the
//! other GUCs, see [`crate::session`]), and a request dropped midway cancels its statement and closes
//! the connection ([`crate::lease`]).
//!
//! ## Schema-cache invalidation without a listener per project
//! `NOTIFY` never crosses databases, so one listener connection per server cannot hear every project,
//! and a dedicated listener per project would double the connections. Instead every pooled connection
//! runs `LISTEN pgrst` once when it is opened, and its driver task watches for notifications: PostgreSQL
//! delivers them to idle sessions at once, so the first connection to hear `NOTIFY pgrst` (sent by the
//! user, or by the template's DDL event trigger in `templates/rest.sql`) drops the project's cache.
//! That costs no extra connection at all. A project whose connections were all closed may have missed a
//! notification, so its cache is dropped when its first new connection opens.
//!
//! ## Slow statements
//! A statement that runs [`SLOW_STATEMENT`] or longer is logged (target `rest::slow`) with the request
//! id, project, role and duration: PostgreSQL's own log of it (`log_min_duration_statement`, in the
//! project's database at the same moment) has the SQL. Only two clock reads per request; the id is read
//! from the headers GUC only for a slow one.

pub mod binary;
mod pipeline;
mod shortest;

pub use pipeline::Text;

use crate::error::RestError;
use crate::lease::Lease;
use crate::schema::{SchemaCache, LOAD_SQL, LOAD_SQL_BEFORE_CONFINE};
use crate::session::{timeout_setting, TxContext};
use crate::sql::{Statement, Total};
use deadpool_postgres::{Object, Pool};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supactl_common::connections::{self, ProjectHooks, Registry, ServiceSpec};
use supactl_common::keys::Role;
use supactl_common::wire::DbConfig;
use tokio_postgres::error::SqlState;

/// Statements running this long are logged with their request id (see the module's docs).
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Prepared statements kept per connection; past this the connection's cache is emptied.
pub const MAX_STATEMENTS: usize = 256;

/// `statement_timeout` of a schema-cache load (catalog queries as the project's login role; a request
/// waits for it, and one abandoned meanwhile cancels it).
const SCHEMA_LOAD_TIMEOUT_MS: u32 = 30_000;

/// What a statement produced.
#[derive(Debug)]
pub struct Outcome {
    pub body: String,
    pub page: i64,
    pub total: Option<i64>,
    /// `response.headers` as set by the statement (a JSON array of objects), if any.
    pub headers: Option<String>,
    /// `response.status`, if set.
    pub status: Option<String>,
    /// The primary key of the first written row as a JSON object (for `Location`).
    pub location: Option<String>,
    /// Rows an upsert inserted (rather than updated), when the statement reports them.
    pub inserted: Option<i64>,
}

impl Outcome {
    /// What `rows` say: the one row every statement of [`crate::sql`] returns, or (`binary`: the
    /// number of value columns) the rows of a [`Statement::binary`] read and its trailer.
    fn from_rows(
        rows: &[tokio_postgres::Row],
        stmt: &Statement,
        planned_total: Option<i64>,
        binary: Option<usize>,
    ) -> Result<Outcome, RestError> {
        if let Some(n) = binary {
            return Self::from_binary(rows, n, stmt, planned_total);
        }
        if stmt.plan {
            // EXPLAIN's rows: one JSON document, or the lines of the text plan.
            let mut body = String::new();
            for row in rows {
                body.push_str(&row.get::<_, pipeline::AnyText>(0).0);
                body.push('\n');
            }
            return Ok(Outcome {
                body,
                page: 0,
                total: None,
                headers: None,
                status: None,
                location: None,
                inserted: None,
            });
        }
        let row = rows
            .first()
            .ok_or_else(|| RestError::Unavailable("statement returned no row".into()))?;
        let third: Option<i64> = row.get(2);
        Ok(Outcome {
            body: row.get(0),
            page: row.get(1),
            total: stmt.total(third, planned_total),
            inserted: (stmt.total == Total::Inserted).then_some(third).flatten(),
            headers: row.get::<_, Option<String>>(3).filter(|s| !s.is_empty()),
            status: row.get::<_, Option<String>>(4).filter(|s| !s.is_empty()),
            location: row.get(5),
        })
    }

    /// The body written from the rows, the rest read from the trailer (see [`trailer`]).
    fn from_binary(
        rows: &[tokio_postgres::Row],
        n: usize,
        stmt: &Statement,
        planned_total: Option<i64>,
    ) -> Result<Outcome, RestError> {
        let t = trailer(rows, n)?;
        let data = &rows[..rows.len() - 1];
        let text = |i: usize| t.get(i).copied().flatten().filter(|s| !s.is_empty());
        let counted = text(0).and_then(|s| s.parse().ok());
        // Reported only when a float column goes out as is (see `crate::sql::BinaryRead`).
        let float_digits = text(3).and_then(|s| s.parse().ok()).unwrap_or(1);
        Ok(Outcome {
            body: binary::body(data, n, float_digits).map_err(RestError::Unavailable)?,
            page: data.len() as i64,
            total: stmt.total(counted, planned_total),
            headers: text(1).map(str::to_string),
            status: text(2).map(str::to_string),
            location: None,
            inserted: None,
        })
    }
}

/// The last row of a binary read: `{total, response.headers, response.status}`, then
/// `extra_float_digits` when floats go out as they are (see [`crate::sql`]'s `wrap_binary`).
fn trailer(rows: &[tokio_postgres::Row], n: usize) -> Result<Vec<Option<&str>>, RestError> {
    rows.last()
        .and_then(|r| r.try_get::<_, Vec<Option<&str>>>(n).ok())
        .ok_or_else(|| RestError::Unavailable("statement returned no trailer".into()))
}

/// Per-project state kept beside the project's pool, told about its connections.
#[derive(Default)]
struct ProjectState {
    cache: Mutex<Option<Arc<SchemaCache>>>,
    /// Bumped on every invalidation, so a load that raced with one is not installed.
    generation: AtomicU64,
    load: tokio::sync::Mutex<()>,
}

impl ProjectHooks for ProjectState {
    const LISTEN: Option<&'static str> = Some("pgrst");

    fn opened(&self, first: bool) {
        if first {
            // Nobody was listening: a notification may have been missed.
            self.invalidate();
        }
    }

    fn notified(&self, payload: &str) {
        tracing::debug!(payload, "schema cache reload");
        self.invalidate();
    }
}

impl ProjectState {
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.cache.lock().expect("cache lock") = None;
    }
}

/// Per-project pools and schema caches.
pub struct Pools {
    pools: connections::Pools<ProjectState>,
    /// `pg_timezone_names`, loaded once from the first project that needs it.
    timezones: tokio::sync::OnceCell<Arc<HashSet<String>>>,
}

impl Pools {
    /// Pools in `registry` of at most `max_size` connections, dropped (with the schema cache) after
    /// `idle` without use; single connections are closed after `connection_idle` unused, and idle ones
    /// of other projects when the registry's budget is reached.
    pub fn new(
        registry: &Registry,
        max_size: usize,
        idle: Duration,
        connection_idle: Duration,
    ) -> Arc<Pools> {
        Arc::new(Pools {
            pools: registry.service(ServiceSpec {
                application_name: "supactl-rest",
                options: None,
                pool_size: max_size,
                idle_timeout: idle,
                connection_idle_timeout: connection_idle,
            }),
            timezones: tokio::sync::OnceCell::new(),
        })
    }

    /// Drops a project's pool and cache (deleted or paused project).
    pub fn remove(&self, project_ref: &str) {
        self.pools.remove(project_ref);
    }

    /// Number of projects holding a pool.
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// Connections open across every project and service of the registry.
    pub fn open_connections(&self) -> usize {
        self.pools.registry().open_connections()
    }

    /// Drops a project's schema cache (tests, admin tooling).
    pub fn invalidate(&self, project_ref: &str) {
        if let Some(state) = self.pools.state(project_ref) {
            state.invalidate();
        }
    }

    fn entry(&self, project_ref: &str, db: &DbConfig) -> (Pool, Arc<ProjectState>) {
        self.pools.get(project_ref, db)
    }

    /// The project's schema cache over `schemas`, loaded on first use and after invalidation.
    pub async fn schema(
        &self,
        project_ref: &str,
        db: &DbConfig,
        schemas: &[String],
    ) -> Result<Arc<SchemaCache>, RestError> {
        let (pool, state) = self.entry(project_ref, db);
        if let Some(c) = state.cache.lock().expect("cache lock").clone() {
            return Ok(c);
        }
        let _loading = state.load.lock().await;
        if let Some(c) = state.cache.lock().expect("cache lock").clone() {
            return Ok(c);
        }
        let client = Lease::new(
            self.pools
                .checkout(&pool)
                .await
                .map_err(|e| RestError::Unavailable(e.to_string()))?,
            &db.tls,
        );
        let result = Self::load_schema(&client, &state, schemas).await;
        client.release(matches!(result, Err(RestError::Unavailable(_))));
        result
    }

    async fn load_schema(
        client: &Object,
        state: &ProjectState,
        schemas: &[String],
    ) -> Result<Arc<SchemaCache>, RestError> {
        // Reads leave the request's role and GUCs set on the session: load as the login role, under
        // a timeout of its own (not the last request's).
        client
            .batch_execute(&format!(
                "RESET ROLE; RESET search_path; RESET default_transaction_read_only; \
                 SET statement_timeout = '{}'",
                timeout_setting(SCHEMA_LOAD_TIMEOUT_MS)
            ))
            .await
            .map_err(|e| RestError::from_pg(&e, Role::ServiceRole))?;
        let generation = state.generation.load(Ordering::SeqCst);
        let load = |schemas: Vec<String>| async move {
            let row = match client.query_one(LOAD_SQL, &[&schemas]).await {
                // Not there yet, or not usable yet: a database the tenant-manager has not brought up
                // to date, whose catalogs are still readable.
                Err(e)
                    if [
                        SqlState::UNDEFINED_FUNCTION,
                        SqlState::INSUFFICIENT_PRIVILEGE,
                        SqlState::INVALID_SCHEMA_NAME,
                    ]
                    .iter()
                    .any(|c| e.code() == Some(c)) =>
                {
                    client.query_one(LOAD_SQL_BEFORE_CONFINE, &[&schemas]).await
                }
                other => other,
            }
            .map_err(|e| RestError::from_pg(&e, Role::ServiceRole))?;
            let text: String = row.get(0);
            SchemaCache::from_json(&text)
                .map_err(|e| RestError::Unavailable(format!("schema cache: {e}")))
        };
        let mut cache = load(schemas.to_vec()).await?;
        cache.schemas = schemas.to_vec();
        // `pgrst.db_schemas` set in the database overrides the platform's default exposure.
        if let Some(list) = cache.settings.db_schemas.clone() {
            let wanted: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
            if wanted != schemas {
                let settings = cache.settings.clone();
                cache = load(wanted.clone()).await?;
                cache.settings = settings;
                cache.schemas = wanted;
            }
        }
        let cache = Arc::new(cache);
        // The connection's statements may name dropped objects: start afresh.
        client.statement_cache.clear();
        if state.generation.load(Ordering::SeqCst) == generation {
            *state.cache.lock().expect("cache lock") = Some(cache.clone());
        }
        Ok(cache)
    }

    /// The time zone names `Prefer: timezone=` accepts (PostgreSQL's `pg_timezone_names`, which every
    /// worker server reads from the same IANA database), loaded once per process.
    pub async fn timezones(
        &self,
        project_ref: &str,
        db: &DbConfig,
    ) -> Result<Arc<HashSet<String>>, RestError> {
        self.timezones
            .get_or_try_init(|| async {
                let (pool, _) = self.entry(project_ref, db);
                let client = pool
                    .get()
                    .await
                    .map_err(|e| RestError::Unavailable(e.to_string()))?;
                let rows = client
                    .query("SELECT name FROM pg_catalog.pg_timezone_names", &[])
                    .await
                    .map_err(|e| RestError::from_pg(&e, Role::ServiceRole))?;
                Ok(Arc::new(rows.iter().map(|r| r.get(0)).collect()))
            })
            .await
            .cloned()
    }

    /// Runs `stmt` in one transaction and (unless [`crate::session::TxEnd::CommitIf`]) one round trip.
    ///
    /// A plain read (no pre-request function, no planned count, committed) takes two statements
    /// instead of four: the GUCs set at session level, then the statement in its own implicit
    /// read-only transaction. Every request sets all of them again (its result is thrown away unless
    /// they were set), so nothing a previous request or a function left on the session reaches it.
    /// Writes keep `BEGIN` … `COMMIT` with `set_config(…, true)`.
    ///
    /// The statement runs under the role's statement timeout; if the request is dropped first, the
    /// statement is cancelled and the connection closed (see [`Lease`]), as it is when the connection
    /// broke under the request.
    pub async fn run(
        &self,
        project_ref: &str,
        db: &DbConfig,
        ctx: &TxContext<'_>,
        stmt: &Statement,
    ) -> Result<Outcome, RestError> {
        let (pool, _) = self.entry(project_ref, db);
        let client = Lease::new(
            self.pools
                .checkout(&pool)
                .await
                .map_err(|e| RestError::Unavailable(e.to_string()))?,
            &db.tls,
        );
        let started = Instant::now();
        let result = Self::run_on(&client, ctx, stmt)
            .await
            .map_err(|e| e.with_timeout_hint(ctx.statement_timeout));
        let took = started.elapsed();
        if took >= SLOW_STATEMENT {
            log_slow(project_ref, ctx, took, result.is_ok());
        }
        client.release(matches!(result, Err(RestError::Unavailable(_))));
        result
    }
}

/// The `rest::slow` line of a statement that took `took`.
fn log_slow(project_ref: &str, ctx: &TxContext<'_>, took: Duration, ok: bool) {
    tracing::warn!(
        target: "rest::slow",
        request_id = request_id(ctx.headers).unwrap_or("-"),
        project = project_ref,
        role = ctx.role.as_str(),
        method = ctx.method,
        duration_ms = took.as_millis() as u64,
        ok,
        "slow statement"
    );
}

/// The `x-request-id` of the request's headers GUC (a JSON object), when it is an id as the gateway
/// makes or passes them (1–128 characters of `[A-Za-z0-9._:-]`: nothing else reaches the log).
fn request_id(headers_json: &str) -> Option<&str> {
    // the GUC's JSON is written by `service::headers_json`: `"x-request-id":"<value>"` with the value
    // escaped; an id never needs escaping, so the raw text between the quotes is the id
    let start = headers_json.find("\"x-request-id\":\"")? + "\"x-request-id\":\"".len();
    let rest = &headers_json[start..];
    let id = &rest[..rest.find('"')?];
    let valid = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c));
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::request_id;

    #[test]
    fn the_request_id_is_read_from_the_headers_guc_only_when_it_is_an_id() {
        assert_eq!(
            request_id(r#"{"accept":"*/*","x-request-id":"abc-123.x:y","x-other":"1"}"#),
            Some("abc-123.x:y")
        );
        assert_eq!(request_id(r#"{"accept":"*/*"}"#), None);
        // a value that would need escaping, or a forged key inside another header's value
        assert_eq!(request_id(r#"{"x-request-id":"a\"b"}"#), None);
        assert_eq!(request_id(r#"{"x-request-id":"two words"}"#), None);
        assert_eq!(
            request_id(r#"{"x-a":"\"x-request-id\":\"forged\"","x-request-id":"real"}"#),
            Some("real")
        );
        assert_eq!(request_id(r#"{"x-request-id":""}"#), None);
    }
}
