//! Storage's errors in Supabase Storage's shape: `{"statusCode": "404", "error": "not_found", "message":
//! "Object not found"}` with the same HTTP status (storage-js and storage3 read `statusCode`, `error` and
//! `message`; `exists()` relies on a missing object being 404). Internal causes go to the log, never into
//! the body.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct StorageError {
    pub status: StatusCode,
    /// Supabase's `error` text (a stable code such as `not_found`, `Duplicate`, `InvalidJWT`).
    pub error: &'static str,
    pub message: String,
    /// The database connection was lost: the project's pool is dropped before answering.
    pub lost_connection: bool,
}

pub type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        message: impl Into<String>,
    ) -> StorageError {
        StorageError {
            status,
            error,
            message: message.into(),
            lost_connection: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    pub fn invalid_key(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::BAD_REQUEST, "InvalidKey", message)
    }

    pub fn object_not_found() -> StorageError {
        StorageError::new(StatusCode::NOT_FOUND, "not_found", "Object not found")
    }

    pub fn bucket_not_found() -> StorageError {
        StorageError::new(
            StatusCode::NOT_FOUND,
            "Bucket not found",
            "Bucket not found",
        )
    }

    pub fn duplicate() -> StorageError {
        StorageError::new(
            StatusCode::CONFLICT,
            "Duplicate",
            "The resource already exists",
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::FORBIDDEN, "Unauthorized", message)
    }

    pub fn too_large() -> StorageError {
        StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            "The object exceeded the maximum allowed size",
        )
    }

    pub fn invalid_mime_type(content_type: &str) -> StorageError {
        StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_mime_type",
            format!("mime type {content_type} is not supported"),
        )
    }

    pub fn internal() -> StorageError {
        StorageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::SERVICE_UNAVAILABLE, "DatabaseTimeout", message)
    }

    /// The answer to a HEAD request: the status and no body.
    pub fn for_method(self, method: &Method) -> Response {
        if method == Method::HEAD {
            let mut res = self.status.into_response();
            res.extensions_mut().insert(self);
            return res;
        }
        self.into_response()
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16().to_string(),
            "error": self.error,
            "message": self.message,
        });
        let mut res = (self.status, body.to_string()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        res.extensions_mut().insert(self);
        res
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> StorageError {
        let Some(db) = e.as_db_error() else {
            let mut err = StorageError::unavailable("the database cannot be reached right now");
            err.lost_connection = supactl_common::pg::session_lost(&e);
            tracing::warn!(error = %e, "storage: database error");
            return err;
        };
        match db.code().code() {
            // RLS refused the row, or the role lacks the privilege
            "42501" => StorageError::unauthorized(db.message().to_string()),
            "23505" => StorageError::duplicate(),
            "57014" => StorageError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "DatabaseTimeout",
                "canceling statement due to statement timeout",
            ),
            c if supactl_common::pg::backend_gone(db.code()) => {
                tracing::warn!(code = c, "storage: database session lost");
                let mut err =
                    StorageError::unavailable("the database is restarting; retry shortly");
                err.lost_connection = true;
                err
            }
            c => {
                tracing::error!(
                    code = c,
                    message = db.message(),
                    "storage: unexpected database error"
                );
                StorageError::internal()
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(e: deadpool_postgres::PoolError) -> StorageError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            e => {
                tracing::warn!(error = %e, "storage: no database connection");
                StorageError::unavailable("the database is busy; retry shortly")
            }
        }
    }
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> StorageError {
        match e {
            object_store::Error::NotFound { .. } => StorageError::object_not_found(),
            e => {
                tracing::error!(error = %e, "storage: object store error");
                StorageError::internal()
            }
        }
    }
}
