//! Phone sign-up and sign-in as GoTrue does them, with codes sent through the project's Send SMS hook
//! ([`crate::sms`]): `/signup` with a number and a password (a code to confirm it unless
//! `phone_autoconfirm`), `/otp` with a number (a code that signs in, creating the user unless
//! `create_user` is false), `/verify` of types `sms` and `phone_change`, `/resend` of those types, a
//! number change through `PUT /user`, `/reauthenticate` of a user with only a number, and the
//! password grant by number. The account routes call in
//! here when a request names a phone; codes are stored as GoTrue stores them (the hash of the number
//! and the code, [`validate::token_hash`]), expire after `sms_otp_exp` and are spent by one use.

use super::request::{hash_password, ok_empty, Ctx};
use super::Auth;
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::phones::{self, NewPhoneUser};
use crate::sms::{self, Purpose};
use crate::store::{self, TokenColumn, User};
use crate::validate;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::{Object, Transaction};
use http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// The project's SMS sending window (GoTrue's `RATE_LIMIT_SMS_SENT` is per hour).
const SMS_WINDOW: Duration = Duration::from_secs(3600);

fn disabled(msg: &'static str) -> AuthError {
    AuthError::bad_request("phone_provider_disabled", msg)
}

fn sms_rate_limited(msg: String) -> AuthError {
    AuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "over_sms_send_rate_limit",
        msg,
    )
}

pub(super) fn phone_exists() -> AuthError {
    AuthError::unprocessable(
        "phone_exists",
        "A user with this phone number has already been registered",
    )
}

fn user_exists() -> AuthError {
    AuthError::unprocessable("user_already_exists", "User already registered")
}

/// Sends `user` a code for `column` (the sign-in/confirmation code, or a phone change's) at `to`, and
/// stores its hash. GoTrue's limits: one code per kind and user within `sms_max_frequency`, and the
/// project's hourly budget unless phones are autoconfirmed.
pub(super) async fn send_code(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &Transaction<'_>,
    user: &User,
    to: &str,
    column: TokenColumn,
) -> AuthResult<()> {
    if let Some(age) = store::sent_age(tx, &user.id, column).await? {
        let freq = s.phone.max_frequency as f64;
        if age < freq {
            return Err(sms_rate_limited(format!(
                "For security purposes, you can only request this after {} seconds.",
                (freq - age).ceil() as i64
            )));
        }
    }
    if !s.phone.autoconfirm {
        let key = format!("{}:sms_sent", ctx.project_ref());
        if !auth.limiter.allow(&key, s.phone.sms_per_hour, SMS_WINDOW) {
            return Err(sms_rate_limited("SMS rate limit exceeded".into()));
        }
    }
    let code = sms::code(s.phone.otp_length);
    let ip = ctx.ip_text();
    sms::send(
        &auth.hooks,
        &ctx.project,
        tx,
        ip.as_deref(),
        &user.json,
        to,
        &code,
        Purpose::Otp,
    )
    .await?;
    store::set_token(tx, &user.id, column, &validate::token_hash(to, &code), to).await
}

/// `POST /signup {phone, password, data}` (the password already checked).
pub(super) async fn signup(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    phone: &str,
    password: String,
    data: Value,
) -> AuthResult<Response> {
    if !s.phone.enabled {
        return Err(disabled("Phone signups are disabled"));
    }
    let phone = sms::phone(phone)?;
    ctx.limit(auth, s, "signin", s.limit_sign_in, Some(&phone))?;
    let hash = hash_password(password).await?;
    let tx = client.transaction().await?;
    if let Some(existing) = phones::user_by_phone(&tx, &phone).await? {
        // GoTrue does not reveal a confirmed number unless sign-ups are autoconfirmed; an unconfirmed
        // one gets its code again (with autoconfirm it is refused: no code proves the caller owns it).
        let answer = match existing.phone_confirmed() {
            true if s.mailer_autoconfirm || s.phone.autoconfirm => return Err(user_exists()),
            true => phones::lookalike_user(&tx, &phone, &data).await?,
            false if s.phone.autoconfirm => return Err(user_exists()),
            false => {
                send_code(
                    auth,
                    ctx,
                    s,
                    &tx,
                    &existing,
                    &phone,
                    TokenColumn::Confirmation,
                )
                .await?;
                reload(&tx, &existing.id).await?.json
            }
        };
        tx.commit().await?;
        return Ok(Json(answer).into_response());
    }
    let user = phones::create_user(
        &tx,
        NewPhoneUser {
            phone: &phone,
            password_hash: Some(&hash),
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: s.phone.autoconfirm,
            role: "authenticated",
            identity_in_metadata: true,
        },
    )
    .await?
    .ok_or_else(user_exists)?;
    if s.phone.autoconfirm {
        let session = ctx
            .start_session(auth, s, &tx, &user.id, "password")
            .await?;
        tx.commit().await?;
        return Ok(Json(session).into_response());
    }
    send_code(auth, ctx, s, &tx, &user, &phone, TokenColumn::Confirmation).await?;
    let user = reload(&tx, &user.id).await?;
    tx.commit().await?;
    Ok(Json(user.json).into_response())
}

