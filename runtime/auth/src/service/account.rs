//! Public endpoints and the signed-in user: settings, sign-up (also anonymous), the password and
//! refresh-token grants, reading and updating the user (a password change may have to present the
//! nonce of `/reauthenticate`; a new address goes through [`super::email_change`]), logout.

use super::one_time::send_token;
use super::request::{
    body, check_password, email_exists, hash_password, metadata, new_refresh_token, Ctx,
};
use super::Auth;
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::mail::MailKind;
use crate::store::{self, NewUser, TokenColumn};
use crate::token::{self, Presented, Refresh};
use crate::validate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use deadpool_postgres::Object;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn health(_ctx: Ctx) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    }))
}

pub(super) async fn settings(State(auth): State<Arc<Auth>>, ctx: Ctx) -> AuthResult<Json<Value>> {
    let (client, s) = ctx.db(&auth).await?;
    let mut external = Map::new();
    for p in [
        "apple",
        "azure",
        "bitbucket",
        "discord",
        "facebook",
        "figma",
        "fly",
        "github",
        "gitlab",
        "google",
        "keycloak",
        "kakao",
        "linkedin",
        "linkedin_oidc",
        "notion",
        "spotify",
        "slack",
        "slack_oidc",
        "workos",
        "twitch",
        "twitter",
        "phone",
        "zoom",
    ] {
        external.insert(p.into(), Value::Bool(false));
    }
    for p in crate::oauth::provider::enabled_names(&client).await? {
        external.insert(p, Value::Bool(true));
    }
    external.insert("anonymous_users".into(), Value::Bool(s.anonymous_users));
    external.insert("email".into(), Value::Bool(true));
    external.insert("phone".into(), Value::Bool(s.phone.enabled));
    Ok(Json(json!({
        "external": external,
        "disable_signup": s.disable_signup,
        "mailer_autoconfirm": s.mailer_autoconfirm,
        "phone_autoconfirm": s.phone.autoconfirm,
        "sms_provider": "",
        "saml_enabled": false,
    })))
}

/// The public halves of the project's asymmetric signing keys (standby, current and previous), as
/// JWKs; HS256 secrets are never published, so a project without such keys has an empty set.
pub(super) async fn jwks(ctx: Ctx) -> Json<Value> {
    let keys: Vec<&Value> = ctx.project.public_keys().iter().map(|k| k.jwk()).collect();
    Json(json!({ "keys": keys }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Credentials {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    refresh_token: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub(super) async fn signup(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let c: Credentials = body(&raw)?;
    let pkce = super::pkce::params(
        c.code_challenge.as_deref(),
        c.code_challenge_method.as_deref(),
    )?;
    let pkce = pkce.as_ref();
    let (mut client, s) = ctx.db(&auth).await?;
    if s.disable_signup {
        return Err(AuthError::unprocessable(
            "signup_disabled",
            "Signups not allowed for this instance",
        ));
    }
    let phone = c.phone.as_deref().filter(|p| !p.is_empty());
    let email = match c.email.as_deref().filter(|e| !e.is_empty()) {
        Some(_) if phone.is_some() => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided on signup.",
            ))
        }
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    if email.is_none() && phone.is_none() && c.password.is_none() {
        return anonymous_signup(&auth, &ctx, &s, &mut client, metadata(c.data)?).await;
    }
    let password = c.password.unwrap_or_default();
    let Some(email) = email else {
        if phone.is_none() {
            return Err(AuthError::validation(
                "To signup, please provide your email",
            ));
        }
        check_signup_password(&password, &s)?;
        let (phone, data) = (phone.unwrap_or_default(), metadata(c.data)?);
        return super::phone::signup(&auth, &ctx, &s, &mut client, phone, password, data).await;
    };
    check_signup_password(&password, &s)?;
    ctx.limit(&auth, &s, "signin", s.limit_sign_in, Some(&email))?;
    let data = metadata(c.data)?;
    let hash = hash_password(password).await?;
    let tx = client.transaction().await?;
    let created = store::create_user(
        &tx,
        NewUser {
            email: Some(&email),
            password_hash: Some(&hash),
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: s.mailer_autoconfirm,
            anonymous: false,
            role: "authenticated",
            identity_in_metadata: true,
            external: None,
        },
    )
    .await?;
    let Some(user) = created else {
        if s.mailer_autoconfirm {
            return Err(AuthError::unprocessable(
                "user_already_exists",
                "User already registered",
            ));
        }
        // With confirmations on, GoTrue does not reveal which addresses have accounts: an
        // unconfirmed user gets the confirmation again, a confirmed one a look-alike user.
        let existing = store::user_by_email(&tx, &email).await?;
        let answer = match existing {
            Some(u) if !u.confirmed => {
                let redirect = q.get("redirect_to").map(String::as_str);
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::Confirmation,
                    redirect,
                    pkce,
                )
                .await?;
                store::user_by_id(&tx, &u.id).await?.map(|u| u.json)
            }
            _ => None,
        };
        let answer = match answer {
            Some(a) => a,
            None => store::lookalike_user(&tx, &email).await?,
        };
        tx.commit().await?;
        return Ok(Json(answer).into_response());
    };
    if s.mailer_autoconfirm {
        let session = ctx
            .start_session(&auth, &s, &tx, &user.id, "password")
            .await?;
        tx.commit().await?;
        return Ok(Json(session).into_response());
    }
    send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &email,
        MailKind::Confirmation,
        q.get("redirect_to").map(String::as_str),
        pkce,
    )
    .await?;
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished after signup"))?;
    tx.commit().await?;
    Ok(Json(user.json).into_response())
}

