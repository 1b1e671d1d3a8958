//! The internal endpoint the data plane reads (service or project token, never through the gateway):
//! an API key by its hash, and a project's config with its secrets opened.

use crate::error::ApiError;
use crate::handler::Tm;
use crate::sealed::Column;
use crate::store::Caller;
use axum::extract::{Path, State};
use axum::Json;
use supactl_common::keys::KeyType;
use supactl_common::wire::{DbConfig, Envelope, KeyInfo, ProjectConfig};

pub(crate) async fn internal_key(
    State(tm): Tm,
    Path(hash): Path<String>,
) -> Result<Json<Envelope<KeyInfo>>, ApiError> {
    let raw = hex::decode(&hash)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| ApiError::BadRequest("hash: expected 64 hex characters".into()))?;
    let k = tm
        .store
        .key_by_hash(&raw)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such key".into()))?;
    let key_type = KeyType::parse(&k.key_type).ok_or_else(|| ApiError::internal("bad key type"))?;
    Ok(Json(Envelope {
        data: KeyInfo {
            key_id: k.id,
            project_ref: k.project_ref,
            key_type,
            role: key_type.role(),
        },
    }))
}

pub(crate) async fn internal_config(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Envelope<ProjectConfig>>, ApiError> {
    let data = tm
        .project_config(&project_ref, Caller::DataPlane)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))?;
    Ok(Json(Envelope { data }))
}

impl crate::TenantManager {
    /// A project's config as the data plane sees it, its secrets opened (None: no such project).
    pub(crate) async fn project_config(
        &self,
        project_ref: &str,
        caller: Caller,
    ) -> Result<Option<ProjectConfig>, ApiError> {
        let Some(p) = self.store.project_config(project_ref, caller).await? else {
            return Ok(None);
        };
        let jwt_secrets = p
            .jwt_secrets
            .iter()
            .map(|(id, s)| Column::JwtSecret.open(&self.cipher, id, s))
            .collect::<Result<Vec<_>, _>>()?;
        let password =
            Column::ProjectDbPassword.open(&self.cipher, &p.project_ref, &p.db_password)?;
        Ok(Some(ProjectConfig {
            project_ref: p.project_ref,
            status: p.status,
            jwt_secrets,
            db: DbConfig {
                host: p.host,
                port: p.port,
                dbname: p.db_name,
                user: p.db_user,
                password,
                tls: p.tls,
            },
            rest_function_url: p.rest_function_url,
            limits: p.limits.effective(),
        }))
    }
}
