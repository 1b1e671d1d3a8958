//! Who a socket or a channel acts as: the role and claims of a verified token.
//!
//! The gateway authenticates the API key (or user JWT) and forwards the request with a token it
//! minted for the project; realtime verifies it again where it crosses the process boundary, with
//! the pieces every service shares ([`supactl_common::jwt::verify`] with the project's secrets,
//! [`supactl_common::claims::role`]). A channel's own `access_token` (a user JWT from the project's
//! auth) goes through the same check, without the `ref` the gateway's tokens carry.

use serde_json::{Map, Value};
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;
use supactl_common::{claims, jwt};

/// A verified caller.
#[derive(Clone, Debug)]
pub struct Identity {
    pub role: Role,
    pub claims: Map<String, Value>,
}

/// Whether the token must name the project in its `ref` claim (the gateway's tokens do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefClaim {
    Required,
    Optional,
}

impl Identity {
    /// Verifies `token` with the project's secrets; the error text is safe to show the client.
    pub fn verify(
        token: &str,
        project: &ProjectConfig,
        ref_claim: RefClaim,
    ) -> Result<Identity, String> {
        let claims = jwt::verify(token, &project.verification_secrets(), jwt::now())
            .map_err(|e| e.to_string())?;
        let named = claims.get("ref").and_then(Value::as_str);
        if ref_claim == RefClaim::Required && named != Some(project.project_ref.as_str()) {
            return Err("token issued for another project".into());
        }
        let role = claims::role(&claims).map_err(|e| e.to_string())?;
        Ok(Identity { role, claims })
    }

    /// The token's `exp` (unix seconds), if it has one.
    pub fn expires_at(&self) -> Option<i64> {
        self.claims.get("exp").and_then(Value::as_i64)
    }
}
