//! Errors in PostgREST's shape (`code`, `message`, `details`, `hint`) with its codes and HTTP statuses.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};
use supactl_common::error::HttpError;
use supactl_common::keys::Role;

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// PGRST100: the query string does not parse.
    #[error("{message}")]
    Parse {
        message: String,
        details: Option<String>,
    },
    /// PGRST100 as well: the request asks for more than [`crate::limits`] allows; the message names
    /// the limit.
    #[error("{0}")]
    Limit(String),
    /// PGRST102: the body is not valid JSON of the expected shape.
    #[error("{0}")]
    InvalidBody(String),
    /// PGRST106: schema not exposed.
    #[error("The schema must be one of the following: {0}")]
    Schema(String),
    /// PGRST301/PGRST303: the JWT does not verify or has expired.
    #[error("{0}")]
    Jwt(String),
    /// PGRST125: no such path.
    #[error("{0}")]
    NotFound(String),
    /// PGRST000: the database cannot be reached.
    #[error("database unavailable")]
    Unavailable(String),
    /// An error PostgREST itself raises, fully shaped.
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
        hint: Value,
    },
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
    pub fn api(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: Option<String>,
        hint: Option<String>,
    ) -> RestError {
        RestError::Api {
            status,
            code,
            message: message.into(),
            details: details.map(Value::String).unwrap_or(Value::Null),
            hint: hint.map(Value::String).unwrap_or(Value::Null),
        }
    }

    /// A parse error found inside a larger parameter keeps its detail but names the whole parameter.
    pub fn within(self, what: &str, whole: &str) -> RestError {
        match self {
            RestError::Parse { details, .. } => RestError::Parse {
                message: format!("\"failed to parse {what} parameter ({whole})\""),
                details,
            },
            e => e,
        }
    }

    /// PGRST204.
    pub fn no_column(column: &str, table: &str) -> RestError {
        RestError::api(
            StatusCode::BAD_REQUEST,
            "PGRST204",
            format!("Could not find the '{column}' column of '{table}' in the schema cache"),
            None,
            None,
        )
    }

    /// PGRST205.
    pub fn no_table(schema: &str, name: &str) -> RestError {
        RestError::api(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table '{schema}.{name}' in the schema cache"),
            None,
            None,
        )
    }

    /// A PostgreSQL error as the client sees it. A backend that was terminated (`57P01` admin
    /// shutdown or `pg_terminate_backend`, `57P02` crash of another backend, `57P03` server starting
    /// or stopping) or a connection closed under the request is a 503 PGRST000, retryable: PostgREST
    /// answers 503 to both too (its `57P01` rule and its connection-error rule), never 500.
    pub fn from_pg(e: &tokio_postgres::Error, role: Role) -> RestError {
        match e.as_db_error() {
            Some(db) if supactl_common::pg::backend_gone(db.code()) => {
                RestError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
            }
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

    /// A statement stopped by `statement_timeout` (`57014`) keeps PostgreSQL's code and message, as
    /// PostgREST 12 and 13 answer it (HTTP 500, `"canceling statement due to statement timeout"`:
    /// class 57 in their SQLSTATE table), plus a hint naming the role's limit (`timeout`, as
    /// PostgreSQL writes it), which PostgREST leaves null.
    pub fn with_timeout_hint(self, timeout: &str) -> RestError {
        match self {
            RestError::Db(mut db, role)
                if db.code == "57014"
                    && db.hint.is_none()
                    && db.message.contains("statement timeout") =>
            {
                db.hint = Some(format!(
                    "statements of the {} role may run for {timeout} on this project",
                    role.as_str()
                ));
                RestError::Db(db, role)
            }
            e => e,
        }
    }

    /// The error code, for the `Proxy-Status` header and logs.
    pub fn status(&self) -> StatusCode {
        match self {
            RestError::Parse { .. } | RestError::Limit(_) | RestError::InvalidBody(_) => {
                StatusCode::BAD_REQUEST
            }
            RestError::Schema(_) => StatusCode::NOT_ACCEPTABLE,
            RestError::Jwt(_) => StatusCode::UNAUTHORIZED,
            RestError::NotFound(_) => StatusCode::NOT_FOUND,
            RestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            RestError::Api { status, .. } => *status,
            RestError::Db(db, role) => status_for_sqlstate(&db.code, *role),
        }
    }

    pub fn into_http(self) -> HttpError {
        match self {
            RestError::Parse { message, details } => {
                HttpError::new(StatusCode::BAD_REQUEST, "PGRST100", message)
                    .with_details(details, None)
            }
            RestError::Limit(m) => HttpError::new(StatusCode::BAD_REQUEST, "PGRST100", m)
                .with_details(
                    None,
                    Some("the platform bounds the nesting and size of requests: flatten the query or split it into several requests".into()),
                ),
            RestError::InvalidBody(m) => HttpError::new(StatusCode::BAD_REQUEST, "PGRST102", m),
            RestError::Schema(list) => HttpError::new(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST106",
                format!("The schema must be one of the following: {list}"),
            ),
            RestError::Jwt(m) => {
                let code = if m.contains("expired") {
                    "PGRST303"
                } else {
                    "PGRST301"
                };
                HttpError::new(StatusCode::UNAUTHORIZED, code, m)
            }
            RestError::NotFound(m) => HttpError::new(StatusCode::NOT_FOUND, "PGRST125", m),
            RestError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PGRST000",
                    "Database connection error. Retrying the connection.",
                )
            }
            RestError::Api {
                status,
                code,
                message,
                details,
                hint,
            } => {
                let s = |v: Value| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                HttpError::new(status, code, message).with_details(s(details), s(hint))
            }
            RestError::Db(db, role) => {
                let status = status_for_sqlstate(&db.code, role);
                HttpError::new(status, &db.code, db.message).with_details(db.details, db.hint)
            }
        }
    }
}

