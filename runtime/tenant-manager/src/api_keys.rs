//! API keys of a project: create, list, reveal, revoke (its JWT keys are [`crate::jwt_keys`]'s). Every
//! change reaches the data plane through [`TenantManager::changed`].

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
