//! Objects one at a time: upload (streamed into the store, then its row written as the caller), download
//! (as the caller, from a public bucket, or with a signed URL; `Range`, `If-None-Match`, `download`),
//! info and delete.
//!
//! An upload checks first that the caller may write the row (an insert, or an upsert, rolled back), so
//! a refused upload is refused before its bytes are read; then streams the bytes under a new version;
//! then writes the row in a short transaction, and only then deletes the bytes it replaced. Bytes whose
//! row could not be written are deleted again.

use crate::backend::Written;
use crate::body;
use crate::buckets;
use crate::caller::Ctx;
use crate::db::{self, Actor};
use crate::error::{StorageError, StorageResult};
use crate::http_util::{self, Ranged};
use crate::route::{ObjectRef, ReadAs};
use crate::{message, token, Storage};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::request::Parts;
use http::{header, HeaderValue, Method, StatusCode};
use rand::RngCore;
use serde_json::{json, Value};
use supactl_common::server::RequestDeadline;

/// Writes an object's row: `$1` bucket, `$2` name, `$3` owner (uuid text), `$4` owner id, `$5` version,
/// `$6` ETag, `$7` size, `$8` MIME type, `$9` cache control, `$10` user metadata. Returns its id.
const INSERT: &str = "INSERT INTO storage.objects (bucket_id, name, owner, owner_id, version, metadata,
       user_metadata)
     VALUES ($1, $2, $3::text::uuid, $4, $5, jsonb_build_object('eTag', $6::text, 'size', $7::bigint,
       'mimetype', $8::text, 'cacheControl', $9::text, 'lastModified', now(), 'contentLength', $7::bigint,
       'httpStatusCode', 200), $10::jsonb)";
const UPSERT: &str = " ON CONFLICT (bucket_id, name) DO UPDATE SET owner = excluded.owner,
     owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata,
     user_metadata = excluded.user_metadata, updated_at = now(), last_accessed_at = now()";

fn write_sql(upsert: bool) -> String {
    format!(
        "{INSERT}{} RETURNING id::text",
        if upsert { UPSERT } else { "" }
    )
}

/// A fresh random version: where an upload's bytes go.
pub fn new_version() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Whether `actor` may write the row of `obj` (the write tried and rolled back): RLS refusals and an
/// existing object without upsert come back as errors.
pub async fn check_write(
    s: &Storage,
    ctx: &Ctx,
    actor: &Actor,
    obj: &ObjectRef,
    upsert: bool,
) -> StorageResult<()> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, actor).await?;
    tx.query_one(
        &write_sql(upsert),
        &[
            &obj.bucket,
            &obj.name,
            &actor.owner_uuid(),
            &actor.sub,
            &"",
            &"",
            &0i64,
            &"",
            &"",
            &None::<serde_json::Value>,
        ],
    )
    .await?;
    tx.rollback().await?;
    Ok(())
}

/// Upload (POST, PUT, signed upload URLs): answers `{"Key": "<bucket>/<name>", "Id": …}`.
pub async fn upload(
    s: &Storage,
    ctx: &Ctx,
    actor: &Actor,
    obj: &ObjectRef,
    upsert: bool,
    parts: &Parts,
    body: Body,
) -> StorageResult<Response> {
    let bucket = buckets::limits(s, ctx, &obj.bucket).await?;
    let limit = bucket
        .file_size_limit
        .map(|l| l as u64)
        .unwrap_or(u64::MAX)
        .min(s.config.max_object_size);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(1024 * 1024)) {
        return Err(StorageError::too_large());
    }
    check_write(s, ctx, actor, obj, upsert).await?;
    // the body may take longer than a request's deadline to arrive; the idle timeout bounds it instead
    if let Some(d) = parts.extensions.get::<RequestDeadline>() {
        d.lift();
    }
    let up = body::read(&parts.headers, body, s.config.upload_idle_timeout, limit).await?;
    if !body::mime_allowed(bucket.allowed_mime_types.as_deref(), &up.content_type) {
        return Err(StorageError::invalid_mime_type(&up.content_type));
    }
    let version = new_version();
    let written = s
        .backend
        .put(ctx.project_ref(), &version, up.data, limit)
        .await?;
    let row = NewRow {
        obj,
        upsert,
        version: &version,
        written: &written,
        content_type: &up.content_type,
        cache_control: &up.cache_control,
        user_metadata: up.user_metadata.as_ref(),
    };
    let id = match write_row(s, ctx, actor, &row).await {
        Ok(r) => r,
        Err(e) => {
            s.backend.delete(ctx.project_ref(), vec![version]).await;
            return Err(e);
        }
    };
    if let Some(old) = id.1 {
        s.backend.delete(ctx.project_ref(), vec![old]).await;
    }
    Ok(axum::Json(json!({
        "Key": format!("{}/{}", obj.bucket, obj.name),
        "Id": id.0,
    }))
    .into_response())
}

