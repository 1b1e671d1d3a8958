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
    pub const ALL: [Service; 4] = [
        Service::Rest,
        Service::Auth,
        Service::Functions,
        Service::Realtime,
    ];

    /// The route class the access log and metrics name.
    pub fn class(self) -> &'static str {
        match self {
            Service::Rest => "rest",
            Service::Auth => "auth",
            Service::Functions => "functions",
            Service::Realtime => "realtime",
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Service::Rest => "/rest/v1",
            Service::Auth => "/auth/v1",
            Service::Functions => "/functions/v1",
            Service::Realtime => "/realtime/v1",
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
    /// [`crate::GatewayConfig::max_body`] either way).
    pub fn streams_body(self) -> bool {
        matches!(self, Service::Functions | Service::Realtime)
    }

    /// Whether `Connection: upgrade` requests are handed over (WebSockets).
    pub fn upgrades(self) -> bool {
        self == Service::Realtime
    }
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
        assert_eq!(Service::find("/storage/v1/object"), None);
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
}
