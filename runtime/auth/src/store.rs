//! SQL on the `auth` schema (GoTrue's tables). Every statement is parameterised and prepared once per
//! connection; everything runs inside the caller's transaction.

use crate::error::{AuthError, AuthResult};
use crate::token::Amr;
use deadpool_postgres::Transaction;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// GoTrue's instance id: single-tenant per database, so the nil UUID as GoTrue writes it.
const INSTANCE: &str = "00000000-0000-0000-0000-000000000000";

/// The user as the API returns it, built by PostgreSQL (timestamps in ISO 8601, UTC). As GoTrue's, it
/// leaves out timestamps that are not set (and `new_email` without a pending change) rather than
/// answering `null`, and has `factors` only when the user has MFA factors; metadata is as stored.
const USER_JSON: &str = concat!(
    "jsonb_build_object(
  'id', u.id, 'aud', coalesce(u.aud, ''), 'role', coalesce(u.role, ''),
  'email', coalesce(u.email, ''), 'phone', coalesce(u.phone, ''),
  'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb),
  'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb),
  'identities', coalesce((SELECT jsonb_agg(jsonb_build_object(
      'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
      'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
      'updated_at', i.updated_at, 'email', i.email) ORDER BY i.created_at)
    FROM auth.identities i WHERE i.user_id = u.id), '[]'::jsonb),
  'created_at', u.created_at, 'updated_at', u.updated_at, 'is_anonymous', u.is_anonymous) \
  || jsonb_strip_nulls(jsonb_build_object(
  'email_confirmed_at', u.email_confirmed_at, 'phone_confirmed_at', u.phone_confirmed_at,
  'confirmation_sent_at', u.confirmation_sent_at, 'confirmed_at', u.confirmed_at,
  'recovery_sent_at', u.recovery_sent_at, 'email_change_sent_at', u.email_change_sent_at,
  'new_email', nullif(u.email_change, ''), 'invited_at', u.invited_at,
  'new_phone', nullif(u.phone_change, ''), 'phone_change_sent_at', u.phone_change_sent_at,
  'last_sign_in_at', u.last_sign_in_at, 'banned_until', u.banned_until, 'deleted_at', u.deleted_at)) \
  || coalesce((SELECT jsonb_build_object('factors', jsonb_agg(",
    crate::factors::factor_json!(),
    " ORDER BY f.created_at)) FROM auth.mfa_factors f WHERE f.user_id = u.id HAVING count(*) > 0), \
  '{}'::jsonb)"
);

/// A user row with what the handlers decide on. `json` is what clients see; the password hash
/// never leaves this struct.
pub struct User {
    pub id: String,
    pub json: Value,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub confirmed: bool,
    pub banned: bool,
    pub sent_at_age: Option<f64>,
}

pub(crate) fn select_user(filter: &str) -> String {
    format!(
        "SELECT u.id::text, {USER_JSON}, u.encrypted_password, u.email, u.email_confirmed_at IS NOT NULL, \
         coalesce(u.banned_until > now(), false), NULL::float8 FROM auth.users u WHERE {filter}"
    )
}

pub(crate) fn user_from(r: &Row) -> User {
    User {
        id: r.get(0),
        json: r.get(1),
        password_hash: r.get::<_, Option<String>>(2).filter(|h| !h.is_empty()),
        email: r.get::<_, Option<String>>(3).filter(|e| !e.is_empty()),
        confirmed: r.get(4),
        banned: r.get(5),
        sent_at_age: r.get(6),
    }
}

async fn rows(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> AuthResult<Vec<Row>> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.query(&st, params).await?)
}

async fn row(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> AuthResult<Option<Row>> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&st, params).await?)
}

async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> AuthResult<u64> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&st, params).await?)
}

/// Whether `s` is shaped like a UUID (so a bad id is a 404, not a cast error).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub async fn user_by_email(tx: &Transaction<'_>, email: &str) -> AuthResult<Option<User>> {
    let sql = select_user("u.email = $1 AND NOT u.is_sso_user AND u.deleted_at IS NULL");
    Ok(row(tx, &sql, &[&email]).await?.as_ref().map(user_from))
}

/// The user with a pending change to this email address.
pub async fn user_by_email_change(tx: &Transaction<'_>, email: &str) -> AuthResult<Option<User>> {
    let sql = select_user("u.email_change = $1 AND u.deleted_at IS NULL");
    Ok(row(tx, &sql, &[&email]).await?.as_ref().map(user_from))
}

