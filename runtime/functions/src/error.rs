//! Why an invocation got no answer from the function, as the client sees it: a status and a stable code in
//! the platform's JSON error body. Details (paths, exit codes, store errors) go to the log, never the body.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::time::Duration;
use supactl_common::error::HttpError;

/// The status Supabase's Edge Runtime answers when a worker hits a resource limit.
pub const WORKER_LIMIT_STATUS: u16 = 546;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no function named {0:?}")]
    NotFound(String),
    #[error("no such project is serving requests")]
    ProjectNotFound,
    #[error("the function requires a valid JWT")]
    JwtRequired,
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the function's worker ran out of memory")]
    OutOfMemory,
    #[error("the function's worker crashed")]
    Crashed,
    #[error("the function failed to start")]
    Boot,
    #[error("all workers are busy")]
    Capacity,
    #[error("the function store is unavailable")]
    Store,
    #[error("internal error")]
    Internal,
}

impl InvokeError {
    pub fn status(&self) -> StatusCode {
        match self {
            InvokeError::NotFound(_) | InvokeError::ProjectNotFound => StatusCode::NOT_FOUND,
            InvokeError::JwtRequired => StatusCode::UNAUTHORIZED,
            InvokeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            InvokeError::OutOfMemory => {
                StatusCode::from_u16(WORKER_LIMIT_STATUS).expect("a valid status")
            }
            InvokeError::Crashed => StatusCode::BAD_GATEWAY,
            InvokeError::Boot | InvokeError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            InvokeError::Capacity | InvokeError::Store => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::NotFound(_) => "function_not_found",
            InvokeError::ProjectNotFound => "project_not_found",
            InvokeError::JwtRequired => "invalid_jwt",
            InvokeError::Timeout(_) => "function_timeout",
            InvokeError::OutOfMemory => "worker_memory_limit",
            InvokeError::Crashed => "worker_crashed",
            InvokeError::Boot => "function_boot_error",
            InvokeError::Capacity => "worker_limit",
            InvokeError::Store => "control_plane_unavailable",
            InvokeError::Internal => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            InvokeError::OutOfMemory | InvokeError::Crashed => {
                format!("{self}; the next invocation starts a new worker")
            }
            InvokeError::Boot => format!("{self}; see the function's logs"),
            InvokeError::Capacity | InvokeError::Store => format!("{self}; retry later"),
            _ => self.to_string(),
        }
    }
}

impl IntoResponse for InvokeError {
    fn into_response(self) -> Response {
        HttpError::new(self.status(), self.code(), self.message()).into_response()
    }
}
