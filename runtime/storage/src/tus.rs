//! Resumable uploads: the TUS 1.0.0 protocol at `/upload/resumable` as Supabase serves it to
//! tus-js-client and Uppy (extensions creation, creation-with-upload, termination, expiration), and its
//! signed variant at `/upload/resumable/sign`, where the `x-signature` header carries a signed upload
//! URL's token (`createSignedUploadUrl`) instead of a caller.
//!
//! A `POST` creates an upload from `Upload-Length` and `Upload-Metadata` (`bucketName`, `objectName`,
//! `contentType`, `cacheControl`, `metadata`) and `x-upsert`, checked as a plain upload is: the caller's
//! RLS write on `storage.objects` (tried and rolled back), the bucket's `file_size_limit` against the
//! length and `allowed_mime_types` against the type. It answers 201 with the upload's `Location`, an
//! opaque random id bound to the project (its row lives in the project's database) and to the caller
//! (role and user; another caller gets 403). `HEAD` reads the offset, `PATCH` appends one chunk at the
//! offset the client names (409 otherwise), `DELETE` terminates. Every chunk but the last is exactly
//! [`CHUNK`] (6 MiB), as Supabase requires of its clients. The last chunk makes the object appear, its
//! row written as the caller (RLS decides again). State and bytes: [`crate::tus_state`].
//!
//! Errors are answered as Supabase's TUS server answers them: the status with the message as plain
//! text (tus-js-client shows the body), and `Tus-Resumable` on every response.

use crate::body::{self, MAX_USER_METADATA};
use crate::buckets;
use crate::caller::Ctx;
use crate::db::Actor;
use crate::error::{StorageError, StorageResult};
use crate::names;
use crate::objects;
use crate::route::ObjectRef;
use crate::token::{self, Kind};
use crate::tus_state::{self as state, NewUpload, UploadRow};
use crate::{http_util, Storage};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::collections::HashMap;
use supactl_common::keys::Role;
use supactl_common::server::RequestDeadline;

pub const TUS_VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
/// Every chunk but an upload's last is exactly this long (Supabase's 6 MiB).
pub const CHUNK: u64 = 6 * 1024 * 1024;
/// The content type of a chunk.
const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// Longest `Upload-Metadata` header read, and most pairs in it.
const MAX_METADATA_HEADER: usize = 3 * MAX_USER_METADATA;
const MAX_METADATA_PAIRS: usize = 32;
/// Where the routes are when the gateway names no prefix.
const DEFAULT_PREFIX: &str = "/storage/v1";

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");

/// A response with `Tus-Resumable` and the given headers.
fn answer(status: StatusCode, headers: &[(HeaderName, String)]) -> Response {
    let mut res = status.into_response();
    let h = res.headers_mut();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k.clone(), v);
        }
    }
    res
}

/// An error as the TUS routes answer it: its message as plain text (no body for HEAD).
pub fn error_response(e: StorageError, method: &Method) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(e.message.clone())
    };
    let mut res = Response::new(body);
    *res.status_mut() = e.status;
    let h = res.headers_mut();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if e.status == StatusCode::PRECONDITION_FAILED {
        h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    res.extensions_mut().insert(e);
    res
}