fn check_signup_password(password: &str, s: &Settings) -> AuthResult<()> {
    if password.is_empty() {
        return Err(AuthError::unprocessable(
            "validation_failed",
            "Signup requires a valid password",
        ));
    }
    validate::password(password, s.password_min_length)
}

async fn anonymous_signup(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    data: Value,
) -> AuthResult<Response> {
    if !s.anonymous_users {
        return Err(AuthError::unprocessable(
            "anonymous_provider_disabled",
            "Anonymous sign-ins are disabled",
        ));
    }
    ctx.limit(auth, s, "signin", s.limit_sign_in, None)?;
    let tx = client.transaction().await?;
    let user = store::create_user(
        &tx,
        NewUser {
            email: None,
            password_hash: None,
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: false,
            anonymous: true,
            role: "authenticated",
            identity_in_metadata: true,
            external: None,
        },
    )
    .await?
    .ok_or_else(|| AuthError::internal("anonymous user insert conflicted"))?;
    let session = ctx
        .start_session(auth, s, &tx, &user.id, "anonymous")
        .await?;
    tx.commit().await?;
    Ok(Json(session).into_response())
}

pub(super) async fn token_grant(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    match q.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(&auth, &ctx, body(&raw)?).await,
        Some("refresh_token") => refresh_grant(&auth, &ctx, body(&raw)?).await,
        Some("pkce") => super::pkce::grant(&auth, &ctx, &raw).await,
        Some("id_token") => super::oauth::id_token_grant(&auth, &ctx, &raw).await,
        _ => Err(AuthError::bad_request(
            "invalid_credentials",
            "unsupported_grant_type",
        )),
    }
}

