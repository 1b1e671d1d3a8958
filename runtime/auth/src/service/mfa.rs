//! Multi-factor authentication with TOTP factors, as GoTrue's `/factors` routes: enroll (a secret, its
//! `otpauth://` URI and a QR code of it), challenge, verify (the session goes from `aal1` to `aal2` and
//! gains `totp` in its `amr`, with new tokens), unenroll; and the admin's listing and deletion of a
//! user's factors. Secrets are sealed at rest ([`crate::factors`]). Phone factors share these routes
//! and checks; what differs (a code sent by SMS) is in [`super::mfa_phone`].

use super::account::current_user;
use super::mfa_phone;
use super::request::{body, Ctx};
use super::Auth;
use crate::error::{AuthError, AuthResult};
use crate::factors::{self, Factor};
use crate::token::Amr;
use crate::{store, totp};
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use deadpool_postgres::Transaction;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use supactl_common::jwt;

/// GoTrue's limit on a user's factors (`MFA_MAX_ENROLLED_FACTORS`).
const MAX_FACTORS: i64 = 10;
/// How long a challenge can be verified (`MFA_CHALLENGE_EXPIRY_DURATION`).
const CHALLENGE_SECS: i64 = 300;

fn factor_not_found() -> AuthError {
    AuthError::new(
        StatusCode::NOT_FOUND,
        "mfa_factor_not_found",
        "Factor not found",
    )
}