async fn reload(tx: &Transaction<'_>, id: &str) -> AuthResult<User> {
    store::user_by_id(tx, id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished"))
}

/// `POST /otp {phone, data?, create_user?, channel?}`: a code that signs in (`/verify` type `sms`).
/// Any `channel` is accepted, as GoTrue does when a hook sends the messages.
pub(super) async fn otp(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    phone: &str,
    data: Value,
    create_user: bool,
) -> AuthResult<Response> {
    if !s.phone.enabled {
        return Err(disabled("Unsupported phone provider"));
    }
    let phone = sms::phone(phone)?;
    ctx.limit(auth, s, "otp", s.limit_otp, Some(&phone))?;
    let tx = client.transaction().await?;
    let user = match phones::user_by_phone(&tx, &phone).await? {
        Some(u) => u,
        None if !create_user => {
            return Err(AuthError::unprocessable(
                "otp_disabled",
                "Signups not allowed for otp",
            ))
        }
        None if s.disable_signup => {
            return Err(AuthError::unprocessable(
                "signup_disabled",
                "Signups not allowed for this instance",
            ))
        }
        None => phones::create_user(
            &tx,
            NewPhoneUser {
                phone: &phone,
                password_hash: None,
                user_metadata: data,
                app_metadata: json!({}),
                confirmed: s.phone.autoconfirm,
                role: "authenticated",
                identity_in_metadata: true,
            },
        )
        .await?
        .ok_or_else(|| AuthError::internal("otp signup raced another signup"))?,
    };
    send_code(auth, ctx, s, &tx, &user, &phone, TokenColumn::Confirmation).await?;
    tx.commit().await?;
    Ok(ok_empty())
}

fn otp_expired() -> AuthError {
    AuthError::forbidden("otp_expired", "Token has expired or is invalid")
}

/// `POST /verify {type: sms | phone_change, phone, token}`: confirms the number (or completes the
/// change to it) and signs the user in (`otp` in `amr`).
pub(super) async fn verify(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    kind: &str,
    phone: Option<&str>,
    token: Option<&str>,
) -> AuthResult<Value> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::validation("Verify requires either a token or a token hash"))?;
    let phone = phone.filter(|p| !p.is_empty()).ok_or_else(|| {
        AuthError::validation("Only an email address or phone number should be provided on verify")
    })?;
    let phone = sms::phone(phone)?;
    let hash = validate::token_hash(&phone, token.trim());
    let change = kind == "phone_change";
    let tx = client.transaction().await?;
    let user = if change {
        phones::user_by_phone_change(&tx, &phone).await?
    } else {
        phones::user_by_phone(&tx, &phone).await?
    }
    .ok_or_else(otp_expired)?;
    if user.banned {
        return Err(AuthError::forbidden("user_banned", "User is banned"));
    }
    let column = if change {
        TokenColumn::PhoneChange
    } else {
        TokenColumn::Confirmation
    };
    let (stored, age) = store::token_of(&tx, &user.id, column).await?;
    let fresh = age.is_some_and(|a| a <= s.phone.otp_exp as f64);
    if stored.is_empty() || !fresh || !validate::same(&stored, &hash) {
        return Err(otp_expired());
    }
    if change {
        store::clear_token(&tx, &user.id, column).await?;
        if !phones::set_phone(&tx, &user.id, &phone, true).await? {
            return Err(phone_exists());
        }
    } else {
        phones::confirm(&tx, &user.id).await?;
    }
    let session = ctx.start_session(auth, s, &tx, &user.id, "otp").await?;
    tx.commit().await?;
    Ok(session)
}

