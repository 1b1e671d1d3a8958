//! Errors of the control plane, classified for the client (status + stable code) apart from their
//! internal detail, which is logged and never returned.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
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
        /// Where in the script PostgreSQL found the error (1-based, in characters), when it says.
        position: Option<u32>,
    },
    #[error("no worker can take a new project")]
    NoCapacity,
    /// A call to AWS Lambda for the project's REST function failed (the detail is logged where it
    /// happened).
    #[error("rest function: {0}")]
    RestFunction(String),
    /// Too many projects are being created or deleted, and the queue for more is full.
    #[error("too many projects are being created or deleted at once")]
    ProvisioningBusy { running: usize, queued: usize },
    /// Every platform-database connection stayed in use for the pool's whole wait.
    #[error("the platform database's connections are all in use")]
    PlatformBusy,
    /// A database the control plane needs cannot be reached, or refuses connections for now (the
    /// detail is logged, never returned).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A project's auth service refused a user operation: GoTrue's status, `error_code` and message
    /// (safe to show: what its own clients get).
    #[error("{message}")]
    Auth {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

/// Seconds a client should wait before retrying, by cause: a full provisioning queue drains at the pace
/// of creates (seconds each); a busy pool or a restarting database frees up sooner.
const RETRY_PROVISIONING: u32 = 5;
const RETRY_BUSY: u32 = 1;
const RETRY_UNAVAILABLE: u32 = 2;

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    /// Whether the cause passes by itself (a busy pool, a database restarting): worth a retry.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::PlatformBusy | ApiError::Unavailable(_))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        let detail = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        if unreachable(&e) {
            ApiError::Unavailable(detail)
        } else {
            ApiError::Internal(detail)
        }
    }
}

/// Whether the error says the server cannot be reached or will not serve for now (refused, reset or
/// timed-out connections, a closed session, PostgreSQL shutting down or starting up, too many
/// connections): worth a retry, unlike a failed statement.
fn unreachable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS
                || supactl_common::pg::backend_gone(code)
        }
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        use deadpool_postgres::{PoolError, TimeoutType};
        match e {
            PoolError::Timeout(TimeoutType::Wait) => ApiError::PlatformBusy,
            PoolError::Timeout(_) => {
                ApiError::Unavailable("timed out connecting to the platform database".into())
            }
            PoolError::Backend(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
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
                position,
            } => {
                let e = HttpError::new(StatusCode::BAD_REQUEST, &sqlstate, message)
                    .with_details(detail, hint);
                let Some(position) = position else {
                    return e.into_response();
                };
                let mut body = serde_json::to_value(&e.body).expect("error body serialises");
                body["position"] = position.into();
                return (e.status, axum::Json(body)).into_response();
            }
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
            ApiError::ProvisioningBusy { running, queued } => {
                return retry_later(
                    HttpError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "provisioning_busy",
                        format!(
                            "{running} projects are being created or deleted and {queued} more are \
                             waiting, the most this tenant-manager takes; nothing was done: retry \
                             after the Retry-After delay"
                        ),
                    ),
                    RETRY_PROVISIONING,
                )
            }
            ApiError::PlatformBusy => {
                tracing::warn!("platform database pool exhausted");
                return retry_later(
                    HttpError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "platform_busy",
                        "the platform database is busy; retry after the Retry-After delay",
                    ),
                    RETRY_BUSY,
                );
            }
            ApiError::Unavailable(detail) => {
                tracing::error!(%detail, "database unavailable");
                return retry_later(
                    HttpError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_unavailable",
                        "a database the control plane needs is unreachable; retry after the \
                         Retry-After delay",
                    ),
                    RETRY_UNAVAILABLE,
                );
            }
            ApiError::Auth {
                status,
                code,
                message,
            } => HttpError::new(status, code, message),
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

/// The error with a `Retry-After` header (seconds).
fn retry_later(e: HttpError, seconds: u32) -> Response {
    let mut res = e.into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    res
}
