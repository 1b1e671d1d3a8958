//! `GET /admin/v1/projects/{ref}/functions/{slug}/logs[?limit=N]`: what a function printed and how its
//! invocations ended, newest last, from the functions runtime the tenant-manager is given
//! ([`TenantManager::set_function_logs`]): `supactl up`'s in-process supervisor, or the functions
//! service's replicas over their internal listener (`supactl serve tenant-manager` with
//! `SUPACTL_FUNCTIONS_INTERNAL_URL`, as on ECS). The runtime keeps a bounded ring per function in memory,
//! so logs start empty after a restart. Without a runtime, or when no replica answers, the endpoint
//! answers 503 `logs_unavailable`.

use crate::handler::{data, Tm};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use supactl_common::error::HttpError;

/// Where a function's records are read.
#[derive(Clone)]
pub enum LogSource {
    /// The supervisor in this process (`supactl up`).
    InProcess(::functions::Supervisor),
    /// Every replica of the functions service, over its internal listener.
    Remote(Arc<::functions::RemoteLogs>),
}

impl LogSource {
    /// The newest `limit` records of a function, oldest first.
    async fn records(
        &self,
        project: &str,
        slug: &str,
        limit: usize,
    ) -> Result<Vec<::functions::LogRecord>, ::functions::LogsError> {
        match self {
            LogSource::InProcess(s) => {
                let mut records = s.logs(project, slug);
                records.drain(..records.len().saturating_sub(limit));
                Ok(records)
            }
            LogSource::Remote(r) => r.get(project, slug, limit).await,
        }
    }
}

/// Records returned unless the request asks for fewer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = ::functions::internal::MAX_LIMIT;

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    limit: Option<usize>,
}

pub(crate) async fn logs(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Err(e) = crate::functions::ensure_exists(&tm, &project_ref, &slug).await {
        return e.into_response();
    }
    let unavailable = |why: &str| {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "logs_unavailable", why).into_response()
    };
    let Some(source) = tm.function_logs.get() else {
        return unavailable("no functions runtime is attached to this tenant-manager");
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    match source.records(&project_ref, &slug, limit).await {
        Ok(records) => {
            data(serde_json::to_value(records).expect("log records serialize")).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "function logs unavailable");
            unavailable("the functions service did not answer; retry shortly")
        }
    }
}
