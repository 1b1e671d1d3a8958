//! PKCE (RFC 7636) as GoTrue runs it for every flow that ends in a browser redirect. The client sends a
//! `code_challenge` with the request that starts a flow (`/authorize`, `/signup`, `/otp`, `/magiclink`,
//! `/recover`, `PUT /user {email}`); a row of `auth.flow_state` keeps it with the flow's
//! authentication method (`oauth`, `email/signup`, `magiclink`, `recovery`, `email_change`). Mailed
//! tokens of such a flow carry GoTrue's `pkce_` prefix, and `GET /verify` of one (or the OAuth callback)
//! answers the flow's auth code instead of a session: [`grant`] (`POST /token?grant_type=pkce`) turns it
//! into the session once, given the verifier. The session's `amr` names the flow's method.

use super::request::{body, Ctx};
use super::Auth;
use crate::error::{AuthError, AuthResult};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// GoTrue's prefix of a one-time token whose flow ends in an auth code.
pub(super) const TOKEN_PREFIX: &str = "pkce_";
/// Seconds an auth code may wait for its exchange (GoTrue's flow state expiry).
pub(super) const AUTH_CODE_SECS: i64 = 300;

/// A client's code challenge and its method (`s256` or `plain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    pub challenge: String,
    pub method: &'static str,
}

