//! The supervisor: which worker serves an invocation, and the workers' lifecycle.
//!
//! - One worker per (project, slug), running the function's current version under the project's current
//!   environment; it starts on the first invocation and serves every concurrent one (Deno's event loop).
//! - A worker of an older version or environment revision is replaced on the next invocation (it stops once
//!   the requests it is serving end); one that exited (crash, heap limit) is replaced the same way.
//! - At most `max_workers_per_project` per project and `max_workers` in all: a new worker takes the place of
//!   the least recently used idle one when needed, and is refused (503 `worker_limit`) when none is idle.
//! - Idle workers stop after `idle_timeout`; every invocation ends at `request_timeout`, response body
//!   included, and a worker whose invocation timed out is stopped (it may be stuck in a loop).

use crate::body::Streamed;
use crate::config::{ConfigError, SupervisorConfig};
use crate::error::InvokeError;
use crate::logs::{FunctionKey, LogRecord, Logs};
use crate::store::{FunctionMeta, FunctionStore};
use crate::worker::{Busy, Exit, Spec, StartError, Worker};
use axum::body::Body;
use http::header::{self, HeaderName};
use http::{HeaderValue, Request, Response};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use supactl_common::headers::{hop_by_hop, remove_where};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The header that tells the bootstrap (and the function) which invocation a request is.
const INVOCATION_HEADER: HeaderName = HeaderName::from_static("x-supactl-invocation");
/// How often idle workers are looked for, at most.
const SWEEP_PERIOD: Duration = Duration::from_secs(5);

/// Who is invoking, as the gateway established it (a request extension of [`crate::router`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The project the request was authenticated for.
    pub project_ref: String,
    /// Whether it carried a valid JWT of that project (a user's token, or the JWT minted from an API key);
    /// a function deployed with `verify_jwt` refuses the request otherwise.
    pub jwt_verified: bool,
}

/// Owns every worker; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    config: SupervisorConfig,
    store: Arc<dyn FunctionStore>,
    logs: Arc<Logs>,
    live: Mutex<HashMap<FunctionKey, Arc<Worker>>>,
    /// One start at a time per function.
    starting: Mutex<HashMap<FunctionKey, Arc<tokio::sync::Mutex<()>>>>,
    total: Arc<Semaphore>,
    per_project: Mutex<HashMap<String, Arc<Semaphore>>>,
    next_invocation: AtomicU64,
}

impl Supervisor {
    /// Validates `config`, removes what a previous supervisor of the same work dir left behind (its workers
    /// stopped with it: they exit when the supervisor's end of their stdin closes), and starts the idle
    /// sweeper (on the current Tokio runtime; it ends when the last clone of the supervisor is dropped, which
    /// also stops every worker). One supervisor per work dir.
    pub fn new(
        config: SupervisorConfig,
        store: Arc<dyn FunctionStore>,
    ) -> Result<Supervisor, ConfigError> {
        config.validate()?;
        for leftover in ["workers", "checks"] {
            let dir = config.work_dir.join(leftover);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not clear a previous run's files");
                }
            }
        }
        let inner = Arc::new(Inner {
            logs: Arc::new(Logs::new(config.log_capacity)),
            total: Arc::new(Semaphore::new(config.max_workers)),
            config,
            store,
            live: Mutex::default(),
            starting: Mutex::default(),
            per_project: Mutex::default(),
            next_invocation: AtomicU64::new(1),
        });
        tokio::spawn(sweep(Arc::downgrade(&inner)));
        Ok(Supervisor { inner })
    }

    /// The function's log records, oldest first.
    pub fn logs(&self, project: &str, slug: &str) -> Vec<crate::LogRecord> {
        self.inner.logs.get(project, slug)
    }

    /// How many workers are running.
    pub fn workers(&self) -> usize {
        self.inner.live.lock().expect("live lock").len()
    }

    /// Stops every worker of a project now (its secrets changed, or it was paused or deleted).
    pub fn stop_project(&self, project: &str) {
        let mut live = self.inner.live.lock().expect("live lock");
        live.retain(|(p, _), w| {
            if p == project {
                w.retire();
            }
            p != project
        });
    }

    /// Stops every worker.
    pub fn shutdown(&self) {
        let mut live = self.inner.live.lock().expect("live lock");
        for w in live.values() {
            w.retire();
        }
        live.clear();
    }

    /// Runs one invocation of `slug` (the first segment of the request's path) for `caller`.
    pub async fn invoke(
        &self,
        caller: &Caller,
        slug: &str,
        req: Request<Body>,
    ) -> Result<Response<Body>, InvokeError> {
        let inner = &self.inner;
        let project = caller.project_ref.as_str();
        let meta = inner
            .store
            .function(project, slug)
            .await
            .map_err(|e| {
                tracing::warn!(project, slug, error = %e, "function store failed");
                InvokeError::Store
            })?
            .ok_or_else(|| InvokeError::NotFound(slug.into()))?;
        if meta.verify_jwt && !caller.jwt_verified {
            return Err(InvokeError::JwtRequired);
        }
        let key: FunctionKey = (project.to_string(), slug.to_string());
        let busy = inner.worker(&key, meta).await?;
        let id = inner.next_invocation.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + inner.config.request_timeout;
        let sent = tokio::time::timeout_at(deadline, busy.worker().send(upstream(req, id))).await;
        let outcome = match sent {
            Ok(Ok(res)) => Ok(downstream(res, deadline, busy)),
            Ok(Err(e)) => Err(inner.failed(&key, busy, &e.to_string()).await),
            Err(_) => {
                inner.replace(&key, busy.worker());
                Err(InvokeError::Timeout(inner.config.request_timeout))
            }
        };
        inner.record(&key, id, started, &outcome);
        outcome
    }
}