pub async fn user_by_id(tx: &Transaction<'_>, id: &str) -> AuthResult<Option<User>> {
    if !is_uuid(id) {
        return Ok(None);
    }
    let sql = select_user("u.id = $1::text::uuid");
    Ok(row(tx, &sql, &[&id]).await?.as_ref().map(user_from))
}

/// The user holding a one-time token of `column` (confirmation_token, recovery_token, …) with this
/// hash, and the seconds since it was sent.
pub async fn user_by_token(
    tx: &Transaction<'_>,
    column: TokenColumn,
    hash: &str,
) -> AuthResult<Option<User>> {
    let (col, sent) = column.columns();
    let sql = format!(
        "SELECT u.id::text, {USER_JSON}, u.encrypted_password, u.email, u.email_confirmed_at IS NOT NULL, \
         coalesce(u.banned_until > now(), false), extract(epoch from now() - u.{sent})::float8 \
         FROM auth.users u WHERE u.{col} = $1 AND u.deleted_at IS NULL"
    );
    Ok(row(tx, &sql, &[&hash]).await?.as_ref().map(user_from))
}

/// The one-time token columns of auth.users, with their `*_sent_at` column and their type in
/// auth.one_time_tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenColumn {
    Confirmation,
    Recovery,
    /// The email-change token sent to the new address.
    EmailChange,
    /// The email-change token sent to the current address.
    EmailChangeCurrent,
    /// The nonce of `/reauthenticate`.
    Reauthentication,
    /// The code sent to the new number of a phone change.
    PhoneChange,
}

impl TokenColumn {
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            TokenColumn::Confirmation => ("confirmation_token", "confirmation_sent_at"),
            TokenColumn::Recovery => ("recovery_token", "recovery_sent_at"),
            TokenColumn::EmailChange => ("email_change_token_new", "email_change_sent_at"),
            TokenColumn::EmailChangeCurrent => {
                ("email_change_token_current", "email_change_sent_at")
            }
            TokenColumn::Reauthentication => ("reauthentication_token", "reauthentication_sent_at"),
            TokenColumn::PhoneChange => ("phone_change_token", "phone_change_sent_at"),
        }
    }

    fn one_time_type(self) -> &'static str {
        match self {
            TokenColumn::Confirmation => "confirmation_token",
            TokenColumn::Recovery => "recovery_token",
            TokenColumn::EmailChange => "email_change_token_new",
            TokenColumn::EmailChangeCurrent => "email_change_token_current",
            TokenColumn::Reauthentication => "reauthentication_token",
            TokenColumn::PhoneChange => "phone_change_token",
        }
    }
}

/// Stores a one-time token hash for `user` (in auth.users and auth.one_time_tokens, as GoTrue does).
pub async fn set_token(
    tx: &Transaction<'_>,
    user_id: &str,
    column: TokenColumn,
    hash: &str,
    relates_to: &str,
) -> AuthResult<()> {
    let (col, sent) = column.columns();
    exec(
        tx,
        &format!("UPDATE auth.users SET {col} = $2, {sent} = now(), updated_at = now() WHERE id = $1::text::uuid"),
        &[&user_id, &hash],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to) \
         VALUES (gen_random_uuid(), $1::text::uuid, $2::text::auth.one_time_token_type, $3, $4) \
         ON CONFLICT (user_id, token_type) DO UPDATE SET token_hash = EXCLUDED.token_hash, \
         relates_to = EXCLUDED.relates_to, updated_at = now()",
        &[&user_id, &column.one_time_type(), &hash, &relates_to],
    )
    .await?;
    Ok(())
}

/// The stored hash of a user's one-time token of `column` ('' when none) and the seconds since it was
/// sent.
pub async fn token_of(
    tx: &Transaction<'_>,
    user_id: &str,
    column: TokenColumn,
) -> AuthResult<(String, Option<f64>)> {
    let (col, sent) = column.columns();
    let r = row(
        tx,
        &format!(
            "SELECT coalesce({col}, ''), extract(epoch from now() - {sent})::float8 FROM auth.users \
             WHERE id = $1::text::uuid"
        ),
        &[&user_id],
    )
    .await?;
    Ok(r.map(|r| (r.get(0), r.get(1))).unwrap_or_default())
}