/// `OPTIONS`: what this server supports (no caller needed).
pub fn options(s: &Storage) -> Response {
    let mut res = answer(
        StatusCode::NO_CONTENT,
        &[
            (HeaderName::from_static("tus-version"), TUS_VERSION.into()),
            (HeaderName::from_static("tus-extension"), EXTENSIONS.into()),
            (
                HeaderName::from_static("tus-max-size"),
                s.config.max_object_size.to_string(),
            ),
        ],
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn number(h: &HeaderMap, name: &str) -> StorageResult<Option<u64>> {
    match text(h, name) {
        None => Ok(None),
        Some(v) if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() => v
            .parse()
            .map(Some)
            .map_err(|_| StorageError::bad_request(format!("invalid {name}"))),
        Some(_) => Err(StorageError::bad_request(format!("invalid {name}"))),
    }
}

/// Every request but `OPTIONS` speaks TUS 1.0.0.
fn check_resumable(h: &HeaderMap) -> StorageResult<()> {
    match text(h, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(StorageError::new(
            StatusCode::PRECONDITION_FAILED,
            "InvalidRequest",
            "Unsupported version",
        )),
    }
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (a value may be missing).
pub fn parse_metadata(raw: &str) -> StorageResult<HashMap<String, String>> {
    let bad = |m: &str| StorageError::bad_request(format!("invalid Upload-Metadata: {m}"));
    if raw.len() > MAX_METADATA_HEADER {
        return Err(bad("too long"));
    }
    let mut out = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if out.len() == MAX_METADATA_PAIRS {
            return Err(bad("too many pairs"));
        }
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        if key.is_empty() || !key.is_ascii() {
            return Err(bad("a key is empty or not ASCII"));
        }
        let value = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| bad(&format!("{key} is not base64 of UTF-8 text")))?;
        if out.insert(key.to_string(), value).is_some() {
            return Err(bad(&format!("{key} appears twice")));
        }
    }
    Ok(out)
}

/// `cacheControl` as Supabase stores it: a number of seconds becomes `max-age=N`, anything else
/// `no-cache`.
fn cache_control(v: Option<&str>) -> String {
    match v {
        Some(n) if !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("max-age={n}")
        }
        _ => "no-cache".into(),
    }
}

/// The `metadata` entry: a JSON object is kept, anything else ignored (as Supabase does); too large is
/// refused.
fn user_metadata(v: Option<&str>) -> StorageResult<Option<serde_json::Value>> {
    match v {
        Some(t) if t.len() > MAX_USER_METADATA => Err(StorageError::bad_request(format!(
            "metadata is larger than {MAX_USER_METADATA} bytes"
        ))),
        Some(t) => Ok(body::user_metadata(t).ok()),
        None => Ok(None),
    }
}

/// The token of a signed upload.
fn signature(h: &HeaderMap) -> StorageResult<&str> {
    text(h, "x-signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StorageError::bad_request("Missing x-signature header"))
}

/// The public path the routes are at (the gateway names it in `x-forwarded-prefix`).
fn prefix(h: &HeaderMap) -> &str {
    text(h, "x-forwarded-prefix")
        .filter(|p| {
            p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 512
                && p.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"?#\\".contains(&b))
        })
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or(DEFAULT_PREFIX)
}

fn location(h: &HeaderMap, signed: bool, id: &str) -> String {
    let sign = if signed { "/sign" } else { "" };
    format!("{}/upload/resumable{sign}/{id}", prefix(h))
}

fn chunk_rule() -> StorageError {
    StorageError::bad_request(format!(
        "every chunk but the last must be exactly {CHUNK} bytes (6 MiB)"
    ))
}

/// What a creation request asks for, from its headers alone.
#[derive(Debug)]
struct Creation {
    obj: ObjectRef,
    length: u64,
    content_type: String,
    cache_control: String,
    user_metadata: Option<serde_json::Value>,
    /// The `Upload-Metadata` header as sent.
    raw_metadata: String,
}

fn creation(h: &HeaderMap) -> StorageResult<Creation> {
    check_resumable(h)?;
    if h.contains_key("upload-defer-length") {
        return Err(StorageError::bad_request(
            "Upload-Defer-Length is not supported",
        ));
    }
    let length = number(h, "upload-length")?
        .ok_or_else(|| StorageError::bad_request("Upload-Length is required"))?;
    let raw_metadata = text(h, "upload-metadata").unwrap_or("").to_string();
    let meta = parse_metadata(&raw_metadata)?;
    let entry = |k: &str| meta.get(k).map(String::as_str);
    Ok(Creation {
        obj: ObjectRef {
            bucket: names::bucket_id(entry("bucketName").unwrap_or(""))?.to_string(),
            name: names::object_name(entry("objectName").unwrap_or(""))?.to_string(),
        },
        length,
        content_type: entry("contentType")
            .filter(|t| !t.is_empty() && t.len() <= 255)
            .unwrap_or("application/octet-stream")
            .to_string(),
        cache_control: cache_control(entry("cacheControl")),
        user_metadata: user_metadata(entry("metadata"))?,
        raw_metadata,
    })
}