async fn password_grant(auth: &Auth, ctx: &Ctx, c: Credentials) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(auth).await?;
    let password = c.password.unwrap_or_default();
    let by_phone = match (
        c.email.as_deref().filter(|e| !e.is_empty()),
        c.phone.as_deref().filter(|p| !p.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided on login.",
            ))
        }
        (None, None) => return Err(AuthError::validation("missing email or phone")),
        (_, phone) => phone
            .map(|p| super::phone::login_number(&s, p))
            .transpose()?,
    };
    // A malformed address cannot belong to a user: same answer as a wrong password.
    let login = match &by_phone {
        Some(p) => p.clone(),
        None => validate::email(c.email.as_deref().unwrap_or(""))
            .map_err(|_| AuthError::invalid_credentials())?,
    };
    ctx.limit(auth, &s, "signin", s.limit_sign_in, Some(&login))?;
    let user = {
        let tx = client.transaction().await?;
        match by_phone {
            Some(_) => crate::phones::user_by_phone(&tx, &login).await?,
            None => store::user_by_email(&tx, &login).await?,
        }
    };
    // Release the connection while bcrypt runs.
    drop(client);
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    if !check_password(password, hash).await {
        return Err(AuthError::invalid_credentials());
    }
    let user = user.expect("a password matched, so the user exists");
    if user.banned {
        return Err(AuthError::bad_request("user_banned", "User is banned"));
    }
    if by_phone.is_some() && !user.phone_confirmed() {
        return Err(AuthError::bad_request(
            "phone_not_confirmed",
            "Phone not confirmed",
        ));
    }
    if by_phone.is_none() && !user.confirmed {
        return Err(AuthError::bad_request(
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let session = ctx
        .start_session(auth, &s, &tx, &user.id, "password")
        .await?;
    tx.commit().await?;
    Ok(Json(session).into_response())
}

async fn refresh_grant(auth: &Auth, ctx: &Ctx, c: Credentials) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(auth).await?;
    let presented = c
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::validation("refresh_token required"))?;
    ctx.limit(auth, &s, "refresh", s.limit_refresh, None)?;
    let not_found = || {
        AuthError::bad_request(
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        )
    };
    let tx = client.transaction().await?;
    let row = store::lock_refresh(&tx, &presented)
        .await?
        .ok_or_else(not_found)?;
    let decision = token::decide(
        Presented {
            revoked: row.revoked,
            parent_of_active: row.parent_of_active,
            age_secs: row.age_secs,
        },
        s.reuse_interval,
    );
    let issued = match decision {
        Refresh::Rotate => {
            let child = new_refresh_token();
            store::rotate(&tx, &row, &child).await?;
            child
        }
        Refresh::ReturnActive => row.active.clone().ok_or_else(not_found)?,
        Refresh::RevokeSession => {
            store::delete_session(&tx, &row.session_id).await?;
            tx.commit().await?;
            tracing::warn!(
                project = ctx.project_ref(),
                session = %row.session_id,
                "refresh token reused outside the reuse interval: session revoked"
            );
            return Err(AuthError::bad_request(
                "refresh_token_already_used",
                "Invalid Refresh Token: Already Used",
            ));
        }
    };
    let user = store::user_by_id(&tx, &row.user_id)
        .await?
        .ok_or_else(not_found)?;
    if user.banned {
        return Err(AuthError::bad_request(
            "user_banned",
            "Invalid Refresh Token: User Banned",
        ));
    }
    let amr = store::amr(&tx, &row.session_id).await?;
    let aal = crate::factors::session_aal(&tx, &row.session_id).await?;
    tx.commit().await?;
    Ok(
        Json(ctx.session_body(auth, &s, &user.json, &row.session_id, &aal, &amr, &issued))
            .into_response(),
    )
}

