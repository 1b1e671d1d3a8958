//! Request header helpers every service needs the same way.

use http::{header, HeaderMap};

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
}
