//! Worker clusters (the PostgreSQL servers that hold project databases) and project placement.
//!
//! Strategies: `least-used` (default; lowest projects / max_databases), `round-robin` and `weighted`
//! (deterministic, their counter is a sequence in the platform database so every replica shares it),
//! `hash` (SHA-256 of the ref), `region` (least-used among the workers of the requested region, else any),
//! and an explicit worker. Only active workers with room are candidates; a draining worker gets no new
//! projects.

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::provision;
use crate::sealed::Column;
use crate::store::{connect, Worker, WorkerSpec};
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use supactl_common::pg_tls::{PgTls, SslMode, TlsError};

pub const STRATEGIES: &[&str] = &["least-used", "round-robin", "weighted", "hash", "region"];

const WORKER_COLS: &str = "w.id, w.identifier, w.host, w.port, w.admin_user, w.region, w.weight, w.max_databases, w.status,
    to_json(w.created_at) #>> '{}', (SELECT count(*) FROM supactl.projects p WHERE p.worker_id = w.id), w.sslmode, w.ssl_root_cert";

/// A worker as the API shows it: never its password.
fn worker_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "identifier": r.get::<_, String>(1),
        "host": r.get::<_, String>(2),
        "port": r.get::<_, i32>(3),
        "admin_user": r.get::<_, String>(4),
        "region": r.get::<_, String>(5),
        "weight": r.get::<_, i32>(6),
        "max_databases": r.get::<_, i32>(7),
        "status": r.get::<_, String>(8),
        "created_at": r.get::<_, String>(9),
        "current_databases": r.get::<_, i64>(10),
        "sslmode": r.get::<_, String>(11),
        // CA certificates are public; null: the built-in Amazon RDS bundle
        "ssl_root_cert": r.get::<_, Option<String>>(12),
    })
}

async fn worker_row(tm: &TenantManager, id: i64) -> Result<tokio_postgres::Row, ApiError> {
    let c = tm.store.client().await?;
    c.query_opt(
        &format!("SELECT {WORKER_COLS} FROM supactl.workers w WHERE w.id = $1"),
        &[&id],
    )
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("worker {id} not found")))
}

pub async fn list(State(tm): Tm) -> Result<Json<Value>, ApiError> {
    let c = tm.store.client().await?;
    let rows = c
        .query(
            &format!("SELECT {WORKER_COLS} FROM supactl.workers w ORDER BY w.id"),
            &[],
        )
        .await?;
    Ok(data(Value::Array(rows.iter().map(worker_json).collect())))
}

pub async fn show(State(tm): Tm, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    Ok(data(worker_json(&worker_row(&tm, id).await?)))
}

