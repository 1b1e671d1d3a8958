//! A provider's ID token checked as OpenID Connect Core §3.1.3.7 asks: signed (RS256 or ES256) by a key
//! of the provider's JWKS (fetched, cached, fetched again when a token names a key it does not hold),
//! unexpired, issued by the provider's issuer for this project's client id, and carrying the nonce the
//! flow sent (or, for the `id_token` grant, GoTrue's nonce rule).

use super::OAuth;
use crate::error::{AuthError, AuthResult};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use supactl_common::jwk::PublicKey;
use supactl_common::jwt::{self, JwtError, Keys};

/// A JWKS is fetched again for an unknown `kid` at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// What the token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Nonce<'a>,
}

pub enum Nonce<'a> {
    /// The code flow: the token carries exactly the nonce sent to the provider.
    Sent(&'a str),
    /// The `id_token` grant (GoTrue's rule): a nonce given with the grant and one in the token go
    /// together, the token's being the given one or its SHA-256 in hex.
    Given(Option<&'a str>),
}

fn bad(reason: impl std::fmt::Display) -> AuthError {
    AuthError::bad_request("bad_oauth_callback", format!("Bad ID token: {reason}"))
}

/// The verified claims of `token`.
pub async fn verify(
    oauth: &OAuth,
    jwks_uri: &str,
    token: &str,
    expected: Expected<'_>,
) -> AuthResult<Map<String, Value>> {
    let mut claims = verify_signature(oauth, jwks_uri, token).await;
    if matches!(claims, Err(JwtError::UnknownKey))
        && oauth.jwks.forget_older_than(jwks_uri, REFETCH_AFTER)
    {
        claims = verify_signature(oauth, jwks_uri, token).await;
    }
    let claims = claims.map_err(bad)?;
    check_claims(&claims, &expected)?;
    Ok(claims)
}

async fn verify_signature(
    oauth: &OAuth,
    jwks_uri: &str,
    token: &str,
) -> Result<Map<String, Value>, JwtError> {
    let doc = oauth
        .jwks
        .get_or_fetch(jwks_uri, || oauth.fetcher.get_json(jwks_uri, None))
        .await
        .map_err(|e| {
            tracing::warn!(%jwks_uri, error = %e, "cannot fetch a provider's JWKS");
            JwtError::UnknownKey
        })?;
    let keys: Vec<PublicKey> = doc
        .get("keys")
        .and_then(Value::as_array)
        .map(|ks| ks.iter().filter_map(PublicKey::from_jwk).collect())
        .unwrap_or_default();
    jwt::verify_with(
        token,
        Keys {
            secrets: &[],
            public: &keys,
        },
        jwt::now(),
    )
}

fn check_claims(claims: &Map<String, Value>, e: &Expected<'_>) -> AuthResult<()> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(e.issuer) {
        return Err(bad("issuer mismatch"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == e.client_id,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(e.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(bad("audience mismatch"));
    }
    if claims.get("exp").is_none() || text("sub").is_none_or(str::is_empty) {
        return Err(bad("exp and sub are required"));
    }
    let in_token = text("nonce");
    match e.nonce {
        Nonce::Sent(sent) => {
            if in_token != Some(sent) {
                return Err(bad("nonce mismatch"));
            }
        }
        Nonce::Given(None) if in_token.is_some() => {
            return Err(AuthError::validation(
                "Passed nonce and nonce in id_token should either both exist or not.",
            ))
        }
        Nonce::Given(None) => {}
        Nonce::Given(Some(given)) => {
            let hashed = hex::encode(Sha256::digest(given.as_bytes()));
            match in_token {
                None => {
                    return Err(AuthError::validation(
                        "Passed nonce and nonce in id_token should either both exist or not.",
                    ))
                }
                Some(t) if t == hashed || t == given => {}
                Some(_) => return Err(AuthError::validation("Nonces mismatch")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn expected(nonce: Nonce<'_>) -> Expected<'_> {
        Expected {
            issuer: "https://id.example",
            client_id: "app",
            nonce,
        }
    }

    #[test]
    fn issuer_audience_and_nonce_are_checked() {
        let good = claims(
            json!({"iss": "https://id.example", "aud": ["x", "app"], "sub": "u1",
            "exp": 9, "nonce": "n1"}),
        );
        assert!(check_claims(&good, &expected(Nonce::Sent("n1"))).is_ok());
        assert!(check_claims(&good, &expected(Nonce::Sent("n2"))).is_err());
        let mut other = good.clone();
        other.insert("iss".into(), json!("https://evil.example"));
        assert!(check_claims(&other, &expected(Nonce::Sent("n1"))).is_err());
        let mut other = good.clone();
        other.insert("aud".into(), json!("someone-else"));
        assert!(check_claims(&other, &expected(Nonce::Sent("n1"))).is_err());
    }

    #[test]
    fn the_grants_nonce_may_be_hashed() {
        let hashed = hex::encode(Sha256::digest(b"raw-nonce"));
        let c = claims(
            json!({"iss": "https://id.example", "aud": "app", "sub": "u", "exp": 9,
            "nonce": hashed}),
        );
        assert!(check_claims(&c, &expected(Nonce::Given(Some("raw-nonce")))).is_ok());
        assert!(check_claims(&c, &expected(Nonce::Given(Some("other")))).is_err());
        assert!(check_claims(&c, &expected(Nonce::Given(None))).is_err());
        let none = claims(json!({"iss": "https://id.example", "aud": "app", "sub": "u", "exp": 9}));
        assert!(check_claims(&none, &expected(Nonce::Given(None))).is_ok());
        assert!(check_claims(&none, &expected(Nonce::Given(Some("n")))).is_err());
    }
}
