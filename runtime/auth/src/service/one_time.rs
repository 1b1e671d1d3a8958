//! One-time tokens: recovery, email OTP and magic links, resending, and `/verify` (by code or by the
//! link in an email).

use super::request::{body, email_exists, metadata, new_otp, ok_empty, Ctx};
use super::{Auth, URL_VALUE};
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::mail::{self, MailKind};
use crate::store::{self, NewUser, TokenColumn};
use crate::validate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use deadpool_postgres::Object;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Creates a one-time token for `user`, stores its hash and mails the link and code to `to`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_token(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &deadpool_postgres::Transaction<'_>,
    user: &store::User,
    to: &str,
    kind: MailKind,
    redirect_to: Option<&str>,
) -> AuthResult<(String, String)> {
    let (column, link_type) = match kind {
        MailKind::Confirmation => (TokenColumn::Confirmation, "signup"),
        MailKind::Invite => (TokenColumn::Confirmation, "invite"),
        MailKind::MagicLink => (TokenColumn::Recovery, "magiclink"),
        MailKind::Recovery => (TokenColumn::Recovery, "recovery"),
        MailKind::EmailChange => (TokenColumn::EmailChange, "email_change"),
        MailKind::EmailChangeCurrent => (TokenColumn::EmailChangeCurrent, "email_change"),
        MailKind::Reauthentication => (TokenColumn::Reauthentication, "reauthentication"),
    };
    if let Some(age) = store::sent_age(tx, &user.id, column).await? {
        if age < s.max_frequency as f64 {
            let wait = (s.max_frequency as f64 - age).ceil() as i64;
            return Err(AuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over_email_send_rate_limit",
                format!("For security purposes, you can only request this after {wait} seconds."),
            ));
        }
    }
    let otp = new_otp();
    let hash = validate::token_hash(to, &otp);
    store::set_token(tx, &user.id, column, &hash, to).await?;
    let redirect = s.redirect(redirect_to);
    let link = format!(
        "{}/auth/v1/verify?token={hash}&type={link_type}&redirect_to={}",
        auth.api_url(ctx.project_ref()),
        percent_encoding::utf8_percent_encode(&redirect, URL_VALUE)
    );
    mail::deliver(ctx.project_ref(), s, to, kind, &link, &otp).await?;
    Ok((link, otp))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OtpRequest {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Value>,
    create_user: Option<bool>,
}

pub(super) async fn recover(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: OtpRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(&auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    // Unknown addresses get the same answer: no account enumeration.
    if let Some(user) = store::user_by_email(&tx, &email).await? {
        send_token(
            &auth,
            &ctx,
            &s,
            &tx,
            &user,
            &email,
            MailKind::Recovery,
            q.get("redirect_to").map(String::as_str),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(ok_empty())
}

pub(super) async fn otp(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: OtpRequest = body(&raw)?;
    passwordless(&auth, &ctx, r, q.get("redirect_to").map(String::as_str)).await
}

pub(super) async fn magiclink(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let mut r: OtpRequest = body(&raw)?;
    r.create_user = Some(true);
    passwordless(&auth, &ctx, r, q.get("redirect_to").map(String::as_str)).await
}

/// Email OTP / magic link: a new user gets a confirmation token, an existing one a magic-link token
/// (GoTrue keeps magic links in the recovery token column); both codes sign in through /verify.
async fn passwordless(
    auth: &Auth,
    ctx: &Ctx,
    r: OtpRequest,
    redirect_to: Option<&str>,
) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(auth).await?;
    if let Some(phone) = r.phone.as_deref().filter(|p| !p.is_empty()) {
        if r.email.as_deref().is_some_and(|e| !e.is_empty()) {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided",
            ));
        }
        let data = metadata(r.data)?;
        let create = r.create_user.unwrap_or(true);
        return super::phone::otp(auth, ctx, &s, &mut client, phone, data, create).await;
    }
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    let (user, kind) = match store::user_by_email(&tx, &email).await? {
        Some(u) if u.confirmed => (u, MailKind::MagicLink),
        Some(u) => (u, MailKind::Confirmation),
        None => {
            if !r.create_user.unwrap_or(true) {
                return Err(AuthError::unprocessable(
                    "otp_disabled",
                    "Signups not allowed for otp",
                ));
            }
            if s.disable_signup {
                return Err(AuthError::unprocessable(
                    "signup_disabled",
                    "Signups not allowed for this instance",
                ));
            }
            let user = store::create_user(
                &tx,
                NewUser {
                    email: Some(&email),
                    password_hash: None,
                    user_metadata: metadata(r.data)?,
                    app_metadata: json!({}),
                    confirmed: false,
                    anonymous: false,
                    role: "authenticated",
                    identity_in_metadata: true,
                    external: None,
                },
            )
            .await?
            .ok_or_else(|| AuthError::internal("otp signup raced another signup"))?;
            (user, MailKind::Confirmation)
        }
    };
    send_token(auth, ctx, &s, &tx, &user, &email, kind, redirect_to).await?;
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResendRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// `POST /resend`: the signup confirmation or the email-change message again (for a pending one).
pub(super) async fn resend(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: ResendRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    if let Some(kind @ ("sms" | "phone_change")) = r.kind.as_deref() {
        let (phone, email) = (r.phone.as_deref(), r.email.as_deref());
        return super::phone::resend(&auth, &ctx, &s, &mut client, kind, phone, email).await;
    }
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(&auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    let redirect = q.get("redirect_to").map(String::as_str);
    match r.kind.as_deref() {
        Some("signup") => {
            if let Some(u) = store::user_by_email(&tx, &email).await? {
                if u.confirmed {
                    return Err(AuthError::unprocessable(
                        "email_address_not_authorized",
                        "Email address already confirmed",
                    ));
                }
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::Confirmation,
                    redirect,
                )
                .await?;
            }
        }
        Some("email_change") => {
            if let Some(u) = store::user_by_email_change(&tx, &email).await? {
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::EmailChange,
                    redirect,
                )
                .await?;
            }
        }
        _ => {
            return Err(AuthError::validation(
                "Missing one of these types: signup, email_change, sms, phone_change",
            ))
        }
    }
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VerifyRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    redirect_to: Option<String>,
}