/// Consumes a one-time token of `user`.
pub async fn clear_token(
    tx: &Transaction<'_>,
    user_id: &str,
    column: TokenColumn,
) -> AuthResult<()> {
    let (col, _) = column.columns();
    exec(
        tx,
        &format!("UPDATE auth.users SET {col} = '', updated_at = now() WHERE id = $1::text::uuid"),
        &[&user_id],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM auth.one_time_tokens WHERE user_id = $1::text::uuid AND token_type = $2::text::auth.one_time_token_type",
        &[&user_id, &column.one_time_type()],
    )
    .await?;
    Ok(())
}

/// Seconds since a mail of this kind was last sent to the user (None: never).
pub async fn sent_age(
    tx: &Transaction<'_>,
    user_id: &str,
    column: TokenColumn,
) -> AuthResult<Option<f64>> {
    let (_, sent) = column.columns();
    let r = row(
        tx,
        &format!(
            "SELECT extract(epoch from now() - {sent})::float8 FROM auth.users WHERE id = $1::text::uuid"
        ),
        &[&user_id],
    )
    .await?;
    Ok(r.and_then(|r| r.get(0)))
}

pub struct NewUser<'a> {
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub user_metadata: Value,
    pub app_metadata: Value,
    pub confirmed: bool,
    pub anonymous: bool,
    pub role: &'a str,
    /// Whether the email identity's data (`sub`, `email`, `email_verified`, `phone_verified`) is merged
    /// into user_metadata, as GoTrue's sign-up does; users the admin API creates keep theirs as sent.
    pub identity_in_metadata: bool,
    /// An OAuth/OIDC provider's identity the user signs up with, instead of an email identity.
    pub external: Option<External<'a>>,
}

/// A provider's identity: its name, the user's id there and what it said about them (GoTrue's
/// `identity_data`, which also becomes the new user's `user_metadata`).
pub struct External<'a> {
    pub provider: &'a str,
    pub provider_id: &'a str,
    pub data: &'a Value,
}

/// Creates a user (and its email identity, whose data is merged into user_metadata where
/// [`NewUser::identity_in_metadata`] says so).
/// Returns None when the email is taken.
pub async fn create_user(tx: &Transaction<'_>, n: NewUser<'_>) -> AuthResult<Option<User>> {
    let provider = match &n.external {
        Some(x) => x.provider,
        None if n.anonymous => "anonymous",
        None => "email",
    };
    let mut app = json!({"provider": provider, "providers": [provider]});
    if let (Value::Object(a), Value::Object(extra)) = (&mut app, &n.app_metadata) {
        for (k, v) in extra {
            if k != "provider" && k != "providers" {
                a.insert(k.clone(), v.clone());
            }
        }
    }
    let created = row(
        tx,
        "INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, \
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, confirmation_token, \
           recovery_token, email_change_token_new, email_change) \
         VALUES ($1::text::uuid, gen_random_uuid(), 'authenticated', $2, $3, $4, CASE WHEN $5 THEN now() END, \
           $6::jsonb, $7::jsonb, now(), now(), $8, '', '', '', '') \
         ON CONFLICT (email) WHERE is_sso_user = false DO NOTHING RETURNING id::text",
        &[
            &INSTANCE,
            &n.role,
            &n.email,
            &n.password_hash.unwrap_or(""),
            &n.confirmed,
            &app,
            &n.user_metadata,
            &n.anonymous,
        ],
    )
    .await?;
    let Some(created) = created else {
        return Ok(None);
    };
    let id: String = created.get(0);
    if let Some(x) = &n.external {
        link_identity(tx, &id, x).await?;
    } else if let Some(email) = n.email {
        let identity = json!({
            "sub": id, "email": email, "email_verified": n.confirmed, "phone_verified": false,
        });
        exec(
            tx,
            "INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at) \
             VALUES ($1, $1::text::uuid, $2::jsonb, 'email', now(), now())",
            &[&id, &identity],
        )
        .await?;
        if n.identity_in_metadata {
            exec(
                tx,
                "UPDATE auth.users SET raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb \
                 WHERE id = $1::text::uuid",
                &[&id, &identity],
            )
            .await?;
        }
    }
    user_by_id(tx, &id).await
}

