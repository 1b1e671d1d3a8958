//! The per-project connection registry every data-plane service takes its database connections from.
//!
//! A service (REST, auth, and realtime or functions when they come) opens [`Pools`] on the process's
//! one [`Registry`]: each project gets a pool of the service's own connections (its
//! `application_name`, its session options), opened as the project's login role from its
//! [`DbConfig`] over the TLS its worker was registered with ([`crate::pg`]), capped per project,
//! dropped after the service's idle timeout without use, its single connections closed after their
//! own idle timeout.
//!
//! ## A connection budget across projects and services
//! Thousands of projects share a few database servers whose `max_connections` is in the hundreds, so
//! the registry keeps one budget of open connections over every pool of every service: opening one
//! past the budget first closes the idle connections of the least recently used other pool. Idle
//! projects therefore give their connections to busy ones instead of the server refusing new sessions.
//!
//! ## Per-project state and notifications
//! A service may keep state beside each project's pool ([`ProjectHooks`]; REST keeps its schema cache
//! there), dropped with the pool. Every connection's driver task reads the server's messages: with
//! [`ProjectHooks::LISTEN`] set, each connection runs `LISTEN` on that channel when it opens and its
//! notifications reach [`ProjectHooks::notified`], which costs no extra connection.
//!
//! ## Metrics
//! Every registry's pools are read into the process's metrics at each scrape (busy, idle and waiting
//! per service, open connections and the budget), and [`Pools::checkout`] measures the wait for a
//! connection and counts the failures ([`crate::metrics::backends`]).
//!
//! ## Lost connections
//! A connection whose session is lost ([`crate::pg::session_lost`]) must not be reused: close it
//! ([`deadpool_postgres::Object::take`]), or drop the project's pool with [`Pools::remove`] when the
//! server probably dropped them all (a restart, an operator clearing connections).

use crate::metrics::backends::PoolSample;
use crate::wire::DbConfig;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use prometheus_client::metrics::histogram::Histogram;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio_postgres::AsyncMessage;

/// What a service keeps beside each project's pool, told about its connections.
pub trait ProjectHooks: Default + Send + Sync + 'static {
    /// The channel every connection `LISTEN`s on when it opens, if any.
    const LISTEN: Option<&'static str> = None;

    /// A connection opened; `first` when none of the project's connections of this service was open
    /// (a notification may have been missed meanwhile).
    fn opened(&self, _first: bool) {}

    /// A notification on [`Self::LISTEN`] arrived on one of the project's connections.
    fn notified(&self, _payload: &str) {}
}

impl ProjectHooks for () {}

/// How one service's pools are made.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// `application_name` of its connections (what `pg_stat_activity` shows).
    pub application_name: &'static str,
    /// Session options sent when a connection opens (`-c name=value …`), if any.
    pub options: Option<String>,
    /// Connections per project pool.
    pub pool_size: usize,
    /// A project's pool (and its state) is dropped after this long without use.
    pub idle_timeout: Duration,
    /// A pooled connection is closed after this long unused.
    pub connection_idle_timeout: Duration,
}

/// One project's pool of one service.
struct Entry {
    pool: Pool,
    db: DbConfig,
    last_used: Instant,
    idle: Duration,
    connection_idle: Duration,
    /// An `Arc<Project<S>>` of the service's [`ProjectHooks`].
    project: Arc<dyn Any + Send + Sync>,
}

/// A project's hooks and its count of open connections.
struct Project<S> {
    hooks: Arc<S>,
    live: AtomicUsize,
}