fn otp_expired() -> AuthError {
    AuthError::forbidden("otp_expired", "Token has expired or is invalid")
}

/// Checks a one-time token and signs the user in; returns the session and the verified type.
async fn verify(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    v: VerifyRequest,
) -> AuthResult<Value> {
    ctx.limit(auth, s, "verify", s.limit_verify, None)?;
    let kind = v.kind.as_deref().unwrap_or("");
    let columns: &[TokenColumn] = match kind {
        "signup" | "invite" => &[TokenColumn::Confirmation],
        "magiclink" | "recovery" => &[TokenColumn::Recovery],
        "email_change" => &[TokenColumn::EmailChange, TokenColumn::EmailChangeCurrent],
        "email" => &[TokenColumn::Confirmation, TokenColumn::Recovery],
        "sms" | "phone_change" => {
            let (phone, token) = (v.phone.as_deref(), v.token.as_deref());
            return super::phone::verify(auth, ctx, s, client, kind, phone, token).await;
        }
        _ => return Err(AuthError::validation("Verify requires a verification type")),
    };
    let tx = client.transaction().await?;
    let mut found = None;
    match (
        v.token_hash.as_deref().filter(|h| !h.is_empty()),
        v.token.as_deref().filter(|t| !t.is_empty()),
        v.email.as_deref(),
    ) {
        (None, Some(code), Some(email)) => {
            // A code typed by the user: compare its hash with the stored one in constant time.
            let email = validate::email(email)?;
            let hash = validate::token_hash(&email, code.trim());
            let user = match store::user_by_email(&tx, &email).await? {
                Some(u) => Some(u),
                // Email-change codes go to (and are bound to) the new address.
                None if kind == "email_change" => store::user_by_email_change(&tx, &email).await?,
                None => None,
            };
            if let Some(mut user) = user {
                for col in columns {
                    let (stored, age) = store::token_of(&tx, &user.id, *col).await?;
                    if !stored.is_empty() && validate::same(&stored, &hash) {
                        user.sent_at_age = age;
                        found = Some((user, *col));
                        break;
                    }
                }
            }
        }
        (Some(hash), _, _) | (None, Some(hash), None) => {
            // A link's token is the hash itself: look it up by its index.
            let hash = hash.to_lowercase();
            for col in columns {
                if let Some(u) = store::user_by_token(&tx, *col, &hash).await? {
                    found = Some((u, *col));
                    break;
                }
            }
        }
        _ => {
            return Err(AuthError::validation(
                "Verify requires a token or a token hash",
            ))
        }
    }
    let (user, col) = found.ok_or_else(otp_expired)?;
    let age = user.sent_at_age.unwrap_or(f64::INFINITY);
    if age > s.otp_exp as f64 || user.banned {
        return Err(otp_expired());
    }
    store::clear_token(&tx, &user.id, col).await?;
    match col {
        // Either address's token completes the change (single confirmation), and the other's is spent.
        TokenColumn::EmailChange | TokenColumn::EmailChangeCurrent => {
            store::clear_token(&tx, &user.id, TokenColumn::EmailChange).await?;
            store::clear_token(&tx, &user.id, TokenColumn::EmailChangeCurrent).await?;
            let new_email = user.json["new_email"].as_str().unwrap_or("").to_string();
            if new_email.is_empty() || !store::set_email(&tx, &user.id, &new_email).await? {
                return Err(email_exists());
            }
            store::confirm_email(&tx, &user.id).await?;
        }
        _ => store::confirm_email(&tx, &user.id).await?,
    }
    let session = ctx.start_session(auth, s, &tx, &user.id, "otp").await?;
    tx.commit().await?;
    Ok(session)
}

pub(super) async fn verify_post(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    let v: VerifyRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    Ok(Json(verify(&auth, &ctx, &s, &mut client, v).await?))
}

/// The link in emails: verifies, then redirects with the session (or the error) in the fragment.
pub(super) async fn verify_get(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(&auth).await?;
    let redirect = s.redirect(q.get("redirect_to").map(String::as_str));
    let kind = q.get("type").cloned().unwrap_or_default();
    let v = VerifyRequest {
        kind: Some(kind.clone()),
        token: q.get("token").cloned(),
        ..VerifyRequest::default()
    };
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, URL_VALUE).to_string();
    let fragment = match verify(&auth, &ctx, &s, &mut client, v).await {
        Ok(session) => format!(
            "access_token={}&expires_at={}&expires_in={}&refresh_token={}&token_type=bearer&type={}",
            enc(session["access_token"].as_str().unwrap_or("")),
            session["expires_at"],
            session["expires_in"],
            enc(session["refresh_token"].as_str().unwrap_or("")),
            enc(&kind),
        ),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => return Err(e),
        Err(e) => format!(
            "error=access_denied&error_code={}&error_description={}",
            e.code,
            enc(if e.code == "otp_expired" {
                "Email link is invalid or has expired"
            } else {
                &e.msg
            })
        ),
    };
    let location = format!("{redirect}#{fragment}");
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(AuthError::internal)?,
    );
    Ok(res)
}
