//! Who is calling, as the gateway forwarded it: the one check every service behind the gateway runs on
//! what crossed a process boundary (defence in depth), and the caller it yields.
//!
//! The gateway names the project in [`PROJECT_HEADER`](crate::headers::PROJECT_HEADER) and proves the
//! caller with a short-lived JWT it minted with that project's signing secret, sent as
//! `Authorization: Bearer`. [`from_forwarded`] accepts the token only when it verifies with one of the
//! project's secrets, names this project in `ref`, and carries a role the platform serves (read by
//! [`crate::claims::role`]). The gateway's side is [`mint`], so both ends of the format live here. In
//! process, the gateway instead attaches the [`Caller`] it has just authenticated to the request as an
//! extension, which no client can send.

use crate::claims::{self, RoleError};
use crate::headers::bearer;
use crate::jwt::{self, JwtError};
use crate::keys::Role;
use crate::wire::ProjectConfig;
use http::HeaderMap;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Everything resolved about the caller before a service's request proper. The in-process gateway,
/// which has just authenticated the caller and minted its token, attaches one to the request as an
/// extension (which no client can send), so the token is not verified and parsed a second time.
#[derive(Clone)]
pub struct Caller {
    pub project: Arc<ProjectConfig>,
    pub project_ref: String,
    pub role: Role,
    /// The minted token's claims, as JSON (`request.jwt.claims`).
    pub claims: String,
}

/// Claims the gateway sets itself; a user token cannot override them.
const PROTECTED_CLAIMS: &[&str] = &["iss", "ref", "role", "iat", "exp"];

/// The gateway's token for a request to `project` running as `role`: the user's claims (none for an API
/// key alone) with `iss`, `ref`, `role`, `iat` and `exp` set here, valid for `ttl_secs` from `now` and
/// signed with the project's signing secret. Returns the token and its claims as JSON (what the
/// in-process [`Caller`] carries).
pub fn mint(
    project: &ProjectConfig,
    role: Role,
    mut claims: Map<String, Value>,
    now: i64,
    ttl_secs: i64,
) -> (String, String) {
    for k in PROTECTED_CLAIMS {
        claims.remove(*k);
    }
    claims.insert("iss".into(), Value::from("supactl"));
    claims.insert("ref".into(), Value::from(project.project_ref.as_str()));
    claims.insert("role".into(), Value::from(role.as_str()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + ttl_secs));
    let claims = Value::Object(claims).to_string();
    let token = jwt::sign_json(claims.as_bytes(), project.signing_secret());
    (token, claims)
}

/// The verified claims of a forwarded token, read by name here only.
#[derive(Debug, Clone)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// `sub`: the user a user's token speaks for (absent or empty for the anon and service keys).
    pub fn subject(&self) -> Option<&str> {
        self.text("sub").filter(|s| !s.is_empty())
    }

    /// `session_id`: the auth session a user's access token belongs to.
    pub fn session_id(&self) -> Option<&str> {
        self.text("session_id")
    }

    /// The claims as the JSON object PostgreSQL reads (`request.jwt.claims`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a JSON map always serialises")
    }

    /// `exp`: when the token expires (unix seconds).
    pub fn expires_at(&self) -> Option<i64> {
        self.0.get("exp").and_then(Value::as_i64)
    }

    /// The claims as a map (what `mint` takes and what realtime groups subscribers by).
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

/// A forwarded token that passed [`from_forwarded`].
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub role: Role,
    pub claims: Claims,
}

/// Why a forwarded token is refused. Each service words it in its own error shape; the texts here are
/// safe to show to the client.
#[derive(Debug, thiserror::Error)]
pub enum ForwardedError {
    #[error("no bearer token")]
    NoToken,
    #[error("{0}")]
    Invalid(JwtError),
    #[error("issued for another project")]
    OtherProject,
    #[error("{0}")]
    Role(RoleError),
}

/// Checks the token the gateway forwarded for `project`: signature and expiry with the project's
/// secrets, then `ref` naming the project, then a role the platform serves.
pub fn from_forwarded(
    project: &ProjectConfig,
    headers: &HeaderMap,
) -> Result<Forwarded, ForwardedError> {
    let token = bearer(headers).ok_or(ForwardedError::NoToken)?;
    verify(project, token, RefRule::MustName)
}

/// What a token's `ref` claim must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefRule {
    /// It must name the project (the gateway's minted tokens always do).
    MustName,
    /// It may be absent (a user's own access token, as the project's auth issues it).
    Optional,
}

