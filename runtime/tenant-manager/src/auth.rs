//! Bearer-token guards for the admin API (admin key; every refusal is audited) and the internal endpoint
//! (service token, or a project's own token for its own config), compared in constant time.

use crate::error::ApiError;
use crate::TenantManager;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use std::sync::Arc;
pub use supactl_common::crypto::secret_eq;
use supactl_common::headers::bearer;
use supactl_common::ident::valid_ref;
use supactl_common::tokens::project_token;

/// The admin key as a bearer token, or a dashboard session with its CSRF token
/// ([`crate::dashboard::authorize`]).
pub async fn require_admin(
    State(tm): State<Arc<TenantManager>>,
    mut req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers()) {
        Some(t) if secret_eq(t, &tm.config.admin_key) => return counted(next, req).await,
        Some(_) => {}
        None => {
            if let Some(token) = crate::dashboard::session_token(req.headers()) {
                return match crate::dashboard::authorize(&tm, &token, req.headers()).await {
                    Ok(actor) => {
                        req.extensions_mut().insert(crate::audit::Actor(actor));
                        counted(next, req).await
                    }
                    Err(refused) => refused,
                };
            }
        }
    }
    crate::audit::unauthorized(&tm, &req).await;
    ApiError::Unauthorized.into_response()
}

/// Runs an authenticated admin request, counted by method and status.
async fn counted(next: Next, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let res = next.run(req).await;
    let labels = supactl_common::metrics::AdminLabels {
        method,
        status: res.status().as_u16(),
    };
    supactl_common::metrics::metrics()
        .admin_requests
        .get_or_create(&labels)
        .inc();
    res
}

/// The internal endpoint: the service token reads everything; a project's token (see
/// [`supactl_common::tokens`]) reads `GET /projects/{ref}/config` of its own project and nothing else.
/// Marks an internal request authenticated with a project's own token (a project's REST function),
/// not the service token: it reads only what verifying the gateway's tokens needs.
#[derive(Debug, Clone, Copy)]
pub struct ProjectTokenRead;

pub async fn require_internal(
    State(tm): State<Arc<TenantManager>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return ApiError::Unauthorized.into_response();
    };
    if secret_eq(token, &tm.config.service_token) {
        return next.run(req).await;
    }
    let own_config = (req.method() == Method::GET)
        .then(|| config_path_ref(req.uri().path()))
        .flatten()
        .is_some_and(|r| secret_eq(token, &project_token(&tm.config.service_token, r)));
    if own_config {
        req.extensions_mut().insert(ProjectTokenRead);
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// The ref of a project-config path, `/projects/{ref}/config` (as nested) or with `/internal/v1` in
/// front.
fn config_path_ref(path: &str) -> Option<&str> {
    let path = path.strip_prefix("/internal/v1").unwrap_or(path);
    path.strip_prefix("/projects/")?
        .strip_suffix("/config")
        .filter(|r| valid_ref(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths() {
        assert_eq!(config_path_ref("/projects/abc/config"), Some("abc"));
        assert_eq!(
            config_path_ref("/internal/v1/projects/abc/config"),
            Some("abc")
        );
        assert_eq!(config_path_ref("/projects/abc/def/config"), None);
        assert_eq!(config_path_ref("/projects/abc/config/x"), None);
        assert_eq!(config_path_ref("/api-keys/abc"), None);
        assert_eq!(config_path_ref("/projects//config"), None);
    }
}
