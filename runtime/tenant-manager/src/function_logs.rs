//! `GET /admin/v1/projects/{ref}/functions/{slug}/logs[?limit=N]`: what a function printed and how its
//! invocations ended, newest last, from the functions runtime the tenant-manager is given
//! ([`TenantManager::set_function_logs`]; `supactl up` gives its in-process supervisor). The runtime keeps
//! a bounded ring per function in memory, so logs start empty after a restart. Without a runtime the
//! endpoint answers 503 `logs_unavailable`.

use crate::handler::{data, Tm};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use supactl_common::error::HttpError;

/// Records of one function (project ref, slug), oldest first.
pub type LogSource = Arc<dyn Fn(&str, &str) -> Vec<::functions::LogRecord> + Send + Sync>;

/// Records returned unless the request asks for fewer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

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
    let Some(source) = tm.function_logs.get() else {
        return HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "logs_unavailable",
            "no functions runtime is attached to this tenant-manager",
        )
        .into_response();
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let records = source(&project_ref, &slug);
    let skip = records.len().saturating_sub(limit);
    let records: Vec<_> = records.into_iter().skip(skip).collect();
    data(serde_json::to_value(records).expect("log records serialize")).into_response()
}
