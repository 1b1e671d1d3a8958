//! Token logic, kept pure so it is unit-tested without a database: the claims of GoTrue's access
//! tokens, and what a refresh-token grant does with the token it is given (rotation and reuse).

use serde_json::{json, Map, Value};
use supactl_common::jwk::SigningKey;
use supactl_common::jwt;
use supactl_common::wire::ProjectConfig;

/// What a project's access tokens are signed with: its current asymmetric key when it chose one, else
/// its HS256 secret.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    Secret(&'a [u8]),
    Key(&'a SigningKey),
}

impl<'a> Signer<'a> {
    pub fn of(project: &'a ProjectConfig) -> Signer<'a> {
        match project.token_signer() {
            Some(k) => Signer::Key(k),
            None => Signer::Secret(project.signing_secret()),
        }
    }

    pub fn sign(self, claims: &Map<String, Value>) -> String {
        match self {
            Signer::Secret(s) => jwt::sign(claims, s),
            Signer::Key(k) => {
                k.sign_json(&serde_json::to_vec(claims).expect("a JSON map always serialises"))
            }
        }
    }
}

/// How a user proved who they are in this session (`amr` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amr {
    pub method: String,
    pub timestamp: i64,
}

/// What goes into an access token besides the user's own fields.
#[derive(Debug, Clone)]
pub struct SessionInfo<'a> {
    pub session_id: &'a str,
    pub aal: &'a str,
    pub amr: &'a [Amr],
    pub issuer: &'a str,
    pub issued_at: i64,
    pub lifetime_secs: i64,
}

/// GoTrue's access-token claims for `user` (the user's JSON as the API returns it).
pub fn access_claims(user: &Value, s: &SessionInfo) -> Map<String, Value> {
    let field = |k: &str| user.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str| Value::from(user.get(k).and_then(Value::as_str).unwrap_or(""));
    let role = match user.get("role").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => "authenticated".to_string(),
    };
    let claims = json!({
        "iss": s.issuer,
        "sub": field("id"),
        "aud": match user.get("aud").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => a,
            _ => "authenticated",
        },
        "exp": s.issued_at + s.lifetime_secs,
        "iat": s.issued_at,
        "email": text("email"),
        "phone": text("phone"),
        "app_metadata": user.get("app_metadata").cloned().unwrap_or_else(|| json!({})),
        "user_metadata": user.get("user_metadata").cloned().unwrap_or_else(|| json!({})),
        "role": role,
        "aal": s.aal,
        "amr": s.amr.iter().map(|a| json!({"method": a.method, "timestamp": a.timestamp})).collect::<Vec<_>>(),
        "session_id": s.session_id,
        "is_anonymous": user.get("is_anonymous").and_then(Value::as_bool).unwrap_or(false),
    });
    match claims {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

/// A signed access token and GoTrue's session body around it.
pub fn session_body(user: &Value, s: &SessionInfo, refresh_token: &str, signer: Signer) -> Value {
    let token = signer.sign(&access_claims(user, s));
    json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": s.lifetime_secs,
        "expires_at": s.issued_at + s.lifetime_secs,
        "refresh_token": refresh_token,
        "user": user,
    })
}

/// The state of a presented refresh token, read under a row lock.
#[derive(Debug, Clone, Copy)]
pub struct Presented {
    pub revoked: bool,
    /// Whether it is the parent of the session's currently active (newest unrevoked) token.
    pub parent_of_active: bool,
    /// Seconds since it was last updated (revoked tokens: since their revocation).
    pub age_secs: f64,
}

/// What the refresh grant does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Revoke the token and issue a child of it.
    Rotate,
    /// The client lost the answer to its last refresh: hand it the active token again.
    ReturnActive,
    /// Reuse of an old token: a sign of theft. End the session (all its tokens) and refuse.
    RevokeSession,
}