/// Connects with the credentials and checks they can create databases and roles; then makes sure the
/// tenant template is there.
async fn check_credentials(spec: &WorkerSpec) -> Result<(), ApiError> {
    let w = Worker {
        id: 0,
        spec: spec.clone(),
    };
    let c = connect(&w.pg_config("postgres")).await.map_err(|e| {
        let e = match e {
            ApiError::Internal(m) => m,
            e => e.to_string(),
        };
        // 28P01: invalid_password
        let fields = if e.contains("(28P01)") {
            "admin_password"
        } else {
            "host, port, sslmode or ssl_root_cert"
        };
        ApiError::BadRequest(format!(
            "{fields}: cannot connect to {}:{} as {} with sslmode {}: {e}",
            spec.host, spec.port, spec.admin_user, spec.tls.sslmode
        ))
    })?;
    let ok: bool = c
        .query_one(
            "SELECT rolsuper OR (rolcreatedb AND rolcreaterole) FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    if !ok {
        return Err(ApiError::BadRequest(format!(
            "admin_user: {} can neither create databases nor roles on this server",
            spec.admin_user
        )));
    }
    provision::ensure_template(&w).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWorker {
    identifier: String,
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_user")]
    admin_user: String,
    admin_password: String,
    #[serde(default = "default_region")]
    region: String,
    #[serde(default = "default_weight")]
    weight: i32,
    #[serde(default = "default_max")]
    max_databases: i32,
    /// libpq's sslmode: disable (default), require, verify-ca or verify-full.
    sslmode: Option<String>,
    /// PEM CA certificates that verify the server under verify-*; absent: the Amazon RDS bundle.
    ssl_root_cert: Option<String>,
}

/// The TLS settings of a registration, checked: `ssl_root_cert` must hold CA certificates.
fn worker_tls(sslmode: Option<&str>, ssl_root_cert: Option<String>) -> Result<PgTls, ApiError> {
    let sslmode = match sslmode {
        Some(m) => m.parse().map_err(tls_error)?,
        None => SslMode::Disable,
    };
    let tls = PgTls {
        sslmode,
        ssl_root_cert: ssl_root_cert.filter(|pem| !pem.trim().is_empty()),
    };
    tls.validate().map_err(tls_error)?;
    Ok(tls)
}

fn tls_error(e: TlsError) -> ApiError {
    ApiError::BadRequest(match e {
        TlsError::Mode(m) => format!("sslmode: {m}"),
        TlsError::RootCert(m) => format!("ssl_root_cert: {m}"),
    })
}

fn default_port() -> u16 {
    5432
}
fn default_user() -> String {
    "postgres".into()
}
fn default_region() -> String {
    "default".into()
}
fn default_weight() -> i32 {
    100
}
fn default_max() -> i32 {
    100
}

fn validate_numbers(weight: i32, max_databases: i32) -> Result<(), ApiError> {
    if !(0..=1000).contains(&weight) {
        return Err(ApiError::BadRequest(
            "weight: must be between 0 and 1000".into(),
        ));
    }
    if !(1..=10000).contains(&max_databases) {
        return Err(ApiError::BadRequest(
            "max_databases: must be between 1 and 10000".into(),
        ));
    }
    Ok(())
}

pub async fn create(State(tm): Tm, bytes: Bytes) -> Result<Response, ApiError> {
    let req: CreateWorker = body(&bytes)?;
    if !supactl_common::ident::valid_ref(&req.identifier) {
        return Err(ApiError::BadRequest(
            "identifier: must be 3 to 40 characters of a-z, 0-9 and '-'".into(),
        ));
    }
    if req.host.trim().is_empty() {
        return Err(ApiError::BadRequest("host: required".into()));
    }
    validate_numbers(req.weight, req.max_databases)?;
    let spec = WorkerSpec {
        identifier: req.identifier.clone(),
        host: req.host,
        port: req.port,
        admin_user: req.admin_user,
        admin_password: req.admin_password,
        tls: worker_tls(req.sslmode.as_deref(), req.ssl_root_cert)?,
    };
    check_credentials(&spec).await?;
    let c = tm.store.client().await?;
    let id: i64 = c
        .query_one(
            "INSERT INTO supactl.workers (identifier, host, port, admin_user, admin_password, region, weight, max_databases, sslmode, ssl_root_cert)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[&spec.identifier, &spec.host, &i32::from(spec.port), &spec.admin_user, &Column::WorkerPassword.seal(&tm.cipher, &spec.identifier, &spec.admin_password),
              &req.region, &req.weight, &req.max_databases, &spec.tls.sslmode.as_str(), &spec.tls.ssl_root_cert],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                ApiError::Conflict(format!("a worker named {} already exists", spec.identifier))
            } else {
                e.into()
            }
        })?
        .get(0);
    Ok((
        StatusCode::CREATED,
        data(worker_json(&worker_row(&tm, id).await?)),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateWorker {
    host: Option<String>,
    port: Option<u16>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    region: Option<String>,
    weight: Option<i32>,
    max_databases: Option<i32>,
    status: Option<String>,
    sslmode: Option<String>,
    /// New CA certificates; an empty string goes back to the built-in Amazon RDS bundle.
    ssl_root_cert: Option<String>,
}

pub async fn update(
    State(tm): Tm,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: UpdateWorker = body(&bytes)?;
    if let Some(s) = &req.status {
        if s != "active" && s != "draining" {
            return Err(ApiError::BadRequest(
                "status: must be \"active\" or \"draining\"".into(),
            ));
        }
    }
    let current = tm
        .store
        .worker(id, &tm.cipher)
        .await
        .map_err(|_| ApiError::NotFound(format!("worker {id} not found")))?;
    let row = worker_row(&tm, id).await?;
    validate_numbers(
        req.weight.unwrap_or(row.get(6)),
        req.max_databases.unwrap_or(row.get(7)),
    )?;
    let spec = WorkerSpec {
        identifier: current.spec.identifier.clone(),
        host: req.host.unwrap_or(current.spec.host.clone()),
        port: req.port.unwrap_or(current.spec.port),
        admin_user: req.admin_user.unwrap_or(current.spec.admin_user.clone()),
        admin_password: req
            .admin_password
            .unwrap_or(current.spec.admin_password.clone()),
        tls: worker_tls(
            Some(
                req.sslmode
                    .as_deref()
                    .unwrap_or(current.spec.tls.sslmode.as_str()),
            ),
            req.ssl_root_cert.or(current.spec.tls.ssl_root_cert.clone()),
        )?,
    };
    let connection_changed = spec.host != current.spec.host
        || spec.port != current.spec.port
        || spec.admin_user != current.spec.admin_user
        || spec.admin_password != current.spec.admin_password
        || spec.tls != current.spec.tls;
    if connection_changed {
        check_credentials(&spec).await?;
    }
    let c = tm.store.client().await?;
    c.execute(
        "UPDATE supactl.workers SET host = $2, port = $3, admin_user = $4, admin_password = $5,
           region = coalesce($6, region), weight = coalesce($7, weight), max_databases = coalesce($8, max_databases),
           status = coalesce($9, status), sslmode = $10, ssl_root_cert = $11, updated_at = now() WHERE id = $1",
        &[&id, &spec.host, &i32::from(spec.port), &spec.admin_user, &Column::WorkerPassword.seal(&tm.cipher, &spec.identifier, &spec.admin_password),
          &req.region, &req.weight, &req.max_databases, &req.status, &spec.tls.sslmode.as_str(), &spec.tls.ssl_root_cert],
    )
    .await?;
    Ok(data(worker_json(&worker_row(&tm, id).await?)))
}

pub async fn drain(State(tm): Tm, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    worker_row(&tm, id).await?;
    let c = tm.store.client().await?;
    c.execute(
        "UPDATE supactl.workers SET status = 'draining', updated_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(data(worker_json(&worker_row(&tm, id).await?)))
}

pub async fn remove(State(tm): Tm, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let row = worker_row(&tm, id).await?;
    let projects: i64 = row.get(10);
    if projects > 0 {
        return Err(ApiError::Conflict(format!(
            "worker {id} still holds {projects} project(s); delete or move them first"
        )));
    }
    let c = tm.store.client().await?;
    c.execute("DELETE FROM supactl.workers WHERE id = $1", &[&id])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn projects(State(tm): Tm, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    worker_row(&tm, id).await?;
    let (rows, _) = tm
        .store
        .projects(&crate::store::ProjectQuery {
            worker_id: Some(id),
            limit: 10000,
            ..Default::default()
        })
        .await?;
    Ok(data(Value::Array(
        rows.iter().map(|p| tm.project_json(p)).collect(),
    )))
}

pub async fn placement(State(tm): Tm) -> Result<Json<Value>, ApiError> {
    Ok(data(
        json!({ "strategy": default_strategy(&tm).await?, "strategies": STRATEGIES }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPlacement {
    strategy: String,
}

pub async fn set_placement(State(tm): Tm, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let req: SetPlacement = body(&bytes)?;
    if !STRATEGIES.contains(&req.strategy.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "strategy: must be one of {}",
            STRATEGIES.join(", ")
        )));
    }
    let c = tm.store.client().await?;
    c.execute(
        "INSERT INTO supactl.settings (key, value) VALUES ('placement', jsonb_build_object('strategy', $1::text))
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&req.strategy],
    )
    .await?;
    Ok(data(
        json!({ "strategy": req.strategy, "strategies": STRATEGIES }),
    ))
}

async fn default_strategy(tm: &TenantManager) -> Result<String, ApiError> {
    let c = tm.store.client().await?;
    Ok(c.query_opt(
        "SELECT value ->> 'strategy' FROM supactl.settings WHERE key = 'placement'",
        &[],
    )
    .await?
    .and_then(|r| r.get::<_, Option<String>>(0))
    .unwrap_or_else(|| "least-used".into()))
}

/// What a project create asks of placement.
#[derive(Debug, Default, Deserialize)]
pub struct PlacementRequest {
    pub worker: Option<String>,
    pub region: Option<String>,
    pub strategy: Option<String>,
}

/// Chooses the worker for a new project.
pub async fn place(
    tm: &TenantManager,
    project_ref: &str,
    req: &PlacementRequest,
) -> Result<Worker, ApiError> {
    let strategy = match &req.strategy {
        Some(s) if STRATEGIES.contains(&s.as_str()) => s.clone(),
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "strategy: must be one of {}",
                STRATEGIES.join(", ")
            )))
        }
        None if req.region.is_some() => "region".to_string(),
        None => default_strategy(tm).await?,
    };
    let c = tm.store.client().await?;
    // Candidates: active, with room. (id, identifier, region, weight, used, max)
    let rows = c
        .query(
            "SELECT w.id, w.identifier, w.region, w.weight, count(p.ref), w.max_databases, w.status
             FROM supactl.workers w LEFT JOIN supactl.projects p ON p.worker_id = w.id
             GROUP BY w.id ORDER BY w.id",
            &[],
        )
        .await?;
    if let Some(name) = &req.worker {
        let r = rows
            .iter()
            .find(|r| r.get::<_, String>(1) == *name)
            .ok_or_else(|| ApiError::BadRequest(format!("worker: no worker named {name}")))?;
        if r.get::<_, String>(6) != "active" {
            return Err(ApiError::Conflict(format!(
                "worker {name} is draining and takes no new projects"
            )));
        }
        if r.get::<_, i64>(4) >= i64::from(r.get::<_, i32>(5)) {
            return Err(ApiError::Conflict(format!("worker {name} is full")));
        }
        let id = r.get(0);
        // Give the connection back before taking another: nested waits deadlock a busy pool.
        drop(c);
        return tm.store.worker(id, &tm.cipher).await;
    }
    let mut candidates: Vec<(i64, String, i32, i64, i32)> = rows
        .iter()
        .filter(|r| {
            r.get::<_, String>(6) == "active" && r.get::<_, i64>(4) < i64::from(r.get::<_, i32>(5))
        })
        .map(|r| (r.get(0), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    if candidates.is_empty() {
        return Err(ApiError::NoCapacity);
    }
    let least_used = |cs: &[(i64, String, i32, i64, i32)]| {
        cs.iter()
            .min_by(|a, b| {
                (a.3 as f64 / a.4 as f64)
                    .total_cmp(&(b.3 as f64 / b.4 as f64))
                    .then(a.0.cmp(&b.0))
            })
            .map(|c| c.0)
            .expect("non-empty")
    };
    let id = match strategy.as_str() {
        "round-robin" => {
            let n: i64 = c
                .query_one("SELECT nextval('supactl.placement_round_robin')", &[])
                .await?
                .get(0);
            candidates[((n - 1) as usize) % candidates.len()].0
        }
        "weighted" => {
            candidates.retain(|c| c.2 > 0);
            let total: i64 = candidates.iter().map(|c| i64::from(c.2)).sum();
            if total == 0 {
                return Err(ApiError::NoCapacity);
            }
            let n: i64 = c
                .query_one("SELECT nextval('supactl.placement_round_robin')", &[])
                .await?
                .get(0);
            let mut slot = (n - 1) % total;
            let mut chosen = candidates[0].0;
            for cand in &candidates {
                if slot < i64::from(cand.2) {
                    chosen = cand.0;
                    break;
                }
                slot -= i64::from(cand.2);
            }
            chosen
        }
        "hash" => {
            let h = Sha256::digest(project_ref.as_bytes());
            let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            candidates[n % candidates.len()].0
        }
        "region" => {
            let in_region: Vec<_> = candidates
                .iter()
                .filter(|c| Some(&c.1) == req.region.as_ref())
                .cloned()
                .collect();
            least_used(if in_region.is_empty() {
                &candidates
            } else {
                &in_region
            })
        }
        _ => least_used(&candidates),
    };
    drop(c);
    tm.store.worker(id, &tm.cipher).await
}