impl Inner {
    /// The worker for `key` at `meta`'s version, started if need be, marked busy.
    async fn worker(&self, key: &FunctionKey, meta: FunctionMeta) -> Result<Busy, InvokeError> {
        if let Some(busy) = self.pick(key, meta) {
            return Ok(busy);
        }
        let lock = self
            .starting
            .lock()
            .expect("starting lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let _starting = lock.lock().await;
        if let Some(busy) = self.pick(key, meta) {
            return Ok(busy);
        }
        let stale = self.live.lock().expect("live lock").remove(key);
        if let Some(old) = stale {
            drain(old, self.config.request_timeout);
        }
        let permits = self.reserve(&key.0)?;
        let store = |e| {
            tracing::warn!(project = key.0, slug = key.1, error = %e, "function store failed");
            InvokeError::Store
        };
        let bundle = self
            .store
            .bundle(&key.0, &key.1, meta.version)
            .await
            .map_err(store)?;
        let env = self.store.environment(&key.0).await.map_err(store)?;
        let spec = Spec {
            key: key.clone(),
            version: meta.version,
            env_revision: meta.env_revision,
            bundle,
            env: &env,
            permits,
        };
        let worker = Worker::start(&self.config, spec, self.logs.clone())
            .await
            .map_err(|e| self.boot_failed(key, e))?;
        let worker = Arc::new(worker);
        let busy = worker.begin();
        self.live
            .lock()
            .expect("live lock")
            .insert(key.clone(), worker);
        Ok(busy)
    }

    /// A running worker of the right version, marked busy under the lock that eviction takes.
    fn pick(&self, key: &FunctionKey, meta: FunctionMeta) -> Option<Busy> {
        let live = self.live.lock().expect("live lock");
        let w = live.get(key)?;
        (w.version == meta.version && w.env_revision == meta.env_revision && w.alive())
            .then(|| w.begin())
    }

    fn boot_failed(&self, key: &FunctionKey, e: StartError) -> InvokeError {
        tracing::info!(project = key.0, slug = key.1, error = %e, "function failed to start");
        self.logs
            .push(key, LogRecord::new(None, "worker", &e.to_string()));
        match e {
            StartError::Exited(Exit::OutOfMemory) => InvokeError::OutOfMemory,
            StartError::Io(_) => InvokeError::Internal,
            _ => InvokeError::Boot,
        }
    }

    /// Capacity for one more worker of `project`, evicting idle workers when at a limit.
    fn reserve(&self, project: &str) -> Result<Vec<OwnedSemaphorePermit>, InvokeError> {
        let sem = self
            .per_project
            .lock()
            .expect("per-project lock")
            .entry(project.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_workers_per_project)))
            .clone();
        let mine = self.acquire(&sem, Some(project))?;
        let all = self.acquire(&self.total, None)?;
        Ok(vec![mine, all])
    }

    fn acquire(
        &self,
        sem: &Arc<Semaphore>,
        project: Option<&str>,
    ) -> Result<OwnedSemaphorePermit, InvokeError> {
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.evict_lru(project) {
            if let Ok(p) = sem.clone().try_acquire_owned() {
                return Ok(p);
            }
        }
        Err(InvokeError::Capacity)
    }

    /// Stops the least recently used idle worker (of `project`, or of any); false when none is idle.
    fn evict_lru(&self, project: Option<&str>) -> bool {
        let mut live = self.live.lock().expect("live lock");
        let lru = live
            .iter()
            .filter(|((p, _), _)| project.is_none_or(|want| p == want))
            .filter_map(|(k, w)| Some((w.idle_since()?, k.clone())))
            .min();
        let Some((_, key)) = lru else { return false };
        if let Some(w) = live.remove(&key) {
            w.retire();
        }
        true
    }

    /// Replaces the worker of `key` if it is still `worker`: stops it now.
    fn replace(&self, key: &FunctionKey, worker: &Arc<Worker>) {
        let mut live = self.live.lock().expect("live lock");
        if live.get(key).is_some_and(|w| Arc::ptr_eq(w, worker)) {
            live.remove(key);
        }
        worker.retire();
    }

    /// The invocation could not reach the function or its answer broke off: say why, replace the worker.
    async fn failed(&self, key: &FunctionKey, busy: Busy, why: &str) -> InvokeError {
        let worker = busy.worker().clone();
        drop(busy);
        let exit = worker.exited().await;
        tracing::info!(
            project = key.0,
            slug = key.1,
            ?exit,
            error = why,
            "invocation failed"
        );
        self.replace(key, &worker);
        match exit {
            Some(Exit::OutOfMemory) => InvokeError::OutOfMemory,
            _ => InvokeError::Crashed,
        }
    }

    fn record(
        &self,
        key: &FunctionKey,
        id: u64,
        started: Instant,
        outcome: &Result<Response<Body>, InvokeError>,
    ) {
        let (status, message) = match outcome {
            Ok(res) => (res.status().as_u16(), "ok".to_string()),
            Err(e) => (e.status().as_u16(), e.code().to_string()),
        };
        let mut rec = LogRecord::new(Some(id), "invocation", &message);
        rec.status = Some(status);
        rec.duration_ms = Some(started.elapsed().as_millis() as u64);
        self.logs.push(key, rec);
    }
}

