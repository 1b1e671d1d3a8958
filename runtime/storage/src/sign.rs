//! Signed URLs: download URLs for one object or many (the caller must be able to read each object
//! when signing), upload URLs (the caller must be able to write it), and uploads through them. The
//! URLs are relative to `/storage/v1` and carry the object's name as it is, not percent-encoded, as
//! Supabase answers them: storage-js passes them through `encodeURI` and storage3 through yarl, which
//! encode them once.

use crate::caller::Ctx;
use crate::db::{self, Actor};
use crate::error::{StorageError, StorageResult};
use crate::http_util;
use crate::manage::name_list;
use crate::objects;
use crate::route::ObjectRef;
use crate::token::{self, Grant, Kind};
use crate::Storage;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::HeaderMap;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use supactl_common::jwt;

/// How long a signed upload URL is valid (Supabase's two hours).
const UPLOAD_URL_SECS: i64 = 2 * 60 * 60;

fn signed_url(ctx: &Ctx, obj: &ObjectRef, expires_in: i64) -> String {
    let t = token::sign(
        &ctx.project,
        Kind::Download,
        obj,
        &Grant::default(),
        jwt::now(),
        expires_in,
    );
    format!("/object/sign/{}/{}?token={t}", obj.bucket, obj.name)
}

/// The names of `bucket` among `names` that the caller can read.
async fn readable(
    s: &Storage,
    ctx: &Ctx,
    bucket: &str,
    names: &[String],
) -> StorageResult<HashSet<String>> {
    let mut client = s.pools.get(&ctx.project).await?;
    let tx = db::begin(&mut client, &ctx.project, ctx.actor()?).await?;
    let rows = tx
        .query(
            "SELECT name FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2)",
            &[&bucket, &names],
        )
        .await?;
    tx.commit().await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `POST /object/sign/{bucket}/{name}` `{"expiresIn"}` → `{"signedURL"}`.
pub async fn sign_one(
    s: &Storage,
    ctx: &Ctx,
    obj: &ObjectRef,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let expires_in = token::expires_in(body.get("expiresIn"))?;
    let found = readable(s, ctx, &obj.bucket, std::slice::from_ref(&obj.name)).await?;
    if found.is_empty() {
        return Err(StorageError::object_not_found());
    }
    Ok(axum::Json(json!({ "signedURL": signed_url(ctx, obj, expires_in) })).into_response())
}

/// `POST /object/sign/{bucket}` `{"expiresIn", "paths"}` → `[{"error", "path", "signedURL"}]`.
pub async fn sign_many(
    s: &Storage,
    ctx: &Ctx,
    bucket: &str,
    body: Map<String, Value>,
) -> StorageResult<Response> {
    let expires_in = token::expires_in(body.get("expiresIn"))?;
    let names = name_list(&body, "paths")?;
    let found = readable(s, ctx, bucket, &names).await?;
    let out: Vec<Value> = names
        .iter()
        .map(|n| {
            if found.contains(n) {
                let obj = ObjectRef {
                    bucket: bucket.to_string(),
                    name: n.clone(),
                };
                json!({"error": null, "path": n, "signedURL": signed_url(ctx, &obj, expires_in)})
            } else {
                // an empty URL, not null: storage3 validates it as a string (storage-js tests truthiness)
                json!({"error": "Either the object does not exist or you do not have access to it",
                       "path": n, "signedURL": ""})
            }
        })
        .collect();
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// `POST /object/upload/sign/{bucket}/{name}` (`x-upsert`) → `{"url", "token"}`.
pub async fn sign_upload(
    s: &Storage,
    ctx: &Ctx,
    obj: &ObjectRef,
    headers: &HeaderMap,
) -> StorageResult<Response> {
    let actor = ctx.actor()?;
    let upsert = http_util::upsert_header(headers);
    crate::buckets::limits(s, ctx, &obj.bucket).await?;
    objects::check_write(s, ctx, actor, obj, upsert).await?;
    let grant = Grant {
        upsert,
        owner: actor.sub.clone(),
    };
    let t = token::sign(
        &ctx.project,
        Kind::Upload,
        obj,
        &grant,
        jwt::now(),
        UPLOAD_URL_SECS,
    );
    let url = format!("/object/upload/sign/{}/{}?token={t}", obj.bucket, obj.name);
    Ok(axum::Json(json!({ "url": url, "token": t })).into_response())
}

/// `PUT /object/upload/sign/{bucket}/{name}?token=`: the upload, as the user who asked for the URL.
pub async fn upload_signed(
    s: &Storage,
    ctx: &Ctx,
    obj: &ObjectRef,
    parts: &Parts,
    body: Body,
) -> StorageResult<Response> {
    let t = http_util::query_param(parts.uri.query(), "token")
        .ok_or_else(|| StorageError::bad_request("missing token"))?;
    let grant = token::verify(&ctx.project, Kind::Upload, obj, &t, jwt::now())?;
    let actor = Actor::service_for(grant.owner);
    objects::upload(s, ctx, &actor, obj, grant.upsert, parts, body).await
}
