//! Who a socket or a channel acts as: the role and claims of a verified token.
//!
//! The gateway authenticates the API key (or user JWT) and forwards the request with a token it
//! minted for the project; realtime verifies it again where it crosses the process boundary, with
//! the check every service shares ([`forwarded::verify`]). A channel's own `access_token` (a user JWT
//! from the project's auth) goes through the same check, without the `ref` the gateway's tokens carry.

use serde_json::{Map, Value};
use supactl_common::forwarded::{self, RefRule};
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;

/// A verified caller.
#[derive(Clone, Debug)]
pub struct Identity {
    pub role: Role,
    pub claims: Map<String, Value>,
}

impl Identity {
    /// Verifies `token` with the project's secrets ([`forwarded::verify`]); the error text is safe to
    /// show the client.
    pub fn verify(token: &str, project: &ProjectConfig, rule: RefRule) -> Result<Identity, String> {
        let verified = forwarded::verify(project, token, rule).map_err(|e| e.to_string())?;
        Ok(Identity {
            role: verified.role,
            claims: verified.claims.into_map(),
        })
    }

    /// The token's `exp` (unix seconds), if it has one.
    pub fn expires_at(&self) -> Option<i64> {
        self.claims.get("exp").and_then(Value::as_i64)
    }
}
