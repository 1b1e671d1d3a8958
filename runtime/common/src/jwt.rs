//! HS256 JSON Web Tokens: the only algorithm the platform signs or accepts.
//!
//! Verification takes a list of secrets so that a rotated-out secret keeps verifying during a grace period.
//! The header must say `alg: HS256` exactly; `none` and every other algorithm are refused before any
//! signature work, and signatures are compared in constant time.

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
    #[error("unsupported algorithm: only HS256 is accepted")]
    Algorithm,
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

/// Verifies the token's signature with any of `secrets` and its `exp`/`nbf` against `now` (unix seconds),
/// returning its claims.
pub fn verify(token: &str, secrets: &[&[u8]], now: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let sig = B64.decode(s).map_err(|_| JwtError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    let ok = secrets.iter().any(|secret| {
        let mut mac = HmacSha256::new_from_slice(secret).expect("hmac accepts any key length");
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).is_ok()
    });
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
