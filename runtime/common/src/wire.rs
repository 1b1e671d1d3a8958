//! Wire types of the tenant-manager's internal config endpoint, read by gateway and REST.
//! They carry secrets: they travel only between platform services, authenticated with the service token,
//! and their `Debug` output leaves the secrets out.

use crate::jwk::{self, PublicKey, SigningKey};
use crate::keys::{KeyType, Role};
use crate::pg_tls::PgTls;
use crate::redact::{Many, Redacted};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, OnceLock};

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
    /// The project's asymmetric signing keys (standby, current, previous within its grace period):
    /// auth signs access tokens with the current one, when there is one, instead of the HS256 secret;
    /// every service verifies tokens naming any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<AsymmetricKey>,
    /// The project's data key (hex), derived by the tenant-manager from the platform's encryption key:
    /// auth seals what it must store of a user's secrets (TOTP secrets) with it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_key: String,
    /// `signing_keys` parsed, once per config.
    #[serde(skip)]
    pub parsed_keys: ParsedKeys,
}

/// One asymmetric signing key of a project, as the data plane receives it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AsymmetricKey {
    /// The key's id, named in the `kid` header of the tokens it signs.
    pub kid: String,
    pub alg: jwk::Alg,
    /// `standby`, `current` or `previous`.
    pub status: String,
    /// The private key: a PKCS#8 document in base64 ([`jwk::generate`]).
    pub private_key: String,
}

/// A config's asymmetric keys parsed (lazily, once): the current one's signer, and every key's public half.
#[derive(Clone, Default)]
pub struct ParsedKeys(OnceLock<Arc<Parsed>>);

struct Parsed {
    signer: Option<SigningKey>,
    public: Vec<PublicKey>,
}

impl PartialEq for ParsedKeys {
    /// A cache: equal configs are equal whatever has been parsed yet.
    fn eq(&self, _: &ParsedKeys) -> bool {
        true
    }
}
impl Eq for ParsedKeys {}

impl fmt::Debug for AsymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsymmetricKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .field("private_key", &Redacted)
            .finish()
    }
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
            .field("signing_keys", &self.signing_keys)
            .field("data_key", &Redacted)
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

    /// The key auth signs access tokens with when the project chose an asymmetric one (its current
    /// key); `None`: the HS256 [`signing_secret`](Self::signing_secret).
    pub fn token_signer(&self) -> Option<&SigningKey> {
        self.parsed().signer.as_ref()
    }

    /// The public halves of the project's asymmetric keys (what verifies ES256/RS256 tokens and
    /// what its JWKS lists).
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.parsed().public
    }

    fn parsed(&self) -> &Parsed {
        self.parsed_keys.0.get_or_init(|| {
            let mut parsed = Parsed {
                signer: None,
                public: Vec::new(),
            };
            for k in &self.signing_keys {
                match SigningKey::from_stored(&k.kid, k.alg, &k.private_key) {
                    Ok(key) => {
                        parsed.public.push(key.public());
                        if k.status == "current" && parsed.signer.is_none() {
                            parsed.signer = Some(key);
                        }
                    }
                    Err(_) => tracing::error!(
                        project = %self.project_ref,
                        kid = %k.kid,
                        "unreadable signing key skipped"
                    ),
                }
            }
            Arc::new(parsed)
        })
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
            signing_keys: vec![AsymmetricKey {
                kid: "k1".into(),
                alg: jwk::Alg::Es256,
                status: "current".into(),
                private_key: "private-key-0004".into(),
            }],
            data_key: "data-key-0005".into(),
            parsed_keys: ParsedKeys::default(),
        };
        for text in [format!("{config:?}"), format!("{config:#?}")] {
            for secret in [
                "jwt-secret-current-0001",
                "jwt-secret-old-0002",
                "db-password-0003",
                "private-key-0004",
                "data-key-0005",
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
    fn the_current_asymmetric_key_signs_and_all_verify() {
        let key = |kid: &str, alg, status: &str| AsymmetricKey {
            kid: kid.into(),
            alg,
            status: status.into(),
            private_key: jwk::generate(alg).unwrap(),
        };
        let json = serde_json::json!({
            "project_ref": "p", "status": status::ACTIVE, "jwt_secrets": ["s"],
            "db": {"host": "h", "port": 5432, "dbname": "d", "user": "u", "password": "p"},
            "signing_keys": [key("a", jwk::Alg::Es256, "standby"), key("b", jwk::Alg::Rs256, "current"),
                             key("c", jwk::Alg::Es256, "previous")],
        });
        let config: ProjectConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.token_signer().unwrap().kid(), "b");
        let kids: Vec<&str> = config
            .public_keys()
            .iter()
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(kids, ["a", "b", "c"]);
        // A config from before signing keys: HS256 only.
        let old: ProjectConfig = serde_json::from_str(
            r#"{"project_ref":"p","status":"x","jwt_secrets":["s"],
                "db":{"host":"h","port":1,"dbname":"d","user":"u","password":"p"}}"#,
        )
        .unwrap();
        assert!(old.token_signer().is_none() && old.public_keys().is_empty());
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