/// Lets a replaced worker finish what it serves (bounded by the invocation limit), then stops it. Its
/// capacity goes to its successor at once, so a redeploy under load is served at a project's limit too (the
/// draining worker is then one over the limit, for at most the invocation limit).
fn drain(old: Arc<Worker>, limit: Duration) {
    if old.idle_since().is_some() || !old.alive() {
        return old.retire();
    }
    old.release_capacity();
    tokio::spawn(async move {
        let until = Instant::now() + limit;
        while old.idle_since().is_none() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        old.retire();
    });
}

/// Stops idle and exited workers, while the supervisor lives.
async fn sweep(inner: Weak<Inner>) {
    loop {
        let period = match inner.upgrade() {
            Some(i) => (i.config.idle_timeout / 2).min(SWEEP_PERIOD),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let idle_timeout = inner.config.idle_timeout;
        let mut live = inner.live.lock().expect("live lock");
        live.retain(|_, w| {
            let keep = w.alive() && w.idle_since().is_none_or(|t| t.elapsed() < idle_timeout);
            if !keep {
                w.retire();
            }
            keep
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for w in self.live.get_mut().expect("live lock").values() {
            w.retire();
        }
    }
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
/// The request as the worker gets it: same method, path, query, headers and (streamed) body, plus the
/// invocation id (`x-supactl-invocation`, also on the function's log records). The target is in absolute
/// form, `http://<Host><path>`, which Deno takes as the request's URL (instead of the socket's
/// `http+unix:` one), so the bootstrap hands the request on untouched.
fn upstream(req: Request<Body>, id: u64) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    remove_where(&mut parts.headers, hop_by_hop);
    parts
        .headers
        .insert(INVOCATION_HEADER, HeaderValue::from(id));
    let path = parts.uri.path_and_query().cloned();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let absolute = |authority: &str| {
        let mut uri = http::Uri::builder().scheme("http").authority(authority);
        if let Some(p) = &path {
            uri = uri.path_and_query(p.clone());
        }
        uri.build().ok()
    };
    parts.uri = host
        .and_then(absolute)
        .or_else(|| absolute("localhost"))
        .expect("a path and query from a parsed URI build an absolute URI");
    parts.version = http::Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    Request::from_parts(parts, body)
}

/// The function's response as the client gets it: status, headers and body as they are.
fn downstream(
    res: Response<hyper::body::Incoming>,
    deadline: tokio::time::Instant,
    busy: Busy,
) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    remove_where(&mut parts.headers, hop_by_hop);
    Response::from_parts(parts, Body::new(Streamed::new(body, deadline, busy)))
}