/// Whether `c` may be created, and as whom (with its upsert): the caller, or a signed upload URL's
/// owner; the bucket's limits; the caller's write of the row (RLS).
async fn authorize(
    s: &Storage,
    ctx: &Ctx,
    signed: bool,
    h: &HeaderMap,
    c: &Creation,
) -> StorageResult<(Actor, bool)> {
    let (actor, upsert) = if signed {
        let grant = token::verify(
            &ctx.project,
            Kind::Upload,
            &c.obj,
            signature(h)?,
            supactl_common::jwt::now(),
        )?;
        (Actor::service_for(grant.owner), grant.upsert)
    } else {
        (ctx.actor()?.clone(), http_util::upsert_header(h))
    };
    let bucket = buckets::limits(s, ctx, &c.obj.bucket).await?;
    let limit = bucket
        .file_size_limit
        .map(|l| l as u64)
        .unwrap_or(u64::MAX)
        .min(s.config.max_object_size);
    if c.length > limit {
        return Err(StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            "Maximum size exceeded",
        ));
    }
    if !body::mime_allowed(bucket.allowed_mime_types.as_deref(), &c.content_type) {
        return Err(StorageError::invalid_mime_type(&c.content_type));
    }
    objects::check_write(s, ctx, &actor, &c.obj, upsert).await?;
    Ok((actor, upsert))
}

/// `POST /upload/resumable[/sign]`: a new upload, with its first chunk when one comes along (an empty
/// one is complete at once).
pub async fn create(
    s: &Storage,
    ctx: &Ctx,
    signed: bool,
    parts: &Parts,
    body: Body,
) -> StorageResult<Response> {
    let h = &parts.headers;
    let c = creation(h)?;
    let (actor, upsert) = authorize(s, ctx, signed, h, &c).await?;
    if let Err(e) = state::sweep(s, ctx).await {
        tracing::warn!(error = %e.message, "storage: sweeping expired uploads failed");
    }
    let id = state::new_id();
    let new = NewUpload {
        id: &id,
        obj: &c.obj,
        actor: &actor,
        signed,
        upsert,
        length: c.length,
        content_type: &c.content_type,
        cache_control: &c.cache_control,
        user_metadata: c.user_metadata.as_ref(),
        upload_metadata: &c.raw_metadata,
    };
    let expires = state::insert(s, ctx, &new).await?;
    let mut headers = vec![
        (header::LOCATION, location(h, signed, &id)),
        (UPLOAD_EXPIRES, expires),
    ];
    let row = state::load(s, ctx, &id)
        .await?
        .ok_or_else(state::upload_not_found)?;
    if c.length == 0 {
        state::complete(s, ctx, &row, &actor, None).await?;
        headers.push((UPLOAD_OFFSET, "0".into()));
    } else if text(h, "content-type") == Some(OFFSET_STREAM) {
        let (offset, expires) = write_chunk(s, ctx, &row, &actor, parts, body).await?;
        headers.retain(|(k, _)| *k != UPLOAD_EXPIRES);
        headers.extend(expires.map(|e| (UPLOAD_EXPIRES, e)));
        headers.push((UPLOAD_OFFSET, offset.to_string()));
    }
    Ok(answer(StatusCode::CREATED, &headers))
}

/// Who may go on with `row` on this request: its creator (or `service_role`), or for a signed upload
/// a valid signature for its object, acting for the URL's owner.
fn continuing(row: &UploadRow, ctx: &Ctx, signed: bool, h: &HeaderMap) -> StorageResult<Actor> {
    if row.signed != signed {
        return Err(state::upload_not_found());
    }
    if signed {
        token::verify(
            &ctx.project,
            Kind::Upload,
            &row.obj,
            signature(h)?,
            supactl_common::jwt::now(),
        )?;
        return Ok(Actor::service_for(row.caller_sub.clone()));
    }
    let actor = ctx.actor()?;
    if actor.role == Role::ServiceRole
        || (actor.role.as_str() == row.caller_role && actor.sub == row.caller_sub)
    {
        return Ok(actor.clone());
    }
    Err(StorageError::unauthorized(
        "the upload belongs to another caller",
    ))
}

