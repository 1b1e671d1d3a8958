//! Running statements: one pool per project (capped, evicted when idle, idle connections closed) with
//! the project's schema cache beside it, and one pipelined round trip per request — `BEGIN`, the GUCs
//! (`set_config`), the optional pre-request function, the statement and `COMMIT` are written together
//! and their replies read together (a plain read needs only the GUCs and the statement, and only the
//! statement when the connection's session already holds the request's GUCs; see [`Pools::run`]).
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
//! ## A connection budget across projects
//! Thousands of projects share a few database servers whose `max_connections` is in the hundreds, so the
//! process keeps a budget of open connections over all its pools: opening one past the budget first
//! closes the idle connections of the least recently used other project. Idle projects therefore give
//! their connections to busy ones instead of the server refusing new sessions.

use crate::error::RestError;
use crate::lease::Lease;
use crate::schema::{SchemaCache, LOAD_SQL, LOAD_SQL_BEFORE_CONFINE};
use crate::session::{
    observed_values, session_values, timeout_setting, SESSION_VALUES, SETUP, SETUP_SESSION,
};
use crate::sql::Statement;
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, ObjectId, Pool, RecyclingMethod};
use postgres_types::{to_sql_checked, Format, IsNull, ToSql, Type};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};
use supactl_common::keys::Role;
use supactl_common::wire::DbConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::AsyncMessage;

/// Prepared statements kept per connection; past this the connection's cache is emptied.
pub const MAX_STATEMENTS: usize = 256;

/// `statement_timeout` of a schema-cache load (catalog queries as the project's login role; a request
/// waits for it, and one abandoned meanwhile cancels it).
const SCHEMA_LOAD_TIMEOUT_MS: u32 = 30_000;

/// A bind parameter sent in text format. Statements are prepared without parameter types, so PostgreSQL
/// infers each from its context exactly as for a quoted literal (`'42'` against an integer column is an
/// integer) and parses the text with that type's input function.
#[derive(Debug)]
struct Text<'a>(&'a str);

impl ToSql for Text<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A request future polled early, to write its messages to the connection ahead of later ones, whose
/// output is kept until asked for. It must keep being polled while the task awaits anything else on the
/// same connection: tokio-postgres delivers each request's replies through a channel of two messages,
/// and a reply nobody reads stops the connection from reading the replies after it.
struct Early<'a, F: Future> {
    fut: Pin<&'a mut F>,
    out: Option<F::Output>,
}

impl<'a, F: Future> Early<'a, F> {
    fn new(fut: Pin<&'a mut F>) -> Self {
        Early { fut, out: None }
    }

    fn poll_now(&mut self, cx: &mut std::task::Context<'_>) {
        if self.out.is_none() {
            if let Poll::Ready(r) = self.fut.as_mut().poll(cx) {
                self.out = Some(r);
            }
        }
    }

    async fn finish(mut self) -> F::Output {
        match self.out.take() {
            Some(r) => r,
            None => self.fut.await,
        }
    }
}

/// Awaits `fut` while polling what `drain` polls (see [`Early`]).
async fn draining<F: Future>(
    fut: F,
    mut drain: impl FnMut(&mut std::task::Context<'_>),
) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        drain(cx);
        fut.as_mut().poll(cx)
    })
    .await
}

/// A column read as its text, whatever its type (`EXPLAIN (FORMAT JSON)` returns `json`, whose binary
/// form is its text).
struct AnyText(String);

impl<'a> postgres_types::FromSql<'a> for AnyText {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<AnyText, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyText(std::str::from_utf8(raw)?.to_string()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The top plan node's row estimate from `EXPLAIN (FORMAT JSON)` output.
fn plan_rows(explain: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(explain).ok()?;
    v.get(0)?
        .get("Plan")?
        .get("Plan Rows")?
        .as_f64()
        .map(|n| n as i64)
}

/// Errors a re-prepared statement may not hit again.
fn stale_statement(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::FEATURE_NOT_SUPPORTED
            || *c == SqlState::DATATYPE_MISMATCH
            || *c == SqlState::UNDEFINED_FUNCTION
            || *c == SqlState::UNDEFINED_COLUMN
            || *c == SqlState::UNDEFINED_TABLE
    )
}

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
}

