//! One-time tokens: recovery, email OTP and magic links, resending, and `/verify` (by code or by the
//! link in an email).

use super::email_change::{self, Confirmed};
use super::oauth::{query_string, redirect, with_query};
use super::pkce::{self, Challenge};
use super::request::{body, metadata, new_otp, ok_empty, Ctx};
use super::{Auth, URL_VALUE};
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::mail::{self, MailKind};
use crate::store::{self, NewUser, TokenColumn};
use crate::validate;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use deadpool_postgres::Object;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Creates a one-time token for `user`, stores its hash and mails the link and code to `to`. With the
/// client's PKCE challenge, a flow state records it and the token carries GoTrue's `pkce_` prefix: its
/// link then answers an auth code (see [`verify_get`]).
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
    pkce: Option<&Challenge>,
) -> AuthResult<(String, String)> {
    check_frequency(s, tx, &user.id, token_of_kind(kind).0).await?;
    let prefixed = start_flow(s, tx, &user.id, kind, pkce).await?;
    mail_token(auth, ctx, s, tx, &user.id, to, kind, redirect_to, prefixed).await
}

/// The token column of a mail and the `type` of its link.
fn token_of_kind(kind: MailKind) -> (TokenColumn, &'static str) {
    match kind {
        MailKind::Confirmation => (TokenColumn::Confirmation, "signup"),
        MailKind::Invite => (TokenColumn::Confirmation, "invite"),
        MailKind::MagicLink => (TokenColumn::Recovery, "magiclink"),
        MailKind::Recovery => (TokenColumn::Recovery, "recovery"),
        MailKind::EmailChange => (TokenColumn::EmailChange, "email_change"),
        MailKind::EmailChangeCurrent => (TokenColumn::EmailChangeCurrent, "email_change"),
        MailKind::Reauthentication => (TokenColumn::Reauthentication, "reauthentication"),
    }
}

/// GoTrue's SMTP max frequency: one mail of a token column to a user per `smtp_max_frequency`.
pub(super) async fn check_frequency(
    s: &Settings,
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    column: TokenColumn,
) -> AuthResult<()> {
    match store::sent_age(tx, user_id, column).await? {
        Some(age) if age < s.max_frequency as f64 => {
            let wait = (s.max_frequency as f64 - age).ceil() as i64;
            Err(AuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over_email_send_rate_limit",
                format!("For security purposes, you can only request this after {wait} seconds."),
            ))
        }
        _ => Ok(()),
    }
}

/// Records the flow state of a mail sent with the client's PKCE challenge; answers whether its tokens
/// take the `pkce_` prefix.
pub(super) async fn start_flow(
    s: &Settings,
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    kind: MailKind,
    pkce: Option<&Challenge>,
) -> AuthResult<bool> {
    let (Some(c), Some((provider_type, method))) = (pkce, flow_method(kind)) else {
        return Ok(false);
    };
    let ttl = s.otp_exp + pkce::AUTH_CODE_SECS;
    pkce::create_flow(tx, Some(user_id), provider_type, method, c, ttl).await?;
    Ok(true)
}

/// Stores a new token of `kind` for the user (with the `pkce_` prefix when `prefixed`) and mails its
/// link and code to `to`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn mail_token(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: &str,
    to: &str,
    kind: MailKind,
    redirect_to: Option<&str>,
    prefixed: bool,
) -> AuthResult<(String, String)> {
    let (column, link_type) = token_of_kind(kind);
    let otp = new_otp();
    let mut hash = validate::token_hash(to, &otp);
    if prefixed {
        hash = format!("{}{hash}", pkce::TOKEN_PREFIX);
    }
    store::set_token(tx, user_id, column, &hash, to).await?;
    let redirect = s.redirect(redirect_to);
    let link = format!(
        "{}/auth/v1/verify?token={hash}&type={link_type}&redirect_to={}",
        auth.api_url(ctx.project_ref()),
        percent_encoding::utf8_percent_encode(&redirect, URL_VALUE)
    );
    mail::deliver(ctx.project_ref(), s, to, kind, &link, &otp).await?;
    Ok((link, otp))
}

/// GoTrue's provider type and authentication method of a mailed flow (none for a reauthentication
/// nonce, which ends in no redirect).
fn flow_method(kind: MailKind) -> Option<(&'static str, &'static str)> {
    match kind {
        MailKind::Confirmation => Some(("email", "email/signup")),
        MailKind::Invite => Some(("invite", "invite")),
        MailKind::MagicLink => Some(("magiclink", "magiclink")),
        MailKind::Recovery => Some(("recovery", "recovery")),
        MailKind::EmailChange | MailKind::EmailChangeCurrent => {
            Some(("email_change", "email_change"))
        }
        MailKind::Reauthentication => None,
    }
}

