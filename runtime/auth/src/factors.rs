//! SQL on GoTrue's MFA tables (`auth.mfa_factors`, `auth.mfa_challenges`, `auth.mfa_amr_claims`, the
//! session's `aal`), and the sealing of TOTP secrets: a factor's secret is stored AES-GCM-sealed with
//! the project's data key (from its config) and bound to the factor's row, never in clear.

use crate::error::{AuthError, AuthResult};
use deadpool_postgres::Transaction;
use serde_json::Value;
use supactl_common::wire::ProjectConfig;

/// A factor `f` as the API shows it (in the user's `factors` and the admin listing), as a literal
/// so that the user's JSON ([`crate::store`]) can embed it with `concat!`.
macro_rules! factor_json {
    () => {
        "(jsonb_build_object('id', f.id, 'status', f.status, \
          'friendly_name', coalesce(f.friendly_name, ''), 'factor_type', f.factor_type, \
          'created_at', f.created_at, 'updated_at', f.updated_at) \
          || CASE WHEN f.last_challenged_at IS NULL THEN '{}'::jsonb \
             ELSE jsonb_build_object('last_challenged_at', f.last_challenged_at) END \
          || CASE WHEN f.factor_type = 'phone' THEN jsonb_build_object('phone', f.phone) \
             ELSE '{}'::jsonb END)"
    };
}
pub(crate) use factor_json;

const FACTOR_JSON: &str = factor_json!();

/// Where a factor's sealed secret lives (its associated data).
fn aad(factor_id: &str) -> String {
    format!("auth.mfa_factors.secret:{factor_id}")
}

pub fn seal_secret(project: &ProjectConfig, factor_id: &str, secret: &str) -> AuthResult<String> {
    crate::sealed::seal(project, &aad(factor_id), secret)
}

pub fn open_secret(project: &ProjectConfig, factor_id: &str, sealed: &str) -> AuthResult<String> {
    crate::sealed::open(project, &aad(factor_id), sealed)
}

/// A factor row with what the handlers decide on.
pub struct Factor {
    pub id: String,
    pub user_id: String,
    pub verified: bool,
    pub factor_type: String,
    pub sealed_secret: Option<String>,
    pub json: Value,
}

async fn one(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> AuthResult<Option<tokio_postgres::Row>> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&st, params).await?)
}

async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> AuthResult<u64> {
    let st = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&st, params).await?)
}

/// The factor `id` of `user_id` (None: no such factor of that user).
pub async fn factor(tx: &Transaction<'_>, user_id: &str, id: &str) -> AuthResult<Option<Factor>> {
    if !crate::store::is_uuid(id) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT f.id::text, f.user_id::text, f.status = 'verified', f.factor_type::text, f.secret, {FACTOR_JSON} \
         FROM auth.mfa_factors f WHERE f.id = $1::text::uuid AND f.user_id = $2::text::uuid"
    );
    Ok(one(tx, &sql, &[&id, &user_id]).await?.map(|r| Factor {
        id: r.get(0),
        user_id: r.get(1),
        verified: r.get(2),
        factor_type: r.get(3),
        sealed_secret: r.get(4),
        json: r.get(5),
    }))
}