/// The signed-in user, after checking that the token's session still exists.
pub(super) async fn current_user(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &Ctx,
) -> AuthResult<store::User> {
    let id = ctx.user_id()?;
    if let Some(sid) = ctx.session_id() {
        if !store::session_exists(tx, sid).await? {
            return Err(AuthError::forbidden(
                "session_not_found",
                "Session from session_id claim in JWT does not exist",
            ));
        }
    }
    store::user_by_id(tx, id).await?.ok_or_else(|| {
        AuthError::forbidden(
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })
}

pub(super) async fn get_user(State(auth): State<Arc<Auth>>, ctx: Ctx) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    Ok(Json(user.json))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserUpdate {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    /// The code `/reauthenticate` sent, proving a password change.
    nonce: Option<String>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub(super) async fn put_user(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let u: UserUpdate = body(&raw)?;
    let pkce = super::pkce::params(
        u.code_challenge.as_deref(),
        u.code_challenge_method.as_deref(),
    )?;
    let (mut client, s) = ctx.db(&auth).await?;
    let phone = match u.phone.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(crate::sms::phone(p)?),
        None => None,
    };
    let email = match u.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    if let Some(password) = u.password.filter(|p| !p.is_empty()) {
        validate::password(&password, s.password_min_length)?;
        if nonce_required(&tx, &ctx, &s).await? {
            match u.nonce.as_deref().filter(|n| !n.is_empty()) {
                Some(nonce) => check_nonce(&tx, &s, &user, nonce).await?,
                None => {
                    return Err(AuthError::bad_request(
                        "reauthentication_needed",
                        "Password update requires reauthentication",
                    ))
                }
            }
        }
        if check_password(password.clone(), user.password_hash.clone()).await {
            return Err(AuthError::unprocessable(
                "same_password",
                "New password should be different from the old password.",
            ));
        }
        let hash = hash_password(password).await?;
        store::set_password(&tx, &user.id, &hash).await?;
    }
    if let Some(data) = &u.data {
        store::merge_metadata(&tx, &user.id, false, data).await?;
    }
    if let Some(phone) = &phone {
        super::phone::change(&auth, &ctx, &s, &tx, &user, phone).await?;
    }
    if let Some(email) = email.filter(|e| Some(e) != user.email.as_ref()) {
        let anonymous = user.json["is_anonymous"].as_bool().unwrap_or(false);
        if s.mailer_autoconfirm || anonymous {
            if !store::set_email(&tx, &user.id, &email).await? {
                return Err(email_exists());
            }
        } else {
            if store::user_by_email(&tx, &email).await?.is_some() {
                return Err(email_exists());
            }
            let redirect = q.get("redirect_to").map(String::as_str);
            let pkce = pkce.as_ref();
            super::email_change::request(&auth, &ctx, &s, &tx, &user, &email, redirect, pkce)
                .await?;
        }
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished during update"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

/// `GET /reauthenticate`: mails the signed-in user a nonce that a password change can present.
pub(super) async fn reauthenticate(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
) -> AuthResult<Response> {
    ctx.user_id()?;
    let (mut client, s) = ctx.db(&auth).await?;
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    let Some(email) = user.email.clone() else {
        // A user with only a phone number gets the nonce by SMS (GoTrue).
        super::phone::reauthenticate(&auth, &ctx, &s, &tx, &user).await?;
        tx.commit().await?;
        return Ok(Json(json!({})).into_response());
    };
    if !user.confirmed {
        return Err(AuthError::unprocessable(
            "email_not_confirmed",
            "Please verify your email first.",
        ));
    }
    send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &email,
        MailKind::Reauthentication,
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({})).into_response())
}

/// Whether a password change must present a reauthentication nonce. GoTrue's rule: with
/// `security_update_password_require_reauthentication` on, unless the caller's session was created
/// less than 24 hours ago (a token without a session always needs one). Otherwise a nonce sent anyway
/// is ignored, as GoTrue ignores it.
async fn nonce_required(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &Ctx,
    s: &Settings,
) -> AuthResult<bool> {
    if !s.password_change_needs_nonce {
        return Ok(false);
    }
    let Some(session_id) = ctx.session_id() else {
        return Ok(true);
    };
    let recent = tx
        .query_opt(
            "SELECT created_at > now() - interval '24 hours' FROM auth.sessions \
             WHERE id = $1::text::uuid",
            &[&session_id],
        )
        .await?
        .is_some_and(|r| r.get::<_, bool>(0));
    Ok(!recent)
}

/// Checks (and spends) the user's reauthentication nonce.
async fn check_nonce(
    tx: &deadpool_postgres::Transaction<'_>,
    s: &Settings,
    user: &store::User,
    nonce: &str,
) -> AuthResult<()> {
    let invalid = || {
        AuthError::unprocessable(
            "reauthentication_not_valid",
            "Nonce has expired or is invalid",
        )
    };
    // The nonce went to the email, or by SMS to a user with only a phone number.
    let (to, exp) = match (user.email.as_deref(), user.phone()) {
        (Some(email), _) => (email, s.otp_exp),
        (None, Some(phone)) => (phone, s.phone.otp_exp),
        (None, None) => return Err(invalid()),
    };
    let (stored, age) = store::token_of(tx, &user.id, TokenColumn::Reauthentication).await?;
    let fresh = age.is_some_and(|a| a <= exp as f64);
    if stored.is_empty()
        || !fresh
        || !validate::same(&stored, &validate::token_hash(to, nonce.trim()))
    {
        return Err(invalid());
    }
    store::clear_token(tx, &user.id, TokenColumn::Reauthentication).await
}

pub(super) async fn logout(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let user_id = ctx.user_id()?;
    let scope = q.get("scope").map(String::as_str).unwrap_or("global");
    if !matches!(scope, "global" | "local" | "others") {
        return Err(AuthError::validation(format!(
            "Unsupported logout scope {scope:?}"
        )));
    }
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    store::logout(&tx, user_id, ctx.session_id().unwrap_or(""), scope).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
