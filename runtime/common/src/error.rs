//! The JSON error body every supactl HTTP service answers with: a stable `code` and a human `message`
//! (plus PostgREST's `details` and `hint`, null when unused, so Supabase clients parse it on every path).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

/// An HTTP error with its status. Internal details never go in `message`: log them instead.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                details: None,
                hint: None,
            },
        }
    }

    pub fn with_details(mut self, details: Option<String>, hint: Option<String>) -> HttpError {
        self.body.details = details;
        self.body.hint = hint;
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).expect("error body serialises");
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        res
    }
}