/// Checks a token of `project`: signature and expiry with the project's secrets or, for an ES256/RS256
/// token, the asymmetric key its `kid` names; `ref` as `rule` says,
/// then a role the platform serves. [`from_forwarded`] is this with [`RefRule::MustName`]; the
/// gateway and realtime check a user's own token with [`RefRule::Optional`].
pub fn verify(
    project: &ProjectConfig,
    token: &str,
    rule: RefRule,
) -> Result<Forwarded, ForwardedError> {
    let keys = jwt::Keys {
        secrets: &project.verification_secrets(),
        public: project.public_keys(),
    };
    let claims = jwt::verify_with(token, keys, jwt::now()).map_err(ForwardedError::Invalid)?;
    let named = claims.get("ref").and_then(Value::as_str);
    if rule == RefRule::MustName && named != Some(project.project_ref.as_str()) {
        return Err(ForwardedError::OtherProject);
    }
    let role = claims::role(&claims).map_err(ForwardedError::Role)?;
    Ok(Forwarded {
        role,
        claims: Claims(claims),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg_tls::PgTls;
    use crate::wire::{status, DbConfig, Limits};
    use serde_json::json;

    fn project(secrets: &[&str]) -> ProjectConfig {
        ProjectConfig {
            project_ref: "proj".into(),
            status: status::ACTIVE.into(),
            jwt_secrets: secrets.iter().map(|s| s.to_string()).collect(),
            db: DbConfig {
                host: "127.0.0.1".into(),
                port: 5432,
                dbname: "project_proj".into(),
                user: "authenticator_proj".into(),
                password: "p".into(),
                tls: PgTls::disabled(),
            },
            rest_function_url: None,
            limits: Limits::default(),
            signing_keys: Vec::new(),
            data_key: String::new(),
            parsed_keys: Default::default(),
        }
    }

    fn headers(claims: Value, secret: &str) -> HeaderMap {
        let mut claims = claims.as_object().unwrap().clone();
        claims.insert("exp".into(), json!(jwt::now() + 60));
        let token = jwt::sign(&claims, secret.as_bytes());
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_token_for_this_project_yields_its_role_and_claims() {
        let p = project(&["current", "previous"]);
        let f = from_forwarded(
            &p,
            &headers(
                json!({"ref": "proj", "role": "authenticated", "sub": "u1", "session_id": "s1"}),
                "previous",
            ),
        )
        .unwrap();
        assert_eq!(f.role, Role::Authenticated);
        assert_eq!(
            (f.claims.subject(), f.claims.session_id()),
            (Some("u1"), Some("s1"))
        );
        let back: Value = serde_json::from_str(&f.claims.to_json()).unwrap();
        assert_eq!(back["sub"], "u1");
        let anon = from_forwarded(
            &p,
            &headers(json!({"ref": "proj", "role": "anon", "sub": ""}), "current"),
        )
        .unwrap();
        assert_eq!((anon.role, anon.claims.subject()), (Role::Anon, None));
    }

    #[test]
    fn a_minted_token_passes_and_user_claims_cannot_override_the_gateways() {
        let p = project(&["current", "previous"]);
        let user =
            json!({"sub": "u1", "role": "service_role", "ref": "other", "exp": 1, "email": "a@b"});
        let (token, claims) = mint(
            &p,
            Role::Authenticated,
            user.as_object().unwrap().clone(),
            jwt::now(),
            60,
        );
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let f = from_forwarded(&p, &h).unwrap();
        assert_eq!(f.role, Role::Authenticated);
        assert_eq!(f.claims.subject(), Some("u1"));
        let c: Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(
            (&c["ref"], &c["role"], &c["iss"], &c["email"]),
            (
                &json!("proj"),
                &json!("authenticated"),
                &json!("supactl"),
                &json!("a@b")
            )
        );
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
    }

    #[test]
    fn a_user_token_signed_with_an_asymmetric_key_verifies_by_kid() {
        use crate::jwk::{self, Alg, SigningKey};
        use crate::wire::AsymmetricKey;
        let mut p = project(&["current"]);
        let stored = jwk::generate(Alg::Es256).unwrap();
        p.signing_keys = vec![AsymmetricKey {
            kid: "k1".into(),
            alg: Alg::Es256,
            status: "current".into(),
            private_key: stored.clone(),
        }];
        let claims = json!({"sub": "u1", "role": "authenticated", "exp": jwt::now() + 60});
        let token = SigningKey::from_stored("k1", Alg::Es256, &stored)
            .unwrap()
            .sign_json(claims.to_string().as_bytes());
        // As the gateway and realtime check a user's own token.
        let f = verify(&p, &token, RefRule::Optional).unwrap();
        assert_eq!(
            (f.role, f.claims.subject()),
            (Role::Authenticated, Some("u1"))
        );
        // Another key under the same kid, or the key gone: refused.
        let other = SigningKey::from_stored("k1", Alg::Es256, &jwk::generate(Alg::Es256).unwrap())
            .unwrap()
            .sign_json(claims.to_string().as_bytes());
        assert!(matches!(
            verify(&p, &other, RefRule::Optional),
            Err(ForwardedError::Invalid(jwt::JwtError::Signature))
        ));
        let without = project(&["current"]);
        assert!(matches!(
            verify(&without, &token, RefRule::Optional),
            Err(ForwardedError::Invalid(jwt::JwtError::UnknownKey))
        ));
    }

    #[test]
    fn everything_else_is_refused() {
        let p = project(&["current"]);
        let refused = |h: HeaderMap| from_forwarded(&p, &h).unwrap_err();
        assert!(matches!(refused(HeaderMap::new()), ForwardedError::NoToken));
        assert!(matches!(
            refused(headers(json!({"ref": "proj", "role": "anon"}), "other")),
            ForwardedError::Invalid(_)
        ));
        for claims in [
            json!({"ref": "other", "role": "anon"}),
            json!({"role": "service_role"}),
            json!({"ref": 1, "role": "anon"}),
        ] {
            assert!(
                matches!(
                    refused(headers(claims.clone(), "current")),
                    ForwardedError::OtherProject
                ),
                "{claims}"
            );
        }
        assert!(matches!(
            refused(headers(json!({"ref": "proj", "role": 1}), "current")),
            ForwardedError::Role(RoleError::NotAString)
        ));
        assert!(matches!(
            refused(headers(
                json!({"ref": "proj", "role": "postgres"}),
                "current"
            )),
            ForwardedError::Role(RoleError::Unknown)
        ));
    }
}
