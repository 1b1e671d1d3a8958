//! A project's JWT keys: its HS256 secrets and its asymmetric signing keys (ES256/RS256), in two
//! families that rotate on their own: standby → current → previous (verifying until its grace period
//! ends). The HS256 current secret always exists (the gateway mints its forwarded tokens with it, and
//! auth signs users' tokens with it until the project makes an asymmetric key current); an asymmetric
//! current key, once there is one, signs users' tokens. Secrets and private keys are sealed like every
//! secret and never returned; an asymmetric key's public JWK is. Every change reaches the data plane
//! through [`TenantManager::changed`].

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::sealed::{self, Column};
use crate::TenantManager;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Value};
use supactl_common::jwk::{self, Alg, SigningKey};
use supactl_common::keys;

const HS256: &str = "HS256";

fn jwt_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, String>(0),
        "status": r.get::<_, String>(1),
        "algorithm": r.get::<_, String>(4),
        "created_at": r.get::<_, String>(2),
        "expires_at": r.get::<_, Option<String>>(3),
        "public_jwk": r.get::<_, Option<Value>>(5),
    })
}

const JWT_COLS: &str =
    "id::text, status, to_json(created_at) #>> '{}', to_json(expires_at) #>> '{}', algorithm, public_jwk";

/// `family` of `algorithm`: the SQL condition selecting the rows of the same family.
fn family(alg: &str) -> &'static str {
    if alg == HS256 {
        "algorithm = 'HS256'"
    } else {
        "algorithm <> 'HS256'"
    }
}

async fn list_rows(c: &impl GenericClient, project_ref: &str) -> Result<Value, ApiError> {
    let rows = c
        .query(
            &format!("SELECT {JWT_COLS} FROM supactl.jwt_secrets WHERE project_ref = $1 ORDER BY created_at"),
            &[&project_ref],
        )
        .await?;
    Ok(Value::Array(rows.iter().map(jwt_json).collect()))
}

pub async fn list(State(tm): Tm, Path(project_ref): Path<String>) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    Ok(data(list_rows(&c, &project_ref).await?))
}

/// A new key's row: id, algorithm, the secret or private key sealed for that row, the public JWK.
struct NewKey {
    id: String,
    alg: &'static str,
    sealed: Vec<u8>,
    public_jwk: Option<Value>,
}

fn new_key(tm: &TenantManager, alg: Option<Alg>) -> Result<NewKey, ApiError> {
    let id = sealed::new_row_id();
    let Some(alg) = alg else {
        let sealed = Column::JwtSecret.seal(&tm.cipher, &id, &keys::random_base62(48));
        return Ok(NewKey {
            id,
            alg: HS256,
            sealed,
            public_jwk: None,
        });
    };
    let private = jwk::generate(alg).map_err(ApiError::internal)?;
    let public = SigningKey::from_stored(&id, alg, &private)
        .map_err(ApiError::internal)?
        .public();
    Ok(NewKey {
        sealed: Column::JwtSecret.seal(&tm.cipher, &id, &private),
        public_jwk: Some(public.jwk().clone()),
        alg: alg.as_str(),
        id,
    })
}

async fn insert_standby(
    c: &impl GenericClient,
    project_ref: &str,
    k: &NewKey,
) -> Result<tokio_postgres::Row, ApiError> {
    Ok(c.query_one(
        &format!("INSERT INTO supactl.jwt_secrets (id, project_ref, secret_enc, status, algorithm, public_jwk)
                  VALUES ($1::text::uuid, $2, $3, 'standby', $4, $5) RETURNING {JWT_COLS}"),
        &[&k.id, &project_ref, &k.sealed, &k.alg, &k.public_jwk],
    )
    .await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Standby {
    /// `HS256` (the default), `ES256` or `RS256`.
    algorithm: Option<String>,
}

/// `None` for HS256, else the asymmetric algorithm.
fn algorithm(name: Option<&str>) -> Result<Option<Alg>, ApiError> {
    match name {
        None | Some(HS256) => Ok(None),
        Some(a) => Alg::parse(a)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("algorithm: must be HS256, ES256 or RS256".into())),
    }
}

/// Creates the standby key that the next rotation promotes (`{"algorithm"}`: HS256 by default).
pub async fn standby(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: Standby = if bytes.is_empty() {
        Standby::default()
    } else {
        body(&bytes)?
    };
    let alg = algorithm(req.algorithm.as_deref())?;
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let exists = c
        .query_opt(
            "SELECT 1 FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'standby'",
            &[&project_ref],
        )
        .await?;
    if exists.is_some() {
        return Err(ApiError::Conflict(
            "a standby secret already exists; rotate to use it".into(),
        ));
    }
    let row = insert_standby(&c, &project_ref, &new_key(&tm, alg)?).await?;
    // An asymmetric standby key is published in the JWKS before it signs anything.
    tm.changed(&project_ref);
    Ok((StatusCode::CREATED, data(jwt_json(&row))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long tokens signed with the outgoing key keep verifying.
    grace_seconds: Option<i64>,
    /// The algorithm of the key generated when there is no standby one (HS256 by default).
    algorithm: Option<String>,
}

/// Within the standby key's family: standby → current, current → previous (verifying until the grace
/// period ends), older previous ones are dropped. Without a standby key one is generated.
pub async fn rotate(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: Rotate = if bytes.is_empty() {
        Rotate::default()
    } else {
        body(&bytes)?
    };
    let grace = req.grace_seconds.unwrap_or(3600);
    if !(0..=30 * 86400).contains(&grace) {
        return Err(ApiError::BadRequest(
            "grace_seconds: must be between 0 and 2592000".into(),
        ));
    }
    let alg = algorithm(req.algorithm.as_deref())?;
    tm.project_or_404(&project_ref).await?;
    let mut c = tm.store.client().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&project_ref],
    )
    .await?;
    let standby = tx
        .query_opt(
            "SELECT algorithm FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'standby'",
            &[&project_ref],
        )
        .await?;
    let standby_alg = match standby {
        Some(row) => row.get::<_, String>(0),
        None => {
            let k = new_key(&tm, alg)?;
            insert_standby(&tx, &project_ref, &k).await?;
            k.alg.to_string()
        }
    };
    let family = family(&standby_alg);
    tx.execute(
        &format!("DELETE FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'previous' AND {family}"),
        &[&project_ref],
    )
    .await?;
    tx.execute(
        &format!("UPDATE supactl.jwt_secrets SET status = 'previous', expires_at = now() + make_interval(secs => $2::bigint)
                  WHERE project_ref = $1 AND status = 'current' AND {family}"),
        &[&project_ref, &grace],
    )
    .await?;
    tx.execute(
        "UPDATE supactl.jwt_secrets SET status = 'current' WHERE project_ref = $1 AND status = 'standby'",
        &[&project_ref],
    )
    .await?;
    let rows = list_rows(&tx, &project_ref).await?;
    tx.commit().await?;
    tm.changed(&project_ref);
    Ok(data(rows))
}

/// Ends the grace period now: tokens signed with a previous secret or key stop verifying.
pub async fn revoke_previous(
    State(tm): Tm,
    Path(project_ref): Path<String>,
) -> Result<StatusCode, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let n = c
        .execute(
            "DELETE FROM supactl.jwt_secrets WHERE project_ref = $1 AND status = 'previous'",
            &[&project_ref],
        )
        .await?;
    if n == 0 {
        return Err(ApiError::NotFound("no previous secret to revoke".into()));
    }
    tm.changed(&project_ref);
    Ok(StatusCode::NO_CONTENT)
}
