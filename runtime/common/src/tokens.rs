//! Service credentials of the internal config endpoint.
//!
//! The platform's service token unlocks every project's config (database credentials, JWT secrets), so it
//! never leaves the platform's own services. A project's REST Lambda gets a **project token** instead:
//! `hex(HMAC-SHA256(service token, "rest-lambda:" + ref))`. The tenant-manager derives it again to check
//! it and accepts it for that one project's config only, so a token read out of a function's environment
//! (anyone with `lambda:GetFunctionConfiguration` can) reveals that project and nothing else. Rotating the
//! service token rotates every project token with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a project token is derived for (a domain separator, so the same service token can key other
/// derivations later without collisions).
const PURPOSE: &str = "rest-lambda:";

/// The token that lets project `project_ref`'s REST function read its own config.
pub fn project_token(service_token: &str, project_ref: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(service_token.as_bytes())
        .expect("hmac accepts any key length");
    mac.update(PURPOSE.as_bytes());
    mac.update(project_ref.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_per_project_and_per_service_token() {
        let a = project_token("service-token", "alpha");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, project_token("service-token", "alpha"));
        assert_ne!(a, project_token("service-token", "bravo"));
        assert_ne!(a, project_token("other-token", "alpha"));
        assert!(!a.contains("service-token"));
        // Known answer, computed independently (Python: hmac.new(b"key", b"rest-lambda:abc",
        // hashlib.sha256).hexdigest()); bench/lambda_runtime_api.py derives it the same way.
        assert_eq!(
            project_token("key", "abc"),
            "e4f823943dd50901899b138127b0fec3983b43a5aa36f94f5c14704f5da6769d"
        );
    }
}