/// The client's PKCE parameters, checked as GoTrue checks them: none, or both — a challenge of 43 to
/// 128 characters of RFC 7636's alphabet and the method `s256` or `plain` (any case).
pub(super) fn params(
    challenge: Option<&str>,
    method: Option<&str>,
) -> AuthResult<Option<Challenge>> {
    let challenge = challenge.filter(|c| !c.is_empty());
    let method = method.filter(|m| !m.is_empty());
    let (c, m) = match (challenge, method) {
        (None, None) => return Ok(None),
        (Some(c), Some(m)) => (c, m),
        _ => {
            return Err(AuthError::validation(
                "PKCE flow requires code_challenge_method and code_challenge",
            ))
        }
    };
    if !(43..=128).contains(&c.len()) {
        return Err(AuthError::validation(
            "code challenge has to be between 43 and 128 characters",
        ));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    {
        return Err(AuthError::validation(
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        ));
    }
    let method = match m.to_ascii_lowercase().as_str() {
        "s256" => "s256",
        "plain" => "plain",
        _ => {
            return Err(AuthError::validation(format!(
                "code challenge method {m} not supported"
            )))
        }
    };
    Ok(Some(Challenge {
        challenge: c.to_string(),
        method,
    }))
}

/// Records a flow: its challenge, its authentication method and, for the email flows, its user (an
/// OAuth flow learns its user at the callback). Flows of the same method older than `ttl_secs` (never
/// finished, or whose code was never exchanged) go first, and so do the user's earlier flows of that
/// method (a new mail replaces the token of the previous one). Answers the flow's id.
pub(super) async fn create_flow(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Option<&str>,
    provider_type: &str,
    method: &str,
    c: &Challenge,
    ttl_secs: i64,
) -> AuthResult<String> {
    tx.execute(
        "DELETE FROM auth.flow_state WHERE authentication_method = $1 \
           AND (created_at < now() - make_interval(secs => $2) OR user_id = $3::text::uuid)",
        &[&method, &(ttl_secs as f64), &user_id],
    )
    .await?;
    Ok(tx
        .query_one(
            "INSERT INTO auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, \
               provider_type, authentication_method, created_at, updated_at) \
             VALUES (gen_random_uuid(), $1::text::uuid, gen_random_uuid()::text, \
               $2::text::auth.code_challenge_method, $3, $4, $5, now(), now()) RETURNING id::text",
            &[&user_id, &c.method, &c.challenge, &provider_type, &method],
        )
        .await?
        .get(0))
}

/// The auth code of the user's latest flow of `method`, marked issued now (GoTrue's `issueAuthCode`,
/// when a PKCE link is opened). Without one: GoTrue's 400 `flow_state_not_found`.
pub(super) async fn issue_code(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    method: &str,
) -> AuthResult<String> {
    let row = tx
        .query_opt(
            "UPDATE auth.flow_state SET auth_code_issued_at = now(), updated_at = now() \
             WHERE id = (SELECT id FROM auth.flow_state WHERE user_id = $1::text::uuid \
               AND authentication_method = $2 ORDER BY created_at DESC LIMIT 1) \
             RETURNING auth_code",
            &[&user_id, &method],
        )
        .await?;
    row.map(|r| r.get(0)).ok_or_else(|| {
        AuthError::bad_request(
            "flow_state_not_found",
            "No associated flow state found. No valid flow state found for user.",
        )
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PkceGrant {
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

/// `POST /token?grant_type=pkce` `{auth_code, code_verifier}`: the session of a PKCE flow (an OAuth
/// sign-in or an email link), once, within [`AUTH_CODE_SECS`] of the code's issue.
pub(super) async fn grant(auth: &Auth, ctx: &Ctx, raw: &Bytes) -> AuthResult<Response> {
    let p: PkceGrant = body(raw)?;
    let (Some(code), Some(verifier)) = (
        p.auth_code.filter(|c| !c.is_empty()),
        p.code_verifier.filter(|v| !v.is_empty()),
    ) else {
        return Err(AuthError::validation(
            "invalid request: both auth code and code verifier should be non-empty",
        ));
    };
    let (mut client, s) = ctx.db(auth).await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT id::text, user_id::text, code_challenge_method::text, code_challenge, \
               provider_access_token, provider_refresh_token, authentication_method, \
               auth_code_issued_at < now() - make_interval(secs => $2) \
             FROM auth.flow_state WHERE auth_code = $1 AND user_id IS NOT NULL \
               AND auth_code_issued_at IS NOT NULL FOR UPDATE",
            &[&code, &(AUTH_CODE_SECS as f64)],
        )
        .await?
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::NOT_FOUND,
                "flow_state_not_found",
                "invalid flow state, no valid flow state found",
            )
        })?;
    let (id, user_id, method, challenge): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if row.get::<_, bool>(7) {
        return Err(AuthError::unprocessable(
            "flow_state_expired",
            "flow state has expired",
        ));
    }
    if !verifier_matches(&method, &challenge, &verifier) {
        return Err(AuthError::forbidden(
            "bad_code_verifier",
            "code challenge does not match previously saved code verifier",
        ));
    }
    let (access, refresh): (Option<String>, Option<String>) = (row.get(4), row.get(5));
    let amr: String = row.get(6);
    tx.execute(
        "DELETE FROM auth.flow_state WHERE id = $1::text::uuid",
        &[&id],
    )
    .await?;
    let user = crate::store::user_by_id(&tx, &user_id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    super::oauth::refuse_banned(&user)?;
    let mut session = ctx.start_session(auth, &s, &tx, &user.id, &amr).await?;
    if let Some(a) = access.filter(|a| !a.is_empty()) {
        session["provider_token"] = Value::from(a);
    }
    if let Some(r) = refresh {
        session["provider_refresh_token"] = Value::from(r);
    }
    tx.commit().await?;
    Ok(Json(session).into_response())
}

/// RFC 7636 §4.6, compared in constant time.
fn verifier_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    let computed = match method {
        "s256" => B64URL.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.to_string(),
    };
    supactl_common::crypto::secret_eq(&computed, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_checked_by_method() {
        // The challenge computed apart (Python: base64url(sha256(verifier)) without padding).
        let verifier = "dBjftJeZ4CVP-mJ92K9KEBnFrNvAGz1xLfF-8YwNJ1r";
        let challenge = "cNW4x7fQIRjxdiYJu6QVzPO4gUzJJe3VrGofDBOIG_k";
        assert!(verifier_matches("s256", challenge, verifier));
        assert!(!verifier_matches("s256", challenge, "something-else"));
        assert!(verifier_matches("plain", verifier, verifier));
        assert!(!verifier_matches("plain", challenge, verifier));
    }

    #[test]
    fn parameters_follow_gotrue() {
        let c = "cNW4x7fQIRjxdiYJu6QVzPO4gUzJJe3VrGofDBOIG_k";
        assert!(params(None, None).unwrap().is_none());
        assert!(params(Some(""), Some("")).unwrap().is_none());
        assert_eq!(
            params(Some(c), Some("S256")).unwrap().unwrap().method,
            "s256"
        );
        assert_eq!(
            params(Some(c), Some("plain")).unwrap().unwrap().method,
            "plain"
        );
        let msg = |r: AuthResult<Option<Challenge>>| r.unwrap_err().msg;
        assert!(msg(params(Some(c), None)).starts_with("PKCE flow requires"));
        assert!(msg(params(None, Some("s256"))).starts_with("PKCE flow requires"));
        assert!(msg(params(Some("short"), Some("plain"))).contains("between 43 and 128"));
        assert!(msg(params(Some(&"a".repeat(129)), Some("plain"))).contains("between 43 and 128"));
        let odd = format!("{}/", &c[..43]);
        assert!(msg(params(Some(&odd), Some("plain"))).contains("can only contain"));
        assert!(msg(params(Some(c), Some("md5"))).contains("md5 not supported"));
    }
}