/// PostgREST's SQLSTATE → HTTP status table, plus `PTxyz` → xyz.
pub fn status_for_sqlstate(code: &str, role: Role) -> StatusCode {
    if let Some(n) = code.strip_prefix("PT").and_then(|n| n.parse::<u16>().ok()) {
        if let Ok(s) = StatusCode::from_u16(n) {
            return s;
        }
    }
    let class = &code[..code.len().min(2)];
    match code {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        "42501" if role == Role::Anon => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "P0001" => StatusCode::BAD_REQUEST,
        "42P17" | "53400" => StatusCode::INTERNAL_SERVER_ERROR,
        "57P01" | "57P02" | "57P03" => StatusCode::SERVICE_UNAVAILABLE,
        _ => match class {
            "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
            | "HV" | "P0" | "XX" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

/// `RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{"status":…,"headers":{…}}'`: the
/// function chooses the whole response. Unparseable JSON is PGRST121.
fn custom_raise(db: &DbError) -> Response {
    let body: Option<Value> = serde_json::from_str(&db.message).ok();
    let detail: Option<Value> = db
        .details
        .as_deref()
        .map(|d| serde_json::from_str(d).ok())
        .unwrap_or(Some(json!({})));
    let (Some(Value::Object(body)), Some(Value::Object(detail))) = (body, detail) else {
        return HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
        )
        .with_details(
            Some(format!("Invalid JSON value for MESSAGE: '{}'", db.message)),
            None,
        )
        .into_response();
    };
    let status = detail
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let out = json!({
        "code": body.get("code").cloned().unwrap_or(Value::Null),
        "message": body.get("message").cloned().unwrap_or(Value::Null),
        "details": body.get("details").cloned().unwrap_or(Value::Null),
        "hint": body.get("hint").cloned().unwrap_or(Value::Null),
    });
    let mut res = Response::new(Body::from(out.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(Value::Object(h)) = detail.get("headers") {
        for (k, v) in h {
            if let (Ok(k), Some(Ok(v))) = (
                HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                res.headers_mut().insert(k, v);
            }
        }
    }
    res
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        if let RestError::Db(db, _) = &self {
            if db.code == "PGRST" {
                return custom_raise(db);
            }
        }
        let (details, hint) = match &self {
            RestError::Api { details, hint, .. } => (details.clone(), hint.clone()),
            _ => (Value::Null, Value::Null),
        };
        let structured = details.is_array() || details.is_object();
        let http = self.into_http();
        let code = http.body.code.clone();
        let mut res = if structured {
            // PGRST201 lists the candidate relationships as objects, not as a string.
            let body = json!({"code": http.body.code, "message": http.body.message, "details": details, "hint": hint});
            let mut r = Response::new(Body::from(body.to_string()));
            *r.status_mut() = http.status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        } else {
            http.into_response()
        };
        if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={code}")) {
            res.headers_mut()
                .insert(HeaderName::from_static("proxy-status"), v);
        }
        res
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
        assert_eq!(
            status_for_sqlstate("PT402", Role::Anon),
            StatusCode::PAYMENT_REQUIRED
        );
        assert_eq!(
            status_for_sqlstate("57P01", Role::ServiceRole),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_for_sqlstate("57014", Role::Anon),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
