//! A project's auth hooks from the admin API: `GET`, `PUT` (`{"enabled", "uri", "secret"?}`) and
//! `DELETE …/auth/hooks/{hook}`, today the Send SMS hook (`send_sms`) that phone sign-in and phone MFA
//! factors send their codes through.
//!
//! The project's own auth service stores them ([`::auth::Auth::platform_set_hook`]): in its database,
//! the Standard Webhooks secret (`v1,whsec_<base64>`) sealed with the project's data key, as the OAuth
//! providers' client secrets. No answer carries the secret (`secret_set`), and only here can a hook's
//! URL be named: the data plane calls what the platform's admin configured, never a URL from a request.

use crate::error::ApiError;
use crate::handler::{data, Tm};
use axum::body::Bytes;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

pub(crate) async fn get(
    tm: Tm,
    Path((project_ref, hook)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let found = tm
        .auth
        .platform_get_hook(&project, &hook)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    found
        .map(data)
        .ok_or_else(|| ApiError::NotFound(format!("hook {hook} of project {project_ref} not set")))
}

pub(crate) async fn put(
    tm: Tm,
    Path((project_ref, hook)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let saved = tm
        .auth
        .platform_set_hook(&project, &hook, bytes)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(saved))
}

pub(crate) async fn delete(
    tm: Tm,
    Path((project_ref, hook)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    let existed = tm
        .auth
        .platform_delete_hook(&project, &hook)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    if !existed {
        return Err(ApiError::NotFound(format!(
            "hook {hook} of project {project_ref} not set"
        )));
    }
    Ok(data(json!({ "hook": hook, "deleted": true })))
}
