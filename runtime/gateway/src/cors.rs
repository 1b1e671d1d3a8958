//! CORS as Supabase's gateway answers it: any origin, the methods the clients use, requested headers
//! echoed, and the headers clients read exposed.

use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode};

const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// What clients read: PostgREST's ranges, and the TUS headers tus-js-client and Uppy read in browsers.
const EXPOSE: &str =
    "Content-Range, Content-Location, Location, Preference-Applied, X-Client-Info, \
     Range-Unit, X-Request-Id, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, \
     Tus-Resumable, Tus-Version, Tus-Max-Size, Tus-Extension, Tus-Complete";

/// The answer to a preflight request.
pub fn preflight(req_headers: &HeaderMap) -> Response {
    let mut res = Response::new(axum::body::Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    decorate(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    let allow = req_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    res
}

/// Adds the CORS headers every response carries.
pub fn decorate(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
}
