//! Errors in GoTrue's JSON shapes and statuses ([`supactl_common::gotrue`]: the modern shape for
//! clients that send `X-Supabase-Api-Version: 2024-01-01` or later, the legacy one for the others).
//!
//! A handler cannot see the request headers when its error is rendered, so an [`AuthError`] travels
//! in the response's extensions and [`render`] (a middleware) writes the body in the shape the request
//! asked for.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};
use supactl_common::gotrue;
pub use supactl_common::gotrue::{is_modern, API_VERSION, API_VERSION_HEADER};

#[derive(Debug, Clone)]
pub struct AuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
    /// `weak_password.reasons`, for `weak_password` errors.
    pub reasons: Option<Vec<&'static str>>,
    /// The request's database connection is gone (see [`crate::db::forget_lost_connections`]).
    pub lost_connection: bool,
}

pub type AuthResult<T> = Result<T, AuthError>;

impl AuthError {
    pub fn new(status: StatusCode, code: &'static str, msg: impl Into<String>) -> AuthError {
        AuthError {
            status,
            code,
            msg: msg.into(),
            reasons: None,
            lost_connection: false,
        }
    }

    pub fn bad_request(code: &'static str, msg: impl Into<String>) -> AuthError {
        AuthError::new(StatusCode::BAD_REQUEST, code, msg)
    }

    pub fn unprocessable(code: &'static str, msg: impl Into<String>) -> AuthError {
        AuthError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg)
    }

    pub fn forbidden(code: &'static str, msg: impl Into<String>) -> AuthError {
        AuthError::new(StatusCode::FORBIDDEN, code, msg)
    }

    pub fn validation(msg: impl Into<String>) -> AuthError {
        AuthError::bad_request("validation_failed", msg)
    }

    pub fn invalid_credentials() -> AuthError {
        AuthError::bad_request("invalid_credentials", "Invalid login credentials")
    }

    pub fn not_admin() -> AuthError {
        AuthError::forbidden("not_admin", "User not allowed")
    }

    pub fn user_not_found() -> AuthError {
        AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found")
    }

    pub fn rate_limited() -> AuthError {
        AuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "over_request_rate_limit",
            "Request rate limit reached",
        )
    }

    pub fn weak_password(min: usize) -> AuthError {
        AuthError {
            reasons: Some(vec!["length"]),
            ..AuthError::unprocessable(
                "weak_password",
                format!("Password should be at least {min} characters."),
            )
        }
    }

    /// A failure the client cannot fix; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> AuthError {
        tracing::error!(%detail, "auth internal error");
        AuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Internal server error",
        )
    }

    /// The body for a client speaking `API_VERSION` or later (`modern`) or the legacy shape.
    pub fn body(&self, modern: bool) -> Value {
        let mut body = gotrue::error_body(self.status, self.code, &self.msg, modern);
        if let Some(reasons) = &self.reasons {
            body["weak_password"] = json!({ "reasons": reasons });
        }
        body
    }

    /// The project's database cannot serve the request now; a retry may (the detail is logged).
    pub fn unavailable(detail: impl std::fmt::Display) -> AuthError {
        tracing::error!(%detail, "auth database unavailable");
        AuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unexpected_failure",
            "Database unavailable, retry shortly",
        )
    }
}

impl From<tokio_postgres::Error> for AuthError {
    /// A lost connection (a terminated backend, a closed socket) is a retryable 503, never a 500; a
    /// statement stopped by the statement timeout is GoTrue's 504 `request_timeout`.
    fn from(e: tokio_postgres::Error) -> AuthError {
        match e.as_db_error() {
            Some(db) if *db.code() == tokio_postgres::error::SqlState::QUERY_CANCELED => {
                tracing::warn!(message = db.message(), "auth statement cancelled");
                AuthError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "request_timeout",
                    "Processing this request timed out, please retry after a moment.",
                )
            }
            _ if supactl_common::pg::session_lost(&e) => AuthError {
                lost_connection: true,
                ..AuthError::unavailable(match e.as_db_error() {
                    Some(db) => format!("{} ({})", db.message(), db.code().code()),
                    None => e.to_string(),
                })
            },
            Some(db) => {
                AuthError::internal(format!("database: {} ({})", db.message(), db.code().code()))
            }
            None => AuthError::internal(format!("database: {e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for AuthError {
    fn from(e: deadpool_postgres::PoolError) -> AuthError {
        AuthError::unavailable(e)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // Rendered in the modern shape; `render` rewrites it for legacy clients.
        let mut res = gotrue::error_response(self.status, &self.body(true));
        res.extensions_mut().insert(self);
        res
    }
}

/// Middleware: labels every response with the API version and renders errors in the request's shape.
pub async fn render(req: Request, next: Next) -> Response {
    let modern = is_modern(req.headers().get(API_VERSION_HEADER));
    let mut res = next.run(req).await;
    if !modern {
        if let Some(err) = res.extensions_mut().remove::<AuthError>() {
            res = gotrue::error_response(err.status, &err.body(false));
        }
    }
    res.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let e = AuthError::invalid_credentials();
        assert_eq!(
            e.body(true),
            json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
        );
        assert_eq!(
            e.body(false),
            json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
        );
        let w = AuthError::weak_password(6).body(true);
        assert_eq!(w["weak_password"]["reasons"], json!(["length"]));
        assert_eq!(w["code"], "weak_password");
    }
}
