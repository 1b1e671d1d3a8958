//! The admin API (service_role only): list, create, read, update (ban and unban with `ban_duration`;
//! `phone` and `phone_confirm` as GoTrue's) and delete users, invite them, and generate the links of
//! emails without sending them.

use super::one_time::send_token;
use super::request::{body, email_exists, hash_password, metadata, ok_empty, Ctx};
use super::Auth;
use crate::error::{AuthError, AuthResult};
use crate::mail::MailKind;
use crate::store::{self, NewUser};
use crate::{phones, sms, validate};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{header, HeaderValue};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminUser {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    email_confirm: Option<bool>,
    phone_confirm: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    role: Option<String>,
    ban_duration: Option<String>,
    should_soft_delete: Option<bool>,
}

/// GoTrue's ban durations: Go durations such as `24h`, `1h30m`, `90s`; `none` lifts the ban.
fn parse_duration(s: &str) -> AuthResult<Option<f64>> {
    if s == "none" {
        return Ok(None);
    }
    let bad = || AuthError::validation("invalid format for ban duration");
    let (mut total, mut num) = (0f64, String::new());
    let mut chars = s.chars().peekable();
    let mut seen = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        num.clear();
        seen = true;
    }
    if !num.is_empty() || !seen {
        return Err(bad());
    }
    Ok(Some(total))
}

/// The email and phone of an admin request, each checked when given.
fn email_and_phone(a: &AdminUser) -> AuthResult<(Option<String>, Option<String>)> {
    let email = match a.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    let phone = match a.phone.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(sms::phone(p)?),
        None => None,
    };
    Ok((email, phone))
}

/// GoTrue's answer when the admin API gives a user a number another user has.
fn phone_registered() -> AuthError {
    AuthError::unprocessable(
        "phone_exists",
        "Phone number already registered by another user",
    )
}

pub(super) async fn admin_list(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    ctx.require_admin()?;
    let num =
        |k: &str, default: i64| -> AuthResult<i64> {
            match q.get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AuthError::validation(format!("Bad Pagination Parameters: {k}"))
                }),
            }
        };
    let (page, per_page) = (num("page", 1)?, num("per_page", 50)?.min(1000));
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let (users, total) = store::list_users(&tx, page, per_page).await?;
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut res = Json(json!({"users": users, "aud": "authenticated"})).into_response();
    let h = res.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    h.insert(
        header::LINK,
        HeaderValue::from_str(&links.join(", ")).map_err(AuthError::internal)?,
    );
    Ok(res)
}