/// The row of an uploaded version.
pub struct NewRow<'a> {
    pub obj: &'a ObjectRef,
    pub upsert: bool,
    pub version: &'a str,
    pub written: &'a Written,
    pub content_type: &'a str,
    pub cache_control: &'a str,
    pub user_metadata: Option<&'a Value>,
}

/// Writes the row of an uploaded version; returns its id and the version it replaced.
async fn write_row(
    s: &Storage,
    ctx: &Ctx,
    actor: &Actor,
    row: &NewRow<'_>,
) -> StorageResult<(String, Option<String>)> {
    let mut client = s.pools.get(&ctx.project).await?;
    // the replaced version is read as service_role (the caller may not see the old row)
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let written = write_row_in(&tx, ctx, actor, row).await?;
    tx.commit().await?;
    Ok(written)
}

/// [`write_row`] inside `tx` (begun as `service_role`, left running as `actor`): locks and reads the
/// version it replaces, then writes the row as the caller, so RLS decides.
pub async fn write_row_in(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &Ctx,
    actor: &Actor,
    row: &NewRow<'_>,
) -> StorageResult<(String, Option<String>)> {
    let obj = row.obj;
    let old: Option<String> = tx
        .query_opt(
            "SELECT version FROM storage.objects WHERE bucket_id = $1 AND name = $2 FOR UPDATE",
            &[&obj.bucket, &obj.name],
        )
        .await?
        .and_then(|r| r.get(0));
    let timeout = format!("{}ms", ctx.project.limits.statement_timeout_ms(actor.role));
    tx.query(
        supactl_common::pg::SET_CALLER,
        &[&actor.role.as_str(), &actor.claims, &timeout],
    )
    .await?;
    let etag = format!("\"{}\"", row.written.etag);
    let written = tx
        .query_one(
            &write_sql(row.upsert),
            &[
                &obj.bucket,
                &obj.name,
                &actor.owner_uuid(),
                &actor.sub,
                &row.version,
                &etag,
                &(row.written.size as i64),
                &row.content_type,
                &row.cache_control,
                &row.user_metadata,
            ],
        )
        .await?;
    Ok((written.get(0), old))
}

/// The object's bucket is public (read as `service_role`: callers need not see `storage.buckets`).
const PUBLIC_BUCKET: &str =
    "EXISTS (SELECT 1 FROM storage.buckets b WHERE b.id = o.bucket_id AND b.public)";

/// An object's row as a download needs it.
struct Found {
    version: String,
    metadata: Value,
    updated_at: String,
}

/// Finds `obj` as `read_as` allows: the caller (RLS), or `service_role` for a public bucket or a
/// signed URL whose token was checked.
async fn find(s: &Storage, ctx: &Ctx, obj: &ObjectRef, read_as: ReadAs) -> StorageResult<Found> {
    let (actor, public_only) = match read_as {
        ReadAs::Caller => (ctx.actor()?.clone(), false),
        ReadAs::Public => (Actor::service(), true),
        ReadAs::Signed => (Actor::service(), false),
    };
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, &actor).await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT o.version, coalesce(o.metadata, '{{}}')::text,
                    to_char(o.updated_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS \"GMT\"')
             FROM storage.objects o
             WHERE o.bucket_id = $1 AND o.name = $2 AND (NOT $3 OR {PUBLIC_BUCKET})"
            ),
            &[&obj.bucket, &obj.name, &public_only],
        )
        .await?
        .ok_or_else(StorageError::object_not_found)?;
    tx.commit().await?;
    let version: Option<String> = row.get(0);
    Ok(Found {
        version: version.ok_or_else(StorageError::object_not_found)?,
        metadata: serde_json::from_str(row.get(1)).unwrap_or(Value::Null),
        updated_at: row.get(2),
    })
}

