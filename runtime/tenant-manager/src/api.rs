//! Routes and handlers: `/health`, the admin API and the internal config endpoint.

use crate::auth::{require_admin, require_service};
use crate::error::ApiError;
use crate::provision;
use crate::sqlrun;
use crate::store::{KeyRow, NewKey, ProjectRow};
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use supactl_common::ident::{self, valid_ref};
use supactl_common::keys::{self, KeyType};
use supactl_common::wire::{status, DbConfig, Envelope, KeyInfo, ProjectConfig};

type Tm = State<Arc<TenantManager>>;

pub fn router(tm: Arc<TenantManager>) -> Router {
    let admin = Router::new()
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{ref}", get(show_project).delete(delete_project))
        .route("/projects/{ref}/api-keys", get(list_keys))
        .route("/projects/{ref}/database/query", post(query))
        .layer(from_fn_with_state(tm.clone(), require_admin));
    let internal = Router::new()
        .route("/api-keys/{hash}", get(internal_key))
        .route("/projects/{ref}/config", get(internal_config))
        .layer(from_fn_with_state(tm.clone(), require_service));
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .nest("/admin/v1", admin)
        .nest("/internal/v1", internal)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(tm)
}

fn data(v: Value) -> Json<Value> {
    Json(json!({ "data": v }))
}

/// Parses a JSON body, naming the offending field in the error.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))
}

impl TenantManager {
    fn project_json(&self, p: &ProjectRow) -> Value {
        json!({
            "ref": p.project_ref,
            "name": p.name,
            "status": p.status,
            "api_url": self.api_url(&p.project_ref),
            "created_at": p.created_at,
        })
    }

    fn key_json(&self, k: &KeyRow) -> Result<Value, ApiError> {
        let opaque = self
            .cipher
            .open_string(&k.key_enc)
            .map_err(ApiError::internal)?;
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

    async fn project_or_404(&self, project_ref: &str) -> Result<ProjectRow, ApiError> {
        self.store
            .project(project_ref)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))
    }

    /// Provisions a project; on failure every created piece is removed again.
    async fn create(&self, name: String, project_ref: String) -> Result<Value, ApiError> {
        let worker = self.store.pick_worker(&self.cipher).await?;
        let password = keys::random_base62(40);
        let row = ProjectRow {
            db_name: ident::database_name(&project_ref),
            db_user: ident::login_role(&project_ref),
            db_password: self.cipher.seal(password.as_bytes()),
            project_ref,
            name,
            worker_id: worker.id,
            status: status::COMING_UP.to_string(),
            created_at: String::new(),
        };
        self.store.insert_project(&row).await?;
        let result = async {
            provision::create_database(&worker, &row.db_name, &row.db_user, &password).await?;
            let jwt_secret = keys::random_base62(48);
            let mut new_keys = Vec::new();
            let mut plain = Vec::new();
            for (kind, name) in [
                (KeyType::Publishable, "default"),
                (KeyType::Secret, "default"),
            ] {
                let key = keys::generate(kind);
                new_keys.push(NewKey {
                    name: name.to_string(),
                    key_type: kind.as_str(),
                    role: kind.role().as_str(),
                    prefix: keys::display_prefix(&key),
                    hash: keys::hash(&key).to_vec(),
                    key_enc: self.cipher.seal(key.as_bytes()),
                });
                plain.push(key);
            }
            let activated = self
                .store
                .activate_project(
                    &row.project_ref,
                    &self.cipher.seal(jwt_secret.as_bytes()),
                    &new_keys,
                    status::ACTIVE,
                )
                .await;
            if let Err(e) = activated {
                provision::drop_database(&worker, &row.db_name, &row.db_user)
                    .await
                    .ok();
                return Err(e);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            if let Err(cleanup) = self.store.delete_project(&row.project_ref).await {
                tracing::error!(project = %row.project_ref, error = %cleanup, "rollback of the project row failed");
            }
            return Err(e);
        }
        let p = self.project_or_404(&row.project_ref).await?;
        let keys = self
            .store
            .keys(&p.project_ref)
            .await?
            .iter()
            .map(|k| self.key_json(k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut v = self.project_json(&p);
        v["api_keys"] = Value::Array(keys);
        Ok(v)
    }

    /// Deprovisions a project: stops its keys first, then drops its database and role, then its rows.
    async fn delete(&self, project_ref: &str) -> Result<(), ApiError> {
        let p = self.project_or_404(project_ref).await?;
        self.store
            .set_status(project_ref, status::GOING_DOWN)
            .await?;
        self.changed(project_ref);
        let worker = self.store.worker(p.worker_id, &self.cipher).await?;
        provision::drop_database(&worker, &p.db_name, &p.db_user).await?;
        self.store.delete_project(project_ref).await?;
        self.changed(project_ref);
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(rename = "ref")]
    project_ref: Option<String>,
}

async fn create_project(State(tm): Tm, bytes: Bytes) -> Result<Response, ApiError> {
    let req: CreateProject = body(&bytes)?;
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::BadRequest(
            "name: must be 1 to 255 characters".into(),
        ));
    }
    let project_ref = match req.project_ref {
        Some(r) if valid_ref(&r) => r,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "ref: must be 3 to 40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit".into(),
            ))
        }
        None => random_ref(),
    };
    let v = tm.create(name, project_ref).await?;
    Ok((StatusCode::CREATED, data(v)).into_response())
}

/// 20 lowercase letters, like Supabase's project refs.
fn random_ref() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| rng.gen_range(b'a'..=b'z') as char)
        .collect()
}

async fn list_projects(State(tm): Tm) -> Result<Json<Value>, ApiError> {
    let projects = tm.store.projects().await?;
    Ok(data(Value::Array(
        projects.iter().map(|p| tm.project_json(p)).collect(),
    )))
}

async fn show_project(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    Ok(data(tm.project_json(&p)))
}

async fn delete_project(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    tm.delete(&project_ref).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_keys(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let keys = tm
        .store
        .keys(&project_ref)
        .await?
        .iter()
        .map(|k| tm.key_json(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(data(Value::Array(keys)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    query: String,
}

async fn query(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let q: Query = body(&bytes)?;
    let p = tm.project_or_404(&project_ref).await?;
    if p.status != status::ACTIVE {
        return Err(ApiError::Conflict(format!(
            "project {project_ref} is {}",
            p.status
        )));
    }
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    let client = crate::store::connect(&worker.pg_config(&p.db_name)).await?;
    let rows = sqlrun::run(&client, &q.query).await?;
    Ok(data(Value::Array(rows)))
}

async fn internal_key(
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

async fn internal_config(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Envelope<ProjectConfig>>, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    let jwt_secrets = tm
        .store
        .jwt_secrets(&project_ref)
        .await?
        .iter()
        .map(|s| tm.cipher.open_string(s).map_err(ApiError::internal))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Envelope {
        data: ProjectConfig {
            project_ref: p.project_ref,
            status: p.status,
            jwt_secrets,
            db: DbConfig {
                host: worker.spec.host,
                port: worker.spec.port,
                dbname: p.db_name,
                user: p.db_user,
                password: tm
                    .cipher
                    .open_string(&p.db_password)
                    .map_err(ApiError::internal)?,
            },
        },
    }))
}
