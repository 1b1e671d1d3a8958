//! API keys and JWT secrets of a project: create, list, reveal, revoke; standby, rotate with a grace
//! period, revoke the previous secret. Every change reaches the data plane through [`TenantManager::changed`].

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::sealed::{self, Column};
use crate::store::{KeyRow, NewKey};
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use supactl_common::keys::{self, KeyType};

const KEY_COLS: &str = "id::text, project_ref, name, type, role, prefix, key_enc, status, description, to_json(created_at) #>> '{}'";

impl TenantManager {
    /// A key as the admin API shows it. Secret keys are shown in full only when `reveal` is asked for;
    /// publishable keys are public by design.
    pub(crate) fn key_json(&self, k: &KeyRow, reveal: bool) -> Result<Value, ApiError> {
        let opaque = if reveal || k.key_type == KeyType::Publishable.as_str() {
            Some(Column::ApiKey.open(&self.cipher, &k.id, &k.key_enc)?)
        } else {
            None
        };
        Ok(json!({
            "id": k.id,
            "name": k.name,
            "type": k.key_type,
            "role": k.role,
            "prefix": k.prefix,
            "opaque_key": opaque,
            "status": k.status,
            "description": k.description,
            "created_at": k.created_at,
        }))
    }

    /// Generates and stores a key; returns it with its plain value (shown once, at creation).
    pub(crate) fn new_key(&self, kind: KeyType, name: &str) -> (NewKey, String) {
        let key = keys::generate(kind);
        let id = sealed::new_row_id();
        (
            NewKey {
                key_enc: Column::ApiKey.seal(&self.cipher, &id, &key),
                id,
                name: name.to_string(),
                key_type: kind.as_str(),
                role: kind.role().as_str(),
                prefix: keys::display_prefix(&key),
                hash: keys::hash(&key).to_vec(),
            },
            key,
        )
    }
}

#[derive(Deserialize)]
pub struct RevealQuery {
    #[serde(default)]
    reveal: bool,
}

pub async fn list(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let keys = tm
        .store
        .keys(&project_ref)
        .await?
        .iter()
        .map(|k| tm.key_json(k, q.reveal))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(data(Value::Array(keys)))
}

async fn key_row(tm: &TenantManager, project_ref: &str, id: &str) -> Result<KeyRow, ApiError> {
    let c = tm.store.client().await?;
    let sql =
        format!("SELECT {KEY_COLS} FROM supactl.api_keys WHERE project_ref = $1 AND id::text = $2");
    let row = c.query_opt(&sql, &[&project_ref, &id]).await?;
    row.as_ref()
        .map(crate::store::key_row)
        .ok_or_else(|| ApiError::NotFound(format!("no key {id} in project {project_ref}")))
}

pub async fn show(
    State(tm): Tm,
    Path((project_ref, id)): Path<(String, String)>,
    Query(q): Query<RevealQuery>,
) -> Result<Json<Value>, ApiError> {
    let k = key_row(&tm, &project_ref, &id).await?;
    Ok(data(tm.key_json(&k, q.reveal)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(rename = "type")]
    key_type: String,
    name: String,
    description: Option<String>,
}

pub async fn create(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateKey = body(&bytes)?;
    let kind = KeyType::parse(&req.key_type).ok_or_else(|| {
        ApiError::BadRequest("type: must be \"publishable\" or \"secret\"".into())
    })?;
    let name = req.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::BadRequest(
            "name: must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'".into(),
        ));
    }
    if req.description.as_ref().is_some_and(|d| d.len() > 1000) {
        return Err(ApiError::BadRequest(
            "description: must be at most 1000 characters".into(),
        ));
    }
    let p = tm.project_or_404(&project_ref).await?;
    let (new, plain) = tm.new_key(kind, name);
    let c = tm.store.client().await?;
    let sql = format!(
        "INSERT INTO supactl.api_keys (id, project_ref, name, type, role, prefix, key_hash, key_enc, description)
         VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {KEY_COLS}"
    );
    let row = c
        .query_one(
            &sql,
            &[
                &new.id,
                &p.project_ref,
                &new.name,
                &new.key_type,
                &new.role,
                &new.prefix,
                &new.hash,
                &new.key_enc,
                &req.description,
            ],
        )
        .await?;
    let mut v = tm.key_json(&crate::store::key_row(&row), false)?;
    v["opaque_key"] = Value::from(plain);
    tm.changed(&project_ref);
    Ok((StatusCode::CREATED, data(v)).into_response())
}

