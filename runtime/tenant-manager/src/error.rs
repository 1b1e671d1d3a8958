//! Errors of the control plane, classified for the client (status + stable code) apart from their
//! internal detail, which is logged and never returned.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use supactl_common::error::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A SQL error from the query endpoint: PostgreSQL's own code and message are the answer.
    #[error("{message}")]
    Sql {
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    #[error("no worker can take a new project")]
    NoCapacity,
    /// A call to AWS Lambda for the project's REST function failed (the detail is logged where it
    /// happened).
    #[error("rest function: {0}")]
    RestFunction(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        ApiError::Internal(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = match self {
            ApiError::BadRequest(m) => HttpError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Unauthorized => HttpError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid credentials: send Authorization: Bearer <key>",
            ),
            ApiError::NotFound(m) => HttpError::new(StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Conflict(m) => HttpError::new(StatusCode::CONFLICT, "conflict", m),
            ApiError::Sql {
                sqlstate,
                message,
                detail,
                hint,
            } => HttpError::new(StatusCode::BAD_REQUEST, &sqlstate, message)
                .with_details(detail, hint),
            ApiError::NoCapacity => HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_capacity",
                "no active worker has room for a new project",
            ),
            ApiError::RestFunction(step) => {
                tracing::error!(%step, "REST function step failed");
                HttpError::new(
                    StatusCode::BAD_GATEWAY,
                    "rest_function_failed",
                    "AWS Lambda refused or failed a step of the project's REST function; nothing was \
                     kept; see the tenant-manager log",
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error; see the tenant-manager log",
                )
            }
        };
        e.into_response()
    }
}
