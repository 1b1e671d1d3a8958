//! The platform's door to a project's users: the tenant-manager's admin API (and so the dashboard)
//! creates and deletes users and sends recovery emails through the very handlers that serve
//! `POST /admin/users`, `DELETE /admin/users/{id}` and `POST /recover`, in-process. There is no second
//! implementation here: only the caller is built differently. The gateway's token would come from the
//! request's headers; here the platform hands over the project and the call runs as that project's
//! `service_role`, with a token minted and verified by the rule every service shares
//! ([`supactl_common::forwarded`]). Connections come from this [`Auth`]'s own pools, as the project's
//! login role with `role=supabase_auth_admin`, exactly as the data plane's. The project's OAuth
//! providers are set here too (the admin API is the only way to name a provider's URLs).

use super::request::{self, Ctx};
use super::{admin, one_time, Auth, AuthConfig};
use crate::error::{AuthError, AuthResult};
use crate::oauth::provider;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::forwarded::{self, RefRule};
use supactl_common::jwt;
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;

/// Seconds the service-role token of one platform call lives (it never leaves the process).
const CALL_TOKEN_SECS: i64 = 60;

impl Auth {
    /// Auth for the platform's admin API. Its directory is never consulted: every call below is handed
    /// its project by the caller, who read it from the platform database.
    pub fn for_platform(config: AuthConfig) -> Arc<Auth> {
        let unused = Directory::new(DirectoryConfig {
            url: String::new(),
            service_token: String::new(),
            ttl: Duration::ZERO,
            stale_for: Duration::ZERO,
        });
        Auth::new(Arc::new(unused), config)
    }

    /// `POST /admin/users` of `project` with this JSON body (GoTrue's: email, password,
    /// email_confirm, user_metadata, …); the created user as GoTrue returns it.
    pub async fn platform_create_user(
        self: &Arc<Self>,
        project: Arc<ProjectConfig>,
        body: Bytes,
    ) -> AuthResult<Value> {
        let ctx = service_role(project)?;
        Ok(admin::admin_create(State(self.clone()), ctx, body).await?.0)
    }

    /// `DELETE /admin/users/{id}` of `project` (`body` as GoTrue's: `should_soft_delete`).
    pub async fn platform_delete_user(
        self: &Arc<Self>,
        project: Arc<ProjectConfig>,
        id: String,
        body: Bytes,
    ) -> AuthResult<Response> {
        let ctx = service_role(project)?;
        admin::admin_delete(State(self.clone()), ctx, Path(id), body).await
    }

    /// `POST /recover` of `project`: mails the user with this email a recovery link (GoTrue's answer
    /// and limits: an unknown address is not revealed, a repeat within the send interval is 429).
    pub async fn platform_recover(
        self: &Arc<Self>,
        project: Arc<ProjectConfig>,
        body: Bytes,
        redirect_to: Option<String>,
    ) -> AuthResult<Response> {
        let ctx = service_role(project)?;
        let query: HashMap<String, String> = redirect_to
            .map(|r| ("redirect_to".into(), r))
            .into_iter()
            .collect();
        one_time::recover(State(self.clone()), ctx, Query(query), body).await
    }
}

impl Auth {
    /// The project's OAuth/OIDC providers, without their secrets (`client_secret_set` says whether
    /// one is stored).
    pub async fn platform_list_providers(&self, project: &ProjectConfig) -> AuthResult<Value> {
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        provider::list(&client).await
    }

    /// Creates or replaces provider `name` of `project` (`{enabled, client_id, client_secret?,
    /// issuer?, scopes?}`; a left-out secret keeps the stored one, a given one is sealed with the
    /// project's data key). Answers the provider without its secret.
    pub async fn platform_set_provider(
        &self,
        project: &ProjectConfig,
        name: &str,
        body: Bytes,
    ) -> AuthResult<Value> {
        let update: provider::ProviderUpdate = request::body(&body)?;
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        provider::upsert(&client, project, name, update).await
    }

    /// Deletes provider `name` of `project`; whether it existed.
    pub async fn platform_delete_provider(
        &self,
        project: &ProjectConfig,
        name: &str,
    ) -> AuthResult<bool> {
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        provider::delete(&client, name).await
    }
}

/// The caller of a platform call: `project`'s service role, by a token minted and checked as the
/// gateway's would be.
fn service_role(project: Arc<ProjectConfig>) -> AuthResult<Ctx> {
    let (token, _) = forwarded::mint(
        &project,
        Role::ServiceRole,
        Map::new(),
        jwt::now(),
        CALL_TOKEN_SECS,
    );
    let checked = forwarded::verify(&project, &token, RefRule::MustName)
        .map_err(|e| AuthError::internal(format!("platform call token: {e}")))?;
    Ok(Ctx {
        project,
        claims: checked.claims,
        role: checked.role,
        ip: None,
        user_agent: None,
    })
}

impl Auth {
    /// Hook `name` of `project` without its secret (`secret_set`); None when it is not set.
    pub async fn platform_get_hook(
        &self,
        project: &ProjectConfig,
        name: &str,
    ) -> AuthResult<Option<Value>> {
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        crate::hook::get(&client, name).await
    }

    /// Creates or replaces hook `name` of `project` (`{enabled, uri, secret?}`; a left-out secret keeps
    /// the stored one, a given one is sealed with the project's data key). Answers it without secret.
    pub async fn platform_set_hook(
        &self,
        project: &ProjectConfig,
        name: &str,
        body: Bytes,
    ) -> AuthResult<Value> {
        let update: crate::hook::HookUpdate = request::body(&body)?;
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        crate::hook::upsert(&client, project, name, update).await
    }

    /// Deletes hook `name` of `project`; whether it existed.
    pub async fn platform_delete_hook(
        &self,
        project: &ProjectConfig,
        name: &str,
    ) -> AuthResult<bool> {
        let client = self.pools.get(&project.project_ref, &project.db).await?;
        crate::hook::delete(&client, name).await
    }
}