/// Records (or refreshes) the provider identity `x` of user `user_id`, signing in now.
pub async fn link_identity(
    tx: &Transaction<'_>,
    user_id: &str,
    x: &External<'_>,
) -> AuthResult<()> {
    exec(
        tx,
        "INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2::text::uuid, $3::jsonb, $4, now(), now(), now()) \
         ON CONFLICT (provider_id, provider) DO UPDATE SET identity_data = EXCLUDED.identity_data, \
           last_sign_in_at = now(), updated_at = now()",
        &[&x.provider_id, &user_id, x.data, &x.provider],
    )
    .await?;
    exec(
        tx,
        "UPDATE auth.users SET raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'::jsonb), \
           '{providers}', (SELECT jsonb_agg(DISTINCT i.provider) FROM auth.identities i WHERE i.user_id = $1::text::uuid)), \
           updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// A made-up user for `email` with a fresh id, shaped like a real unconfirmed one (answers that must
/// not reveal whether an address has an account).
pub async fn lookalike_user(tx: &Transaction<'_>, email: &str) -> AuthResult<Value> {
    let r = row(
        tx,
        "SELECT jsonb_build_object('id', gen_random_uuid(), 'aud', 'authenticated', 'role', 'authenticated', \
           'email', $1::text, 'phone', '', 'confirmation_sent_at', now(), \
           'app_metadata', jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email')), \
           'user_metadata', '{}'::jsonb, 'identities', '[]'::jsonb, 'created_at', now(), 'updated_at', now(), \
           'is_anonymous', false)",
        &[&email],
    )
    .await?
    .ok_or_else(|| AuthError::internal("lookalike user query returned nothing"))?;
    Ok(r.get(0))
}

/// Records that the user was invited (now).
pub async fn mark_invited(tx: &Transaction<'_>, user_id: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET invited_at = now(), updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// Marks the email confirmed (and the identity's `email_verified`).
pub async fn confirm_email(tx: &Transaction<'_>, user_id: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now(), \
           raw_user_meta_data = CASE WHEN raw_user_meta_data ? 'email_verified' \
             THEN raw_user_meta_data || '{\"email_verified\": true}'::jsonb ELSE raw_user_meta_data END \
         WHERE id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    exec(
        tx,
        "UPDATE auth.identities SET identity_data = identity_data || '{\"email_verified\": true}'::jsonb, \
         updated_at = now() WHERE user_id = $1::text::uuid AND provider = 'email'",
        &[&user_id],
    )
    .await?;
    Ok(())
}

pub async fn set_password(tx: &Transaction<'_>, user_id: &str, hash: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET encrypted_password = $2, updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id, &hash],
    )
    .await?;
    Ok(())
}

/// Changes the email (taken → false), keeping the email identity in step.
pub async fn set_email(tx: &Transaction<'_>, user_id: &str, email: &str) -> AuthResult<bool> {
    if let Some(other) = user_by_email(tx, email).await? {
        return Ok(other.id == user_id);
    }
    exec(
        tx,
        "UPDATE auth.users SET email = $2::text, email_change = '', email_change_token_new = '', updated_at = now(), \
           raw_user_meta_data = CASE WHEN raw_user_meta_data ? 'email' \
             THEN raw_user_meta_data || jsonb_build_object('email', $2::text) ELSE raw_user_meta_data END \
         WHERE id = $1::text::uuid",
        &[&user_id, &email],
    )
    .await?;
    let n = exec(
        tx,
        "UPDATE auth.identities SET identity_data = identity_data || jsonb_build_object('email', $2::text), \
         updated_at = now() WHERE user_id = $1::text::uuid AND provider = 'email'",
        &[&user_id, &email],
    )
    .await?;
    if n == 0 {
        // An anonymous user gaining an email becomes a permanent email user.
        let identity = json!({"sub": user_id, "email": email, "email_verified": true, "phone_verified": false});
        exec(
            tx,
            "INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at) \
             VALUES ($1, $1::text::uuid, $2::jsonb, 'email', now(), now())",
            &[&user_id, &identity],
        )
        .await?;
        exec(
            tx,
            "UPDATE auth.users SET is_anonymous = false, email_confirmed_at = coalesce(email_confirmed_at, now()), \
               raw_app_meta_data = jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email')) \
                 || (coalesce(raw_app_meta_data, '{}'::jsonb) - 'provider' - 'providers') \
             WHERE id = $1::text::uuid",
            &[&user_id],
        )
        .await?;
    }
    Ok(true)
}

/// Records a pending email change (confirmed later through the emailed token).
pub async fn set_email_change(tx: &Transaction<'_>, user_id: &str, email: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET email_change = $2, updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id, &email],
    )
    .await?;
    Ok(())
}

