//! Signed URL tokens: HS256 JWTs `{url: "<bucket>/<name>", ref, kind, iat, exp}` (plus `upsert` and
//! `owner` for uploads), as Supabase makes them, but signed with a key derived from the project's JWT
//! secret rather than the secret itself, so a URL token can never pass as a user's access token anywhere
//! else (it carries no role, which the platform would read as `authenticated`). A token is bound to its
//! project (key and `ref`), its kind, its bucket and its name; its expiry is checked to the second.

use crate::error::{StorageError, StorageResult};
use crate::route::ObjectRef;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use supactl_common::jwt::{self, JwtError};
use supactl_common::wire::ProjectConfig;

const CONTEXT: &[u8] = b"supactl storage url token v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Download,
    Upload,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Download => "download",
            Kind::Upload => "upload",
        }
    }
}

/// What an upload token allows beyond its object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub upsert: bool,
    /// The user who asked for the URL: the owner of what is uploaded with it.
    pub owner: Option<String>,
}

fn derive(secret: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(CONTEXT);
    mac.finalize().into_bytes().into()
}

fn url(obj: &ObjectRef) -> String {
    format!("{}/{}", obj.bucket, obj.name)
}

/// A token for `obj` valid `expires_in` seconds from `now`.
pub fn sign(
    project: &ProjectConfig,
    kind: Kind,
    obj: &ObjectRef,
    grant: &Grant,
    now: i64,
    expires_in: i64,
) -> String {
    let mut claims = Map::new();
    claims.insert("url".into(), json!(url(obj)));
    claims.insert("ref".into(), json!(project.project_ref));
    claims.insert("kind".into(), json!(kind.as_str()));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + expires_in));
    if kind == Kind::Upload {
        claims.insert("upsert".into(), json!(grant.upsert));
        if let Some(o) = &grant.owner {
            claims.insert("owner".into(), json!(o));
        }
    }
    jwt::sign(&claims, &derive(project.signing_secret()))
}

/// Checks a token for `obj` (with any of the project's current secrets, for rotation).
pub fn verify(
    project: &ProjectConfig,
    kind: Kind,
    obj: &ObjectRef,
    token: &str,
    now: i64,
) -> StorageResult<Grant> {
    let keys: Vec<[u8; 32]> = project
        .verification_secrets()
        .into_iter()
        .map(derive)
        .collect();
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let claims = jwt::verify(token, &keys, now).map_err(|e| {
        let message = match e {
            JwtError::Expired => "jwt expired".to_string(),
            e => format!("invalid token: {e}"),
        };
        StorageError::new(http::StatusCode::BAD_REQUEST, "InvalidJWT", message)
    })?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("ref") != Some(project.project_ref.as_str())
        || text("kind") != Some(kind.as_str())
        || claims.get("exp").and_then(Value::as_i64).is_none()
    {
        return Err(StorageError::new(
            http::StatusCode::BAD_REQUEST,
            "InvalidJWT",
            "invalid token",
        ));
    }
    if text("url") != Some(url(obj).as_str()) {
        return Err(StorageError::new(
            http::StatusCode::BAD_REQUEST,
            "InvalidSignature",
            "The url do not match the signature",
        ));
    }
    Ok(Grant {
        upsert: claims.get("upsert").and_then(Value::as_bool) == Some(true),
        owner: text("owner").map(str::to_string),
    })
}

/// `expiresIn` as clients send it: a number or a string of one (storage3 sends a string), at least 1
/// second.
pub fn expires_in(v: Option<&Value>) -> StorageResult<i64> {
    let n = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1.0 && n <= i32::MAX as f64 => Ok(n as i64),
        _ => Err(StorageError::bad_request(
            "expiresIn must be a number of seconds, at least 1",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(r: &str, secret: &str) -> ProjectConfig {
        testkit::project_config(r, secret)
    }

    fn obj(name: &str) -> ObjectRef {
        ObjectRef {
            bucket: "b".into(),
            name: name.into(),
        }
    }

    #[test]
    fn tokens_are_bound_to_project_kind_object_and_time() {
        let p = project("proja", "s1");
        let g = Grant::default();
        let t = sign(&p, Kind::Download, &obj("x"), &g, 1000, 60);
        assert_eq!(verify(&p, Kind::Download, &obj("x"), &t, 1059).unwrap(), g);
        let expired = verify(&p, Kind::Download, &obj("x"), &t, 1060).unwrap_err();
        assert_eq!(expired.message, "jwt expired");
        assert_eq!(
            verify(&p, Kind::Download, &obj("y"), &t, 1000)
                .unwrap_err()
                .error,
            "InvalidSignature"
        );
        assert!(verify(&p, Kind::Upload, &obj("x"), &t, 1000).is_err());
        assert!(verify(&project("projb", "s1"), Kind::Download, &obj("x"), &t, 1000).is_err());
        assert!(verify(&project("proja", "s2"), Kind::Download, &obj("x"), &t, 1000).is_err());
        // never a user token: the project's own secret does not verify it
        assert!(jwt::verify(&t, &[b"s1".as_slice()], 1000).is_err());
    }

    #[test]
    fn expires_in_takes_numbers_and_strings() {
        assert_eq!(expires_in(Some(&json!(60))).unwrap(), 60);
        assert_eq!(expires_in(Some(&json!("60"))).unwrap(), 60);
        for bad in [json!(0), json!("x"), json!(null), json!(-5)] {
            assert!(expires_in(Some(&bad)).is_err(), "{bad}");
        }
        assert!(expires_in(None).is_err());
    }
}