/// GoTrue's rotation rules: an unrevoked token rotates; a revoked one that is the parent of the active
/// token gets the active token back; another revoked one rotates only within the reuse interval
/// (concurrent refreshes from several tabs), and outside it ends the session. GoTrue only marks the
/// session's tokens revoked there; this ends the session itself, so its access tokens stop working at
/// `/user` and `/logout` at once and no token of it can be revived within the interval.
pub fn decide(p: Presented, reuse_interval_secs: i64) -> Refresh {
    if !p.revoked {
        Refresh::Rotate
    } else if p.parent_of_active {
        Refresh::ReturnActive
    } else if p.age_secs < reuse_interval_secs as f64 {
        Refresh::Rotate
    } else {
        Refresh::RevokeSession
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({
            "id": "6f1c7c1e-1111-4a4a-9b9b-000000000001",
            "aud": "authenticated",
            "role": "authenticated",
            "email": "a@b.io",
            "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"name": "A"},
            "is_anonymous": false,
        })
    }

    fn info(amr: &[Amr]) -> SessionInfo<'_> {
        SessionInfo {
            session_id: "sess-1",
            aal: "aal1",
            amr,
            issuer: "http://x/auth/v1",
            issued_at: 1_000,
            lifetime_secs: 3600,
        }
    }

    #[test]
    fn claims_are_gotrues() {
        let amr = [Amr {
            method: "password".into(),
            timestamp: 990,
        }];
        let c = access_claims(&user(), &info(&amr));
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        for k in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "email",
            "phone",
            "app_metadata",
            "user_metadata",
            "role",
            "aal",
            "amr",
            "session_id",
            "is_anonymous",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert_eq!(c["sub"], "6f1c7c1e-1111-4a4a-9b9b-000000000001");
        assert_eq!(c["exp"], 4600);
        assert_eq!(c["role"], "authenticated");
        assert_eq!(c["aud"], "authenticated");
        assert_eq!(c["app_metadata"]["providers"], json!(["email"]));
        assert_eq!(c["amr"], json!([{"method": "password", "timestamp": 990}]));
        assert_eq!(c["is_anonymous"], false);
    }

    #[test]
    fn session_token_verifies_with_the_project_secret_only() {
        let body = session_body(&user(), &info(&[]), "rt", Signer::Secret(b"project-secret"));
        let token = body["access_token"].as_str().unwrap();
        let claims = jwt::verify(token, &[b"project-secret"], 2_000).unwrap();
        assert_eq!(claims["session_id"], "sess-1");
        assert_eq!(
            jwt::verify(token, &[b"other-project"], 2_000),
            Err(jwt::JwtError::Signature)
        );
        assert_eq!(
            jwt::verify(token, &[b"project-secret"], 4_600),
            Err(jwt::JwtError::Expired)
        );
        assert_eq!(body["expires_at"], 4600);
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["refresh_token"], "rt");
    }

    #[test]
    fn an_asymmetric_key_signs_with_its_kid() {
        use supactl_common::jwk::{self, Alg};
        let key = SigningKey::from_stored("kid-1", Alg::Es256, &jwk::generate(Alg::Es256).unwrap())
            .unwrap();
        let body = session_body(&user(), &info(&[]), "rt", Signer::Key(&key));
        let token = body["access_token"].as_str().unwrap();
        let keys = jwt::Keys {
            secrets: &[],
            public: &[key.public()],
        };
        assert_eq!(
            jwt::verify_with(token, keys, 2_000).unwrap()["session_id"],
            "sess-1"
        );
        assert_eq!(
            jwt::verify(token, &[b"project-secret"], 2_000),
            Err(jwt::JwtError::UnknownKey)
        );
    }

    #[test]
    fn empty_role_means_authenticated() {
        let mut u = user();
        u["role"] = json!("");
        u["is_anonymous"] = json!(true);
        let c = access_claims(&u, &info(&[]));
        assert_eq!(c["role"], "authenticated");
        assert_eq!(c["is_anonymous"], true);
    }

    #[test]
    fn refresh_rotation_and_reuse() {
        let p = |revoked, parent_of_active, age_secs| Presented {
            revoked,
            parent_of_active,
            age_secs,
        };
        assert_eq!(decide(p(false, false, 1e6), 10), Refresh::Rotate);
        assert_eq!(decide(p(true, true, 1e6), 10), Refresh::ReturnActive);
        assert_eq!(decide(p(true, false, 3.0), 10), Refresh::Rotate);
        assert_eq!(decide(p(true, false, 10.0), 10), Refresh::RevokeSession);
        assert_eq!(decide(p(true, false, 0.0), 0), Refresh::RevokeSession);
    }
}
