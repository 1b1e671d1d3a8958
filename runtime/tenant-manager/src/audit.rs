//! The audit log: every admin mutation (which admin key, what, when, outcome), listable by admins.

use crate::api::data;
use crate::error::ApiError;
use crate::TenantManager;
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Which admin key acted, without storing the key: the first 12 hex digits of its SHA-256.
fn actor(req: &Request) -> String {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim()))
        .unwrap_or("");
    format!(
        "admin-key:{}",
        &hex::encode(Sha256::digest(token.as_bytes()))[..12]
    )
}

/// Middleware: records every request that is not a read, after it ran.
pub async fn record(State(tm): State<Arc<TenantManager>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        return next.run(req).await;
    }
    let who = actor(&req);
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let status = i32::from(res.status().as_u16());
    let outcome = if res.status().is_success() {
        "success"
    } else {
        "failure"
    };
    let write = async {
        let c = tm.store.client().await?;
        c.execute(
            "INSERT INTO supactl.audit_log (actor, method, path, status, outcome) VALUES ($1, $2, $3, $4, $5)",
            &[&who, &method.as_str(), &path, &status, &outcome],
        )
        .await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = write.await {
        tracing::error!(error = %e, %path, "cannot write the audit log");
    }
    res
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
            "SELECT id, to_json(at) #>> '{}', actor, method, path, status, outcome FROM supactl.audit_log
             WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
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
                })
            })
            .collect(),
    )))
}
