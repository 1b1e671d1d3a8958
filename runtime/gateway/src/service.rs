//! The services behind the gateway and what each needs of a request: its path prefix, whether it may
//! be called without credentials, whether the client's own credentials reach it, whether its body is
//! buffered or streamed, whether it takes WebSocket upgrades. Adding a service is one variant here and
//! its upstream in the route table ([`crate::GatewayBuilder::route`]).

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use supactl_common::error::HttpError;
use supactl_common::forwarded::ForwardedError;
use supactl_common::gotrue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// PostgREST-compatible REST (`/rest/v1`), in-process or on a project's Lambda Function URL.
    Rest,
    /// GoTrue-compatible auth (`/auth/v1`).
    Auth,
    /// Edge Functions (`/functions/v1/{slug}`).
    Functions,
    /// Realtime (`/realtime/v1/websocket`, `/realtime/v1/api/broadcast`).
    Realtime,
    /// Supabase Storage (`/storage/v1`): buckets and objects, bodies streamed both ways.
    Storage,
}

/// What happens to a request that carries no usable credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Refused with 401.
    Required,
    /// Served as `anon` when it carries no key and no bearer token at all.
    AnonWithoutCredentials,
    /// Forwarded without a minted token when the key or token does not authenticate: the service
    /// decides (a function deployed with `verify_jwt = false` is public, e.g. a webhook).
    Optional,
}

/// The JSON shape of the errors the gateway itself answers on a service's routes: each service's clients
/// parse their own (supabase-js reads auth errors from GoTrue's `error_code`/`msg`, REST errors from
/// PostgREST's `code`/`message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"code", "message", "details", "hint"}`.
    PostgRest,
    /// GoTrue's, legacy or modern as the request's `X-Supabase-Api-Version` asks
    /// ([`supactl_common::gotrue`]).
    GoTrue,
}

