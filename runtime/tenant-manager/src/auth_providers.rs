//! A project's OAuth/OIDC sign-in providers from the admin API: `GET …/auth/providers`,
//! `PUT …/auth/providers/{provider}` (`{"enabled", "client_id", "client_secret"?, "issuer"?,
//! "scopes"?}`: a preset's name — google, github, gitlab, azure, apple — or any name with the issuer
//! of a generic OIDC provider) and `DELETE …/auth/providers/{provider}`.
//!
//! The project's own auth service stores them ([`::auth::Auth::platform_set_provider`]): in its
//! database, the client secret sealed with the project's data key. No answer carries a secret
//! (`client_secret_set` says whether one is stored), and only here can a provider's URLs be named:
//! the data plane calls what the platform's admin configured, never a URL from a request.

use crate::error::ApiError;
use crate::handler::{data, Tm};
use axum::body::Bytes;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

pub(crate) async fn list(tm: Tm, Path(project_ref): Path<String>) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let providers = tm
        .auth
        .platform_list_providers(&project)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(providers))
}

pub(crate) async fn put(
    tm: Tm,
    Path((project_ref, provider)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let saved = tm
        .auth
        .platform_set_provider(&project, &provider, bytes)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(saved))
}

pub(crate) async fn delete(
    tm: Tm,
    Path((project_ref, provider)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let existed = tm
        .auth
        .platform_delete_provider(&project, &provider)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    if !existed {
        return Err(ApiError::NotFound(format!(
            "provider {provider} of project {project_ref} not found"
        )));
    }
    Ok(data(json!({ "provider": provider, "deleted": true })))
}