/// `HEAD`, `PATCH` or `DELETE` of upload `id` (also as `POST` with `X-HTTP-Method-Override`).
pub async fn upload(
    s: &Storage,
    ctx: &Ctx,
    id: &str,
    signed: bool,
    parts: &Parts,
    body: Body,
) -> StorageResult<Response> {
    let h = &parts.headers;
    let method = match text(h, "x-http-method-override") {
        Some(m) if parts.method == Method::POST => m.to_ascii_uppercase(),
        _ => parts.method.as_str().to_string(),
    };
    check_resumable(h)?;
    let row = state::load(s, ctx, id)
        .await?
        .ok_or_else(state::upload_not_found)?;
    let actor = continuing(&row, ctx, signed, h)?;
    match method.as_str() {
        "HEAD" => Ok(head(&row)),
        "PATCH" => patch(s, ctx, &row, &actor, parts, body).await,
        "DELETE" => {
            if row.completed {
                return Err(StorageError::bad_request(
                    "Cannot terminate an already completed upload",
                ));
            }
            state::remove(s, ctx, &row.id).await?;
            Ok(answer(StatusCode::NO_CONTENT, &[]))
        }
        _ => Err(StorageError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "InvalidRequest",
            "Method not allowed",
        )),
    }
}

fn head(row: &UploadRow) -> Response {
    let mut headers = vec![
        (UPLOAD_OFFSET, row.offset.to_string()),
        (UPLOAD_LENGTH, row.length.to_string()),
        (header::CACHE_CONTROL, "no-store".into()),
    ];
    if !row.completed {
        headers.push((UPLOAD_EXPIRES, row.expires.clone()));
    }
    if !row.upload_metadata.is_empty() {
        headers.push((UPLOAD_METADATA, row.upload_metadata.clone()));
    }
    answer(StatusCode::OK, &headers)
}

async fn patch(
    s: &Storage,
    ctx: &Ctx,
    row: &UploadRow,
    actor: &Actor,
    parts: &Parts,
    body: Body,
) -> StorageResult<Response> {
    let h = &parts.headers;
    if text(h, "content-type") != Some(OFFSET_STREAM) {
        return Err(StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidRequest",
            format!("Content-Type must be {OFFSET_STREAM}"),
        ));
    }
    let offset = number(h, "upload-offset")?
        .ok_or_else(|| StorageError::bad_request("Upload-Offset is required"))?;
    if offset != row.offset {
        return Err(state::conflict(
            "Upload-Offset does not match the upload's offset",
        ));
    }
    if row.completed {
        return Ok(answer(
            StatusCode::NO_CONTENT,
            &[(UPLOAD_OFFSET, row.offset.to_string())],
        ));
    }
    let (offset, expires) = write_chunk(s, ctx, row, actor, parts, body).await?;
    let mut headers = vec![(UPLOAD_OFFSET, offset.to_string())];
    match expires {
        Some(e) => headers.push((UPLOAD_EXPIRES, e)),
        None => headers.push((HeaderName::from_static("tus-complete"), "1".into())),
    }
    Ok(answer(StatusCode::NO_CONTENT, &headers))
}