impl ErrorShape {
    /// `e` in this shape; `modern` is whether the request speaks GoTrue's 2024-01-01 API.
    pub fn render(self, e: HttpError, modern: bool) -> Response {
        match self {
            ErrorShape::PostgRest => e.into_response(),
            ErrorShape::GoTrue => gotrue::error_response(
                e.status,
                &gotrue::error_body(e.status, &e.body.code, &e.body.message, modern),
            ),
        }
    }
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Rest,
        Service::Auth,
        Service::Functions,
        Service::Realtime,
        Service::Storage,
    ];

    /// The route class the access log and metrics name.
    pub fn class(self) -> &'static str {
        match self {
            Service::Rest => "rest",
            Service::Auth => "auth",
            Service::Functions => "functions",
            Service::Realtime => "realtime",
            Service::Storage => "storage",
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Service::Rest => "/rest/v1",
            Service::Auth => "/auth/v1",
            Service::Functions => "/functions/v1",
            Service::Realtime => "/realtime/v1",
            Service::Storage => "/storage/v1",
        }
    }

    /// The service and the path below its prefix (`/` for the prefix itself) of a path below a
    /// project.
    pub fn find(below: &str) -> Option<(Service, &str)> {
        Service::ALL.into_iter().find_map(|s| {
            let p = below.strip_prefix(s.prefix())?;
            match p {
                "" => Some((s, "/")),
                p if p.starts_with('/') => Some((s, p)),
                _ => None,
            }
        })
    }

    pub fn access(self, method: &Method, path: &str) -> Access {
        match self {
            // Email links (`GET /auth/v1/verify`) and OAuth sign-ins (`/authorize`, and the
            // provider's redirect to `/callback`, or its form posted there as Apple's `form_post`)
            // are opened by browsers, which send no API key, and JWT libraries fetch a JWKS without
            // one; Supabase leaves those routes open too.
            Service::Auth
                if (method == Method::GET
                    && matches!(
                        path,
                        "/verify" | "/authorize" | "/callback" | "/.well-known/jwks.json"
                    ))
                    || (method == Method::POST && path == "/callback") =>
            {
                Access::AnonWithoutCredentials
            }
            Service::Functions => Access::Optional,
            // Public objects and signed URLs are opened by browsers and shared links, with no API key;
            // storage serves them without a caller (and refuses every other route without one).
            Service::Storage if storage_open(method, path) => Access::Optional,
            _ => Access::Required,
        }
    }

    pub fn error_shape(self) -> ErrorShape {
        match self {
            Service::Auth => ErrorShape::GoTrue,
            _ => ErrorShape::PostgRest,
        }
    }

    /// The error for a user token in `Authorization` that does not verify, as the service itself
    /// words it: GoTrue's 403 `bad_jwt`, or 401 `invalid_jwt` (PostgREST's status) elsewhere.
    pub fn bad_user_jwt(self, e: &ForwardedError) -> HttpError {
        match (self, e) {
            (Service::Auth, ForwardedError::Invalid(e)) => {
                HttpError::new(StatusCode::FORBIDDEN, "bad_jwt", gotrue::bad_jwt_message(e))
            }
            (Service::Auth, e) => HttpError::new(
                StatusCode::FORBIDDEN,
                "bad_jwt",
                format!("invalid JWT: {e}"),
            ),
            (_, e) => HttpError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_jwt",
                format!("Invalid JWT: {e}"),
            ),
        }
    }

    /// Whether the client's `Authorization` and `apikey` headers reach the service as sent (a function
    /// builds its own Supabase client from them); the minted token then travels in
    /// [`supactl_common::headers::FORWARDED_JWT_HEADER`].
    pub fn sees_client_credentials(self) -> bool {
        self == Service::Functions
    }

    /// Whether the API key may come in the `apikey` query parameter (browsers cannot set headers on a
    /// WebSocket).
    pub fn key_in_query(self) -> bool {
        self == Service::Realtime
    }

    /// Whether the body is streamed through rather than read whole first (bounded by
    /// [`crate::GatewayConfig::max_body`] unless [`Service::bounds_own_body`]).
    pub fn streams_body(self) -> bool {
        matches!(
            self,
            Service::Functions | Service::Realtime | Service::Storage
        )
    }

    /// Whether the service bounds request bodies itself, so the gateway's `max_body` does not apply:
    /// storage takes objects up to each bucket's `file_size_limit` and its own global maximum, counted
    /// as they stream.
    pub fn bounds_own_body(self) -> bool {
        self == Service::Storage
    }

    /// Whether an in-process service is handed the caller the gateway authenticated (as a request
    /// extension), rather than verifying the minted token again.
    pub fn takes_caller(self) -> bool {
        matches!(self, Service::Rest | Service::Storage)
    }

    /// Whether the service writes links to itself into its answers (a TUS upload's `Location`), so it
    /// is told its public path in [`crate::proxy::FORWARDED_PREFIX`].
    pub fn makes_links(self) -> bool {
        self == Service::Storage
    }

    /// Whether `Connection: upgrade` requests are handed over (WebSockets).
    pub fn upgrades(self) -> bool {
        self == Service::Realtime
    }
}

/// Storage routes served without an API key: public objects, signed download URLs, uploads to a
/// signed upload URL, resumable ones included (their tokens are checked by storage), and TUS's
/// `OPTIONS` discovery.
fn storage_open(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    (read
        && ["/object/public/", "/object/sign/", "/object/info/public/"]
            .iter()
            .any(|p| path.starts_with(p)))
        || (method == Method::PUT && path.starts_with("/object/upload/sign/"))
        || path == "/upload/resumable/sign"
        || path.starts_with("/upload/resumable/sign/")
        || (method == Method::OPTIONS && path.starts_with("/upload/resumable"))
}

