//! A project's auth users from the admin API: create (`POST …/auth/users`, GoTrue's admin body:
//! `email`, `password`, `email_confirm`, `user_metadata`, …), delete (`DELETE …/auth/users/{id}`) and
//! send a recovery email (`POST …/auth/recover`, `{"email", "redirect_to"?}`; as GoTrue's `/recover`,
//! an address without a user is not an error, and a repeat within the send interval is 429).
//!
//! Each is the project's own auth service doing it: the handlers of the `auth` crate, called in-process
//! as the project's service role ([`::auth::Auth::platform_create_user`] and its siblings), so users made
//! here are made exactly as `supabase.auth.admin.createUser` makes them. The dashboard reaches the same
//! handlers through these routes; the admin router audits them like every other mutation.

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::store::Caller;
use crate::TenantManager;
use ::auth::error::AuthError;
use ::auth::{Auth, AuthConfig};
use axum::body::Bytes;
use axum::extract::Path;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::wire::{status, ProjectConfig};

/// The in-process auth of the admin API: one connection per project, closed after a minute idle
/// (dashboard operations are occasional; the data plane's pools serve the project's clients).
pub(crate) fn platform_auth(api_url_template: &str) -> Arc<Auth> {
    Auth::for_platform(AuthConfig {
        api_url_template: api_url_template.to_string(),
        pool_size: 1,
        idle_timeout: Duration::from_secs(60),
    })
}

impl TenantManager {
    /// The config of an active project, for a call into its auth service.
    pub(crate) async fn active_config(
        &self,
        project_ref: &str,
    ) -> Result<Arc<ProjectConfig>, ApiError> {
        let p = self
            .project_config(project_ref, Caller::Admin, true)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))?;
        if p.status != status::ACTIVE {
            return Err(ApiError::Conflict(format!(
                "project {project_ref} is {}",
                p.status
            )));
        }
        Ok(Arc::new(p))
    }

    /// GoTrue's error as the admin API's; a lost database connection also drops the project's pool.
    pub(crate) fn auth_error(&self, project_ref: &str, e: AuthError) -> ApiError {
        if e.lost_connection {
            self.auth.pools().remove(project_ref);
        }
        ApiError::Auth {
            status: e.status,
            code: e.code,
            message: e.msg,
        }
    }
}

pub(crate) async fn create(
    tm: Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Checked here so a malformed body is the admin API's 400, not a project lookup first.
    let _: serde_json::Map<String, Value> = body(&bytes)?;
    let project = tm.active_config(&project_ref).await?;
    let user = tm
        .auth
        .platform_create_user(project, bytes)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(user))
}

pub(crate) async fn delete(
    tm: Tm,
    Path((project_ref, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = tm.active_config(&project_ref).await?;
    tm.auth
        .platform_delete_user(project, id.clone(), Bytes::new())
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(json!({ "id": id, "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recover {
    email: String,
    redirect_to: Option<String>,
}

pub(crate) async fn recover(
    tm: Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let r: Recover = body(&bytes)?;
    let project = tm.active_config(&project_ref).await?;
    let gotrue_body = Bytes::from(json!({ "email": r.email }).to_string());
    tm.auth
        .platform_recover(project, gotrue_body, r.redirect_to)
        .await
        .map_err(|e| tm.auth_error(&project_ref, e))?;
    Ok(data(json!({ "requested": true })))
}
