//! Projects: create (placed on a worker and provisioned, undone on failure), list, show, update
//! (name, limits), pause, restore, delete, run SQL, and per-project health.

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::provision;
use crate::sealed::{self, Column};
use crate::sqlrun;
use crate::store::{ProjectQuery, ProjectRow};
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query as AxQuery;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use supactl_common::ident::{self, valid_ref};
use supactl_common::keys::{self, KeyType};
use supactl_common::wire::status;

impl TenantManager {
    pub(crate) fn project_json(&self, p: &ProjectRow) -> Value {
        json!({
            "ref": p.project_ref,
            "name": p.name,
            "status": p.status,
            "api_url": self.api_url(&p.project_ref),
            "rest_function_url": p.rest_function_url,
            "limits": p.limits.to_json(self.config.project_connection_limit),
            "created_at": p.created_at,
        })
    }

    pub(crate) async fn project_or_404(&self, project_ref: &str) -> Result<ProjectRow, ApiError> {
        self.store
            .project(project_ref)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("project {project_ref} not found")))
    }

    /// Provisions a project; on failure every created piece is removed again.
    async fn create(
        &self,
        name: String,
        project_ref: String,
        placement: &crate::workers::PlacementRequest,
    ) -> Result<Value, ApiError> {
        let worker = crate::workers::place(self, &project_ref, placement).await?;
        let password = keys::random_base62(40);
        let row = ProjectRow {
            db_name: ident::database_name(&project_ref),
            db_user: ident::login_role(&project_ref),
            db_password: Column::ProjectDbPassword.seal(&self.cipher, &project_ref, &password),
            project_ref,
            name,
            worker_id: worker.id,
            status: status::COMING_UP.to_string(),
            created_at: String::new(),
            rest_function_name: None,
            rest_function_url: None,
            limits: crate::limits::Overrides::default(),
        };
        self.store.insert_project(&row).await?;
        let result = async {
            let connection_limit = self.config.project_connection_limit;
            provision::create_database(
                &worker,
                &row.db_name,
                &row.db_user,
                &password,
                connection_limit,
            )
            .await?;
            // Lambda mode: the project's REST function and its URL (gone again if this fails).
            let function = match self.create_rest_function(&row.project_ref).await {
                Ok(f) => f,
                Err(e) => {
                    undo("the project's database and role", || {
                        provision::drop_database(&worker, &row.db_name, &row.db_user)
                    })
                    .await;
                    return Err(e);
                }
            };
            let jwt_secret_id = sealed::new_row_id();
            let jwt_secret = Column::JwtSecret.seal(
                &self.cipher,
                &jwt_secret_id,
                &keys::random_base62(48),
            );
            let new_keys = [KeyType::Publishable, KeyType::Secret]
                .map(|kind| self.new_key(kind, "default").0);
            let activated = self
                .store
                .activate_project(
                    &row.project_ref,
                    (&jwt_secret_id, &jwt_secret),
                    &new_keys,
                    function.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
                    status::ACTIVE,
                )
                .await;
            if let Err(e) = activated {
                if let Some((name, _)) = &function {
                    if let Err(cleanup) = self.delete_rest_function(name).await {
                        tracing::error!(function = %name, error = %cleanup, "rollback of the REST function failed");
                    }
                }
                undo("the project's database and role", || {
                    provision::drop_database(&worker, &row.db_name, &row.db_user)
                })
                .await;
                return Err(e);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            undo("the project row", || {
                self.store.delete_project(&row.project_ref)
            })
            .await;
            return Err(e);
        }
        // The project exists from here on: a busy pool must not turn its creation into an error.
        let p = retrying(|| self.project_or_404(&row.project_ref)).await?;
        let keys = retrying(|| self.store.keys(&p.project_ref))
            .await?
            .iter()
            .map(|k| self.key_json(k, true))
            .collect::<Result<Vec<_>, _>>()?;
        let mut v = self.project_json(&p);
        v["api_keys"] = Value::Array(keys);
        Ok(v)
    }

    /// Deprovisions a project: stops its keys first, then removes its REST function and URL (Lambda mode),
    /// drops its database and role, then its rows.
    async fn delete(&self, project_ref: &str) -> Result<(), ApiError> {
        let p = self.project_or_404(project_ref).await?;
        if p.rest_function_name.is_some() && !self.lambda_mode() {
            return Err(ApiError::Conflict(format!(
                "project {project_ref} has a REST function on Lambda but this tenant-manager is not in \
                 lambda mode (SUPACTL_REST_MODE=lambda), so it cannot delete it"
            )));
        }
        self.store
            .set_status(project_ref, status::GOING_DOWN)
            .await?;
        self.changed(project_ref);
        if let Some(name) = &p.rest_function_name {
            self.delete_rest_function(name).await?;
        }
        let worker = self.store.worker(p.worker_id, &self.cipher).await?;
        provision::drop_database(&worker, &p.db_name, &p.db_user).await?;
        self.store.delete_project(project_ref).await?;
        self.changed(project_ref);
        Ok(())
    }
}

