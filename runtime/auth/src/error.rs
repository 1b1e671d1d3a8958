//! Errors in GoTrue's JSON shapes and statuses.
//!
//! GoTrue answers `{"code": <error_code>, "message": …}` to clients that send `X-Supabase-Api-Version:
//! 2024-01-01` or later (supabase-js, supabase-py) and the legacy `{"code": <status>, "error_code": …,
//! "msg": …}` to the others. A handler cannot see the request headers when its error is rendered, so an
//! [`AuthError`] travels in the response's extensions and [`render`] (a middleware) writes the body in
//! the shape the request asked for.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

/// The header carrying the API version, both ways.
pub const API_VERSION_HEADER: &str = "x-supabase-api-version";
/// The newest API version this service speaks.
pub const API_VERSION: &str = "2024-01-01";

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
        let mut body = if modern {
            json!({"code": self.code, "message": self.msg})
        } else {
            json!({"code": self.status.as_u16(), "error_code": self.code, "msg": self.msg})
        };
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
        let mut res = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(true).to_string(),
        )
            .into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Whether the request's API version is 2024-01-01 or later (dates compare as strings).
pub fn is_modern(req_version: Option<&HeaderValue>) -> bool {
    req_version
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() == 10 && v >= API_VERSION)
}

/// Middleware: labels every response with the API version and renders errors in the request's shape.
pub async fn render(req: Request, next: Next) -> Response {
    let modern = is_modern(req.headers().get(API_VERSION_HEADER));
    let mut res = next.run(req).await;
    if !modern {
        if let Some(err) = res.extensions_mut().remove::<AuthError>() {
            res = (
                err.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                err.body(false).to_string(),
            )
                .into_response();
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

    #[test]
    fn version_header() {
        assert!(is_modern(Some(&HeaderValue::from_static("2024-01-01"))));
        assert!(is_modern(Some(&HeaderValue::from_static("2025-06-30"))));
        assert!(!is_modern(Some(&HeaderValue::from_static("2023-12-31"))));
        assert!(!is_modern(Some(&HeaderValue::from_static("garbage"))));
        assert!(!is_modern(None));
    }
}
