//! The audit log: every admin mutation (which admin key, what, when, from where, outcome) and every
//! failed admin authentication, listable by admins.
//!
//! Keys are recorded as fingerprints (the first 12 hex digits of their SHA-256), never in clear. Failed
//! authentications come from anyone who can reach the admin port, so their records are rate limited
//! ([`FailedAuthLimiter`]): past a burst, attempts are counted and written as one `suppressed` row
//! standing for all of them, so a flood can neither grow the table nor occupy the platform database
//! faster than the limit allows.

use crate::error::ApiError;
use crate::handler::data;
use crate::TenantManager;
use axum::extract::{ConnectInfo, OriginalUri, Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failed admin authentications recorded one by one per second, per replica, after a burst.
const FAILED_AUTH_PER_SECOND: f64 = 1.0;
const FAILED_AUTH_BURST: f64 = 10.0;
/// Longest path and method kept in a record (both are chosen by the client).
const MAX_PATH: usize = 512;
const MAX_METHOD: usize = 32;

/// Who a request authenticated as, when not by the admin key in its own header (a dashboard session).
#[derive(Clone)]
pub struct Actor(pub String);

/// Which key a request presented, without storing it: `admin-key:` and the first 12 hex digits of its
/// SHA-256, the dashboard session's [`Actor`], or `none`.
fn fingerprint(req: &Request) -> String {
    if let Some(Actor(actor)) = req.extensions().get::<Actor>() {
        return actor.clone();
    }
    match supactl_common::headers::bearer(req.headers()) {
        Some(token) => format!(
            "admin-key:{}",
            &hex::encode(Sha256::digest(token.as_bytes()))[..12]
        ),
        None => "none".to_string(),
    }
}

/// The full path (inside the nested admin router the URI has lost its `/admin/v1` prefix), bounded.
fn full_path(req: &Request) -> String {
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.path())
        .unwrap_or_else(|| req.uri().path());
    path.chars().take(MAX_PATH).collect()
}

/// The peer's address, when the server was started with connect info.
fn client_addr(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
}

/// One row of the audit log.
struct Entry {
    actor: String,
    method: String,
    path: String,
    status: i32,
    outcome: &'static str,
    client_addr: Option<String>,
    attempts: i32,
}

impl Entry {
    fn of(req: &Request, actor: String, status: i32, outcome: &'static str) -> Entry {
        Entry {
            actor,
            method: req.method().as_str().chars().take(MAX_METHOD).collect(),
            path: full_path(req),
            status,
            outcome,
            client_addr: client_addr(req),
            attempts: 1,
        }
    }

    /// Writes the row; a failure is logged (the request's answer does not depend on it).
    async fn write(&self, tm: &TenantManager) {
        let write = async {
            let c = tm.store.client().await?;
            c.execute(
                "INSERT INTO supactl.audit_log (actor, method, path, status, outcome, client_addr, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&self.actor, &self.method, &self.path, &self.status, &self.outcome, &self.client_addr, &self.attempts],
            )
            .await?;
            Ok::<_, ApiError>(())
        };
        if let Err(e) = write.await {
            tracing::error!(error = %e, path = %self.path, "cannot write the audit log");
        }
    }
}

/// Middleware: records every request that is not a read, after it ran.
pub async fn record(State(tm): State<Arc<TenantManager>>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let mut entry = Entry::of(&req, fingerprint(&req), 0, "success");
    let res = next.run(req).await;
    entry.status = i32::from(res.status().as_u16());
    if !res.status().is_success() {
        entry.outcome = "failure";
    }
    entry.write(&tm).await;
    res
}

/// Records a request refused for a missing or wrong admin key (any method), within the rate limit.
/// (What it needs of the request is read before the returned future, which holds no borrow of it.)
pub fn unauthorized(
    tm: &Arc<TenantManager>,
    req: &Request,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let entry = match tm.failed_auth.admit(Instant::now()) {
        Admit::Record => Some(Entry::of(req, fingerprint(req), 401, "unauthorized")),
        Admit::Suppress { first } => {
            if first {
                tracing::warn!(
                    "failed admin authentications arrive faster than the audit log records them; \
                     counting the rest in one summary record"
                );
                tokio::spawn(write_summary(tm.clone()));
            }
            None
        }
    };
    let tm = tm.clone();
    async move {
        if let Some(entry) = entry {
            entry.write(&tm).await;
        }
    }
}

/// Records a dashboard sign-in by the admin key whose fingerprint is `actor` (what it needs of the
/// request is read before the returned future, as in [`unauthorized`]).
pub fn sign_in(
    tm: &Arc<TenantManager>,
    req: &Request,
    actor: String,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let entry = Entry::of(req, format!("dashboard:{actor}"), 200, "success");
    let tm = tm.clone();
    async move { entry.write(&tm).await }
}