/// The authentication method of a `/verify` link's type (GoTrue's `ParseAuthenticationMethod`).
fn link_method(kind: &str) -> Option<&'static str> {
    match kind {
        "signup" => Some("email/signup"),
        "invite" => Some("invite"),
        "magiclink" => Some("magiclink"),
        "recovery" => Some("recovery"),
        "email_change" => Some("email_change"),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OtpRequest {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Value>,
    create_user: Option<bool>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl OtpRequest {
    fn pkce(&self) -> AuthResult<Option<Challenge>> {
        pkce::params(
            self.code_challenge.as_deref(),
            self.code_challenge_method.as_deref(),
        )
    }
}

pub(super) async fn recover(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: OtpRequest = body(&raw)?;
    let pkce = r.pkce()?;
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
            pkce.as_ref(),
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
    let pkce = r.pkce()?;
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
    let pkce = pkce.as_ref();
    send_token(auth, ctx, &s, &tx, &user, &email, kind, redirect_to, pkce).await?;
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

/// `POST /resend`: the signup confirmation or the email-change messages again (for a pending one). As
/// GoTrue, a resent message is always of the implicit flow (supabase-js sends no challenge here).
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
                    None,
                )
                .await?;
            }
        }
        Some("email_change") => {
            if let Some(u) = store::user_by_email_change(&tx, &email).await? {
                email_change::request(&auth, &ctx, &s, &tx, &u, &email, redirect, None).await?;
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

/// What a verified token gives.
enum Verified {
    /// A session (`POST /verify`, and the links of the implicit flow).
    Session(Value),
    /// The auth code of the user's PKCE flow (a `pkce_` link).
    Code(String),
    /// The first of an email change's two confirmations ([`email_change::confirm`]): nothing more.
    OneOfTwo,
}

/// The user and token a typed code matches, compared in constant time (in either flow, as GoTrue).
/// An email-change code is bound to the address it went to: the current one (secure email change
/// only, as GoTrue's `FindUserForEmailChange`), else the new one.
async fn by_code(
    tx: &deadpool_postgres::Transaction<'_>,
    s: &Settings,
    kind: &str,
    email: &str,
    hash: &str,
    columns: &[TokenColumn],
) -> AuthResult<Option<(store::User, TokenColumn)>> {
    let mut candidates: Vec<(Option<store::User>, &[TokenColumn])> = Vec::new();
    if kind != "email_change" {
        candidates.push((store::user_by_email(tx, email).await?, columns));
    } else {
        if s.secure_email_change {
            let current = store::user_by_email(tx, email).await?;
            candidates.push((current, &[TokenColumn::EmailChangeCurrent]));
        }
        let new = store::user_by_email_change(tx, email).await?;
        candidates.push((new, &[TokenColumn::EmailChange]));
    }
    for (user, cols) in candidates {
        let Some(mut user) = user else { continue };
        for col in cols {
            let (stored, age) = store::token_of(tx, &user.id, *col).await?;
            let stored = stored.strip_prefix(pkce::TOKEN_PREFIX).unwrap_or(&stored);
            if !stored.is_empty() && validate::same(stored, hash) {
                user.sent_at_age = age;
                return Ok(Some((user, *col)));
            }
        }
    }
    Ok(None)
}

/// Checks a one-time token and signs the user in; with `code_for` (a PKCE link, the flow's
/// authentication method), answers the flow's auth code instead of a session, all or nothing: a link
/// without its flow state spends nothing.
async fn verify(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    v: VerifyRequest,
    code_for: Option<&str>,
) -> AuthResult<Verified> {
    ctx.limit(auth, s, "verify", s.limit_verify, None)?;
    let kind = v.kind.as_deref().unwrap_or("");
    let columns: &[TokenColumn] = match kind {
        "signup" | "invite" => &[TokenColumn::Confirmation],
        "magiclink" | "recovery" => &[TokenColumn::Recovery],
        "email_change" => &[TokenColumn::EmailChange, TokenColumn::EmailChangeCurrent],
        "email" => &[TokenColumn::Confirmation, TokenColumn::Recovery],
        "sms" | "phone_change" => {
            let (phone, token) = (v.phone.as_deref(), v.token.as_deref());
            let session = super::phone::verify(auth, ctx, s, client, kind, phone, token).await?;
            return Ok(Verified::Session(session));
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
            let email = validate::email(email)?;
            let hash = validate::token_hash(&email, code.trim());
            found = by_code(&tx, s, kind, &email, &hash, columns).await?;
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
    if matches!(
        col,
        TokenColumn::EmailChange | TokenColumn::EmailChangeCurrent
    ) {
        if email_change::confirm(&tx, s, &user, col).await? == Confirmed::OneOfTwo {
            tx.commit().await?;
            return Ok(Verified::OneOfTwo);
        }
    } else {
        store::clear_token(&tx, &user.id, col).await?;
        store::confirm_email(&tx, &user.id).await?;
    }
    let done = match code_for {
        Some(method) => Verified::Code(pkce::issue_code(&tx, &user.id, method).await?),
        None => Verified::Session(ctx.start_session(auth, s, &tx, &user.id, "otp").await?),
    };
    tx.commit().await?;
    Ok(done)
}

/// `POST /verify`: the session, or for the first of an email change's two confirmations GoTrue's
/// `{"msg", "code": "200"}`.
pub(super) async fn verify_post(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    let v: VerifyRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    match verify(&auth, &ctx, &s, &mut client, v, None).await? {
        Verified::Session(session) => Ok(Json(session)),
        Verified::OneOfTwo => Ok(Json(
            json!({"msg": email_change::ONE_OF_TWO, "code": "200"}),
        )),
        Verified::Code(_) => Err(AuthError::internal("a posted token answered an auth code")),
    }
}

/// The link in emails: verifies, then redirects with the session (or the error) in the fragment; a
/// PKCE link (`token=pkce_…`) redirects with `?code=…` for `POST /token?grant_type=pkce`, and its
/// errors come in the query too (GoTrue). The first of an email change's two confirmations redirects
/// with GoTrue's `message` instead.
pub(super) async fn verify_get(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(&auth).await?;
    let redirect_to = s.redirect(q.get("redirect_to").map(String::as_str));
    let kind = q.get("type").cloned().unwrap_or_default();
    let token = q.get("token").cloned().unwrap_or_default();
    let is_pkce = token.starts_with(pkce::TOKEN_PREFIX);
    let v = VerifyRequest {
        kind: Some(kind.clone()),
        token: Some(token),
        ..VerifyRequest::default()
    };
    let result = match (is_pkce, link_method(&kind)) {
        (false, _) => verify(&auth, &ctx, &s, &mut client, v, None).await,
        (true, Some(method)) => verify(&auth, &ctx, &s, &mut client, v, Some(method)).await,
        (true, None) => Err(AuthError::validation("Unsupported verification type")),
    };
    let base = redirect_to.split('#').next().unwrap_or_default();
    let location = match result {
        Ok(Verified::Code(code)) => with_query(&redirect_to, &query_string(&[("code", &code)])),
        Ok(Verified::Session(session)) => format!("{base}#{}", session_fragment(&session, &kind)),
        Ok(Verified::OneOfTwo) => {
            // GoTrue's message: in the fragment, and in the query too for a PKCE link.
            let message = query_string(&[("message", email_change::ONE_OF_TWO)]);
            let base = if is_pkce {
                with_query(base, &message)
            } else {
                base.to_string()
            };
            format!("{base}#{message}")
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => return Err(e),
        Err(e) => {
            let error = error_params(&e);
            if is_pkce {
                format!("{}#{error}", with_query(base, &error))
            } else {
                format!("{base}#{error}")
            }
        }
    };
    redirect(&location, StatusCode::SEE_OTHER)
}

/// The session of an implicit link, as the fragment GoTrue puts it in.
fn session_fragment(session: &Value, kind: &str) -> String {
    let field = |k: &str| match &session[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let pairs =
        ["access_token", "expires_at", "expires_in", "refresh_token"].map(|k| (k, field(k)));
    let mut pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend([("token_type", "bearer"), ("type", kind)]);
    query_string(&pairs)
}

/// A failed link's `error`, `error_code` and `error_description`.
fn error_params(e: &AuthError) -> String {
    let description = if e.code == "otp_expired" {
        "Email link is invalid or has expired"
    } else {
        e.msg.as_str()
    };
    query_string(&[
        ("error", oauth_error(e.status)),
        ("error_code", e.code),
        ("error_description", description),
    ])
}

/// The OAuth error name GoTrue puts on a redirect for an error's status.
fn oauth_error(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized_client",
        403 => "access_denied",
        503 => "temporarily_unavailable",
        _ => "server_error",
    }
}