/// Every factor of a user, oldest first.
pub async fn list(tx: &Transaction<'_>, user_id: &str) -> AuthResult<Vec<Value>> {
    let sql = format!(
        "SELECT {FACTOR_JSON} FROM auth.mfa_factors f WHERE f.user_id = $1::text::uuid ORDER BY f.created_at"
    );
    let st = tx.prepare_cached(&sql).await?;
    Ok(tx
        .query(&st, &[&user_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// `(verified factors, unverified factors, whether one is named friendly_name)` of a user.
pub async fn counts(
    tx: &Transaction<'_>,
    user_id: &str,
    friendly_name: &str,
) -> AuthResult<(i64, i64, bool)> {
    let r = one(
        tx,
        "SELECT count(*) FILTER (WHERE status = 'verified'), count(*) FILTER (WHERE status = 'unverified'), \
           coalesce(bool_or(friendly_name = $2 AND $2 <> ''), false) \
         FROM auth.mfa_factors WHERE user_id = $1::text::uuid",
        &[&user_id, &friendly_name],
    )
    .await?
    .ok_or_else(|| AuthError::internal("count returned nothing"))?;
    Ok((r.get(0), r.get(1), r.get(2)))
}

/// Stores an unverified TOTP factor whose id the caller chose (its secret is sealed for that id).
pub async fn insert_totp(
    tx: &Transaction<'_>,
    id: &str,
    user_id: &str,
    friendly_name: &str,
    sealed_secret: &str,
) -> AuthResult<Value> {
    let sql = format!(
        "INSERT INTO auth.mfa_factors AS f (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret) \
         VALUES ($1::text::uuid, $2::text::uuid, nullif($3, ''), 'totp', 'unverified', now(), now(), $4) \
         RETURNING {FACTOR_JSON}"
    );
    let r = one(tx, &sql, &[&id, &user_id, &friendly_name, &sealed_secret])
        .await?
        .ok_or_else(|| AuthError::internal("factor insert returned nothing"))?;
    Ok(r.get(0))
}

/// A new challenge of a factor: `(id, created at as unix seconds)`.
pub async fn challenge(
    tx: &Transaction<'_>,
    factor_id: &str,
    ip: &str,
) -> AuthResult<(String, i64)> {
    let r = one(
        tx,
        "WITH f AS (UPDATE auth.mfa_factors SET last_challenged_at = clock_timestamp(), updated_at = now() \
                    WHERE id = $1::text::uuid) \
         INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address) \
         VALUES (gen_random_uuid(), $1::text::uuid, now(), $2::text::inet) \
         RETURNING id::text, extract(epoch from created_at)::bigint",
        &[&factor_id, &ip],
    )
    .await?
    .ok_or_else(|| AuthError::internal("challenge insert returned nothing"))?;
    Ok((r.get(0), r.get(1)))
}

/// A challenge of `factor_id`: `(seconds since it was created, whether it was already verified)`,
/// locked for this transaction.
pub async fn lock_challenge(
    tx: &Transaction<'_>,
    factor_id: &str,
    challenge_id: &str,
) -> AuthResult<Option<(f64, bool)>> {
    if !crate::store::is_uuid(challenge_id) {
        return Ok(None);
    }
    Ok(one(
        tx,
        "SELECT extract(epoch from now() - created_at)::float8, verified_at IS NOT NULL \
         FROM auth.mfa_challenges WHERE id = $1::text::uuid AND factor_id = $2::text::uuid FOR UPDATE",
        &[&challenge_id, &factor_id],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}

/// A correct code: the challenge is used up, the factor verified, and the session raised to `aal2`
/// with the factor's authentication method in its `amr` (`totp`, or `mfa/phone`).
pub async fn verified(
    tx: &Transaction<'_>,
    factor_id: &str,
    challenge_id: &str,
    session_id: &str,
    method: &str,
) -> AuthResult<()> {
    exec(
        tx,
        "WITH c AS (UPDATE auth.mfa_challenges SET verified_at = now() WHERE id = $2::text::uuid), \
         f AS (UPDATE auth.mfa_factors SET status = 'verified', updated_at = now() WHERE id = $1::text::uuid), \
         a AS (INSERT INTO auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id) \
               VALUES ($3::text::uuid, now(), now(), $4, gen_random_uuid()) \
               ON CONFLICT (session_id, authentication_method) DO UPDATE SET updated_at = now(), created_at = now()) \
         UPDATE auth.sessions SET aal = 'aal2', factor_id = $1::text::uuid, updated_at = now() \
         WHERE id = $3::text::uuid",
        &[&factor_id, &challenge_id, &session_id, &method],
    )
    .await?;
    Ok(())
}

/// Revokes the session's refresh tokens and issues a new one, a child of its active token (GoTrue
/// hands out new tokens when the session's assurance level changes). Returns the new token.
pub async fn swap_refresh_token(
    tx: &Transaction<'_>,
    session_id: &str,
    user_id: &str,
) -> AuthResult<String> {
    let token = supactl_common::keys::random_base62(32);
    exec(
        tx,
        "WITH a AS (SELECT token FROM auth.refresh_tokens WHERE session_id = $1::text::uuid                     AND NOT coalesce(revoked, false) ORDER BY id DESC LIMIT 1),          r AS (UPDATE auth.refresh_tokens SET revoked = true, updated_at = now()                WHERE session_id = $1::text::uuid AND NOT coalesce(revoked, false))          INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)          VALUES ('00000000-0000-0000-0000-000000000000', $3, $2, false, now(), now(), (SELECT token FROM a),                  $1::text::uuid)",
        &[&session_id, &user_id, &token],
    )
    .await?;
    Ok(token)
}

/// Deletes a factor; sessions it raised to `aal2` fall back to `aal1`.
pub async fn delete(tx: &Transaction<'_>, factor_id: &str) -> AuthResult<()> {
    exec(
        tx,
        "WITH s AS (UPDATE auth.sessions SET aal = 'aal1', factor_id = NULL, updated_at = now() \
                    WHERE factor_id = $1::text::uuid) \
         DELETE FROM auth.mfa_factors WHERE id = $1::text::uuid",
        &[&factor_id],
    )
    .await?;
    Ok(())
}

/// The assurance level of a session (`aal1` when it is unknown).
pub async fn session_aal(tx: &Transaction<'_>, session_id: &str) -> AuthResult<String> {
    if !crate::store::is_uuid(session_id) {
        return Ok("aal1".into());
    }
    Ok(one(
        tx,
        "SELECT coalesce(aal::text, 'aal1') FROM auth.sessions WHERE id = $1::text::uuid",
        &[&session_id],
    )
    .await?
    .map(|r| r.get(0))
    .unwrap_or_else(|| "aal1".into()))
}

/// Stores an unverified phone factor of `user_id` for `phone` (E.164 digits); its JSON.
pub async fn insert_phone(
    tx: &Transaction<'_>,
    user_id: &str,
    friendly_name: &str,
    phone: &str,
) -> AuthResult<Value> {
    let sql = format!(
        "INSERT INTO auth.mfa_factors AS f (id, user_id, friendly_name, factor_type, status, created_at, updated_at, phone) \
         VALUES (gen_random_uuid(), $1::text::uuid, nullif($2, ''), 'phone', 'unverified', now(), now(), $3) \
         RETURNING {FACTOR_JSON}"
    );
    let r = one(tx, &sql, &[&user_id, &friendly_name, &phone])
        .await?
        .ok_or_else(|| AuthError::internal("factor insert returned nothing"))?;
    Ok(r.get(0))
}

/// The phone factors of a user for `phone`: `(id, verified)`.
pub async fn phone_factors(
    tx: &Transaction<'_>,
    user_id: &str,
    phone: &str,
) -> AuthResult<Vec<(String, bool)>> {
    let st = tx
        .prepare_cached(
            "SELECT id::text, status = 'verified' FROM auth.mfa_factors \
             WHERE user_id = $1::text::uuid AND factor_type = 'phone' AND phone = $2",
        )
        .await?;
    Ok(tx
        .query(&st, &[&user_id, &phone])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The phone number of a phone factor and the seconds since it was last challenged.
pub async fn phone_of(tx: &Transaction<'_>, factor_id: &str) -> AuthResult<(String, Option<f64>)> {
    let r = one(
        tx,
        "SELECT coalesce(phone, ''), extract(epoch from now() - last_challenged_at)::float8 \
         FROM auth.mfa_factors WHERE id = $1::text::uuid",
        &[&factor_id],
    )
    .await?
    .ok_or_else(|| AuthError::internal("phone factor vanished"))?;
    Ok((r.get(0), r.get(1)))
}

/// A new challenge of a phone factor holding the hash of the code sent: `(id, created at as unix
/// seconds)`.
pub async fn phone_challenge(
    tx: &Transaction<'_>,
    factor_id: &str,
    ip: &str,
    code_hash: &str,
) -> AuthResult<(String, i64)> {
    let (id, created) = challenge(tx, factor_id, ip).await?;
    exec(
        tx,
        "UPDATE auth.mfa_challenges SET otp_code = $2 WHERE id = $1::text::uuid",
        &[&id, &code_hash],
    )
    .await?;
    Ok((id, created))
}

/// A phone challenge of `factor_id`, locked for this transaction.
pub struct PhoneChallenge {
    pub age_secs: f64,
    pub used: bool,
    pub ip: String,
    pub code_hash: String,
}

pub async fn lock_phone_challenge(
    tx: &Transaction<'_>,
    factor_id: &str,
    challenge_id: &str,
) -> AuthResult<Option<PhoneChallenge>> {
    if !crate::store::is_uuid(challenge_id) {
        return Ok(None);
    }
    Ok(one(
        tx,
        "SELECT extract(epoch from now() - created_at)::float8, verified_at IS NOT NULL, \
           host(ip_address), coalesce(otp_code, '') \
         FROM auth.mfa_challenges WHERE id = $1::text::uuid AND factor_id = $2::text::uuid FOR UPDATE",
        &[&challenge_id, &factor_id],
    )
    .await?
    .map(|r| PhoneChallenge {
        age_secs: r.get(0),
        used: r.get(1),
        ip: r.get(2),
        code_hash: r.get(3),
    }))
}
