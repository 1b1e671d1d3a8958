//! Errors in PostgREST's shape (`code`, `message`, `details`, `hint`) with its HTTP statuses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use supactl_common::error::HttpError;
use supactl_common::keys::Role;

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// PGRST100: the query string does not parse.
    #[error("{0}")]
    Parse(String),
    /// PGRST102: the body is not valid JSON of the expected shape.
    #[error("{0}")]
    InvalidBody(String),
    /// PGRST106: schema not exposed.
    #[error("the schema must be one of the following: {0}")]
    Schema(String),
    /// PGRST301/PGRST303: the JWT does not verify or has expired.
    #[error("{0}")]
    Jwt(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not allowed")]
    MethodNotAllowed(String),
    /// PGRST000: the database cannot be reached.
    #[error("database unavailable")]
    Unavailable(String),
    /// An error raised by PostgreSQL while running the statement, with the role it ran as.
    #[error("{}", .0.message)]
    Db(Box<DbError>, Role),
}

/// The parts of a PostgreSQL error a client may see.
#[derive(Debug)]
pub struct DbError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

impl RestError {
    pub fn parse(message: String) -> RestError {
        RestError::Parse(message)
    }

    pub fn from_pg(e: &tokio_postgres::Error, role: Role) -> RestError {
        match e.as_db_error() {
            Some(db) => RestError::Db(
                Box::new(DbError {
                    code: db.code().code().to_string(),
                    message: db.message().to_string(),
                    details: db.detail().map(str::to_string),
                    hint: db.hint().map(str::to_string),
                }),
                role,
            ),
            None => RestError::Unavailable(e.to_string()),
        }
    }

    pub fn into_http(self) -> HttpError {
        match self {
            RestError::Parse(m) => HttpError::new(StatusCode::BAD_REQUEST, "PGRST100", m),
            RestError::InvalidBody(m) => HttpError::new(StatusCode::BAD_REQUEST, "PGRST102", m),
            RestError::Schema(list) => {
                HttpError::new(StatusCode::NOT_ACCEPTABLE, "PGRST106", "Invalid schema")
                    .with_details(
                        None,
                        Some(format!("Only the following schemas are exposed: {list}")),
                    )
            }
            RestError::Jwt(m) => {
                let code = if m.contains("expired") {
                    "PGRST303"
                } else {
                    "PGRST301"
                };
                HttpError::new(StatusCode::UNAUTHORIZED, code, m)
            }
            RestError::NotFound(m) => HttpError::new(StatusCode::NOT_FOUND, "PGRST125", m),
            RestError::MethodNotAllowed(m) => HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                format!("Unsupported HTTP method: {m}"),
            ),
            RestError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PGRST000",
                    "Database connection error. Retrying the connection.",
                )
            }
            RestError::Db(db, role) => {
                let status = status_for_sqlstate(&db.code, role);
                HttpError::new(status, &db.code, db.message).with_details(db.details, db.hint)
            }
        }
    }
}

/// PostgREST's SQLSTATE → HTTP status table.
pub fn status_for_sqlstate(code: &str, role: Role) -> StatusCode {
    let class = &code[..code.len().min(2)];
    match code {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        "42501" if role == Role::Anon => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "P0001" => StatusCode::BAD_REQUEST,
        "42P17" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => match class {
            "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
            | "HV" | "P0" | "XX" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        self.into_http().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_table() {
        assert_eq!(
            status_for_sqlstate("23505", Role::ServiceRole),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status_for_sqlstate("42501", Role::Anon),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_for_sqlstate("42501", Role::Authenticated),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_for_sqlstate("42703", Role::Anon),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_for_sqlstate("42P01", Role::Anon),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_for_sqlstate("53300", Role::Anon),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_for_sqlstate("XX000", Role::Anon),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