impl Outcome {
    /// The one row every statement of [`crate::sql`] returns.
    fn from_rows(
        rows: &[tokio_postgres::Row],
        stmt: &Statement,
        planned_total: Option<i64>,
    ) -> Result<Outcome, RestError> {
        let row = rows
            .first()
            .ok_or_else(|| RestError::Unavailable("statement returned no row".into()))?;
        Ok(Outcome {
            body: row.get(0),
            page: row.get(1),
            total: stmt.total(row.get(2), planned_total),
            headers: row.get::<_, Option<String>>(3).filter(|s| !s.is_empty()),
            status: row.get::<_, Option<String>>(4).filter(|s| !s.is_empty()),
            location: row.get(5),
        })
    }
}

/// How the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxEnd {
    Commit,
    Rollback,
    /// Commit only when the statement's row count passes the check; costs a second round trip,
    /// since the decision needs the result.
    CommitIf(RowCheck),
}

/// What a write's row count must satisfy to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCheck {
    /// A singular write (`vnd.pgrst.object`) affects exactly one row.
    pub exactly_one: bool,
    /// `Prefer: handling=strict, max-affected=N`.
    pub at_most: Option<i64>,
}

impl RowCheck {
    pub fn passes(self, rows: i64) -> bool {
        (!self.exactly_one || rows == 1) && self.at_most.is_none_or(|max| rows <= max)
    }
}

/// Everything about the request the transaction needs besides the statement.
#[derive(Debug)]
pub struct TxContext<'a> {
    pub role: Role,
    pub claims: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a str,
    pub cookies: &'a str,
    pub search_path: &'a str,
    /// The role's `statement_timeout` on this project, as [`crate::session::timeout_setting`] writes it.
    pub statement_timeout: &'a str,
    pub read_only: bool,
    /// Statements run after the GUCs are set: the request's time zone, then the pre-request function.
    pub pre_request: Option<String>,
    pub end: TxEnd,
}

/// Per-project state shared with the connections' driver tasks.
#[derive(Default)]
struct ProjectState {
    cache: Mutex<Option<Arc<SchemaCache>>>,
    /// Bumped on every invalidation, so a load that raced with one is not installed.
    generation: AtomicU64,
    live_connections: AtomicUsize,
    load: tokio::sync::Mutex<()>,
    /// What each connection's session is known to hold: a hash, keyed with `hasher`'s random keys so
    /// that request headers cannot be chosen to collide, of the [`session_values`] observed at the end
    /// of its last read. A connection used any other way (a write, a schema load) is forgotten.
    sessions: Mutex<HashMap<ObjectId, u64>>,
    hasher: RandomState,
}

/// Known sessions kept per project before the map is emptied (connections that were closed leave their
/// entries behind; forgetting one only costs its next request the `set_config` statement).
const MAX_KNOWN_SESSIONS: usize = 256;

impl ProjectState {
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.cache.lock().expect("cache lock") = None;
    }

    fn session_hash(&self, values: &[&str; SESSION_VALUES]) -> u64 {
        self.hasher.hash_one(values)
    }

    /// Whether the connection's session already holds the values hashed as `hash`.
    fn session_is(&self, id: ObjectId, hash: u64) -> bool {
        self.sessions.lock().expect("sessions lock").get(&id) == Some(&hash)
    }

    /// Records the hash of what a read left on the connection's session, or forgets it (`None`).
    fn session_left(&self, id: ObjectId, hash: Option<u64>) {
        let mut map = self.sessions.lock().expect("sessions lock");
        match hash {
            Some(h) => {
                if map.len() >= MAX_KNOWN_SESSIONS && !map.contains_key(&id) {
                    map.clear();
                }
                map.insert(id, h);
            }
            None => {
                map.remove(&id);
            }
        }
    }
}

