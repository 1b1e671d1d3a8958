//! SQL on `auth.users` and `auth.identities` for phone numbers, as GoTrue keeps them: the number in
//! `users.phone` as E.164 digits without `+` ([`crate::sms::phone`]), `phone_confirmed_at`, a pending
//! change in `phone_change` (its code in `phone_change_token`), and a `phone` identity whose
//! `identity_data` holds `sub`, `phone`, `email_verified` and `phone_verified`. Everything runs in the
//! caller's transaction.

use crate::error::{AuthError, AuthResult};
use crate::store::{self, select_user, user_from, TokenColumn, User};
use deadpool_postgres::Transaction;
use serde_json::{json, Value};

impl User {
    /// The user's phone number (None: none).
    pub fn phone(&self) -> Option<&str> {
        self.json["phone"].as_str().filter(|p| !p.is_empty())
    }

    pub fn phone_confirmed(&self) -> bool {
        self.json.get("phone_confirmed_at").is_some()
    }

    /// The number a pending phone change goes to.
    pub fn phone_change(&self) -> Option<&str> {
        self.json["new_phone"].as_str().filter(|p| !p.is_empty())
    }
}

async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> AuthResult<u64> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&st, params).await?)
}

async fn one_user(tx: &Transaction<'_>, filter: &str, phone: &str) -> AuthResult<Option<User>> {
    let st = tx.prepare_cached(&select_user(filter)).await?;
    Ok(tx.query_opt(&st, &[&phone]).await?.as_ref().map(user_from))
}

pub async fn user_by_phone(tx: &Transaction<'_>, phone: &str) -> AuthResult<Option<User>> {
    one_user(
        tx,
        "u.phone = $1 AND NOT u.is_sso_user AND u.deleted_at IS NULL",
        phone,
    )
    .await
}

/// The user with a pending change to this number.
pub async fn user_by_phone_change(tx: &Transaction<'_>, phone: &str) -> AuthResult<Option<User>> {
    one_user(
        tx,
        "u.phone_change = $1 AND u.phone_change <> '' AND NOT u.is_sso_user AND u.deleted_at IS NULL",
        phone,
    )
    .await
}

/// A user signing up with a phone number.
pub struct NewPhoneUser<'a> {
    pub phone: &'a str,
    pub password_hash: Option<&'a str>,
    pub user_metadata: Value,
    pub app_metadata: Value,
    pub confirmed: bool,
    pub role: &'a str,
    /// Whether the identity's data is merged into user_metadata, as sign-ups do (see
    /// [`store::NewUser::identity_in_metadata`]).
    pub identity_in_metadata: bool,
}

/// Creates a user with this number and its `phone` identity; None when the number is taken.
pub async fn create_user(tx: &Transaction<'_>, n: NewPhoneUser<'_>) -> AuthResult<Option<User>> {
    let mut app = json!({"provider": "phone", "providers": ["phone"]});
    if let (Value::Object(a), Value::Object(extra)) = (&mut app, &n.app_metadata) {
        for (k, v) in extra {
            if k != "provider" && k != "providers" {
                a.insert(k.clone(), v.clone());
            }
        }
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO auth.users (instance_id, id, aud, role, phone, encrypted_password, phone_confirmed_at, \
               raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, confirmation_token, \
               recovery_token, email_change_token_new, email_change) \
             VALUES ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', $1, $2, $3, \
               CASE WHEN $4 THEN now() END, $5::jsonb, $6::jsonb, now(), now(), false, '', '', '', '') \
             ON CONFLICT DO NOTHING RETURNING id::text",
        )
        .await?;
    let created = tx
        .query_opt(
            &st,
            &[
                &n.role,
                &n.phone,
                &n.password_hash.unwrap_or(""),
                &n.confirmed,
                &app,
                &n.user_metadata,
            ],
        )
        .await?;
    let Some(created) = created else {
        return Ok(None);
    };
    let id: String = created.get(0);
    let identity = identity_data(&id, n.phone, n.confirmed);
    insert_identity(tx, &id, &identity).await?;
    if n.identity_in_metadata {
        exec(
            tx,
            "UPDATE auth.users SET raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb \
             WHERE id = $1::text::uuid",
            &[&id, &identity],
        )
        .await?;
    }
    store::user_by_id(tx, &id).await
}

fn identity_data(user_id: &str, phone: &str, verified: bool) -> Value {
    json!({"sub": user_id, "phone": phone, "email_verified": false, "phone_verified": verified})
}

