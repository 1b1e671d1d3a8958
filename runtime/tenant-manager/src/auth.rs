//! Bearer-token guards for the admin API (admin key) and the internal endpoint (service token), compared
//! in constant time.

use crate::error::ApiError;
use crate::TenantManager;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use supactl_common::headers::bearer;

/// Constant-time equality of two secrets (hashed first so their lengths do not leak either).
pub fn secret_eq(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

pub async fn require_admin(
    State(tm): State<Arc<TenantManager>>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers()) {
        Some(t) if secret_eq(t, &tm.config.admin_key) => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

pub async fn require_service(
    State(tm): State<Arc<TenantManager>>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers()) {
        Some(t) if secret_eq(t, &tm.config.service_token) => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}