pub async fn revoke(
    State(tm): Tm,
    Path((project_ref, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let k = key_row(&tm, &project_ref, &id).await?;
    if k.status != "active" {
        return Err(ApiError::Conflict(format!("key {id} is already revoked")));
    }
    let c = tm.store.client().await?;
    c.execute(
        "UPDATE supactl.api_keys SET status = 'revoked', revoked_at = now() WHERE project_ref = $1 AND id::text = $2",
        &[&project_ref, &id],
    )
    .await?;
    tm.changed(&project_ref);
    Ok(StatusCode::NO_CONTENT)
}

fn jwt_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, String>(0),
        "status": r.get::<_, String>(1),
        "algorithm": "HS256",
        "created_at": r.get::<_, String>(2),
        "expires_at": r.get::<_, Option<String>>(3),
    })
}

const JWT_COLS: &str =
    "id::text, status, to_json(created_at) #>> '{}', to_json(expires_at) #>> '{}'";

pub async fn jwt_list(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let rows = c
        .query(
            &format!("SELECT {JWT_COLS} FROM supactl.jwt_secrets WHERE project_ref = $1 ORDER BY created_at"),
            &[&project_ref],
        )
        .await?;
    Ok(data(Value::Array(rows.iter().map(jwt_json).collect())))
}

/// A new JWT secret's row id and the secret sealed for that row.
fn new_jwt_secret(tm: &TenantManager) -> (String, Vec<u8>) {
    let id = sealed::new_row_id();
    let secret = Column::JwtSecret.seal(&tm.cipher, &id, &keys::random_base62(48));
    (id, secret)
}

/// Creates the standby secret that the next rotation promotes.
pub async fn jwt_standby(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Response, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let exists = c
        .query_opt(
            "SELECT 1 FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'standby'",
            &[&project_ref],
        )
        .await?;
    if exists.is_some() {
        return Err(ApiError::Conflict(
            "a standby secret already exists; rotate to use it".into(),
        ));
    }
    let (id, secret) = new_jwt_secret(&tm);
    let row = c
        .query_one(
            &format!("INSERT INTO supactl.jwt_secrets (id, project_ref, secret_enc, status) VALUES ($1::text::uuid, $2, $3, 'standby') RETURNING {JWT_COLS}"),
            &[&id, &project_ref, &secret],
        )
        .await?;
    Ok((StatusCode::CREATED, data(jwt_json(&row))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long tokens signed with the outgoing secret keep verifying.
    grace_seconds: Option<i64>,
}

/// Standby → current, current → previous (verifying until the grace period ends), older previous ones
/// are dropped. Without a standby secret one is generated.
pub async fn jwt_rotate(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: Rotate = if bytes.is_empty() {
        Rotate::default()
    } else {
        body(&bytes)?
    };
    let grace = req.grace_seconds.unwrap_or(3600);
    if !(0..=30 * 86400).contains(&grace) {
        return Err(ApiError::BadRequest(
            "grace_seconds: must be between 0 and 2592000".into(),
        ));
    }
    tm.project_or_404(&project_ref).await?;
    let mut c = tm.store.client().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&project_ref],
    )
    .await?;
    let standby = tx
        .query_opt(
            "SELECT 1 FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'standby'",
            &[&project_ref],
        )
        .await?;
    if standby.is_none() {
        let (id, secret) = new_jwt_secret(&tm);
        tx.execute(
            "INSERT INTO supactl.jwt_secrets (id, project_ref, secret_enc, status) VALUES ($1::text::uuid, $2, $3, 'standby')",
            &[&id, &project_ref, &secret],
        )
        .await?;
    }
    tx.execute(
        "DELETE FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'previous'",
        &[&project_ref],
    )
    .await?;
    tx.execute(
        "UPDATE supactl.jwt_secrets SET status = 'previous', expires_at = now() + make_interval(secs => $2::bigint)
         WHERE project_ref = $1 AND status = 'current'",
        &[&project_ref, &grace],
    )
    .await?;
    tx.execute(
        "UPDATE supactl.jwt_secrets SET status = 'current' WHERE project_ref = $1 AND status = 'standby'",
        &[&project_ref],
    )
    .await?;
    let rows = tx
        .query(
            &format!("SELECT {JWT_COLS} FROM supactl.jwt_secrets WHERE project_ref = $1 ORDER BY created_at"),
            &[&project_ref],
        )
        .await?;
    tx.commit().await?;
    tm.changed(&project_ref);
    Ok(data(Value::Array(rows.iter().map(jwt_json).collect())))
}

/// Ends the grace period now: tokens signed with the previous secret stop verifying.
pub async fn jwt_revoke_previous(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let n = c
        .execute(
            "DELETE FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'previous'",
            &[&project_ref],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::NotFound("no previous secret to revoke".into()));
    }
    tm.changed(&project_ref);
    Ok(StatusCode::NO_CONTENT)
}