fn insufficient_aal(what: &str) -> AuthError {
    AuthError::forbidden("insufficient_aal", format!("AAL2 required to {what}"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Enroll {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
    phone: Option<String>,
}

/// The issuer shown in authenticator apps when the client names none: the site URL's host, as GoTrue.
fn default_issuer(site_url: &str) -> String {
    let rest = site_url.split_once("://").map_or(site_url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("").to_string()
}

/// The QR code of `text` as an SVG document (clients turn it into a `data:` URI).
fn qr_svg(text: &str) -> AuthResult<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(AuthError::internal)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build())
}

pub(super) async fn enroll(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let e: Enroll = body(&raw)?;
    let phone_factor = match e.factor_type.as_deref() {
        Some("totp") => false,
        Some("phone") => true,
        Some("webauthn") => {
            return Err(AuthError::unprocessable(
                "mfa_web_authn_enroll_not_enabled",
                "MFA enroll is disabled for WebAuthn",
            ))
        }
        _ => {
            return Err(AuthError::validation(
                "factor_type needs to be totp, phone, or webauthn",
            ))
        }
    };
    let (mut client, s) = ctx.db(&auth).await?;
    let phone = match phone_factor {
        true => Some(mfa_phone::enrolled_number(&s, e.phone.as_deref())?),
        false => None,
    };
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    if let Some(phone) = &phone {
        mfa_phone::replace_unverified(&tx, &user.id, phone).await?;
    }
    let friendly = e.friendly_name.unwrap_or_default();
    let (verified, unverified, name_taken) = factors::counts(&tx, &user.id, &friendly).await?;
    if name_taken {
        return Err(AuthError::unprocessable(
            "mfa_factor_name_conflict",
            format!("A factor with the friendly name \"{friendly}\" for this user already exists"),
        ));
    }
    if verified + unverified >= MAX_FACTORS {
        return Err(AuthError::unprocessable(
            "too_many_enrolled_mfa_factors",
            "Maximum number of verified factors reached, unenroll to continue",
        ));
    }
    if verified > 0 && session_aal(&tx, &ctx).await? != "aal2" {
        return Err(insufficient_aal("enroll a new factor"));
    }
    if let Some(phone) = &phone {
        let as_sent = e.phone.as_deref().unwrap_or_default();
        let answer = mfa_phone::insert(&tx, &user.id, &friendly, phone, as_sent).await?;
        tx.commit().await?;
        return Ok(answer);
    }
    let issuer = e
        .issuer
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| default_issuer(&s.site_url));
    let id = new_id(&tx).await?;
    let secret = totp::new_secret();
    let sealed = factors::seal_secret(&ctx.project, &id, &secret)?;
    factors::insert_totp(&tx, &id, &user.id, &friendly, &sealed).await?;
    tx.commit().await?;
    let uri = totp::uri(&issuer, user.email.as_deref().unwrap_or(""), &secret);
    Ok(Json(json!({
        "id": id,
        "type": "totp",
        "friendly_name": friendly,
        "totp": {"qr_code": qr_svg(&uri)?, "secret": secret, "uri": uri},
    })))
}

async fn new_id(tx: &Transaction<'_>) -> AuthResult<String> {
    Ok(tx
        .query_one("SELECT gen_random_uuid()::text", &[])
        .await?
        .get(0))
}

async fn session_aal(tx: &Transaction<'_>, ctx: &Ctx) -> AuthResult<String> {
    factors::session_aal(tx, ctx.session_id().unwrap_or("")).await
}

/// The signed-in user's factor `id` (404 when it is not theirs).
async fn own_factor(tx: &Transaction<'_>, ctx: &Ctx, id: &str) -> AuthResult<Factor> {
    let user = current_user(tx, ctx).await?;
    factors::factor(tx, &user.id, id)
        .await?
        .ok_or_else(factor_not_found)
}

pub(super) async fn challenge(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let (mut client, s) = ctx.db(&auth).await?;
    ctx.limit(&auth, &s, "verify", s.limit_verify, None)?;
    let tx = client.transaction().await?;
    let factor = own_factor(&tx, &ctx, &id).await?;
    if factor.factor_type == "phone" {
        let user = current_user(&tx, &ctx).await?;
        return mfa_phone::challenge(&auth, &ctx, &s, tx, &factor, &user).await;
    }
    if factor.factor_type != "totp" {
        return Err(factor_not_found());
    }
    let ip = ctx.ip_text().unwrap_or_else(|| "0.0.0.0".into());
    let (challenge_id, created) = factors::challenge(&tx, &factor.id, &ip).await?;
    tx.commit().await?;
    Ok(Json(json!({
        "id": challenge_id,
        "type": "totp",
        "expires_at": created + CHALLENGE_SECS,
    })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Verify {
    challenge_id: String,
    code: String,
}

pub(super) async fn verify(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let v: Verify = body(&raw)?;
    let sid = ctx
        .session_id()
        .filter(|s| store::is_uuid(s))
        .ok_or_else(|| AuthError::forbidden("bad_jwt", "invalid claim: missing session_id"))?
        .to_string();
    let (mut client, s) = ctx.db(&auth).await?;
    ctx.limit(&auth, &s, "verify", s.limit_verify, None)?;
    let tx = client.transaction().await?;
    let factor = own_factor(&tx, &ctx, &id).await?;
    if factor.factor_type == "phone" {
        let (cid, code) = (&v.challenge_id, &v.code);
        return mfa_phone::verify(&auth, &ctx, &s, tx, &factor, &sid, cid, code).await;
    }
    let (age, used) = factors::lock_challenge(&tx, &factor.id, &v.challenge_id)
        .await?
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::NOT_FOUND,
                "mfa_factor_not_found",
                "MFA factor with the provided challenge ID not found",
            )
        })?;
    if used || age > CHALLENGE_SECS as f64 {
        return Err(AuthError::unprocessable(
            "mfa_challenge_expired",
            format!(
                "MFA challenge {} has expired, verify against another challenge or create a new challenge.",
                v.challenge_id
            ),
        ));
    }
    let sealed = factor
        .sealed_secret
        .as_deref()
        .ok_or_else(|| AuthError::internal("TOTP factor without a secret"))?;
    let secret = factors::open_secret(&ctx.project, &factor.id, sealed)?;
    let key = totp::from_base32(&secret)
        .ok_or_else(|| AuthError::internal("stored secret is not base32"))?;
    if !totp::check(&key, &v.code, jwt::now()) {
        return Err(AuthError::unprocessable(
            "mfa_verification_failed",
            "Invalid TOTP code entered",
        ));
    }
    factors::verified(&tx, &factor.id, &v.challenge_id, &sid, "totp").await?;
    let refresh_token = factors::swap_refresh_token(&tx, &sid, &factor.user_id).await?;
    let user = store::user_by_id(&tx, &factor.user_id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished during MFA verify"))?;
    let amr: Vec<Amr> = store::amr(&tx, &sid).await?;
    tx.commit().await?;
    Ok(Json(ctx.session_body(
        &auth,
        &s,
        &user.json,
        &sid,
        "aal2",
        &amr,
        &refresh_token,
    )))
}

pub(super) async fn unenroll(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let mut client = auth.pools().get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let factor = own_factor(&tx, &ctx, &id).await?;
    if factor.verified && session_aal(&tx, &ctx).await? != "aal2" {
        return Err(insufficient_aal("unenroll verified factor"));
    }
    factors::delete(&tx, &factor.id).await?;
    tx.commit().await?;
    Ok(Json(json!({ "id": factor.id })))
}

pub(super) async fn admin_list_factors(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(user_id): Path<String>,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let mut client = auth.pools().get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &user_id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    Ok(Json(Value::Array(factors::list(&tx, &user.id).await?)))
}

pub(super) async fn admin_delete_factor(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let mut client = auth.pools().get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &user_id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    let factor = factors::factor(&tx, &user.id, &factor_id)
        .await?
        .ok_or_else(factor_not_found)?;
    factors::delete(&tx, &factor.id).await?;
    tx.commit().await?;
    Ok(Json(factor.json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_the_site_hosts() {
        assert_eq!(
            default_issuer("https://app.example.com/x?y"),
            "app.example.com"
        );
        assert_eq!(default_issuer("http://localhost:3000"), "localhost:3000");
    }

    #[test]
    fn qr_code_is_an_svg() {
        let svg = qr_svg("otpauth://totp/x:y?secret=ABC").unwrap();
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    }
}