/// Whether an `OPTIONS` request is TUS's discovery of a storage upload server (forwarded to storage)
/// rather than a browser's CORS preflight (answered by the gateway).
pub fn tus_discovery(method: &Method, headers: &http::HeaderMap, path: &str) -> bool {
    method == Method::OPTIONS
        && !headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        && path.contains("/storage/v1/upload/resumable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(
            Service::find("/rest/v1/todos"),
            Some((Service::Rest, "/todos"))
        );
        assert_eq!(Service::find("/rest/v1"), Some((Service::Rest, "/")));
        assert_eq!(Service::find("/rest/v1x/todos"), None);
        assert_eq!(
            Service::find("/functions/v1/hello/a?b"),
            Some((Service::Functions, "/hello/a?b"))
        );
        assert_eq!(
            Service::find("/realtime/v1/websocket"),
            Some((Service::Realtime, "/websocket"))
        );
        assert_eq!(
            Service::find("/storage/v1/object"),
            Some((Service::Storage, "/object"))
        );
    }

    #[test]
    fn a_bad_user_token_is_refused_in_each_services_words() {
        let e = ForwardedError::Invalid(supactl_common::jwt::JwtError::Signature);
        let auth = Service::Auth.bad_user_jwt(&e);
        assert_eq!(
            (auth.status, auth.body.code.as_str(), auth.body.message.as_str()),
            (
                StatusCode::FORBIDDEN,
                "bad_jwt",
                "invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid"
            )
        );
        let rest = Service::Rest.bad_user_jwt(&e);
        assert_eq!(
            (rest.status, rest.body.code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_jwt")
        );
        assert_eq!(Service::Auth.error_shape(), ErrorShape::GoTrue);
        assert_eq!(Service::Rest.error_shape(), ErrorShape::PostgRest);
    }

    #[test]
    fn only_browser_links_and_functions_pass_without_a_key() {
        assert_eq!(
            Service::Auth.access(&Method::GET, "/verify"),
            Access::AnonWithoutCredentials
        );
        assert_eq!(
            Service::Auth.access(&Method::GET, "/.well-known/jwks.json"),
            Access::AnonWithoutCredentials
        );
        for path in ["/authorize", "/callback"] {
            assert_eq!(
                Service::Auth.access(&Method::GET, path),
                Access::AnonWithoutCredentials
            );
        }
        assert_eq!(
            Service::Auth.access(&Method::POST, "/callback"),
            Access::AnonWithoutCredentials
        );
        assert_eq!(
            Service::Auth.access(&Method::POST, "/authorize"),
            Access::Required
        );
        assert_eq!(
            Service::Auth.access(&Method::POST, "/verify"),
            Access::Required
        );
        assert_eq!(
            Service::Rest.access(&Method::GET, "/verify"),
            Access::Required
        );
        assert_eq!(
            Service::Functions.access(&Method::POST, "/x"),
            Access::Optional
        );
        assert_eq!(
            Service::Realtime.access(&Method::GET, "/websocket"),
            Access::Required
        );
    }

    #[test]
    fn tus_discovery_is_forwarded_and_preflights_are_not() {
        let path = "/p/ref/storage/v1/upload/resumable";
        let mut h = http::HeaderMap::new();
        assert!(tus_discovery(&Method::OPTIONS, &h, path));
        assert!(!tus_discovery(&Method::POST, &h, path));
        assert!(!tus_discovery(&Method::OPTIONS, &h, "/p/ref/rest/v1/t"));
        h.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            "PATCH".parse().unwrap(),
        );
        assert!(!tus_discovery(&Method::OPTIONS, &h, path));
    }

    #[test]
    fn only_public_and_signed_storage_urls_pass_without_a_key() {
        for (m, p) in [
            (Method::GET, "/object/public/b/x"),
            (Method::HEAD, "/object/sign/b/x"),
            (Method::PUT, "/object/upload/sign/b/x"),
            (Method::POST, "/upload/resumable/sign"),
            (Method::PATCH, "/upload/resumable/sign/0a"),
            (Method::OPTIONS, "/upload/resumable"),
        ] {
            assert_eq!(Service::Storage.access(&m, p), Access::Optional, "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/object/b/x"),
            (Method::POST, "/object/sign/b/x"),
            (Method::POST, "/object/upload/sign/b/x"),
            (Method::GET, "/bucket"),
            (Method::POST, "/upload/resumable"),
            (Method::PATCH, "/upload/resumable/0a"),
            (Method::POST, "/upload/resumable/signx"),
        ] {
            assert_eq!(Service::Storage.access(&m, p), Access::Required, "{m} {p}");
        }
    }
}