/// (service, project ref).
type Key = (&'static str, String);

/// What the registry's handles, its sweeper and the connections' driver tasks share.
struct Shared {
    map: Mutex<HashMap<Key, Entry>>,
    /// Connections open across every project and service.
    open: AtomicUsize,
    max_open: usize,
    /// How often the sweeper runs, in milliseconds (a quarter of the shortest idle timeout).
    sweep_ms: AtomicU64,
    sweeper: AtomicBool,
}

impl Shared {
    /// Closes the idle connections of the least recently used pool other than `except` that has any.
    /// Soft: when every connection is busy nothing is closed and the new one opens anyway (the
    /// per-project caps still bound the total).
    fn shed(&self, except: &Key) {
        let map = self.map.lock().expect("pools lock");
        let victim = map
            .iter()
            .filter(|(k, e)| *k != except && e.pool.status().available > 0)
            .min_by_key(|(_, e)| e.last_used);
        if let Some(((service, project), e)) = victim {
            let closed = e.pool.retain(|_, _| false).removed.len();
            tracing::debug!(%project, service, closed, "connection budget: closed idle connections");
        }
    }

    /// The pools' usage by service (for the metrics), the open connections and the budget.
    fn sample(&self) -> (BTreeMap<String, PoolSample>, i64, i64) {
        let map = self.map.lock().expect("pools lock");
        let mut by_service: BTreeMap<String, PoolSample> = BTreeMap::new();
        for ((service, _), e) in map.iter() {
            let st = e.pool.status();
            let s = by_service.entry(metric_service(service)).or_default();
            s.projects += 1;
            s.idle += st.available as i64;
            s.busy += st.size.saturating_sub(st.available) as i64;
            s.waiting += st.waiting as i64;
        }
        let open = self.open.load(Ordering::SeqCst) as i64;
        (by_service, open, self.max_open as i64)
    }

    fn evict_idle(&self) {
        let now = Instant::now();
        let mut map = self.map.lock().expect("pools lock");
        map.retain(|(service, project), e| {
            let keep = now.duration_since(e.last_used) < e.idle;
            if !keep {
                tracing::info!(%project, service, "evicting idle project pool");
            } else {
                let limit = e.connection_idle;
                e.pool.retain(|_, m| m.last_used() < limit);
            }
            keep
        });
    }
}

/// The process's connection budget and every service's per-project pools (cheap to clone).
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("max_open", &self.shared.max_open)
            .field("open", &self.open_connections())
            .finish()
    }
}

impl Registry {
    /// A registry that keeps at most about `max_open` connections open across every pool (see the
    /// module's docs). Its sweeper task starts with the first pool and ends with the last handle.
    pub fn new(max_open: usize) -> Registry {
        let shared = Arc::new(Shared {
            map: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            max_open,
            sweep_ms: AtomicU64::new(30_000),
            sweeper: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&shared);
        crate::metrics::metrics()
            .backends
            .add_pool_source(Box::new(move || weak.upgrade().map(|s| s.sample())));
        Registry { shared }
    }

    /// Connections open across every project and service.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// The pools of one service, with `S` kept beside each project's pool.
    pub fn service<S: ProjectHooks>(&self, spec: ServiceSpec) -> Pools<S> {
        let period = (spec.idle_timeout.min(spec.connection_idle_timeout) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        self.shared
            .sweep_ms
            .fetch_min(period.as_millis() as u64, Ordering::SeqCst);
        let wait = crate::metrics::metrics()
            .backends
            .pool_wait(&metric_service(spec.application_name));
        Pools {
            registry: self.clone(),
            spec,
            wait,
            hooks: PhantomData,
        }
    }

    /// Starts the sweeper once (from within the runtime, at the first pool).
    fn start_sweeper(&self) {
        if self.shared.sweeper.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            loop {
                let ms = match weak.upgrade() {
                    Some(s) => s.sweep_ms.load(Ordering::SeqCst),
                    None => break,
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let Some(shared) = weak.upgrade() else { break };
                shared.evict_idle();
            }
        });
    }
}

/// The `service` label of an `application_name` (`supactl-rest` → `rest`).
fn metric_service(application_name: &str) -> String {
    application_name
        .strip_prefix("supactl-")
        .unwrap_or(application_name)
        .to_string()
}

/// One service's per-project pools in a [`Registry`].
pub struct Pools<S: ProjectHooks = ()> {
    registry: Registry,
    spec: ServiceSpec,
    /// `supactl_db_pool_wait_seconds` of this service.
    wait: Histogram,
    hooks: PhantomData<fn() -> S>,
}

impl<S: ProjectHooks> Pools<S> {
    fn key(&self, project_ref: &str) -> Key {
        (self.spec.application_name, project_ref.to_string())
    }

