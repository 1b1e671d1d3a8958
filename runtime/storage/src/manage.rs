//! Several objects at once, as the caller: list a folder (Supabase's `storage.search` shape: the
//! folder's files and its sub-folders), move, copy, remove.

use crate::caller::Ctx;
use crate::db;
use crate::error::{StorageError, StorageResult};
use crate::names;
use crate::route::ObjectRef;
use crate::{message, Storage};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use serde_json::{json, Map, Value};

/// Most names a remove or a batch of signed URLs takes (Supabase's limit).
pub const MAX_NAMES: usize = 1000;
const MAX_LIST: i64 = 1000;

/// `{"bucketId", "sourceKey", "destinationKey", "destinationBucket"?}` of a move or a copy.
fn from_to(body: &Map<String, Value>) -> StorageResult<(ObjectRef, ObjectRef)> {
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| StorageError::bad_request(format!("{k} is required")))
    };
    let bucket = names::bucket_id(text("bucketId")?)?.to_string();
    let dest_bucket = match body.get("destinationBucket").and_then(Value::as_str) {
        Some(b) => names::bucket_id(b)?.to_string(),
        None => bucket.clone(),
    };
    Ok((
        ObjectRef {
            bucket,
            name: names::object_name(text("sourceKey")?)?.to_string(),
        },
        ObjectRef {
            bucket: dest_bucket,
            name: names::object_name(text("destinationKey")?)?.to_string(),
        },
    ))
}

/// A list of object names in `body[key]`, each checked, at most [`MAX_NAMES`].
pub fn name_list(body: &Map<String, Value>, key: &str) -> StorageResult<Vec<String>> {
    let list = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| StorageError::bad_request(format!("{key} must be a list of names")))?;
    if list.len() > MAX_NAMES {
        return Err(StorageError::bad_request(format!(
            "at most {MAX_NAMES} names at once"
        )));
    }
    list.iter()
        .map(|v| {
            let n = v.as_str().ok_or_else(|| {
                StorageError::bad_request(format!("{key} must be a list of names"))
            })?;
            Ok(names::object_name(n)?.to_string())
        })
        .collect()
}

