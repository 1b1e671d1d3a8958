//! Request header helpers every service needs the same way.

use http::{header, HeaderMap, HeaderName};

/// The header naming the project a request is for, set by the gateway (any client-sent value is
/// dropped) and read by every service behind it.
pub const PROJECT_HEADER: &str = "x-supactl-project";

/// The client's address as the gateway saw it (any client-sent value is dropped).
pub const CLIENT_IP_HEADER: &str = "x-supactl-client-ip";

/// The header carrying the gateway's minted JWT where `Authorization` is taken by something else: a
/// project's REST Lambda Function URL (its `AWS_IAM` auth consumes `Authorization` for the SigV4
/// signature) and Edge Functions (which see the client's own `Authorization`). The gateway drops any
/// client-sent value; those services read the JWT from here only.
pub const FORWARDED_JWT_HEADER: &str = "x-supactl-authorization";

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whether `name` describes one connection rather than the message (RFC 9110 §7.6.1, plus the
/// `Keep-Alive` and `Proxy-*` headers proxies also drop).
pub fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Removes every header for which `drop` holds, scanning the names once (most messages lose none or
/// a few, so nothing is rebuilt).
pub fn remove_where(h: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    let names: Vec<HeaderName> = h.keys().filter(|n| drop(n)).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "bearer abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn only_connection_headers_are_hop_by_hop() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
            ("x-custom", "1"),
            ("upgrade", "websocket"),
        ] {
            h.append(HeaderName::from_static(n), v.parse().unwrap());
        }
        remove_where(&mut h, hop_by_hop);
        let left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["content-type", "x-custom"]);
    }
}