/// Merges top-level keys into user_metadata or app_metadata; a null value removes the key (GoTrue).
pub async fn merge_metadata(
    tx: &Transaction<'_>,
    user_id: &str,
    app: bool,
    patch: &serde_json::Map<String, Value>,
) -> AuthResult<()> {
    let set: serde_json::Map<String, Value> = patch
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed: Vec<String> = patch
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    let col = if app {
        "raw_app_meta_data"
    } else {
        "raw_user_meta_data"
    };
    exec(
        tx,
        &format!(
            "UPDATE auth.users SET {col} = (coalesce({col}, '{{}}'::jsonb) || $2::jsonb) - $3::text[], \
             updated_at = now() WHERE id = $1::text::uuid"
        ),
        &[&user_id, &Value::Object(set), &removed],
    )
    .await?;
    Ok(())
}

pub async fn set_role(tx: &Transaction<'_>, user_id: &str, role: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET role = $2, updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id, &role],
    )
    .await?;
    Ok(())
}

/// Bans until now + `secs`, or lifts the ban (None).
pub async fn set_ban(tx: &Transaction<'_>, user_id: &str, secs: Option<f64>) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET banned_until = now() + make_interval(secs => $2::float8), updated_at = now() \
         WHERE id = $1::text::uuid",
        &[&user_id, &secs],
    )
    .await?;
    if secs.is_some() {
        exec(
            tx,
            "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid",
            &[&user_id],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_user(tx: &Transaction<'_>, user_id: &str, soft: bool) -> AuthResult<bool> {
    let n = if soft {
        // GoTrue's soft delete: keep the row, free the email and phone, drop sessions and identities.
        let n = exec(
            tx,
            "UPDATE auth.users SET deleted_at = now(), email = NULL, phone = NULL, encrypted_password = '', \
             raw_user_meta_data = '{}'::jsonb, updated_at = now() WHERE id = $1::text::uuid AND deleted_at IS NULL",
            &[&user_id],
        )
        .await?;
        exec(
            tx,
            "DELETE FROM auth.identities WHERE user_id = $1::text::uuid",
            &[&user_id],
        )
        .await?;
        exec(
            tx,
            "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid",
            &[&user_id],
        )
        .await?;
        n
    } else {
        exec(
            tx,
            "DELETE FROM auth.users WHERE id = $1::text::uuid",
            &[&user_id],
        )
        .await?
    };
    Ok(n > 0)
}

/// A page of users (newest first) and the total.
pub async fn list_users(
    tx: &Transaction<'_>,
    page: i64,
    per_page: i64,
) -> AuthResult<(Vec<Value>, i64)> {
    let sql = format!(
        "SELECT {USER_JSON} FROM auth.users u WHERE u.deleted_at IS NULL \
         ORDER BY u.created_at DESC, u.id LIMIT $1 OFFSET $2"
    );
    let users = rows(tx, &sql, &[&per_page, &((page - 1) * per_page)])
        .await?
        .iter()
        .map(|r| r.get::<_, Value>(0))
        .collect();
    let total: i64 = row(
        tx,
        "SELECT count(*) FROM auth.users WHERE deleted_at IS NULL",
        &[],
    )
    .await?
    .map(|r| r.get(0))
    .unwrap_or(0);
    Ok((users, total))
}

/// A new session with its first refresh token; records the sign-in.
pub async fn create_session(
    tx: &Transaction<'_>,
    user_id: &str,
    method: &str,
    refresh_token: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> AuthResult<String> {
    let r = row(
        tx,
        "WITH s AS (
           INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)
           VALUES (gen_random_uuid(), $1::text::uuid, now(), now(), 'aal1', $3, $4::text::inet) RETURNING id),
         a AS (
           INSERT INTO auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
           SELECT id, now(), now(), $2, gen_random_uuid() FROM s),
         r AS (
           INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
           SELECT $6::text::uuid, $5, $1, false, now(), now(), id FROM s),
         i AS (
           UPDATE auth.identities SET last_sign_in_at = now() WHERE user_id = $1::text::uuid)
         UPDATE auth.users SET last_sign_in_at = now(), updated_at = now() WHERE id = $1::text::uuid
         RETURNING (SELECT id::text FROM s)",
        &[&user_id, &method, &user_agent, &ip, &refresh_token, &INSTANCE],
    )
    .await?
    .ok_or_else(|| AuthError::internal("session insert returned nothing"))?;
    Ok(r.get(0))
}

/// The authentication methods of a session, the most recent first (as GoTrue orders `amr`).
pub async fn amr(tx: &Transaction<'_>, session_id: &str) -> AuthResult<Vec<Amr>> {
    Ok(rows(
        tx,
        "SELECT authentication_method, extract(epoch from created_at)::bigint FROM auth.mfa_amr_claims \
         WHERE session_id = $1::text::uuid ORDER BY created_at DESC",
        &[&session_id],
    )
    .await?
    .iter()
    .map(|r| Amr {
        method: r.get(0),
        timestamp: r.get(1),
    })
    .collect())
}

/// Whether the session exists and has not timed out.
pub async fn session_exists(tx: &Transaction<'_>, session_id: &str) -> AuthResult<bool> {
    if !is_uuid(session_id) {
        return Ok(false);
    }
    Ok(row(
        tx,
        "SELECT 1 FROM auth.sessions WHERE id = $1::text::uuid AND (not_after IS NULL OR not_after > now())",
        &[&session_id],
    )
    .await?
    .is_some())
}

/// A presented refresh token, read after locking its session (so concurrent refreshes of one session
/// run one after the other and see each other's rotations).
pub struct RefreshRow {
    pub id: i64,
    pub token: String,
    pub revoked: bool,
    pub user_id: String,
    pub session_id: String,
    pub age_secs: f64,
    pub active: Option<String>,
    pub parent_of_active: bool,
}

pub async fn lock_refresh(tx: &Transaction<'_>, token: &str) -> AuthResult<Option<RefreshRow>> {
    let locked = row(
        tx,
        "SELECT s.id FROM auth.refresh_tokens t JOIN auth.sessions s ON s.id = t.session_id \
         WHERE t.token = $1 AND (s.not_after IS NULL OR s.not_after > now()) FOR UPDATE OF s",
        &[&token],
    )
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    let r = row(
        tx,
        "SELECT t.id, t.token, coalesce(t.revoked, false), t.user_id, t.session_id::text, \
           extract(epoch from clock_timestamp() - t.updated_at)::float8, act.token, \
           coalesce(act.parent = t.token, false) \
         FROM auth.refresh_tokens t \
         LEFT JOIN LATERAL (SELECT a.token, a.parent FROM auth.refresh_tokens a \
           WHERE a.session_id = t.session_id AND NOT coalesce(a.revoked, false) ORDER BY a.id DESC LIMIT 1) act ON true \
         WHERE t.token = $1",
        &[&token],
    )
    .await?;
    Ok(r.map(|r| RefreshRow {
        id: r.get(0),
        token: r.get(1),
        revoked: r.get(2),
        user_id: r.get(3),
        session_id: r.get(4),
        age_secs: r.get(5),
        active: r.get(6),
        parent_of_active: r.get(7),
    }))
}

/// Revokes `parent` and issues `child` in its session.
pub async fn rotate(tx: &Transaction<'_>, parent: &RefreshRow, child: &str) -> AuthResult<()> {
    exec(
        tx,
        "WITH o AS (UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() WHERE id = $1 RETURNING id),
         n AS (INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
               VALUES ($6::text::uuid, $2, $3, false, now(), now(), $4, $5::text::uuid))
         UPDATE auth.sessions SET refreshed_at = (now() AT TIME ZONE 'UTC'), updated_at = now() WHERE id = $5::text::uuid",
        &[
            &parent.id,
            &child,
            &parent.user_id,
            &parent.token,
            &parent.session_id,
            &INSTANCE,
        ],
    )
    .await?;
    Ok(())
}

pub async fn delete_session(tx: &Transaction<'_>, session_id: &str) -> AuthResult<()> {
    exec(
        tx,
        "DELETE FROM auth.sessions WHERE id = $1::text::uuid",
        &[&session_id],
    )
    .await?;
    Ok(())
}

/// Logout: `global` ends every session of the user, `local` this one, `others` all but this one.
pub async fn logout(
    tx: &Transaction<'_>,
    user_id: &str,
    session_id: &str,
    scope: &str,
) -> AuthResult<()> {
    let sid = if is_uuid(session_id) {
        session_id
    } else {
        INSTANCE
    };
    let sql = match scope {
        "local" => "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid AND id = $2::text::uuid",
        "others" => "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid AND id <> $2::text::uuid",
        _ => "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid AND $2::text::uuid IS NOT NULL",
    };
    exec(tx, sql, &[&user_id, &sid]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("6f1c7c1e-1111-4a4a-9b9b-000000000001"));
        assert!(!is_uuid("6f1c7c1e-1111-4a4a-9b9b-00000000000"));
        assert!(!is_uuid("6f1c7c1e-1111-4a4a-9b9b-00000000000z"));
        assert!(!is_uuid("x' OR 1=1 --"));
    }
}
