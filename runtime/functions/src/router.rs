//! The invocation endpoint: `/{slug}[/sub/path][?query]`, every method, for a caller the gateway has
//! already authenticated (a [`Caller`] request extension). Mount it under `/functions/v1`.

use crate::error::InvokeError;
use crate::supervisor::{Caller, Supervisor};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use supactl_common::server::RequestDeadline;

/// Supabase's rule for a function's name.
pub const MAX_SLUG_LEN: usize = 128;

pub fn router(supervisor: Supervisor) -> Router {
    Router::new()
        .route("/{slug}", any(invoke))
        .route("/{slug}/{*rest}", any(invoke))
        .fallback(invoke)
        .with_state(supervisor)
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
