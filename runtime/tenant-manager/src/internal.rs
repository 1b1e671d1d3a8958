//! The internal endpoint the data plane reads (service or project token, never through the gateway):
//! an API key by its hash, and a project's config with its secrets opened.

use crate::auth::ProjectTokenRead;
use crate::error::ApiError;
use crate::handler::Tm;
use crate::sealed::Column;
use crate::store::Caller;
use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use supactl_common::keys::KeyType;
use supactl_common::wire::{AsymmetricKey, DbConfig, Envelope, KeyInfo, ProjectConfig};

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

/// A project's config for the data plane. Read with the project's own token (its REST function, which
/// only verifies the gateway's HS256 tokens) it leaves out the asymmetric private keys and the data key.
pub(crate) async fn internal_config(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    own: Option<Extension<ProjectTokenRead>>,
) -> Result<Json<Envelope<ProjectConfig>>, ApiError> {
    let data = tm
        .project_config(&project_ref, Caller::DataPlane, own.is_none())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))?;
    Ok(Json(Envelope { data }))
}

impl crate::TenantManager {
    /// A project's config as the data plane sees it, its secrets opened (None: no such project); the
    /// asymmetric private keys and the auth data key only for a platform `service`.
    pub(crate) async fn project_config(
        &self,
        project_ref: &str,
        caller: Caller,
        service: bool,
    ) -> Result<Option<ProjectConfig>, ApiError> {
        let Some(p) = self.store.project_config(project_ref, caller).await? else {
            return Ok(None);
        };
        let jwt_secrets = p
            .jwt_secrets
            .iter()
            .map(|(id, s)| Column::JwtSecret.open(&self.cipher, id, s))
            .collect::<Result<Vec<_>, _>>()?;
        let signing_keys = p
            .signing_keys
            .iter()
            .filter(|_| service)
            .filter_map(|(id, sealed, status, alg)| {
                Some((id, sealed, status, supactl_common::jwk::Alg::parse(alg)?))
            })
            .map(|(id, sealed, status, alg)| {
                Ok(AsymmetricKey {
                    kid: id.clone(),
                    alg,
                    status: status.clone(),
                    private_key: Column::JwtSecret.open(&self.cipher, id, sealed)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
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
            signing_keys,
            data_key: if service {
                self.cipher.derive_key(&format!("auth-data:{project_ref}"))
            } else {
                String::new()
            },
            parsed_keys: Default::default(),
        }))
    }
}