/// Runs `step` again, backing off, while it fails for a passing cause (busy pool, database
/// unreachable), up to 5 times: for steps whose failure would leave something half done or misreport
/// what was done.
async fn retrying<T, F, Fut>(mut step: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut delay = Duration::from_millis(200);
    for _ in 1..5 {
        match step().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "retrying a provisioning step");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            done => return done,
        }
    }
    step().await
}

/// A rollback step, retried; a final failure is logged (the caller reports the original error).
async fn undo<F, Fut>(what: &str, step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    if let Err(e) = retrying(step).await {
        tracing::error!(error = %e, "rollback failed: {what} is left behind");
    }
}

/// Runs provisioning work once admitted, as its own task: once started it runs to its end (or to its
/// full rollback) even when the client goes away.
async fn provision_admitted<T, Fut>(tm: &TenantManager, work: Fut) -> Result<T, ApiError>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let ticket = tm.provisioning.enter().await?;
    tokio::spawn(async move {
        let _ticket = ticket;
        work.await
    })
    .await
    .map_err(ApiError::internal)?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(rename = "ref")]
    project_ref: Option<String>,
    /// Placement: an explicit worker identifier, a region, or a strategy for this project only.
    worker: Option<String>,
    region: Option<String>,
    strategy: Option<String>,
}

pub(crate) async fn create(State(tm): Tm, bytes: Bytes) -> Result<Response, ApiError> {
    let req: CreateProject = body(&bytes)?;
    let name = valid_name(&req.name)?;
    let project_ref = match req.project_ref {
        Some(r) if valid_ref(&r) => r,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "ref: must be 3 to 40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit".into(),
            ))
        }
        None => random_ref(),
    };
    let placement = crate::workers::PlacementRequest {
        worker: req.worker,
        region: req.region,
        strategy: req.strategy,
    };
    let v = provision_admitted(&tm, {
        let tm = tm.clone();
        async move { tm.create(name, project_ref, &placement).await }
    })
    .await?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    page: Option<i64>,
    limit: Option<i64>,
    search: Option<String>,
    status: Option<String>,
}

