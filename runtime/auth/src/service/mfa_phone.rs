//! Phone MFA factors, as GoTrue's: `POST /factors {factor_type: "phone", phone}` enrolls a number
//! (opt-in per project: `mfa_phone_enabled`), `POST /factors/{id}/challenge {channel?}` sends a code
//! to it through the Send SMS hook (`sms_type: "mfa"`; one per `sms_max_frequency`), and `POST
//! /factors/{id}/verify {challenge_id, code}` from the same IP address raises the session to `aal2`
//! with `mfa/phone` in its `amr`. The challenge keeps only the hash of the number and the code.
//! Unenrolling and the admin's listing and deletion are the TOTP factors' routes ([`super::mfa`]).

use super::request::Ctx;
use super::Auth;
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::factors::{self, Factor};
use crate::sms::{self, Purpose};
use crate::store::{self, User};
use crate::validate;
use axum::Json;
use deadpool_postgres::Transaction;
use http::StatusCode;
use serde_json::{json, Value};
use std::net::IpAddr;

/// How long a challenge can be verified (as TOTP's, GoTrue's `MFA_CHALLENGE_EXPIRY_DURATION`).
const CHALLENGE_SECS: i64 = 300;

/// The number of a phone factor being enrolled, checked (GoTrue's messages).
pub(super) fn enrolled_number(s: &Settings, phone: Option<&str>) -> AuthResult<String> {
    if !s.phone.mfa_enabled {
        return Err(AuthError::unprocessable(
            "mfa_phone_enroll_not_enabled",
            "MFA enroll is disabled for Phone",
        ));
    }
    let phone = phone
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::validation("Phone number required to enroll Phone factor"))?;
    sms::phone(phone)
}

/// Makes way for a factor of `phone`: a verified one is GoTrue's `mfa_verified_factor_exists`, an
/// unverified one is replaced.
pub(super) async fn replace_unverified(
    tx: &Transaction<'_>,
    user_id: &str,
    phone: &str,
) -> AuthResult<()> {
    for (id, verified) in factors::phone_factors(tx, user_id, phone).await? {
        if verified {
            return Err(AuthError::unprocessable(
                "mfa_verified_factor_exists",
                "A verified phone factor already exists, unenroll the existing factor to continue",
            ));
        }
        factors::delete(tx, &id).await?;
    }
    Ok(())
}

/// Stores the factor; GoTrue's answer (the number as the client sent it).
pub(super) async fn insert(
    tx: &Transaction<'_>,
    user_id: &str,
    friendly: &str,
    phone: &str,
    as_sent: &str,
) -> AuthResult<Json<Value>> {
    let f = factors::insert_phone(tx, user_id, friendly, phone).await?;
    Ok(Json(json!({
        "id": f["id"],
        "type": "phone",
        "friendly_name": friendly,
        "phone": as_sent,
    })))
}

fn same_ip(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `POST /factors/{id}/challenge` of a phone factor: sends the code, answers the challenge.
pub(super) async fn challenge(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: Transaction<'_>,
    factor: &Factor,
    user: &User,
) -> AuthResult<Json<Value>> {
    if !s.phone.mfa_enabled {
        return Err(AuthError::unprocessable(
            "mfa_phone_verify_not_enabled",
            "MFA verification is disabled for Phone",
        ));
    }
    let (phone, last) = factors::phone_of(&tx, &factor.id).await?;
    let freq = s.phone.max_frequency as f64;
    if let Some(age) = last.filter(|a| *a < freq) {
        return Err(AuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "over_sms_send_rate_limit",
            format!(
                "For security purposes, you can only request this after {} seconds.",
                (freq - age).ceil() as i64
            ),
        ));
    }
    let code = sms::code(s.phone.otp_length);
    let ip = ctx.ip_text().unwrap_or_else(|| "0.0.0.0".into());
    let sent = sms::send(
        &auth.hooks,
        &ctx.project,
        &tx,
        Some(&ip),
        &user.json,
        &phone,
        &code,
        Purpose::Mfa,
    )
    .await;
    if let Err(e) = sent {
        // GoTrue hides the hook's answer here; the log keeps it.
        tracing::warn!(code = e.code, msg = %e.msg, "send_sms hook failed for an MFA challenge");
        return Err(AuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "error invoking hook",
        ));
    }
    let hash = validate::token_hash(&phone, &code);
    let (id, created) = factors::phone_challenge(&tx, &factor.id, &ip, &hash).await?;
    tx.commit().await?;
    Ok(Json(json!({
        "id": id,
        "type": "phone",
        "expires_at": created + CHALLENGE_SECS,
    })))
}

/// `POST /factors/{id}/verify` of a phone factor in session `sid`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn verify(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: Transaction<'_>,
    factor: &Factor,
    sid: &str,
    challenge_id: &str,
    code: &str,
) -> AuthResult<Json<Value>> {
    let ch = factors::lock_phone_challenge(&tx, &factor.id, challenge_id)
        .await?
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::NOT_FOUND,
                "mfa_factor_not_found",
                "MFA factor with the provided challenge ID not found",
            )
        })?;
    let ip = ctx.ip_text().unwrap_or_else(|| "0.0.0.0".into());
    if ch.used || !same_ip(&ch.ip, &ip) {
        return Err(AuthError::unprocessable(
            "mfa_ip_address_mismatch",
            "Challenge and verify IP addresses mismatch",
        ));
    }
    if ch.age_secs > CHALLENGE_SECS as f64 {
        return Err(AuthError::unprocessable(
            "mfa_challenge_expired",
            format!(
                "MFA challenge {challenge_id} has expired, verify against another challenge or create a new challenge."
            ),
        ));
    }
    let (phone, _) = factors::phone_of(&tx, &factor.id).await?;
    let given = validate::token_hash(&phone, code.trim());
    if ch.code_hash.is_empty() || !validate::same(&ch.code_hash, &given) {
        return Err(AuthError::unprocessable(
            "mfa_verification_failed",
            "Invalid MFA Phone code entered",
        ));
    }
    factors::verified(&tx, &factor.id, challenge_id, sid, "mfa/phone").await?;
    let refresh_token = factors::swap_refresh_token(&tx, sid, &factor.user_id).await?;
    let user = store::user_by_id(&tx, &factor.user_id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished during MFA verify"))?;
    let amr = store::amr(&tx, sid).await?;
    tx.commit().await?;
    Ok(Json(ctx.session_body(
        auth,
        s,
        &user.json,
        sid,
        "aal2",
        &amr,
        &refresh_token,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_as_addresses() {
        assert!(same_ip("::1", "0:0:0:0:0:0:0:1"));
        assert!(same_ip("10.0.0.1", "10.0.0.1"));
        assert!(!same_ip("10.0.0.1", "10.0.0.2"));
        assert!(same_ip("0.0.0.0", "0.0.0.0"));
    }
}