/// Waits for the rate limit to allow one more record, then writes the summary of the suppressed
/// attempts.
async fn write_summary(tm: Arc<TenantManager>) {
    let attempts = loop {
        tokio::time::sleep(Duration::from_secs_f64(1.0 / FAILED_AUTH_PER_SECOND)).await;
        if let Some(n) = tm.failed_auth.take_summary(Instant::now()) {
            break n;
        }
    };
    tracing::warn!(
        attempts,
        "failed admin authentications were not recorded one by one (rate limit)"
    );
    Entry {
        actor: "unrecorded".into(),
        method: "-".into(),
        path: "-".into(),
        status: 401,
        outcome: "suppressed",
        client_addr: None,
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
    }
    .write(&tm)
    .await
}

/// What to do with one failed authentication.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Record,
    /// Counted for the summary; `first` when it starts a new summary (whose writer must be started).
    Suppress {
        first: bool,
    },
}

/// A token bucket over the records of failed admin authentications, plus the count of those it
/// suppressed. While a summary is pending every attempt is suppressed, so the summary gets the next
/// token: under a sustained flood the table grows by one row per second.
pub struct FailedAuthLimiter {
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
    summary_pending: bool,
}

impl FailedAuthLimiter {
    pub fn new(now: Instant) -> FailedAuthLimiter {
        FailedAuthLimiter {
            state: Mutex::new(Bucket {
                tokens: FAILED_AUTH_BURST,
                at: now,
                suppressed: 0,
                summary_pending: false,
            }),
        }
    }

    fn admit(&self, now: Instant) -> Admit {
        let mut b = self.state.lock().expect("limiter lock");
        b.refill(now);
        if !b.summary_pending && b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Admit::Record;
        }
        b.suppressed += 1;
        let first = !b.summary_pending;
        b.summary_pending = true;
        Admit::Suppress { first }
    }

    /// The number of suppressed attempts to write as a summary, when a token is there for it.
    fn take_summary(&self, now: Instant) -> Option<u64> {
        let mut b = self.state.lock().expect("limiter lock");
        b.refill(now);
        if b.tokens < 1.0 {
            return None;
        }
        b.tokens -= 1.0;
        b.summary_pending = false;
        Some(std::mem::take(&mut b.suppressed))
    }
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * FAILED_AUTH_PER_SECOND).min(FAILED_AUTH_BURST);
        self.at = now;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<i64>,
    before_id: Option<i64>,
}

/// Newest first; page with `before_id`.
pub async fn list(
    State(tm): State<Arc<TenantManager>>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit: must be between 1 and 1000".into(),
        ));
    }
    let c = tm.store.client().await?;
    let rows = c
        .query(
            "SELECT id, to_json(at) #>> '{}', actor, method, path, status, outcome, client_addr, attempts
             FROM supactl.audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            &[&q.before_id, &limit],
        )
        .await?;
    Ok(data(Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "id": r.get::<_, i64>(0), "at": r.get::<_, String>(1), "actor": r.get::<_, String>(2),
                    "method": r.get::<_, String>(3), "path": r.get::<_, String>(4),
                    "status": r.get::<_, i32>(5), "outcome": r.get::<_, String>(6),
                    "client_addr": r.get::<_, Option<String>>(7), "attempts": r.get::<_, i32>(8),
                })
            })
            .collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_recorded_then_one_summary_per_token() {
        let t0 = Instant::now();
        let l = FailedAuthLimiter::new(t0);
        for _ in 0..FAILED_AUTH_BURST as usize {
            assert_eq!(l.admit(t0), Admit::Record);
        }
        assert_eq!(l.admit(t0), Admit::Suppress { first: true });
        assert_eq!(l.admit(t0), Admit::Suppress { first: false });
        assert_eq!(l.take_summary(t0), None, "no token yet");
        // A second later one token is back: the pending summary takes it, not a new attempt.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.admit(t1), Admit::Suppress { first: false });
        assert_eq!(l.take_summary(t1), Some(3));
        assert_eq!(l.take_summary(t1), None);
        // The flood goes on: each further second yields at most one row.
        assert_eq!(l.admit(t1), Admit::Suppress { first: true });
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(l.take_summary(t2), Some(1));
        // Once the flood stops, the bucket fills up to the burst again, no further.
        let t3 = t2 + Duration::from_secs(3600);
        for _ in 0..FAILED_AUTH_BURST as usize {
            assert_eq!(l.admit(t3), Admit::Record);
        }
        assert_eq!(l.admit(t3), Admit::Suppress { first: true });
    }
}
