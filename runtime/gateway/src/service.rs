//! The services behind the gateway and what each needs of a request: its path prefix, whether it may
//! be called without credentials, whether the client's own credentials reach it, whether its body is
//! buffered or streamed, whether it takes WebSocket upgrades. Adding a service is one variant here and
//! its upstream in the route table ([`crate::GatewayBuilder::route`]).

use http::Method;

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
            // Email links (`GET /auth/v1/verify`) are opened by browsers, which send no API key;
            // Supabase leaves that route open too.
            Service::Auth if method == Method::GET && path == "/verify" => {
                Access::AnonWithoutCredentials
            }
            Service::Functions => Access::Optional,
            // Public objects and signed URLs are opened by browsers and shared links, with no API key;
            // storage serves them without a caller (and refuses every other route without one).
            Service::Storage if storage_open(method, path) => Access::Optional,
            _ => Access::Required,
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

    /// Whether `Connection: upgrade` requests are handed over (WebSockets).
    pub fn upgrades(self) -> bool {
        self == Service::Realtime
    }
}

/// Storage routes served without an API key: public objects, signed download URLs and uploads to a
/// signed upload URL (their tokens are checked by storage).
fn storage_open(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    (read
        && ["/object/public/", "/object/sign/", "/object/info/public/"]
            .iter()
            .any(|p| path.starts_with(p)))
        || (method == Method::PUT && path.starts_with("/object/upload/sign/"))
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
    fn only_verify_links_and_functions_pass_without_a_key() {
        assert_eq!(
            Service::Auth.access(&Method::GET, "/verify"),
            Access::AnonWithoutCredentials
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
    fn only_public_and_signed_storage_urls_pass_without_a_key() {
        for (m, p) in [
            (Method::GET, "/object/public/b/x"),
            (Method::HEAD, "/object/sign/b/x"),
            (Method::PUT, "/object/upload/sign/b/x"),
        ] {
            assert_eq!(Service::Storage.access(&m, p), Access::Optional, "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/object/b/x"),
            (Method::POST, "/object/sign/b/x"),
            (Method::POST, "/object/upload/sign/b/x"),
            (Method::GET, "/bucket"),
        ] {
            assert_eq!(Service::Storage.access(&m, p), Access::Required, "{m} {p}");
        }
    }
}