fn json_text(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// An object's row as list and remove answer it.
const OBJECT_JSON: &str = "json_build_object('name', name, 'bucket_id', bucket_id, \
     'owner', coalesce(owner_id, owner::text, ''), 'id', id, 'updated_at', updated_at, \
     'created_at', created_at, 'last_accessed_at', last_accessed_at, 'metadata', metadata)";

/// Lists a folder: `$1` bucket, `$2` prefix (empty or ending in `/`), `$3` search (a prefix of the
/// entries' names, case-insensitive, `LIKE`-escaped), `$4` limit, `$5` offset. The sort column and
/// direction are spliced in from a fixed set.
fn list_sql(column: &str, desc: bool) -> String {
    let dir = if desc { "DESC" } else { "ASC" };
    format!(
        "WITH below AS (
           SELECT substr(name, length($2) + 1) AS rest, *
           FROM storage.objects
           WHERE bucket_id = $1 AND starts_with(name, $2)
         ), entries AS (
           SELECT DISTINCT ON (split_part(rest, '/', 1)) split_part(rest, '/', 1) AS name,
                  NULL::uuid AS id, NULL::timestamptz AS updated_at, NULL::timestamptz AS created_at,
                  NULL::timestamptz AS last_accessed_at, NULL::jsonb AS metadata
           FROM below WHERE position('/' in rest) > 0
           UNION ALL
           SELECT rest, id, updated_at, created_at, last_accessed_at, metadata
           FROM below WHERE position('/' in rest) = 0
         )
         SELECT coalesce(json_agg(json_build_object('name', name, 'id', id, 'updated_at', updated_at,
                  'created_at', created_at, 'last_accessed_at', last_accessed_at, 'metadata', metadata)
                  ORDER BY {column} {dir} NULLS FIRST, name {dir}), '[]')::text
         FROM (SELECT * FROM entries WHERE name ILIKE $3 || '%' ESCAPE '\\'
               ORDER BY {column} {dir} NULLS FIRST, name {dir} LIMIT $4 OFFSET $5) page"
    )
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn list(
    s: &Storage,
    ctx: &Ctx,
    bucket: &str,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let prefix = names::folder_prefix(body.get("prefix").and_then(Value::as_str).unwrap_or(""))?;
    let int = |k: &str, d: i64| body.get(k).and_then(Value::as_i64).unwrap_or(d);
    let limit = int("limit", 100).clamp(0, MAX_LIST);
    let offset = int("offset", 0).max(0);
    let search = like_escape(body.get("search").and_then(Value::as_str).unwrap_or(""));
    let sort = body.get("sortBy").and_then(Value::as_object);
    let column = sort
        .and_then(|s| s.get("column"))
        .and_then(Value::as_str)
        .filter(|c| matches!(*c, "updated_at" | "created_at" | "last_accessed_at"))
        .unwrap_or("name");
    let desc = sort
        .and_then(|s| s.get("order"))
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let row = tx
        .query_one(
            &list_sql(column, desc),
            &[&bucket, &prefix, &search, &limit, &offset],
        )
        .await?;
    tx.commit().await?;
    Ok(json_text(row.get(0)))
}

/// Removes several objects (`{"prefixes": [names]}`): the ones the caller may delete; answers their
/// rows.
pub async fn remove(
    s: &Storage,
    ctx: &Ctx,
    bucket: &str,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let names = name_list(&body, "prefixes")?;
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let rows = tx
        .query(
            &format!(
                "DELETE FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2)
                 RETURNING version, {OBJECT_JSON}::text"
            ),
            &[&bucket, &names],
        )
        .await?;
    tx.commit().await?;
    let versions = rows.iter().filter_map(|r| r.get(0)).collect();
    let deleted: Vec<&str> = rows.iter().map(|r| r.get(1)).collect();
    s.backend.delete(ctx.project_ref(), versions).await;
    Ok(json_text(format!("[{}]", deleted.join(","))))
}

fn destination_bucket_missing(e: tokio_postgres::Error) -> StorageError {
    match e.code().map(|c| c.code()) {
        Some("23503") => StorageError::bucket_not_found(),
        _ => e.into(),
    }
}

/// Moves (renames) an object: its row only, the bytes stay where they are.
pub async fn move_object(
    s: &Storage,
    ctx: &Ctx,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let (from, to) = from_to(&body)?;
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let n = tx
        .execute(
            "UPDATE storage.objects SET bucket_id = $3, name = $4, updated_at = now()
             WHERE bucket_id = $1 AND name = $2",
            &[&from.bucket, &from.name, &to.bucket, &to.name],
        )
        .await
        .map_err(destination_bucket_missing)?;
    if n == 0 {
        return Err(StorageError::object_not_found());
    }
    tx.commit().await?;
    Ok(message("Successfully moved"))
}

/// Copies an object: its bytes under a new version, and a new row written as the caller, with the
/// source's metadata and user metadata.
pub async fn copy(s: &Storage, ctx: &Ctx, body: Map<String, Value>) -> StorageResult<Response> {
    let (from, to) = from_to(&body)?;
    let actor = ctx.actor()?;
    let source = {
        let mut client = s.pools.get(&ctx.project).await?;
        let tx = db::begin(&mut client, &ctx.project, actor).await?;
        let row = tx
            .query_opt(
                "SELECT version, metadata, user_metadata FROM storage.objects
                 WHERE bucket_id = $1 AND name = $2",
                &[&from.bucket, &from.name],
            )
            .await?
            .ok_or_else(StorageError::object_not_found)?;
        tx.commit().await?;
        let version: Option<String> = row.get(0);
        let meta: Option<Value> = row.get(1);
        let user: Option<Value> = row.get(2);
        (
            version.ok_or_else(StorageError::object_not_found)?,
            meta,
            user,
        )
    };
    let version = crate::objects::new_version();
    s.backend
        .copy(ctx.project_ref(), &source.0, &version)
        .await?;
    let inserted =
        async {
            let mut client = s.pools.get(&ctx.project).await?;
            let tx = db::begin(&mut client, &ctx.project, actor).await?;
            let row = tx
            .query_one(
                "INSERT INTO storage.objects (bucket_id, name, owner, owner_id, version, metadata,
                   user_metadata)
                 VALUES ($1, $2, $3::text::uuid, $4, $5, $6, $7) RETURNING id::text",
                &[&to.bucket, &to.name, &actor.owner_uuid(), &actor.sub, &version, &source.1,
                  &source.2],
            )
            .await
            .map_err(destination_bucket_missing)?;
            tx.commit().await?;
            Ok::<String, StorageError>(row.get(0))
        }
        .await;
    match inserted {
        Ok(id) => Ok(axum::Json(json!({
            "Key": format!("{}/{}", to.bucket, to.name),
            "Id": id,
        }))
        .into_response()),
        Err(e) => {
            s.backend.delete(ctx.project_ref(), vec![version]).await;
            Err(e)
        }
    }
}