/// `POST /resend {type: sms | phone_change, phone | email}`: the code again, for a number not yet
/// confirmed or a pending change; anything else (an unknown number included) answers `{}` as GoTrue.
pub(super) async fn resend(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    kind: &str,
    phone: Option<&str>,
    email: Option<&str>,
) -> AuthResult<Response> {
    let phone = phone.filter(|p| !p.is_empty());
    let email = email.filter(|e| !e.is_empty());
    if phone.is_none() && kind == "sms" {
        return Err(AuthError::validation(
            "Type provided requires a phone number",
        ));
    }
    let tx = client.transaction().await?;
    let user = match (phone, email) {
        (Some(_), Some(_)) => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided.",
            ))
        }
        (Some(p), None) => {
            if !s.phone.enabled {
                return Err(disabled("Phone logins are disabled"));
            }
            let p = sms::phone(p)?;
            ctx.limit(auth, s, "otp", s.limit_otp, Some(&p))?;
            match phones::user_by_phone(&tx, &p).await? {
                Some(u) => Some(u),
                None if kind == "phone_change" => phones::user_by_phone_change(&tx, &p).await?,
                None => None,
            }
        }
        (None, Some(e)) => {
            let e = validate::email(e)?;
            ctx.limit(auth, s, "otp", s.limit_otp, Some(&e))?;
            store::user_by_email(&tx, &e).await?
        }
        (None, None) => {
            return Err(AuthError::validation(
                "Missing email address or phone number",
            ))
        }
    };
    let target = match (&user, kind) {
        (Some(u), "sms") if !u.phone_confirmed() => u
            .phone()
            .map(|p| (p.to_string(), TokenColumn::Confirmation)),
        (Some(u), "phone_change") => u
            .phone_change()
            .map(|p| (p.to_string(), TokenColumn::PhoneChange)),
        _ => None,
    };
    if let (Some(u), Some((to, column))) = (&user, target) {
        send_code(auth, ctx, s, &tx, u, &to, column).await?;
        tx.commit().await?;
    }
    Ok(ok_empty())
}

/// `PUT /user {phone}`: with `phone_autoconfirm` the number changes at once, otherwise it is pending
/// and a code goes to it (`/verify` type `phone_change`).
pub(super) async fn change(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &Transaction<'_>,
    user: &User,
    phone: &str,
) -> AuthResult<()> {
    if user.phone() == Some(phone) {
        return Ok(());
    }
    if !s.phone.enabled {
        return Err(AuthError::unprocessable(
            "phone_provider_disabled",
            "Phone signups are disabled",
        ));
    }
    if phones::user_by_phone(tx, phone).await?.is_some() {
        return Err(phone_exists());
    }
    if s.phone.autoconfirm {
        if !phones::set_phone(tx, &user.id, phone, true).await? {
            return Err(phone_exists());
        }
        return Ok(());
    }
    phones::set_phone_change(tx, &user.id, phone).await?;
    send_code(auth, ctx, s, tx, user, phone, TokenColumn::PhoneChange).await
}

/// `GET /reauthenticate` of a user with only a phone number: the nonce a password change presents,
/// by SMS.
pub(super) async fn reauthenticate(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &Transaction<'_>,
    user: &User,
) -> AuthResult<()> {
    let Some(phone) = user.phone() else {
        return Err(AuthError::validation(
            "Reauthentication requires the user to have an email or a phone number",
        ));
    };
    if !user.phone_confirmed() {
        return Err(AuthError::unprocessable(
            "phone_not_confirmed",
            "Please verify your phone first.",
        ));
    }
    let phone = phone.to_string();
    send_code(
        auth,
        ctx,
        s,
        tx,
        user,
        &phone,
        TokenColumn::Reauthentication,
    )
    .await
}

/// The number a password grant names, as GoTrue reads it (formatted, not validated).
pub(super) fn login_number(s: &Settings, phone: &str) -> AuthResult<String> {
    if !s.phone.enabled {
        return Err(AuthError::unprocessable(
            "phone_provider_disabled",
            "Phone logins are disabled",
        ));
    }
    Ok(sms::format(phone))
}
