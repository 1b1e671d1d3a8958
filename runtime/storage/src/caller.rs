//! Who is calling, for which project: the [`Caller`] the in-process gateway attached, or the project the
//! gateway named in [`PROJECT_HEADER`] with its minted token checked again here by the rule every
//! service shares ([`supactl_common::forwarded`]). A request without a token (the gateway lets public
//! objects and signed URLs through without an API key) has no caller and may use only those routes.

use crate::db::Actor;
use crate::error::{StorageError, StorageResult};
use crate::Storage;
use http::request::Parts;
use http::StatusCode;
use std::sync::Arc;
use supactl_common::forwarded::{from_forwarded, Caller, ForwardedError};
use supactl_common::headers::{bearer, PROJECT_HEADER};
use supactl_common::wire::ProjectConfig;

pub struct Ctx {
    pub project: Arc<ProjectConfig>,
    /// The caller's role and claims, if the request carries a token.
    pub caller: Option<Actor>,
}

impl Ctx {
    pub fn project_ref(&self) -> &str {
        &self.project.project_ref
    }

    /// The caller, for routes that need one.
    pub fn actor(&self) -> StorageResult<&Actor> {
        self.caller.as_ref().ok_or_else(|| {
            StorageError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this route needs an API key",
            )
        })
    }

    pub async fn from_parts(storage: &Storage, parts: &Parts) -> StorageResult<Ctx> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            let sub = serde_json::from_str::<serde_json::Value>(&c.claims)
                .ok()
                .and_then(|v| v.get("sub").and_then(|s| s.as_str()).map(str::to_string))
                .filter(|s| !s.is_empty());
            return Ok(Ctx {
                project: c.project.clone(),
                caller: Some(Actor {
                    role: c.role,
                    claims: c.claims.clone(),
                    sub,
                }),
            });
        }
        let project_ref = parts
            .headers
            .get(PROJECT_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StorageError::bad_request("no project in the request"))?;
        let project = storage
            .directory
            .project(project_ref)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "project directory unavailable");
                StorageError::unavailable("the platform cannot look up projects right now")
            })?
            .ok_or_else(|| {
                StorageError::new(StatusCode::NOT_FOUND, "not_found", "Project not found")
            })?;
        if bearer(&parts.headers).is_none() {
            return Ok(Ctx {
                project,
                caller: None,
            });
        }
        let f = from_forwarded(&project, &parts.headers).map_err(|e: ForwardedError| {
            StorageError::new(
                StatusCode::BAD_REQUEST,
                "InvalidJWT",
                format!("invalid JWT: {e}"),
            )
        })?;
        Ok(Ctx {
            project,
            caller: Some(Actor {
                role: f.role,
                claims: f.claims.to_json(),
                sub: f.claims.subject().map(str::to_string),
            }),
        })
    }
}