pub(crate) async fn list(
    State(tm): Tm,
    q: Result<AxQuery<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let AxQuery(q) = q.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(50);
    let page = q.page.unwrap_or(1);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit: must be between 1 and 1000".into(),
        ));
    }
    if page < 1 {
        return Err(ApiError::BadRequest("page: must be 1 or more".into()));
    }
    if let Some(s) = &q.status {
        if ![
            status::ACTIVE,
            status::PAUSED,
            status::COMING_UP,
            status::GOING_DOWN,
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::BadRequest(format!("status: unknown status {s}")));
        }
    }
    let (rows, total) = tm
        .store
        .projects(&ProjectQuery {
            search: q.search.filter(|s| !s.is_empty()),
            status: q.status,
            worker_id: None,
            limit,
            offset: (page - 1) * limit,
        })
        .await?;
    Ok(Json(json!({
        "data": rows.iter().map(|p| tm.project_json(p)).collect::<Vec<_>>(),
        "pagination": {"page": page, "limit": limit, "total": total, "total_pages": (total + limit - 1) / limit},
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProject {
    name: Option<String>,
    /// Overrides of the platform's limits (see [`crate::limits::Overrides::patch`]).
    limits: Option<Value>,
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::BadRequest(
            "name: must be 1 to 255 characters".into(),
        ));
    }
    Ok(name.to_string())
}

pub(crate) async fn update(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: UpdateProject = body(&bytes)?;
    if req.name.is_none() && req.limits.is_none() {
        return Err(ApiError::BadRequest(
            "body: give name, limits or both".into(),
        ));
    }
    let name = req.name.as_deref().map(valid_name).transpose()?;
    let p = tm.project_or_404(&project_ref).await?;
    let limits = req.limits.as_ref().map(|l| p.limits.patch(l)).transpose()?;
    if let Some(name) = name {
        tm.store.rename_project(&project_ref, &name).await?;
    }
    if let Some(limits) = limits {
        tm.set_limits(&p, limits).await?;
    }
    let p = tm.project_or_404(&project_ref).await?;
    Ok(data(tm.project_json(&p)))
}

impl TenantManager {
    /// Stores new limits, applies the connection limit to the login role, and tells the data plane (the
    /// statement timeouts travel in the project's config).
    async fn set_limits(
        &self,
        p: &ProjectRow,
        limits: crate::limits::Overrides,
    ) -> Result<(), ApiError> {
        let default = self.config.project_connection_limit;
        let (old, new) = (
            p.limits.connection_limit(default),
            limits.connection_limit(default),
        );
        if old != new {
            let worker = self.store.worker(p.worker_id, &self.cipher).await?;
            provision::set_connection_limit(&worker, &p.db_user, new).await?;
        }
        self.store.set_limits(&p.project_ref, &limits).await?;
        self.changed(&p.project_ref);
        Ok(())
    }
}

/// Pause: the gateway answers 503 for the project and its database connections are closed; its data,
/// keys and secrets are kept.
pub(crate) async fn pause(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    if p.status != status::ACTIVE {
        return Err(ApiError::Conflict(format!(
            "project {project_ref} is {}, not ACTIVE_HEALTHY",
            p.status
        )));
    }
    tm.store.set_status(&project_ref, status::PAUSED).await?;
    tm.changed(&project_ref);
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    provision::set_connect(&worker, &p.db_name, &p.db_user, false).await?;
    let p = tm.project_or_404(&project_ref).await?;
    Ok(data(tm.project_json(&p)))
}

pub(crate) async fn restore(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    if p.status != status::PAUSED {
        return Err(ApiError::Conflict(format!(
            "project {project_ref} is {}, not PAUSED",
            p.status
        )));
    }
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    provision::set_connect(&worker, &p.db_name, &p.db_user, true).await?;
    tm.store.set_status(&project_ref, status::ACTIVE).await?;
    tm.changed(&project_ref);
    let p = tm.project_or_404(&project_ref).await?;
    Ok(data(tm.project_json(&p)))
}

pub(crate) async fn show(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    Ok(data(tm.project_json(&p)))
}

pub(crate) async fn delete(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    provision_admitted(&tm, {
        let tm = tm.clone();
        async move { tm.delete(&project_ref).await }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    query: String,
    /// The dashboard's shape: columns with types and rows as arrays ([`sqlrun::run_described`]).
    #[serde(default)]
    describe: bool,
}

pub(crate) async fn query(
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
    if q.describe {
        return Ok(data(sqlrun::run_described(&client, &q.query).await?));
    }
    let rows = sqlrun::run(&client, &q.query).await?;
    Ok(data(Value::Array(rows)))
}

/// Per-project health: the database answers as the project's own role, and REST answers through the
/// gateway (auth is not probed).
pub(crate) async fn health(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<Response, ApiError> {
    let p = tm.project_or_404(&project_ref).await?;
    let worker = tm.store.worker(p.worker_id, &tm.cipher).await?;
    let mut cfg = worker.pg_config(&p.db_name);
    cfg.config
        .user(&p.db_user)
        .password(Column::ProjectDbPassword.open(&tm.cipher, &p.project_ref, &p.db_password)?)
        .connect_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let database = match tokio::time::timeout(Duration::from_secs(5), async {
        let c = crate::store::connect(&cfg).await?;
        c.simple_query("SELECT 1").await.map_err(ApiError::from)
    })
    .await
    {
        Ok(Ok(_)) => json!({"healthy": true, "latency_ms": started.elapsed().as_millis() as u64}),
        Ok(Err(e)) => json!({"healthy": false, "error": e.to_string()}),
        Err(_) => json!({"healthy": false, "error": "timed out"}),
    };
    let rest = tm
        .probe(
            &format!("{}/rest/v1/", tm.api_url(&project_ref)),
            &project_ref,
        )
        .await;
    let healthy =
        database["healthy"] == true && rest["healthy"] == true && p.status == status::ACTIVE;
    let body = json!({"data": {"ref": project_ref, "status": p.status, "healthy": healthy, "database": database, "rest": rest}});
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}
