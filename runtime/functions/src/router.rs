//! The invocation endpoint: `/{slug}[/sub/path][?query]`, every method. [`router`] serves requests
//! that carry their [`Caller`] as an extension; [`behind_gateway`] first derives it from what the
//! gateway forwarded: the project in [`PROJECT_HEADER`], and, when the caller authenticated, the token
//! the gateway minted in [`FORWARDED_JWT_HEADER`] (checked again here with the project's secret: this
//! service may be reached over the network). The client's own `Authorization` and `apikey` reach the
//! function as sent, and its address as `x-forwarded-for`. Mount it under `/functions/v1`.

use crate::error::InvokeError;
use crate::supervisor::{Caller, Supervisor};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http::HeaderMap;
use std::sync::Arc;
use supactl_common::directory::Directory;
use supactl_common::forwarded::{self, RefRule};
use supactl_common::headers::{CLIENT_IP_HEADER, FORWARDED_JWT_HEADER, PROJECT_HEADER};
use supactl_common::server::RequestDeadline;
use supactl_common::wire::status;

/// Supabase's rule for a function's name.
pub const MAX_SLUG_LEN: usize = 128;

pub fn router(supervisor: Supervisor) -> Router {
    Router::new()
        .route("/{slug}", any(invoke))
        .route("/{slug}/{*rest}", any(invoke))
        .fallback(invoke)
        .with_state(supervisor)
}

/// [`router`] for requests the gateway forwarded (in-process or over the network).
pub fn behind_gateway(supervisor: Supervisor, directory: Arc<Directory>) -> Router {
    router(supervisor).layer(middleware::from_fn_with_state(directory, from_gateway))
}

async fn from_gateway(
    State(directory): State<Arc<Directory>>,
    mut req: Request,
    next: Next,
) -> Response {
    match caller(&directory, req.headers_mut()).await {
        Ok(c) => {
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The project and whether the gateway vouched for a JWT of it; the gateway's headers are removed.
async fn caller(directory: &Directory, headers: &mut HeaderMap) -> Result<Caller, InvokeError> {
    let project_ref = headers
        .remove(PROJECT_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .ok_or(InvokeError::ProjectNotFound)?;
    let project = directory
        .project(&project_ref)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "functions: project directory unavailable");
            InvokeError::Store
        })?
        .filter(|p| p.status == status::ACTIVE)
        .ok_or(InvokeError::ProjectNotFound)?;
    let minted = headers.remove(FORWARDED_JWT_HEADER);
    let jwt_verified = minted
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| forwarded::verify(&project, t, RefRule::MustName).is_ok());
    if let Some(ip) = headers.remove(CLIENT_IP_HEADER) {
        headers.insert("x-forwarded-for", ip);
    }
    Ok(Caller {
        project_ref,
        jwt_verified,
    })
}

async fn invoke(State(supervisor): State<Supervisor>, req: Request) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        tracing::error!("functions router reached without a Caller extension");
        return InvokeError::Internal.into_response();
    };
    let slug = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    if !valid_slug(&slug) {
        return InvokeError::NotFound(slug).into_response();
    }
    // the supervisor bounds the invocation itself (request_timeout, usually longer than the listener's)
    if let Some(d) = req.extensions().get::<RequestDeadline>() {
        d.lift();
    }
    match supervisor.invoke(&caller, &slug, req).await {
        Ok(res) => res.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `^[A-Za-z][A-Za-z0-9_-]*$`, at most [`MAX_SLUG_LEN`] characters.
pub fn valid_slug(slug: &str) -> bool {
    slug.len() <= MAX_SLUG_LEN
        && slug.starts_with(|c: char| c.is_ascii_alphabetic())
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_supabase() {
        for ok in ["hello", "a", "Hello_world-2"] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["", "2x", "-a", "a.b", "a%2e", "..", &"a".repeat(129)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