pub async fn download(
    s: &Storage,
    ctx: &Ctx,
    obj: &ObjectRef,
    read_as: ReadAs,
    parts: &Parts,
) -> StorageResult<Response> {
    let query = parts.uri.query();
    if read_as == ReadAs::Signed {
        let t = http_util::query_param(query, "token")
            .ok_or_else(|| StorageError::bad_request("missing token"))?;
        token::verify(
            &ctx.project,
            token::Kind::Download,
            obj,
            &t,
            supactl_common::jwt::now(),
        )?;
    }
    let found = find(s, ctx, obj, read_as).await?;
    let meta = &found.metadata;
    let size = meta.get("size").and_then(Value::as_u64).unwrap_or(0);
    let etag = meta
        .get("eTag")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    let text = |k: &str, d: &'static str| {
        meta.get(k)
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or(HeaderValue::from_static(d))
    };
    h.insert(
        header::CONTENT_TYPE,
        text("mimetype", "application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, text("cacheControl", "no-cache"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&found.updated_at) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(d) = http_util::query_param(query, "download") {
        h.insert(
            header::CONTENT_DISPOSITION,
            http_util::disposition(&d, &obj.name),
        );
    }
    if !etag.is_empty() && http_util::not_modified(&parts.headers, &etag) {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(res);
    }
    let range = match http_util::range(&parts.headers, size) {
        Ranged::Whole => None,
        Ranged::Part(r) => Some(r),
        Ranged::Unsatisfiable => {
            let mut e = StorageError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                e.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(e);
        }
    };
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, length.into());
    if let Some(r) = &range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    if parts.method == Method::HEAD {
        return Ok(res);
    }
    // an empty object has no bytes to ask the store for a range of
    let stream = if size == 0 {
        futures_util::stream::empty().boxed()
    } else {
        s.backend
            .get(ctx.project_ref(), &found.version, range)
            .await?
    };
    *res.body_mut() = Body::from_stream(stream.map(|r| {
        r.inspect_err(|e| tracing::warn!(error = %e, "storage: object read failed mid-stream"))
    }));
    Ok(res)
}

/// `GET /object/info/…`: the object's row in Supabase's info shape.
pub async fn info(
    s: &Storage,
    ctx: &Ctx,
    obj: &ObjectRef,
    read_as: ReadAs,
) -> StorageResult<Response> {
    let (actor, public_only) = match read_as {
        ReadAs::Public => (Actor::service(), true),
        _ => (ctx.actor()?.clone(), false),
    };
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, &actor).await?;
    let row = tx
        .query_opt(
            &format!("SELECT json_build_object('id', o.id, 'name', o.name, 'version', o.version,
                 'bucket_id', o.bucket_id, 'size', (o.metadata->>'size')::bigint,
                 'content_type', o.metadata->>'mimetype', 'cache_control', o.metadata->>'cacheControl',
                 'etag', o.metadata->>'eTag', 'metadata', coalesce(o.user_metadata, '{{}}'),
                 'last_modified', o.updated_at, 'created_at', o.created_at)::text
             FROM storage.objects o
             WHERE o.bucket_id = $1 AND o.name = $2 AND (NOT $3 OR {PUBLIC_BUCKET})"),
            &[&obj.bucket, &obj.name, &public_only],
        )
        .await?
        .ok_or_else(StorageError::object_not_found)?;
    tx.commit().await?;
    let body: String = row.get(0);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub async fn delete(s: &Storage, ctx: &Ctx, obj: &ObjectRef) -> StorageResult<Response> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let versions: Vec<String> = tx
        .query(
            "DELETE FROM storage.objects WHERE bucket_id = $1 AND name = $2 RETURNING version",
            &[&obj.bucket, &obj.name],
        )
        .await?
        .iter()
        .filter_map(|r| r.get(0))
        .collect();
    if versions.is_empty() {
        return Err(StorageError::object_not_found());
    }
    tx.commit().await?;
    s.backend.delete(ctx.project_ref(), versions).await;
    Ok(message("Successfully deleted"))
}
