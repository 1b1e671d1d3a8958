//! The caller's role from a verified token's claims: the one reading the gateway, REST and auth share,
//! so a token that one of them refuses is refused by all.
//!
//! `role` absent: `authenticated` (a user's token). A known role name: that role. Anything else (a
//! number, a list, an object, null, or a name that is not `anon`, `authenticated` or `service_role`,
//! such as `postgres`) is refused, never read as a default: a correctly signed token with a role we
//! cannot read says nothing we may trust about who is calling.

use crate::keys::Role;
use serde_json::{Map, Value};

/// Why the claims name no role we serve. The text is safe to show to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleError {
    #[error("the role claim must be a string")]
    NotAString,
    #[error("the role claim must be anon, authenticated or service_role")]
    Unknown,
}

/// The role a request with these (verified) claims runs as.
pub fn role(claims: &Map<String, Value>) -> Result<Role, RoleError> {
    match claims.get("role") {
        None => Ok(Role::Authenticated),
        Some(Value::String(name)) => Role::parse(name).ok_or(RoleError::Unknown),
        Some(_) => Err(RoleError::NotAString),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role_of(v: Value) -> Result<Role, RoleError> {
        role(v.as_object().unwrap())
    }

    #[test]
    fn absent_is_authenticated_and_known_names_are_read() {
        assert_eq!(role_of(json!({"sub": "u"})), Ok(Role::Authenticated));
        assert_eq!(role_of(json!({"role": "anon"})), Ok(Role::Anon));
        assert_eq!(
            role_of(json!({"role": "authenticated"})),
            Ok(Role::Authenticated)
        );
        assert_eq!(
            role_of(json!({"role": "service_role"})),
            Ok(Role::ServiceRole)
        );
    }

    #[test]
    fn unreadable_roles_are_refused() {
        for bad in [
            json!(123),
            json!(["service_role"]),
            json!({"x": 1}),
            json!(null),
            json!(true),
        ] {
            assert_eq!(
                role_of(json!({ "role": bad })),
                Err(RoleError::NotAString),
                "{bad}"
            );
        }
        for bad in ["postgres", "", "Service_Role", "supabase_admin", "anon "] {
            assert_eq!(role_of(json!({ "role": bad })), Err(RoleError::Unknown));
        }
    }
}