pub(super) async fn admin_create(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let (email, phone) = email_and_phone(&a)?;
    if email.is_none() && phone.is_none() {
        return Err(AuthError::validation(
            "Cannot create a user without either an email or phone",
        ));
    }
    let hash = match a.password.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate::password(&p, s.password_min_length)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let tx = client.transaction().await?;
    let (user_metadata, app_metadata) = (
        Value::Object(a.user_metadata.unwrap_or_default()),
        Value::Object(a.app_metadata.unwrap_or_default()),
    );
    let role = a.role.as_deref().unwrap_or("authenticated");
    let phone_confirm = a.phone_confirm.unwrap_or(false);
    let user = match (&email, &phone) {
        (Some(email), _) => store::create_user(
            &tx,
            NewUser {
                email: Some(email),
                password_hash: hash.as_deref(),
                user_metadata,
                app_metadata,
                confirmed: a.email_confirm.unwrap_or(false),
                anonymous: false,
                role,
                identity_in_metadata: false,
                external: None,
            },
        )
        .await?
        .ok_or_else(email_exists)?,
        (None, Some(phone)) => phones::create_user(
            &tx,
            phones::NewPhoneUser {
                phone,
                password_hash: hash.as_deref(),
                user_metadata,
                app_metadata,
                confirmed: phone_confirm,
                role,
                identity_in_metadata: false,
            },
        )
        .await?
        .ok_or_else(phone_registered)?,
        (None, None) => return Err(AuthError::internal("checked above")),
    };
    if let (Some(_), Some(phone)) = (&email, &phone) {
        if !phones::set_phone(&tx, &user.id, phone, phone_confirm).await? {
            return Err(phone_registered());
        }
    }
    if let Some(d) = a.ban_duration.as_deref() {
        store::set_ban(&tx, &user.id, parse_duration(d)?).await?;
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("created user vanished"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

pub(super) async fn admin_get(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    Ok(Json(user.json))
}

pub(super) async fn admin_update(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let (email, phone) = email_and_phone(&a)?;
    let hash = match a.password.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate::password(&p, s.password_min_length)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    if let Some(email) = email.filter(|e| Some(e) != user.email.as_ref()) {
        if !store::set_email(&tx, &user.id, &email).await? {
            return Err(email_exists());
        }
    }
    if let Some(hash) = hash {
        store::set_password(&tx, &user.id, &hash).await?;
    }
    if a.email_confirm == Some(true) {
        store::confirm_email(&tx, &user.id).await?;
    }
    let phone_confirm = a.phone_confirm == Some(true);
    if let Some(phone) = &phone {
        if !phones::set_phone(&tx, &user.id, phone, phone_confirm).await? {
            return Err(phone_registered());
        }
    } else if phone_confirm {
        phones::confirm(&tx, &user.id).await?;
    }
    if let Some(m) = &a.user_metadata {
        store::merge_metadata(&tx, &user.id, false, m).await?;
    }
    if let Some(m) = &a.app_metadata {
        store::merge_metadata(&tx, &user.id, true, m).await?;
    }
    if let Some(r) = a.role.as_deref().filter(|r| !r.is_empty()) {
        store::set_role(&tx, &user.id, r).await?;
    }
    if let Some(d) = a.ban_duration.as_deref() {
        store::set_ban(&tx, &user.id, parse_duration(d)?).await?;
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("updated user vanished"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

pub(super) async fn admin_delete(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
    raw: Bytes,
) -> AuthResult<Response> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    if store::user_by_id(&tx, &id).await?.is_none() {
        return Err(AuthError::user_not_found());
    }
    store::delete_user(&tx, &id, a.should_soft_delete.unwrap_or(false)).await?;
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Invite {
    email: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
}

/// `POST /invite` (service_role): creates the user (or takes an unconfirmed one) and mails an invite
/// link; accepting it (`/verify?type=invite`) confirms the address and signs the user in.
pub(super) async fn invite(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let i: Invite = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let email = validate::email(i.email.as_deref().unwrap_or(""))?;
    let redirect_to = i.redirect_to.or_else(|| q.get("redirect_to").cloned());
    let tx = client.transaction().await?;
    let user = invited_user(&tx, &email, i.data).await?;
    send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &email,
        MailKind::Invite,
        redirect_to.as_deref(),
        None,
    )
    .await?;
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("invited user vanished"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

/// The user an invite goes to: a new one (with `data` as its metadata), or an existing one that has not
/// confirmed its address; a confirmed one is GoTrue's `email_exists`.
async fn invited_user(
    tx: &deadpool_postgres::Transaction<'_>,
    email: &str,
    data: Option<Value>,
) -> AuthResult<store::User> {
    let user = match store::user_by_email(tx, email).await? {
        Some(u) if u.confirmed => return Err(email_exists()),
        Some(u) => u,
        None => store::create_user(
            tx,
            NewUser {
                email: Some(email),
                password_hash: None,
                user_metadata: metadata(data)?,
                app_metadata: json!({}),
                confirmed: false,
                anonymous: false,
                role: "authenticated",
                identity_in_metadata: true,
                external: None,
            },
        )
        .await?
        .ok_or_else(email_exists)?,
    };
    store::mark_invited(tx, &user.id).await?;
    Ok(user)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GenerateLink {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    new_email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
}

/// `POST /admin/generate_link`: the link and code of a signup, invite, magic-link, recovery or
/// email-change email, returned to the (service-role) caller instead of being mailed, as GoTrue does.
pub(super) async fn admin_generate_link(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let g: GenerateLink = body(&raw)?;
    let (mut client, mut s) = ctx.db(&auth).await?;
    // The caller delivers the message: no mail, no send-frequency limit.
    s.smtp = None;
    s.max_frequency = 0;
    let email = validate::email(g.email.as_deref().unwrap_or(""))?;
    let kind = g.kind.clone().unwrap_or_default();
    let redirect_to = g
        .redirect_to
        .clone()
        .or_else(|| q.get("redirect_to").cloned());
    let tx = client.transaction().await?;
    let (user, mail_kind, to) = link_target(&tx, &s, &kind, &email, g).await?;
    let (link, otp) = send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &to,
        mail_kind,
        redirect_to.as_deref(),
        None,
    )
    .await?;
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished"))?;
    tx.commit().await?;
    let mut out = user.json;
    out["action_link"] = json!(link);
    out["email_otp"] = json!(otp);
    out["hashed_token"] = json!(validate::token_hash(&to, &otp));
    out["redirect_to"] = json!(s.redirect(redirect_to.as_deref()));
    out["verification_type"] = json!(kind);
    Ok(Json(out))
}

/// The user a generated link is for, the message it stands for and the address it would go to.
async fn link_target(
    tx: &deadpool_postgres::Transaction<'_>,
    s: &crate::db::Settings,
    kind: &str,
    email: &str,
    g: GenerateLink,
) -> AuthResult<(store::User, MailKind, String)> {
    let existing = store::user_by_email(tx, email).await?;
    let to = email.to_string();
    Ok(match (kind, existing) {
        ("signup", Some(_)) => return Err(email_exists()),
        ("signup", None) => {
            let password = g.password.unwrap_or_default();
            validate::password(&password, s.password_min_length)?;
            let hash = hash_password(password).await?;
            let user = store::create_user(
                tx,
                NewUser {
                    email: Some(email),
                    password_hash: Some(&hash),
                    user_metadata: metadata(g.data)?,
                    app_metadata: json!({}),
                    confirmed: false,
                    anonymous: false,
                    role: "authenticated",
                    identity_in_metadata: true,
                    external: None,
                },
            )
            .await?
            .ok_or_else(email_exists)?;
            (user, MailKind::Confirmation, to)
        }
        ("invite", _) => (invited_user(tx, email, g.data).await?, MailKind::Invite, to),
        ("magiclink", Some(u)) => (u, MailKind::MagicLink, to),
        ("recovery", Some(u)) => (u, MailKind::Recovery, to),
        (k @ ("email_change_current" | "email_change_new"), Some(u)) => {
            if k == "email_change_current" && !s.secure_email_change {
                return Err(AuthError::validation(
                    "Enable secure email change to generate link for current email",
                ));
            }
            let new_email = validate::email(g.new_email.as_deref().unwrap_or(""))?;
            if store::user_by_email(tx, &new_email).await?.is_some() {
                return Err(email_exists());
            }
            super::email_change::pend(tx, &u.id, &new_email).await?;
            if k == "email_change_current" {
                (u, MailKind::EmailChangeCurrent, to)
            } else {
                (u, MailKind::EmailChange, new_email)
            }
        }
        ("magiclink" | "recovery" | "email_change_current" | "email_change_new", None) => {
            return Err(AuthError::user_not_found())
        }
        _ => {
            return Err(AuthError::validation(
                "Invalid email action link type requested (supported: signup, invite, magiclink, recovery, email_change_current, email_change_new)",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_durations() {
        assert_eq!(parse_duration("24h").unwrap(), Some(86400.0));
        assert_eq!(parse_duration("1h30m").unwrap(), Some(5400.0));
        assert_eq!(parse_duration("90s").unwrap(), Some(90.0));
        assert_eq!(parse_duration("none").unwrap(), None);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("").is_err());
    }
}
