//! GoTrue's error shape, which every answer on `/auth/v1` takes, whether the auth service or the
//! gateway in front of it gives it (each service owns its error shape; REST's is PostgREST's).
//!
//! GoTrue answers `{"code": <error_code>, "message": …}` to clients that send `X-Supabase-Api-Version:
//! 2024-01-01` or later (supabase-js, supabase-py) and the legacy `{"code": <status>, "error_code": …,
//! "msg": …}` to the others, and labels every response with the version it speaks.

use crate::jwt::JwtError;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

/// The header carrying the API version, both ways.
pub const API_VERSION_HEADER: &str = "x-supabase-api-version";
/// The newest API version GoTrue's shape here follows.
pub const API_VERSION: &str = "2024-01-01";

/// Whether the request's API version is 2024-01-01 or later (dates compare as strings).
pub fn is_modern(req_version: Option<&HeaderValue>) -> bool {
    req_version
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() == 10 && v >= API_VERSION)
}

/// The error body for a client speaking [`API_VERSION`] or later (`modern`) or the legacy shape.
pub fn error_body(status: StatusCode, code: &str, msg: &str, modern: bool) -> Value {
    if modern {
        json!({"code": code, "message": msg})
    } else {
        json!({"code": status.as_u16(), "error_code": code, "msg": msg})
    }
}

/// A whole error response: JSON body, content type and the API version header.
pub fn error_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(API_VERSION_HEADER),
                HeaderValue::from_static(API_VERSION),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// GoTrue's message for a bearer token that does not verify (403 `bad_jwt`): its fixed prefix and the
/// reason in the words of the JWT library GoTrue uses (golang-jwt v5), so clients matching on them
/// see what they would there.
pub fn bad_jwt_message(e: &JwtError) -> String {
    let reason = match e {
        JwtError::Malformed => "token is malformed: could not parse the token",
        JwtError::Algorithm => "token is unverifiable: signing method is invalid",
        JwtError::UnknownKey => "token is unverifiable: unrecognized JWT kid",
        JwtError::Signature => "token signature is invalid: signature is invalid",
        JwtError::Expired => "token has invalid claims: token is expired",
        JwtError::NotYetValid => "token has invalid claims: token is not valid yet",
    };
    format!("invalid JWT: unable to parse or verify signature, {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let s = StatusCode::BAD_REQUEST;
        assert_eq!(
            error_body(s, "invalid_credentials", "Invalid login credentials", true),
            json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
        );
        assert_eq!(
            error_body(s, "invalid_credentials", "Invalid login credentials", false),
            json!({"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"})
        );
        assert_eq!(
            bad_jwt_message(&JwtError::Expired),
            "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired"
        );
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