/// Opens connections that `LISTEN pgrst` and report notifications to the project's state, within the
/// process-wide connection budget.
struct ListeningConnect {
    /// TLS as the project's worker was registered.
    tls: supactl_common::pg_tls::Connector,
    state: Weak<ProjectState>,
    shared: Weak<Shared>,
    project: String,
}

/// Counts a connection in its project and in the budget for as long as its driver task lives (the task
/// is aborted when the pool drops the client, so this must be a guard, not code after the loop).
struct OpenGuard {
    state: Weak<ProjectState>,
    shared: Weak<Shared>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(s) = self.state.upgrade() {
            s.live_connections.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(sh) = self.shared.upgrade() {
            sh.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

type ConnectFuture<'a> = Pin<
    Box<
        dyn Future<
                Output = Result<
                    (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                    tokio_postgres::Error,
                >,
            > + Send
            + 'a,
    >,
>;

impl deadpool_postgres::Connect for ListeningConnect {
    fn connect(&self, cfg: &tokio_postgres::Config) -> ConnectFuture<'_> {
        let cfg = cfg.clone();
        let tls = self.tls.clone();
        let state = self.state.clone();
        let shared = self.shared.clone();
        if let Some(sh) = shared.upgrade() {
            if sh.open.load(Ordering::SeqCst) >= sh.max_open {
                sh.shed(&self.project);
            }
        }
        Box::pin(async move {
            let (client, mut conn) = cfg.connect(tls).await?;
            if let Some(s) = state.upgrade() {
                if s.live_connections.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Nobody was listening: a notification may have been missed.
                    s.invalidate();
                }
            }
            if let Some(sh) = shared.upgrade() {
                sh.open.fetch_add(1, Ordering::SeqCst);
            }
            let guard = OpenGuard {
                state: state.clone(),
                shared,
            };
            let task_state = state.clone();
            let task = tokio::spawn(async move {
                let _guard = guard;
                loop {
                    let msg = std::future::poll_fn(|cx| conn.poll_message(cx)).await;
                    match msg {
                        Some(Ok(AsyncMessage::Notification(n))) if n.channel() == "pgrst" => {
                            if let Some(s) = task_state.upgrade() {
                                tracing::debug!(payload = n.payload(), "schema cache reload");
                                s.invalidate();
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "rest connection closed");
                            break;
                        }
                        None => break,
                    }
                }
            });
            client.batch_execute("LISTEN pgrst").await?;
            Ok((client, task))
        })
    }
}

struct Entry {
    pool: Pool,
    db: DbConfig,
    last_used: Instant,
    state: Arc<ProjectState>,
}

/// What the pools and their connections' driver tasks share.
struct Shared {
    map: Mutex<HashMap<String, Entry>>,
    /// `pg_timezone_names`, loaded once from the first project that needs it.
    timezones: tokio::sync::OnceCell<Arc<HashSet<String>>>,
    /// Connections open across every project.
    open: AtomicUsize,
    max_open: usize,
}

impl Shared {
    /// Closes the idle connections of the least recently used project other than `except` that has
    /// any. Soft: when every connection is busy nothing is closed and the new one opens anyway (the
    /// per-project cap still bounds the total).
    fn shed(&self, except: &str) {
        let map = self.map.lock().expect("pools lock");
        let victim = map
            .iter()
            .filter(|(r, e)| r.as_str() != except && e.pool.status().available > 0)
            .min_by_key(|(_, e)| e.last_used);
        if let Some((project, e)) = victim {
            let closed = e.pool.retain(|_, _| false).removed.len();
            tracing::debug!(%project, closed, "connection budget: closed idle connections");
        }
    }
}

/// Per-project pools and schema caches.
pub struct Pools {
    max_size: usize,
    idle: Duration,
    connection_idle: Duration,
    shared: Arc<Shared>,
}

impl Pools {
    /// The two-statement read of [`Pools::run`]: session GUCs (unless `setup_params` is `None`: the
    /// session holds them already), then the statement, pipelined.
    async fn read_on_session(
        client: &deadpool_postgres::Client,
        setup_params: Option<&[&(dyn ToSql + Sync)]>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        role: Role,
    ) -> Result<Vec<tokio_postgres::Row>, RestError> {
        let setup = match setup_params {
            Some(p) => Some((
                client
                    .prepare_cached(SETUP_SESSION)
                    .await
                    .map_err(|e| RestError::from_pg(&e, role))?,
                p,
            )),
            None => None,
        };
        let mut retried = false;
        loop {
            let set_f = pin!(async {
                match &setup {
                    Some((s, p)) => client.query(s, p).await.map(|_| ()),
                    None => Ok(()),
                }
            });
            let mut set = Early::new(set_f);
            // Write the GUCs first, so that a statement new to this connection is parsed after them,
            // as the request's role.
            std::future::poll_fn(|cx| {
                set.poll_now(cx);
                Poll::Ready(())
            })
            .await;
            let prepared = draining(client.prepare_cached(sql), |cx| set.poll_now(cx)).await;
            let set_done = set.finish();
            let main = match prepared {
                Ok(m) => m,
                Err(e) => {
                    set_done.await.map_err(|e| RestError::from_pg(&e, role))?;
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            };
            let (set, result) = tokio::join!(set_done, client.query(&main, params));
            // Never use a result read under GUCs this request did not set.
            set.map_err(|e| RestError::from_pg(&e, role))?;
            match result {
                Ok(rows) => return Ok(rows),
                Err(e) if !retried && stale_statement(&e) => {
                    client.statement_cache.clear();
                    retried = true;
                }
                Err(e) => return Err(RestError::from_pg(&e, role)),
            }
        }
    }

    /// Pools of at most `max_size` connections, dropped (with the schema cache) after `idle` without
    /// use; single connections are closed after `connection_idle` unused, and idle ones of other
    /// projects when `max_open` connections are open in all. A background task that ends with the last
    /// reference does the sweeping.
    pub fn new(
        max_size: usize,
        max_open: usize,
        idle: Duration,
        connection_idle: Duration,
    ) -> Arc<Pools> {
        let pools = Arc::new(Pools {
            max_size,
            idle,
            connection_idle,
            shared: Arc::new(Shared {
                map: Mutex::new(HashMap::new()),
                timezones: tokio::sync::OnceCell::new(),
                open: AtomicUsize::new(0),
                max_open,
            }),
        });
        let weak: Weak<Pools> = Arc::downgrade(&pools);
        tokio::spawn(async move {
            let period = (idle.min(connection_idle) / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(30));
            loop {
                tokio::time::sleep(period).await;
                let Some(p) = weak.upgrade() else { break };
                p.evict_idle();
            }
        });
        pools
    }

    fn evict_idle(&self) {
        let now = Instant::now();
        let mut map = self.shared.map.lock().expect("pools lock");
        map.retain(|project, e| {
            let keep = now.duration_since(e.last_used) < self.idle;
            if !keep {
                tracing::info!(%project, "evicting idle project pool");
            } else {
                let limit = self.connection_idle;
                e.pool.retain(|_, m| m.last_used() < limit);
            }
            keep
        });
    }

    /// Drops a project's pool and cache (deleted or paused project).
    pub fn remove(&self, project_ref: &str) {
        self.shared
            .map
            .lock()
            .expect("pools lock")
            .remove(project_ref);
    }

    /// Number of projects holding a pool.
    pub fn len(&self) -> usize {
        self.shared.map.lock().expect("pools lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections open across every project.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Drops every project's schema cache (tests, admin tooling).
    pub fn invalidate(&self, project_ref: &str) {
        if let Some(e) = self.shared.map.lock().expect("pools lock").get(project_ref) {
            e.state.invalidate();
        }
    }

    fn entry(&self, project_ref: &str, db: &DbConfig) -> (Pool, Arc<ProjectState>) {
        let mut map = self.shared.map.lock().expect("pools lock");
        if let Some(e) = map.get_mut(project_ref) {
            if e.db == *db {
                e.last_used = Instant::now();
                return (e.pool.clone(), e.state.clone());
            }
        }
        let cfg = supactl_common::pg::project_config(db, "supactl-rest");
        let state = Arc::new(ProjectState::default());
        let mgr = Manager::from_connect(
            cfg,
            ListeningConnect {
                tls: supactl_common::pg::connector(&db.tls),
                state: Arc::downgrade(&state),
                shared: Arc::downgrade(&self.shared),
                project: project_ref.to_string(),
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = supactl_common::pg::pool(mgr, self.max_size);
        map.insert(
            project_ref.to_string(),
            Entry {
                pool: pool.clone(),
                db: db.clone(),
                last_used: Instant::now(),
                state: state.clone(),
            },
        );
        (pool, state)
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
            pool.get()
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
        state.session_left(Object::id(client), None);
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
        self.shared
            .timezones
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

    /// Runs `stmt` in one transaction and (unless [`TxEnd::CommitIf`]) one round trip.
    ///
    /// A plain read (no pre-request function, no planned count, committed) takes two statements
    /// instead of four: the GUCs set at session level, then the statement in its own implicit
    /// read-only transaction. That is safe because a statement only runs on a session holding exactly
    /// the request's GUCs: either they are set just before it (and its result is thrown away unless
    /// they were), or the connection's previous statement read them back and they already matched, in
    /// which case the `set_config` statement is skipped. Writes keep `BEGIN` … `COMMIT` with
    /// `set_config(…, true)`.
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
        let (pool, state) = self.entry(project_ref, db);
        let client = Lease::new(
            pool.get()
                .await
                .map_err(|e| RestError::Unavailable(e.to_string()))?,
            &db.tls,
        );
        let result = Self::run_on(&client, &state, ctx, stmt)
            .await
            .map_err(|e| e.with_timeout_hint(ctx.statement_timeout));
        client.release(matches!(result, Err(RestError::Unavailable(_))));
        result
    }

    async fn run_on(
        client: &Object,
        state: &ProjectState,
        ctx: &TxContext<'_>,
        stmt: &Statement,
    ) -> Result<Outcome, RestError> {
        let role = ctx.role;
        if client.statement_cache.size() > MAX_STATEMENTS {
            client.statement_cache.clear();
        }
        let params: Vec<Text> = stmt.params.iter().map(|p| Text(p)).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let setup_values = [
            Text(role.as_str()),
            Text(ctx.claims),
            Text(ctx.method),
            Text(ctx.path),
            Text(ctx.headers),
            Text(ctx.cookies),
            Text(ctx.search_path),
            Text(ctx.statement_timeout),
        ];
        let setup_params: Vec<&(dyn ToSql + Sync)> = setup_values
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        // Explicit either way: a read may have left `default_transaction_read_only` on the session.
        let begin = if ctx.read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN READ WRITE"
        };
        let end = match ctx.end {
            TxEnd::Rollback => "ROLLBACK",
            _ => "COMMIT",
        };
        let plain_read = ctx.read_only
            && ctx.pre_request.is_none()
            && ctx.end == TxEnd::Commit
            && stmt.explain.is_none();
        let id = Object::id(client);
        if plain_read {
            // Most requests on a connection repeat the previous one's GUCs (the same caller, whose
            // minted token changes once a second): then the statement goes alone.
            let wanted = session_values(ctx);
            let wanted_hash = state.session_hash(&wanted);
            let setup = (!state.session_is(id, wanted_hash)).then_some(&setup_params[..]);
            let rows = Self::read_on_session(client, setup, &stmt.sql, &params, role).await;
            let rows = rows.inspect_err(|_| state.session_left(id, None))?;
            // Read back at the end of the statement, so a function that changed a GUC is seen. (One
            // that changes a GUC for the session and then back for the transaction only is not; that
            // takes the project's own code written to defeat the check.)
            let left = rows.first().and_then(observed_values);
            state.session_left(id, (left == Some(wanted)).then_some(wanted_hash));
            return Outcome::from_rows(&rows, stmt, None);
        }
        // Transaction-local GUCs: what the session holds afterwards is not observed.
        state.session_left(id, None);
        let setup = client
            .prepare_cached(SETUP)
            .await
            .map_err(|e| RestError::from_pg(&e, role))?;
        let mut retried = false;
        let mut planned_total = None;
        let rows = loop {
            let begin_f = client.batch_execute(begin);
            let set_f = client.query(&setup, &setup_params);
            let pre_f = async {
                match &ctx.pre_request {
                    Some(sql) => client.batch_execute(sql).await,
                    None => Ok(()),
                }
            };
            let (begin_f, set_f, pre_f) = (pin!(begin_f), pin!(set_f), pin!(pre_f));
            let (mut begin_e, mut set_e, mut pre_e) =
                (Early::new(begin_f), Early::new(set_f), Early::new(pre_f));
            let mut drain = |cx: &mut std::task::Context<'_>| {
                begin_e.poll_now(cx);
                set_e.poll_now(cx);
                pre_e.poll_now(cx);
            };
            // One poll each writes BEGIN, the GUCs and the pre-request call to the connection...
            std::future::poll_fn(|cx| {
                drain(cx);
                Poll::Ready(())
            })
            .await;
            // ...so that a statement not yet prepared on this connection is parsed inside the
            // transaction, as the request's role (which may use schemas the login role cannot). A
            // statement already prepared costs nothing here, and the whole request stays one round
            // trip; a new one costs one more, once per connection.
            let prepared = draining(client.prepare_cached(&stmt.sql), &mut drain).await;
            let explain = match &stmt.explain {
                Some(sql) => Some(draining(client.prepare_cached(sql), &mut drain).await),
                None => None,
            };
            let (prepared, explain) = match explain {
                Some(Err(e)) => (Err(e), None),
                Some(Ok(x)) => (prepared, Some(x)),
                None => (prepared, None),
            };
            let begin_done = begin_e.finish();
            let set_done = async { set_e.finish().await.map(|_| ()) };
            let pre_done = pre_e.finish();
            let main = match prepared {
                Ok(m) => m,
                Err(e) => {
                    let (b, st, p) = tokio::join!(begin_done, set_done, pre_done);
                    let _ = client.batch_execute("ROLLBACK").await;
                    // An earlier failure (the pre-request function, say) is the one to report.
                    if let Err(first) = b.and(st).and(p) {
                        return Err(RestError::from_pg(&first, role));
                    }
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            };
            let finish = async {
                if matches!(ctx.end, TxEnd::CommitIf(_)) {
                    Ok(())
                } else {
                    client.batch_execute(end).await
                }
            };
            let explained = async {
                match &explain {
                    Some(x) => client
                        .query_one(x, &params)
                        .await
                        .map(|row| plan_rows(&row.get::<_, AnyText>(0).0)),
                    None => Ok(None),
                }
            };
            let (begin, set, pre, planned, result, commit) = tokio::join!(
                begin_done,
                set_done,
                pre_done,
                explained,
                client.query(&main, &params),
                finish,
            );
            let early = begin
                .and(set)
                .and(pre)
                .and(planned.map(|p| planned_total = p));
            if let Err(e) = early {
                if matches!(ctx.end, TxEnd::CommitIf(_)) {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(RestError::from_pg(&e, role));
            }
            match result {
                Ok(rows) => {
                    commit.map_err(|e| RestError::from_pg(&e, role))?;
                    break rows;
                }
                Err(e) => {
                    if matches!(ctx.end, TxEnd::CommitIf(_)) {
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    // A cached statement can go stale when the schema changes under it (a column's
                    // type, say): forget the connection's statements and prepare again, once.
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            }
        };
        let out = Outcome::from_rows(&rows, stmt, planned_total)?;
        if let TxEnd::CommitIf(check) = ctx.end {
            let end = if check.passes(out.page) {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            client
                .batch_execute(end)
                .await
                .map_err(|e| RestError::from_pg(&e, role))?;
        }
        Ok(out)
    }
}
