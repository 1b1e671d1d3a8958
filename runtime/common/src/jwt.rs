//! JSON Web Tokens: HS256 with a project's secrets (what the gateway mints and what auth signs by
//! default), and ES256/RS256 with a project's asymmetric keys ([`crate::jwk`]), found by the header's
//! `kid`.
//!
//! Verification takes every secret and public key that may verify, so that a rotated-out one keeps
//! verifying during a grace period. The header must say `alg: HS256`, `ES256` or `RS256` exactly (an
//! asymmetric token must name a known key of that algorithm); `none` and every other algorithm are
//! refused before any signature work, and HMAC signatures are compared in constant time.

use crate::jwk::PublicKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. The text is safe to show to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm: only HS256, ES256 and RS256 are accepted")]
    Algorithm,
    #[error("no signing key with this kid")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs `claims` (a JSON object) with `secret`.
pub fn sign(claims: &Map<String, Value>, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("a JSON map always serialises");
    sign_json(&payload, secret)
}

/// Signs claims already serialised as a JSON object.
pub fn sign_json(payload: &[u8], secret: &[u8]) -> String {
    let mut token = String::with_capacity(64 + payload.len() * 4 / 3 + 44);
    B64.encode_string(HEADER, &mut token);
    token.push('.');
    B64.encode_string(payload, &mut token);
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(token.as_bytes());
    let sig = mac.finalize().into_bytes();
    token.push('.');
    B64.encode_string(sig, &mut token);
    token
}

/// What may verify a token: HS256 secrets, and public keys for ES256/RS256 tokens naming them.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub secrets: &'a [&'a [u8]],
    pub public: &'a [PublicKey],
}

/// Verifies an HS256 token's signature with any of `secrets` and its `exp`/`nbf` against `now` (unix
/// seconds), returning its claims.
pub fn verify(token: &str, secrets: &[&[u8]], now: i64) -> Result<Map<String, Value>, JwtError> {
    verify_with(
        token,
        Keys {
            secrets,
            public: &[],
        },
        now,
    )
}

/// Verifies the token's signature with `keys` (by its `alg`, and for an asymmetric one by its
/// `kid`) and its `exp`/`nbf` against `now` (unix seconds), returning its claims.
pub fn verify_with(token: &str, keys: Keys, now: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = header.get("alg").and_then(Value::as_str);
    let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let ok = match alg {
        Some("HS256") => keys.secrets.iter().any(|secret| {
            let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts any key length");
            mac.update(signed);
            mac.verify_slice(&sig).is_ok()
        }),
        Some(a @ ("ES256" | "RS256")) => {
            let kid = header.get("kid").and_then(Value::as_str);
            let key = keys
                .public
                .iter()
                .find(|k| Some(k.kid.as_str()) == kid && k.alg.as_str() == a)
                .ok_or(JwtError::UnknownKey)?;
            key.verifies(signed, &sig)
        }
        _ => return Err(JwtError::Algorithm),
    };
    if !ok {
        return Err(JwtError::Signature);
    }
    let claims: Map<String, Value> = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if let Some(exp) = claims.get("exp") {
        let exp = exp.as_f64().ok_or(JwtError::Malformed)?;
        if (now as f64) >= exp {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_f64().ok_or(JwtError::Malformed)?;
        if (now as f64) < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    Ok(claims)
}

/// Current unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn round_trip_and_rotation_list() {
        let t = sign(&claims(json!({"role": "anon", "exp": 2000})), b"secret-one");
        assert_eq!(verify(&t, &[b"secret-one"], 1000).unwrap()["role"], "anon");
        assert_eq!(
            verify(&t, &[b"other", b"secret-one"], 1000).unwrap()["exp"],
            2000
        );
        assert_eq!(verify(&t, &[b"other"], 1000), Err(JwtError::Signature));
    }

    #[test]
    fn expiry_and_not_before() {
        let t = sign(&claims(json!({"exp": 100, "nbf": 50})), b"k");
        assert_eq!(verify(&t, &[b"k"], 100), Err(JwtError::Expired));
        assert_eq!(verify(&t, &[b"k"], 10), Err(JwtError::NotYetValid));
        assert!(verify(&t, &[b"k"], 60).is_ok());
    }

    #[test]
    fn asymmetric_tokens_verify_by_kid() {
        use crate::jwk::{self, Alg, SigningKey};
        let es =
            SigningKey::from_stored("es", Alg::Es256, &jwk::generate(Alg::Es256).unwrap()).unwrap();
        let rs =
            SigningKey::from_stored("rs", Alg::Rs256, &jwk::generate(Alg::Rs256).unwrap()).unwrap();
        let public = [es.public(), rs.public()];
        let keys = Keys {
            secrets: &[b"k"],
            public: &public,
        };
        for key in [&es, &rs] {
            let t = key.sign_json(br#"{"role":"anon","exp":2000}"#);
            assert_eq!(verify_with(&t, keys, 1000).unwrap()["role"], "anon");
            assert_eq!(verify_with(&t, keys, 2000), Err(JwtError::Expired));
            // Without the public key (an HS256-only verifier, or the key revoked): refused.
            assert_eq!(verify(&t, &[b"k"], 1000), Err(JwtError::UnknownKey));
            let parts: Vec<&str> = t.split('.').collect();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                B64.encode(r#"{"role":"service_role"}"#),
                parts[2]
            );
            assert_eq!(verify_with(&forged, keys, 1000), Err(JwtError::Signature));
        }
        // A kid naming a key of another algorithm, or no kid, is no key.
        let header = B64.encode(r#"{"alg":"RS256","kid":"es"}"#);
        let t = format!("{header}.{}.{}", B64.encode("{}"), B64.encode("sig"));
        assert_eq!(verify_with(&t, keys, 0), Err(JwtError::UnknownKey));
        let header = B64.encode(r#"{"alg":"ES256"}"#);
        let t = format!("{header}.{}.{}", B64.encode("{}"), B64.encode("sig"));
        assert_eq!(verify_with(&t, keys, 0), Err(JwtError::UnknownKey));
        // HS256 still verifies with the secrets alongside.
        let t = sign(&claims(json!({"role": "anon"})), b"k");
        assert!(verify_with(&t, keys, 0).is_ok());
    }

    #[test]
    fn alg_none_and_tampering_are_refused() {
        let t = sign(&claims(json!({"role": "anon"})), b"k");
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), parts[1]);
        assert_eq!(verify(&none, &[b"k"], 0), Err(JwtError::Algorithm));
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(r#"{"role":"service_role"}"#),
            parts[2]
        );
        assert_eq!(verify(&forged, &[b"k"], 0), Err(JwtError::Signature));
        assert_eq!(verify("abc", &[b"k"], 0), Err(JwtError::Malformed));
    }
}