    /// The project's pool and state, made on first use and again when `db` changed (new credentials
    /// or worker).
    pub fn get(&self, project_ref: &str, db: &DbConfig) -> (Pool, Arc<S>) {
        let key = self.key(project_ref);
        let mut map = self.registry.shared.map.lock().expect("pools lock");
        if let Some(e) = map.get_mut(&key) {
            if e.db == *db {
                if let Ok(p) = e.project.clone().downcast::<Project<S>>() {
                    e.last_used = Instant::now();
                    return (e.pool.clone(), p.hooks.clone());
                }
            }
        }
        self.registry.start_sweeper();
        let mut cfg = crate::pg::project_config(db, self.spec.application_name);
        if let Some(options) = &self.spec.options {
            cfg.options(options);
        }
        let project = Arc::new(Project {
            hooks: Arc::new(S::default()),
            live: AtomicUsize::new(0),
        });
        let mgr = Manager::from_connect(
            cfg,
            Connector::<S> {
                tls: crate::pg::connector(&db.tls),
                project: Arc::downgrade(&project),
                shared: Arc::downgrade(&self.registry.shared),
                key: key.clone(),
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = crate::pg::pool(mgr, self.spec.pool_size);
        let hooks = project.hooks.clone();
        map.insert(
            key,
            Entry {
                pool: pool.clone(),
                db: db.clone(),
                last_used: Instant::now(),
                idle: self.spec.idle_timeout,
                connection_idle: self.spec.connection_idle_timeout,
                project,
            },
        );
        (pool, hooks)
    }

    /// A connection from `pool` (one of these pools), the wait measured and failures counted
    /// (`supactl_db_pool_wait_seconds`, `supactl_db_pool_errors_total`).
    pub async fn checkout(&self, pool: &Pool) -> Result<Object, PoolError> {
        let started = Instant::now();
        let result = pool.get().await;
        self.wait.observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let kind = match e {
                PoolError::Timeout(_) => "timeout",
                PoolError::Backend(_) | PoolError::PostCreateHook(_) => "connect",
                _ => "closed",
            };
            crate::metrics::metrics()
                .backends
                .pool_error(&metric_service(self.spec.application_name), kind);
        }
        result
    }

    /// The project's state, if it holds a pool.
    pub fn state(&self, project_ref: &str) -> Option<Arc<S>> {
        let map = self.registry.shared.map.lock().expect("pools lock");
        let e = map.get(&self.key(project_ref))?;
        let p = e.project.clone().downcast::<Project<S>>().ok()?;
        Some(p.hooks.clone())
    }

    /// Drops a project's pool and state (deleted or paused project, changed credentials, lost
    /// connections); connections still lent out close when they come back.
    pub fn remove(&self, project_ref: &str) {
        let key = self.key(project_ref);
        self.registry
            .shared
            .map
            .lock()
            .expect("pools lock")
            .remove(&key);
    }

    /// Number of projects holding a pool of this service.
    pub fn len(&self) -> usize {
        let map = self.registry.shared.map.lock().expect("pools lock");
        map.keys()
            .filter(|(s, _)| *s == self.spec.application_name)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registry these pools belong to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Opens a project's connections within the budget; each counts in its project and in the budget
/// while its driver task lives.
struct Connector<S> {
    /// TLS as the project's worker was registered.
    tls: crate::pg_tls::Connector,
    project: Weak<Project<S>>,
    shared: Weak<Shared>,
    key: Key,
}

/// Counts a connection in its project and in the budget for as long as its driver task lives (the
/// task is aborted when the pool drops the client, so this must be a guard, not code after the loop).
struct OpenGuard<S> {
    project: Weak<Project<S>>,
    shared: Weak<Shared>,
}

impl<S> Drop for OpenGuard<S> {
    fn drop(&mut self) {
        if let Some(p) = self.project.upgrade() {
            p.live.fetch_sub(1, Ordering::SeqCst);
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

impl<S: ProjectHooks> deadpool_postgres::Connect for Connector<S> {
    fn connect(&self, cfg: &tokio_postgres::Config) -> ConnectFuture<'_> {
        let cfg = cfg.clone();
        let tls = self.tls.clone();
        let project = self.project.clone();
        let shared = self.shared.clone();
        if let Some(sh) = shared.upgrade() {
            if sh.open.load(Ordering::SeqCst) >= sh.max_open {
                sh.shed(&self.key);
            }
        }
        let service = self.key.0;
        Box::pin(async move {
            let (client, mut conn) = cfg.connect(tls).await?;
            if let Some(p) = project.upgrade() {
                let first = p.live.fetch_add(1, Ordering::SeqCst) == 0;
                p.hooks.opened(first);
            }
            if let Some(sh) = shared.upgrade() {
                sh.open.fetch_add(1, Ordering::SeqCst);
            }
            let guard = OpenGuard {
                project: project.clone(),
                shared,
            };
            let task = tokio::spawn(async move {
                let _guard = guard;
                loop {
                    match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(n)))
                            if Some(n.channel()) == S::LISTEN =>
                        {
                            if let Some(p) = project.upgrade() {
                                p.hooks.notified(n.payload());
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, service, "connection closed");
                            break;
                        }
                        None => break,
                    }
                }
            });
            if let Some(channel) = S::LISTEN {
                client
                    .batch_execute(&format!("LISTEN {}", crate::ident::quote_ident(channel)))
                    .await?;
            }
            Ok((client, task))
        })
    }
}
