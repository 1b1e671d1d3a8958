//! Buckets: create, list, get, update, empty, delete (refused while objects remain), each as the
//! caller (RLS on `storage.buckets` decides; `service_role` bypasses it).

use crate::caller::Ctx;
use crate::db::{self, Actor};
use crate::error::{StorageError, StorageResult};
use crate::{message, names, Storage};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use serde_json::{Map, Value};

/// A bucket as Supabase answers it (`owner` a string, never null).
const BUCKET_JSON: &str = "json_build_object('id', id, 'name', name, \
     'owner', coalesce(owner_id, owner::text, ''), 'public', public, \
     'file_size_limit', file_size_limit, 'allowed_mime_types', allowed_mime_types, \
     'created_at', created_at, 'updated_at', updated_at, 'type', 'STANDARD')";

/// What an upload needs to know of its bucket.
pub struct Limits {
    pub file_size_limit: Option<i64>,
    pub allowed_mime_types: Option<Vec<String>>,
}

/// The bucket's limits, read as `service_role` (as Supabase reads them as its superuser: a caller
/// that may upload need not see the bucket's row).
pub async fn limits(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<Limits> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let row = tx
        .query_opt(
            "SELECT file_size_limit, allowed_mime_types FROM storage.buckets WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(StorageError::bucket_not_found)?;
    tx.commit().await?;
    Ok(Limits {
        file_size_limit: row.get(0),
        allowed_mime_types: row.get(1),
    })
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn list(s: &Storage, ctx: &Ctx) -> StorageResult<Response> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let row = tx
        .query_one(
            &format!(
                "SELECT coalesce(json_agg({BUCKET_JSON} ORDER BY name), '[]')::text FROM storage.buckets"
            ),
            &[],
        )
        .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, row.get(0)))
}

pub async fn get(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<Response> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {BUCKET_JSON}::text FROM storage.buckets WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(StorageError::bucket_not_found)?;
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, row.get(0)))
}

/// `file_size_limit` as clients send it: a number of bytes, or a string such as `"50MB"`, `"1.5 GB"`,
/// `"100kb"`; `null` for none.
pub fn size_limit(v: &Value) -> StorageResult<Option<i64>> {
    let bad =
        || StorageError::bad_request("file_size_limit must be a size such as 1048576 or \"1MB\"");
    let bytes = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: f64 = num.parse().map_err(|_| bad())?;
            let mult = match unit.trim() {
                "" | "b" => 1u64,
                "k" | "kb" => 1 << 10,
                "m" | "mb" => 1 << 20,
                "g" | "gb" => 1 << 30,
                "t" | "tb" => 1 << 40,
                _ => return Err(bad()),
            };
            n * mult as f64
        }
        _ => return Err(bad()),
    };
    if !(0.0..=i64::MAX as f64).contains(&bytes) {
        return Err(bad());
    }
    Ok(Some(bytes as i64).filter(|b| *b > 0))
}

fn mime_types(v: &Value) -> StorageResult<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) if a.len() <= 1000 => a
            .iter()
            .map(|t| {
                t.as_str()
                    .filter(|t| !t.is_empty() && t.len() <= 255)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        StorageError::bad_request("allowed_mime_types must be a list of MIME types")
                    })
            })
            .collect::<StorageResult<Vec<_>>>()
            .map(Some),
        _ => Err(StorageError::bad_request(
            "allowed_mime_types must be a list of MIME types",
        )),
    }
}

pub async fn create(s: &Storage, ctx: &Ctx, body: Map<String, Value>) -> StorageResult<Response> {
    let actor = ctx.actor()?;
    let name = body.get("name").and_then(Value::as_str);
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .or(name)
        .unwrap_or("");
    let id = names::bucket_id(id)?;
    let name = names::bucket_id(name.unwrap_or(id))?;
    let public = body.get("public").and_then(Value::as_bool).unwrap_or(false);
    let limit = size_limit(body.get("file_size_limit").unwrap_or(&Value::Null))?;
    let mimes = mime_types(body.get("allowed_mime_types").unwrap_or(&Value::Null))?;
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, actor).await?;
    tx.execute(
        "INSERT INTO storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
         VALUES ($1, $2, $3::text::uuid, $4, $5, $6, $7)",
        &[&id, &name, &actor.owner_uuid(), &actor.sub, &public, &limit, &mimes],
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(serde_json::json!({ "name": id })).into_response())
}

pub async fn update(
    s: &Storage,
    ctx: &Ctx,
    id: &str,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let public = body.get("public").and_then(Value::as_bool);
    let limit = body.get("file_size_limit").map(size_limit).transpose()?;
    let mimes = body.get("allowed_mime_types").map(mime_types).transpose()?;
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let n = tx
        .execute(
            "UPDATE storage.buckets SET public = coalesce($2, public),
               file_size_limit = CASE WHEN $3 THEN $4 ELSE file_size_limit END,
               allowed_mime_types = CASE WHEN $5 THEN $6 ELSE allowed_mime_types END,
               updated_at = now()
             WHERE id = $1",
            &[
                &id,
                &public,
                &limit.is_some(),
                &limit.flatten(),
                &mimes.is_some(),
                &mimes.flatten(),
            ],
        )
        .await?;
    if n == 0 {
        return Err(StorageError::bucket_not_found());
    }
    tx.commit().await?;
    Ok(message("Successfully updated"))
}

/// Deletes the objects of the bucket the caller may delete (RLS), then their bytes.
pub async fn empty(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<Response> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    if tx
        .query_opt("SELECT 1 FROM storage.buckets WHERE id = $1", &[&id])
        .await?
        .is_none()
    {
        return Err(StorageError::bucket_not_found());
    }
    let versions: Vec<String> = tx
        .query(
            "DELETE FROM storage.objects WHERE bucket_id = $1 RETURNING version",
            &[&id],
        )
        .await?
        .iter()
        .filter_map(|r| r.get(0))
        .collect();
    tx.commit().await?;
    s.backend.delete(ctx.project_ref(), versions).await;
    Ok(message("Successfully emptied"))
}

pub async fn delete(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<Response> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let n = tx
        .execute("DELETE FROM storage.buckets WHERE id = $1", &[&id])
        .await
        .map_err(|e| match e.code().map(|c| c.code()) {
            // storage.objects still references it
            Some("23503") => StorageError::new(
                StatusCode::CONFLICT,
                "InvalidRequest",
                "The bucket you tried to delete is not empty",
            ),
            _ => e.into(),
        })?;
    if n == 0 {
        return Err(StorageError::bucket_not_found());
    }
    tx.commit().await?;
    Ok(message("Successfully deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_limits() {
        assert_eq!(size_limit(&json!(1024)).unwrap(), Some(1024));
        assert_eq!(size_limit(&json!("1MB")).unwrap(), Some(1 << 20));
        assert_eq!(size_limit(&json!("1.5 gb")).unwrap(), Some(3 << 29));
        assert_eq!(size_limit(&json!(null)).unwrap(), None);
        assert!(size_limit(&json!("12 parsecs")).is_err());
        assert!(size_limit(&json!(-1)).is_err());
    }
}
