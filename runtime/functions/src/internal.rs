//! The functions service's internal listener and its client: what the rest of the platform reads from the
//! runtime, never through the gateway. It listens on a port of its own (on ECS only the tenant-manager's
//! security group reaches it; the gateway forwards `/functions/v1/*` to the invocation port only), so a
//! function's slug can never shadow it and a client can never reach it.
//!
//! - `GET /health` → 200 (the container health check);
//! - `GET /internal/v1/functions/{ref}/{slug}/logs?limit=N` with the service token → this replica's log
//!   records of the function, oldest first, the newest `N` (at most [`MAX_LIMIT`]).
//!
//! [`RemoteLogs`] is the tenant-manager's side: several replicas run behind one DNS name (Cloud Map), each
//! with its own ring, so it asks every address the name resolves to (at most [`MAX_REPLICAS`], each within
//! [`REPLICA_TIMEOUT`]) and merges the answers by time.

use crate::logs::LogRecord;
use crate::router::valid_slug;
use crate::supervisor::Supervisor;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use supactl_common::crypto::secret_eq;
use supactl_common::error::HttpError;
use supactl_common::headers::bearer;
use supactl_common::http_client::HttpClient;
use supactl_common::ident::valid_ref;
use supactl_common::wire::Envelope;

/// The most records one answer carries (a function's ring holds 1,000 by default).
pub const MAX_LIMIT: usize = 1000;
/// Replicas asked at most for one read (addresses past this are left out, and the reader is told in the log).
pub const MAX_REPLICAS: usize = 16;
/// How long one replica may take to answer.
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(3);
/// How long resolving the service's name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Internal {
    supervisor: Supervisor,
    service_token: String,
}

/// The internal listener's routes.
pub fn internal_router(supervisor: Supervisor, service_token: String) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/internal/v1/functions/{project}/{slug}/logs", get(logs))
        .fallback(not_found)
        .with_state(Internal {
            supervisor,
            service_token,
        })
}

async fn health() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn not_found() -> Response {
    HttpError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}

#[derive(Deserialize)]
struct LogsQuery {
    limit: Option<usize>,
}

async fn logs(
    State(s): State<Internal>,
    headers: HeaderMap,
    Path((project, slug)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if !bearer(&headers).is_some_and(|t| secret_eq(t, &s.service_token)) {
        return HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs the service token",
        )
        .into_response();
    }
    if !valid_ref(&project) || !valid_slug(&slug) {
        return not_found().await;
    }
    let mut records = s.supervisor.logs(&project, &slug);
    let limit = q.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    records.drain(..records.len().saturating_sub(limit));
    Json(Envelope { data: records }).into_response()
}

/// Why no replica's records could be read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("the functions service's name {0} does not resolve")]
    Resolve(String),
    #[error("no functions replica answered: {0}")]
    Unreachable(String),
}

/// Reads a function's records from every replica of the functions service behind one name.
pub struct RemoteLogs {
    host: String,
    port: u16,
    service_token: String,
    client: HttpClient,
}

impl std::fmt::Debug for RemoteLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLogs")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl RemoteLogs {
    /// `url` is the internal listener's `http://host:port` (no path).
    pub fn new(url: &str, service_token: &str) -> Result<RemoteLogs, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        let (Some("http"), Some(host), Some(port)) = (uri.scheme_str(), uri.host(), uri.port_u16())
        else {
            return Err(format!("{url:?}: expected http://host:port"));
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("{url:?}: expected no path"));
        }
        Ok(RemoteLogs {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            service_token: service_token.to_string(),
            client: HttpClient::new(REPLICA_TIMEOUT),
        })
    }

    /// The newest `limit` records of a function across every replica the name resolves to, oldest first.
    pub async fn get(
        &self,
        project: &str,
        slug: &str,
        limit: usize,
    ) -> Result<Vec<LogRecord>, LogsError> {
        let resolved = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| LogsError::Resolve(self.host.clone()))?
        .map_err(|_| LogsError::Resolve(self.host.clone()))?;
        let mut addrs: Vec<SocketAddr> = resolved.collect();
        addrs.sort();
        addrs.dedup();
        if addrs.len() > MAX_REPLICAS {
            tracing::warn!(
                replicas = addrs.len(),
                "function logs: reading the first {MAX_REPLICAS} replicas only"
            );
            addrs.truncate(MAX_REPLICAS);
        }
        self.get_from(&addrs, project, slug, limit).await
    }

    /// [`RemoteLogs::get`] over given replica addresses. Replicas that do not answer are left out (and
    /// logged); only when none answers is it an error.
    pub async fn get_from(
        &self,
        addrs: &[SocketAddr],
        project: &str,
        slug: &str,
        limit: usize,
    ) -> Result<Vec<LogRecord>, LogsError> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let addrs = &addrs[..addrs.len().min(MAX_REPLICAS)];
        let path = format!("/internal/v1/functions/{project}/{slug}/logs?limit={limit}");
        let answers =
            futures_util::future::join_all(addrs.iter().map(|a| self.ask_replica(*a, &path))).await;
        let mut records = Vec::new();
        let mut failures = Vec::new();
        for (addr, answer) in addrs.iter().zip(answers) {
            match answer {
                Ok(r) => records.extend(r),
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        if failures.len() == addrs.len() {
            return Err(LogsError::Unreachable(if failures.is_empty() {
                "the name resolves to no address".into()
            } else {
                failures.join("; ")
            }));
        }
        if !failures.is_empty() {
            tracing::warn!(failures = %failures.join("; "), "function logs: some replicas did not answer");
        }
        Ok(merge(records, limit))
    }

    async fn ask_replica(&self, addr: SocketAddr, path: &str) -> Result<Vec<LogRecord>, String> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("http://{addr}{path}"))
            .header(header::HOST, format!("{}:{}", self.host, self.port))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.service_token),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.client.send(req).await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        serde_json::from_slice::<Envelope<Vec<LogRecord>>>(&body)
            .map(|e| e.data)
            .map_err(|e| format!("unreadable answer: {e}"))
    }
}

/// The newest `limit` of several replicas' records, oldest first (a stable sort keeps each replica's own
/// order among records of the same millisecond).
fn merge(mut records: Vec<LogRecord>, limit: usize) -> Vec<LogRecord> {
    records.sort_by_key(|r| r.timestamp_ms);
    records.drain(..records.len().saturating_sub(limit));
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, message: &str) -> LogRecord {
        LogRecord {
            timestamp_ms: ms,
            ..LogRecord::new(None, "log", message)
        }
    }

    #[test]
    fn replicas_merge_by_time_and_keep_the_newest() {
        let merged = merge(
            vec![
                at(1, "a1"),
                at(5, "a5"),
                at(9, "a9"),
                at(2, "b2"),
                at(5, "b5"),
            ],
            4,
        );
        let got: Vec<_> = merged.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(got, ["b2", "a5", "b5", "a9"]);
    }

    #[test]
    fn only_plain_http_base_urls() {
        assert!(RemoteLogs::new("http://functions.supactl.local:8082", "t").is_ok());
        for bad in [
            "https://x:1",
            "http://x",
            "http://x:1/path",
            "x:1",
            "http://x:1?q=1",
        ] {
            assert!(RemoteLogs::new(bad, "t").is_err(), "{bad}");
        }
    }
}
