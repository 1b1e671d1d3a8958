//! Project secrets (environment for Edge Functions): set, list names, delete. Values are encrypted at
//! rest and never returned by the admin API.

use crate::error::ApiError;
use crate::handler::{body, data, Tm};
use crate::sealed::{project_secret_row, Column};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Secret {
    name: String,
    value: String,
}

/// Supabase's rule for secret names: letters, digits and `_`, not starting with a digit, and not in the
/// reserved `SUPABASE_` namespace.
fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("SUPABASE_")
}

pub async fn list(State(tm): Tm, Path(project_ref): Path<String>) -> Result<Json<Value>, ApiError> {
    tm.project_or_404(&project_ref).await?;
    let c = tm.store.client().await?;
    let rows = c
        .query(
            "SELECT name, to_json(updated_at) #>> '{}' FROM supactl.project_secrets WHERE project_ref = $1 ORDER BY name",
            &[&project_ref],
        )
        .await?;
    Ok(data(Value::Array(
        rows.iter()
            .map(|r| json!({"name": r.get::<_, String>(0), "updated_at": r.get::<_, String>(1)}))
            .collect(),
    )))
}

/// `[{"name", "value"}, …]`: creates or replaces each, all or nothing.
pub async fn set(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let items: Vec<Secret> = body(&bytes)?;
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "body: give at least one {\"name\", \"value\"}".into(),
        ));
    }
    for (i, s) in items.iter().enumerate() {
        if !valid_secret_name(&s.name) {
            return Err(ApiError::BadRequest(format!(
                "[{i}].name: use letters, digits and '_', not starting with a digit or SUPABASE_"
            )));
        }
        if s.value.len() > 64 * 1024 {
            return Err(ApiError::BadRequest(format!(
                "[{i}].value: must be at most 64 KiB"
            )));
        }
    }
    tm.project_or_404(&project_ref).await?;
    let mut c = tm.store.client().await?;
    let tx = c.transaction().await?;
    for s in &items {
        tx.execute(
            "INSERT INTO supactl.project_secrets (project_ref, name, value_enc) VALUES ($1, $2, $3)
             ON CONFLICT (project_ref, name) DO UPDATE SET value_enc = EXCLUDED.value_enc, updated_at = now()",
            &[
                &project_ref,
                &s.name,
                &Column::ProjectSecret.seal(&tm.cipher, &project_secret_row(&project_ref, &s.name), &s.value),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::CREATED)
}

/// `["NAME", …]`: deletes those secrets; unknown names are a 404 and nothing is deleted.
pub async fn unset(
    State(tm): Tm,
    Path(project_ref): Path<String>,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let names: Vec<String> = body(&bytes)?;
    tm.project_or_404(&project_ref).await?;
    let mut c = tm.store.client().await?;
    let tx = c.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM supactl.project_secrets WHERE project_ref = $1 AND name = ANY($2)",
            &[&project_ref, &names],
        )
        .await?;
    if n as usize != names.len() {
        return Err(ApiError::NotFound(
            "some of these secrets do not exist; nothing was deleted".into(),
        ));
    }
    tx.commit().await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_names() {
        assert!(super::valid_secret_name("STRIPE_KEY"));
        assert!(!super::valid_secret_name("1KEY"));
        assert!(!super::valid_secret_name("SUPABASE_URL"));
        assert!(!super::valid_secret_name("bad-name"));
    }
}
