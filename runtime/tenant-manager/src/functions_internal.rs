//! What the Edge Functions runtime reads of the control plane (`/internal/v1`, service token only, on the
//! lookup pool): a function's metadata, one deployment's code, and the project's environment, in the
//! shapes of [`::functions::remote`] (the runtime's client of these endpoints).
//!
//! A function's `version` here is the id of its current deployment, unique across the platform, so a
//! worker of a deleted function is never taken for a new function of the same slug. `env_revision`
//! changes whenever the environment does: it is a digest of what the environment is made of (each
//! secret's name and last change, the project's active API keys), computed in the same query.

use crate::error::ApiError;
use crate::handler::Tm;
use crate::sealed::{project_secret_row, Column};
use ::functions::{Bundle, FunctionMeta, ProjectEnv};
use axum::extract::{Path, State};
use axum::Json;
use supactl_common::wire::Envelope;

/// `GET /internal/v1/projects/{ref}/functions/{slug}`: 404 when there is no such function.
pub(crate) async fn function(
    State(tm): Tm,
    Path((project_ref, slug)): Path<(String, String)>,
) -> Result<Json<Envelope<FunctionMeta>>, ApiError> {
    let c = tm.store.lookup_client().await?;
    let row = c
        .query_opt(
            "SELECT v.id, f.verify_jwt, left(md5(
               coalesce((SELECT string_agg(s.name || '@' || s.updated_at::text, ',' ORDER BY s.name)
                         FROM supactl.project_secrets s WHERE s.project_ref = $1), '')
               || '|' ||
               coalesce((SELECT string_agg(k.id::text, ',' ORDER BY k.id)
                         FROM supactl.api_keys k WHERE k.project_ref = $1 AND k.status = 'active'), '')
             ), 16)
             FROM supactl.functions f JOIN supactl.function_versions v
               ON v.project_ref = f.project_ref AND v.slug = f.slug AND v.version = f.version
             WHERE f.project_ref = $1 AND f.slug = $2",
            &[&project_ref, &slug],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no function {slug} in project {project_ref}")))?;
    let env_revision = u64::from_str_radix(row.get(2), 16).map_err(ApiError::internal)?;
    Ok(Json(Envelope {
        data: FunctionMeta {
            version: u64::try_from(row.get::<_, i64>(0)).map_err(ApiError::internal)?,
            verify_jwt: row.get(1),
            env_revision,
        },
    }))
}

/// `GET /internal/v1/projects/{ref}/functions/{slug}/versions/{version}`: one deployment's code (404
/// once it is no longer kept).
pub(crate) async fn bundle(
    State(tm): Tm,
    Path((project_ref, slug, id)): Path<(String, String, i64)>,
) -> Result<Json<Envelope<Bundle>>, ApiError> {
    let c = tm.store.lookup_client().await?;
    Ok(Json(Envelope {
        data: stored_bundle(&c, &project_ref, &slug, Some(id)).await?,
    }))
}

/// The code of deployment `id` of a function, or of its current version when `id` is None.
pub(crate) async fn stored_bundle(
    c: &tokio_postgres::Client,
    project_ref: &str,
    slug: &str,
    id: Option<i64>,
) -> Result<Bundle, ApiError> {
    let row = c
        .query_opt(
            "SELECT v.entrypoint, v.import_map, v.files FROM supactl.function_versions v
               JOIN supactl.functions f USING (project_ref, slug)
             WHERE v.project_ref = $1 AND v.slug = $2
               AND CASE WHEN $3::int8 IS NULL THEN v.version = f.version ELSE v.id = $3 END",
            &[&project_ref, &slug, &id],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no such version of function {slug}")))?;
    Ok(Bundle {
        entrypoint: row.get(0),
        import_map: row.get(1),
        files: serde_json::from_str(row.get(2))
            .map_err(|e| ApiError::internal(format!("stored function files: {e}")))?,
    })
}

/// `GET /internal/v1/projects/{ref}/function-env`: the standard variables (API URL, the project's first
/// active publishable and secret keys, its own database role's URL) and its secrets, opened.
pub(crate) async fn environment(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Envelope<ProjectEnv>>, ApiError> {
    let p = tm
        .store
        .project_config(&project_ref, crate::store::Caller::DataPlane)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))?;
    let c = tm.store.lookup_client().await?;
    let keys = c
        .query(
            "SELECT id::text, type, key_enc FROM supactl.api_keys
             WHERE project_ref = $1 AND status = 'active' ORDER BY created_at, id",
            &[&project_ref],
        )
        .await?;
    let key = |kind: &str| -> Result<String, ApiError> {
        match keys.iter().find(|k| k.get::<_, &str>(1) == kind) {
            Some(k) => Column::ApiKey.open(&tm.cipher, k.get(0), k.get(2)),
            None => Ok(String::new()),
        }
    };
    let secrets = c
        .query(
            "SELECT name, value_enc FROM supactl.project_secrets WHERE project_ref = $1 ORDER BY name",
            &[&project_ref],
        )
        .await?
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let row = project_secret_row(&project_ref, &name);
            Ok((name, Column::ProjectSecret.open(&tm.cipher, &row, r.get(1))?))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let password = Column::ProjectDbPassword.open(&tm.cipher, &p.project_ref, &p.db_password)?;
    // (the role's name and password are made of URL-safe characters; an IPv6 host needs brackets)
    let host = if p.host.contains(':') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    let db_url = format!(
        "postgresql://{}:{}@{}:{}/{}?sslmode={}",
        p.db_user,
        password,
        host,
        p.port,
        p.db_name,
        p.tls.sslmode.as_str()
    );
    Ok(Json(Envelope {
        data: ProjectEnv {
            api_url: tm.api_url(&project_ref),
            publishable_key: key("publishable")?,
            secret_key: key("secret")?,
            db_url: Some(db_url),
            secrets,
        },
    }))
}