async fn insert_identity(tx: &Transaction<'_>, user_id: &str, data: &Value) -> AuthResult<()> {
    exec(
        tx,
        "INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at) \
         VALUES ($1, $1::text::uuid, $2::jsonb, 'phone', now(), now()) \
         ON CONFLICT (provider_id, provider) DO UPDATE SET identity_data = auth.identities.identity_data || EXCLUDED.identity_data, \
           updated_at = now()",
        &[&user_id, data],
    )
    .await?;
    refresh_providers(tx, user_id).await
}

/// `app_metadata.providers` from the user's identities (GoTrue's `UpdateAppMetaDataProviders`).
async fn refresh_providers(tx: &Transaction<'_>, user_id: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'::jsonb), \
           '{providers}', coalesce((SELECT jsonb_agg(DISTINCT i.provider) FROM auth.identities i \
             WHERE i.user_id = $1::text::uuid), '[]'::jsonb)), updated_at = now() \
         WHERE id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// Gives the user `phone` (and a `phone` identity, or updates it), confirmed when `verified`, as the
/// admin API and a completed phone change do. False when another user holds the number.
pub async fn set_phone(
    tx: &Transaction<'_>,
    user_id: &str,
    phone: &str,
    verified: bool,
) -> AuthResult<bool> {
    if let Some(other) = user_by_phone(tx, phone).await? {
        if other.id != user_id {
            return Ok(false);
        }
    }
    exec(
        tx,
        "UPDATE auth.users SET phone = $2, phone_change = '', phone_change_token = '', updated_at = now(), \
           phone_confirmed_at = CASE WHEN $3 THEN now() ELSE phone_confirmed_at END, \
           is_anonymous = is_anonymous AND NOT $3 \
         WHERE id = $1::text::uuid",
        &[&user_id, &phone, &verified],
    )
    .await?;
    insert_identity(tx, user_id, &identity_data(user_id, phone, verified)).await?;
    Ok(true)
}

/// Marks the number confirmed (and `phone_verified` in the identity and in user_metadata when the
/// sign-up put it there); spends the confirmation code.
pub async fn confirm(tx: &Transaction<'_>, user_id: &str) -> AuthResult<()> {
    store::clear_token(tx, user_id, TokenColumn::Confirmation).await?;
    exec(
        tx,
        "UPDATE auth.users SET phone_confirmed_at = coalesce(phone_confirmed_at, now()), is_anonymous = false, \
           updated_at = now(), raw_user_meta_data = CASE WHEN raw_user_meta_data ? 'phone_verified' \
             THEN raw_user_meta_data || '{\"phone_verified\": true}'::jsonb ELSE raw_user_meta_data END \
         WHERE id = $1::text::uuid",
        &[&user_id],
    )
    .await?;
    exec(
        tx,
        "UPDATE auth.identities SET identity_data = identity_data || '{\"phone_verified\": true}'::jsonb, \
         updated_at = now() WHERE user_id = $1::text::uuid AND provider = 'phone'",
        &[&user_id],
    )
    .await?;
    Ok(())
}

/// Records a pending change to `phone` (confirmed later with the code sent there).
pub async fn set_phone_change(tx: &Transaction<'_>, user_id: &str, phone: &str) -> AuthResult<()> {
    exec(
        tx,
        "UPDATE auth.users SET phone_change = $2, updated_at = now() WHERE id = $1::text::uuid",
        &[&user_id, &phone],
    )
    .await?;
    Ok(())
}

/// A made-up unconfirmed phone user with a fresh id (GoTrue's `sanitizeUser`): the answer to a
/// sign-up with a number that has an account, which must not reveal it.
pub async fn lookalike_user(tx: &Transaction<'_>, phone: &str, data: &Value) -> AuthResult<Value> {
    let r = tx
        .query_opt(
            "SELECT jsonb_build_object('id', gen_random_uuid(), 'aud', 'authenticated', 'role', '', \
               'email', '', 'phone', $1::text, 'confirmation_sent_at', now(), \
               'app_metadata', jsonb_build_object('provider', 'phone', 'providers', jsonb_build_array('phone')), \
               'user_metadata', $2::jsonb, 'identities', '[]'::jsonb, 'created_at', now(), 'updated_at', now(), \
               'is_anonymous', false)",
            &[&phone, data],
        )
        .await?
        .ok_or_else(|| AuthError::internal("lookalike user query returned nothing"))?;
    Ok(r.get(0))
}
