//! Wire types of the tenant-manager's internal config endpoint, read by gateway and REST.
//! They carry secrets: they travel only between platform services, authenticated with the service token,
//! and their `Debug` output leaves the secrets out.

use crate::keys::{KeyType, Role};
use crate::pg_tls::PgTls;
use crate::redact::{Many, Redacted};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Project statuses, as the Supabase management API names them.
pub mod status {
    pub const ACTIVE: &str = "ACTIVE_HEALTHY";
    pub const COMING_UP: &str = "COMING_UP";
    pub const GOING_DOWN: &str = "GOING_DOWN";
    pub const PAUSED: &str = "PAUSED";
}

/// `{"data": …}`, the envelope of every tenant-manager response.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// What an API key resolves to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub project_ref: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub role: Role,
}

/// How to reach a project's database as its own login role.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DbConfig {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: String,
    /// TLS to the project's worker, as the worker was registered (`sslmode`, `ssl_root_cert`; absent in
    /// a config from before TLS: `disable`).
    #[serde(flatten)]
    pub tls: PgTls,
}

/// Everything a data-plane service needs to serve a project.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectConfig {
    pub project_ref: String,
    pub status: String,
    /// Secrets that verify tokens, the signing (current) one first.
    pub jwt_secrets: Vec<String>,
    pub db: DbConfig,
    /// The project's REST Lambda Function URL (`AWS_IAM` auth) when REST runs on Lambda for it; the
    /// gateway then forwards `/rest/v1` there, signed with SigV4. None: REST is served in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_function_url: Option<String>,
    /// Limits the data plane enforces on this project's requests.
    #[serde(default)]
    pub limits: Limits,
}

/// Per-project limits, set by the platform's admin API and carried to the data plane in the project's
/// config. They live in the platform database, never in role settings of the cluster-wide `anon` /
/// `authenticated` / `service_role` roles, which any project on the same server could change.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Limits {
    /// `statement_timeout` of requests running as `anon`, in milliseconds (0: none).
    pub anon_statement_timeout_ms: u32,
    /// The same for `authenticated`.
    pub authenticated_statement_timeout_ms: u32,
    /// The same for `service_role`.
    pub service_role_statement_timeout_ms: u32,
}

impl Default for Limits {
    /// Supabase's defaults: anon 3 s, authenticated 8 s, service_role the authenticator's 8 s.
    fn default() -> Limits {
        Limits {
            anon_statement_timeout_ms: 3_000,
            authenticated_statement_timeout_ms: 8_000,
            service_role_statement_timeout_ms: 8_000,
        }
    }
}

impl Limits {
    /// The statement timeout of requests running as `role`, in milliseconds (0: none).
    pub fn statement_timeout_ms(&self, role: Role) -> u32 {
        match role {
            Role::Anon => self.anon_statement_timeout_ms,
            Role::Authenticated => self.authenticated_statement_timeout_ms,
            Role::ServiceRole => self.service_role_statement_timeout_ms,
        }
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &Redacted)
            .finish()
    }
}

impl fmt::Debug for ProjectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectConfig")
            .field("project_ref", &self.project_ref)
            .field("status", &self.status)
            .field("jwt_secrets", &Many(self.jwt_secrets.len()))
            .field("db", &self.db)
            .field("rest_function_url", &self.rest_function_url)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ProjectConfig {
    /// The secret new tokens are signed with.
    pub fn signing_secret(&self) -> &[u8] {
        self.jwt_secrets
            .first()
            .map(|s| s.as_bytes())
            .unwrap_or_default()
    }

    pub fn verification_secrets(&self) -> Vec<&[u8]> {
        self.jwt_secrets.iter().map(|s| s.as_bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg_tls::SslMode;

    #[test]
    fn debug_output_carries_no_secret() {
        let config = ProjectConfig {
            project_ref: "proj".into(),
            status: status::ACTIVE.into(),
            jwt_secrets: vec![
                "jwt-secret-current-0001".into(),
                "jwt-secret-old-0002".into(),
            ],
            db: DbConfig {
                host: "127.0.0.1".into(),
                port: 5432,
                dbname: "project_proj".into(),
                user: "authenticator_proj".into(),
                password: "db-password-0003".into(),
                tls: PgTls::disabled(),
            },
            rest_function_url: None,
            limits: Limits::default(),
        };
        for text in [format!("{config:?}"), format!("{config:#?}")] {
            for secret in [
                "jwt-secret-current-0001",
                "jwt-secret-old-0002",
                "db-password-0003",
            ] {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(
                text.contains("authenticator_proj") && text.contains("<redacted>"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_db_config_from_before_tls_still_parses_as_plain_tcp() {
        let old = r#"{"host":"h","port":5432,"dbname":"d","user":"u","password":"p"}"#;
        let db: DbConfig = serde_json::from_str(old).unwrap();
        assert_eq!(db.tls, PgTls::disabled());
        let db = DbConfig {
            tls: PgTls {
                sslmode: SslMode::VerifyFull,
                ssl_root_cert: None,
            },
            ..db
        };
        let v = serde_json::to_value(&db).unwrap();
        assert_eq!(v["sslmode"], "verify-full");
        assert_eq!(serde_json::from_value::<DbConfig>(v).unwrap(), db);
    }
}
