//! Per-project limits: the statement timeout of each API role and the connection limit of the project's
//! login role.
//!
//! They are stored as overrides in `supactl.projects.limits` (jsonb; a missing field means the platform
//! default) and never as role settings of the cluster-wide `anon` / `authenticated` / `service_role` roles:
//! those roles are shared by every project on a server, and PostgreSQL lets a role change its own settings
//! (`ALTER ROLE anon SET …` from inside any project), so nothing may depend on them. The data plane gets the
//! timeouts in the project's config and sets them on every request; the connection limit is the login role's
//! `CONNECTION LIMIT`, which only the worker's admin can change.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use supactl_common::wire::Limits;

/// Longest statement timeout that may be configured (the gateway's request deadline is shorter anyway).
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;
/// Highest connection limit that may be configured.
const MAX_CONNECTIONS: i64 = 10_000;

/// The overrides stored for a project; `None` takes the platform default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_statement_timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_statement_timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role_statement_timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<u32>,
}

impl Overrides {
    /// The stored form (unknown or malformed content reads as no overrides: the defaults apply).
    pub fn from_stored(v: &Value) -> Overrides {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn to_stored(&self) -> Value {
        serde_json::to_value(self).expect("overrides serialise")
    }

    /// The statement timeouts the data plane enforces.
    pub fn effective(&self) -> Limits {
        let d = Limits::default();
        Limits {
            anon_statement_timeout_ms: self
                .anon_statement_timeout_ms
                .unwrap_or(d.anon_statement_timeout_ms),
            authenticated_statement_timeout_ms: self
                .authenticated_statement_timeout_ms
                .unwrap_or(d.authenticated_statement_timeout_ms),
            service_role_statement_timeout_ms: self
                .service_role_statement_timeout_ms
                .unwrap_or(d.service_role_statement_timeout_ms),
        }
    }

    /// The login role's connection limit, given the platform default.
    pub fn connection_limit(&self, default: u32) -> u32 {
        self.connection_limit.unwrap_or(default)
    }

    /// The effective limits as the admin API shows them, with the overridden fields named.
    pub fn to_json(&self, default_connection_limit: u32) -> Value {
        let e = self.effective();
        let mut overridden = Vec::new();
        if let Value::Object(m) = self.to_stored() {
            overridden.extend(m.keys().cloned());
        }
        json!({
            "anon_statement_timeout_ms": e.anon_statement_timeout_ms,
            "authenticated_statement_timeout_ms": e.authenticated_statement_timeout_ms,
            "service_role_statement_timeout_ms": e.service_role_statement_timeout_ms,
            "connection_limit": self.connection_limit(default_connection_limit),
            "overridden": overridden,
        })
    }

    /// Applies a `PATCH` body's `limits` object: a number sets a field, `null` returns it to the default,
    /// an absent field is left as it is. Unknown fields and out-of-range values are refused by name.
    pub fn patch(&self, body: &Value) -> Result<Overrides, ApiError> {
        let Value::Object(fields) = body else {
            return Err(ApiError::BadRequest("limits: must be an object".into()));
        };
        let mut out = self.clone();
        for (name, v) in fields {
            let slot = match name.as_str() {
                "anon_statement_timeout_ms" => &mut out.anon_statement_timeout_ms,
                "authenticated_statement_timeout_ms" => &mut out.authenticated_statement_timeout_ms,
                "service_role_statement_timeout_ms" => &mut out.service_role_statement_timeout_ms,
                "connection_limit" => &mut out.connection_limit,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "limits.{other}: unknown field (expected anon_statement_timeout_ms, \
                         authenticated_statement_timeout_ms, service_role_statement_timeout_ms or \
                         connection_limit)"
                    )))
                }
            };
            *slot = match v {
                Value::Null => None,
                v => Some(bounded(name, v)?),
            };
        }
        Ok(out)
    }
}

/// A field's value, checked against its range.
fn bounded(name: &str, v: &Value) -> Result<u32, ApiError> {
    let (min, max) = if name == "connection_limit" {
        (1, MAX_CONNECTIONS)
    } else {
        (0, MAX_TIMEOUT_MS as i64)
    };
    v.as_i64()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "limits.{name}: must be an integer from {min} to {max} (or null for the default)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_reset() {
        let none = Overrides::default();
        assert_eq!(none.effective(), Limits::default());
        assert_eq!(none.connection_limit(50), 50);
        let o = none
            .patch(&json!({"anon_statement_timeout_ms": 1500, "connection_limit": 7}))
            .unwrap();
        assert_eq!(o.effective().anon_statement_timeout_ms, 1500);
        assert_eq!(o.effective().authenticated_statement_timeout_ms, 8000);
        assert_eq!(o.connection_limit(50), 7);
        assert_eq!(
            o.to_json(50)["overridden"],
            json!(["anon_statement_timeout_ms", "connection_limit"])
        );
        let back = Overrides::from_stored(&o.to_stored());
        assert_eq!(back, o);
        let reset = o.patch(&json!({"connection_limit": null})).unwrap();
        assert_eq!(reset.connection_limit(50), 50);
        assert_eq!(reset.anon_statement_timeout_ms, Some(1500));
    }

    #[test]
    fn bad_values_are_named() {
        let o = Overrides::default();
        for (body, needle) in [
            (json!({"connection_limit": 0}), "limits.connection_limit"),
            (json!({"connection_limit": "5"}), "limits.connection_limit"),
            (
                json!({"anon_statement_timeout_ms": -1}),
                "limits.anon_statement_timeout_ms",
            ),
            (
                json!({"anon_statement_timeout_ms": 1.5}),
                "limits.anon_statement_timeout_ms",
            ),
            (json!({"max_rows": 5}), "limits.max_rows: unknown field"),
            (json!([1]), "limits: must be an object"),
        ] {
            let e = o.patch(&body).unwrap_err().to_string();
            assert!(e.contains(needle), "{body}: {e}");
        }
        assert_eq!(
            Overrides::from_stored(&json!({"connection_limit": "junk"})),
            Overrides::default()
        );
    }
}