/// Streams the chunk at `row.offset` into a new segment and records it, completing the upload with the
/// last one. Returns the new offset and, unless the upload is complete, its `Upload-Expires`.
async fn write_chunk(
    s: &Storage,
    ctx: &Ctx,
    row: &UploadRow,
    actor: &Actor,
    parts: &Parts,
    body: Body,
) -> StorageResult<(u64, Option<String>)> {
    let expect = (row.length - row.offset).min(CHUNK);
    match number(&parts.headers, "content-length")? {
        Some(n) if n > expect => {
            return Err(StorageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "the chunk is longer than the rest of the upload or 6 MiB",
            ))
        }
        Some(n) if n < expect => return Err(chunk_rule()),
        _ => {}
    }
    // a chunk may take longer than a request's deadline to arrive; the idle timeout bounds it instead
    if let Some(d) = parts.extensions.get::<RequestDeadline>() {
        d.lift();
    }
    let seg = state::segment(&row.id, row.offset / CHUNK);
    let data = body::raw(body, s.config.upload_idle_timeout);
    let written = s.backend.put(ctx.project_ref(), &seg, data, expect).await?;
    let discard = |e: StorageError| {
        let seg = seg.clone();
        async move {
            s.backend.delete(ctx.project_ref(), vec![seg]).await;
            Err::<(u64, Option<String>), _>(e)
        }
    };
    if written.size != expect {
        return discard(chunk_rule()).await;
    }
    let offset = row.offset + expect;
    if offset == row.length {
        if let Err(e) = state::complete(s, ctx, row, actor, Some(&seg)).await {
            return discard(e).await;
        }
        return Ok((offset, None));
    }
    match state::advance(s, ctx, row, offset, &seg).await {
        Ok(Some(expires)) => Ok((offset, Some(expires))),
        Ok(None) => discard(state::conflict("the upload moved on in another request")).await,
        Err(e) => discard(e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs() {
        let m = parse_metadata("bucketName YXY=,objectName YS9iLnR4dA==, empty").unwrap();
        assert_eq!(m["bucketName"], "av");
        assert_eq!(m["objectName"], "a/b.txt");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("a YQ==,a YQ==").is_err());
        assert!(parse_metadata("a !!!").is_err());
        let many: Vec<String> = (0..40).map(|i| format!("k{i} YQ==")).collect();
        assert!(parse_metadata(&many.join(",")).is_err());
        assert!(parse_metadata(&"a".repeat(MAX_METADATA_HEADER + 1)).is_err());
    }

    #[test]
    fn creation_requests() {
        let mut h = HeaderMap::new();
        h.insert("tus-resumable", "1.0.0".parse().unwrap());
        h.insert("upload-length", "12".parse().unwrap());
        let meta =
            "bucketName YXY=,objectName YS9iLnR4dA==,cacheControl NjA=,metadata eyJrIjoxfQ==";
        h.insert("upload-metadata", meta.parse().unwrap());
        let c = creation(&h).unwrap();
        assert_eq!(
            (c.obj.bucket.as_str(), c.obj.name.as_str()),
            ("av", "a/b.txt")
        );
        assert_eq!(c.length, 12);
        assert_eq!(c.content_type, "application/octet-stream");
        assert_eq!(c.cache_control, "max-age=60");
        assert_eq!(c.user_metadata, Some(serde_json::json!({"k": 1})));
        assert_eq!(c.raw_metadata, meta);
        h.insert("upload-length", "-1".parse().unwrap());
        assert!(creation(&h).is_err());
        h.insert("upload-length", "1".parse().unwrap());
        // invalid JSON metadata is ignored, as Supabase does
        h.insert(
            "upload-metadata",
            "bucketName YXY=,objectName YQ==,metadata e30p"
                .parse()
                .unwrap(),
        );
        assert_eq!(creation(&h).unwrap().user_metadata, None);
        h.insert(
            "upload-metadata",
            "bucketName YXY=,objectName Li4vYQ==".parse().unwrap(),
        );
        assert!(creation(&h).is_err(), "../a is no object name");
        h.insert("upload-defer-length", "1".parse().unwrap());
        assert!(creation(&h).is_err());
        h.remove("tus-resumable");
        assert_eq!(
            creation(&h).unwrap_err().status,
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn cache_control_and_prefix() {
        assert_eq!(cache_control(Some("3600")), "max-age=3600");
        assert_eq!(cache_control(Some("public")), "no-cache");
        assert_eq!(cache_control(None), "no-cache");
        let mut h = HeaderMap::new();
        assert_eq!(location(&h, false, "ab"), "/storage/v1/upload/resumable/ab");
        h.insert("x-forwarded-prefix", "/p/x/storage/v1".parse().unwrap());
        assert_eq!(
            location(&h, true, "ab"),
            "/p/x/storage/v1/upload/resumable/sign/ab"
        );
        for bad in ["//evil.example/x", "/a?b", "relative"] {
            h.insert("x-forwarded-prefix", bad.parse().unwrap());
            assert_eq!(prefix(&h), DEFAULT_PREFIX, "{bad}");
        }
    }
}
