//! The state of resumable uploads ([`crate::tus`]): one row per upload in the project's
//! `storage.resumable_uploads` (`templates/storage.sql`), read and written as `service_role` (the caller
//! is checked by [`crate::tus`] against the row), and the bytes received so far as segments in the object
//! store under `<ref>/tus/<id>/`, one per chunk, each streamed in as it arrives.
//!
//! Nothing lives in memory between requests, so an upload survives a restart or continues on another
//! replica. A chunk is recorded by a compare-and-set of the offset under the row's lock: of two
//! concurrent PATCHes at one offset one wins, the other's segment is deleted and it answers 409. The
//! last chunk completes the upload: the segments are streamed, in order, into a new version of the object,
//! and one transaction (the upload's row locked) marks the upload finished and writes the object's row as
//! the caller, so the object appears whole or not at all. Unfinished uploads expire after
//! [`UPLOAD_TTL_HOURS`]; [`sweep`] removes a bounded number of expired ones (rows and bytes) each time
//! an upload is created, and an expired upload that is touched is removed then.

use crate::backend::Written;
use crate::caller::Ctx;
use crate::db::{self, Actor};
use crate::error::{StorageError, StorageResult};
use crate::objects::{self, NewRow};
use crate::route::ObjectRef;
use crate::Storage;
use futures_util::{StreamExt, TryStreamExt};
use http::StatusCode;
use rand::RngCore;
use serde_json::Value;

/// An unfinished upload expires this long after its creation (Supabase's 24 hours).
pub const UPLOAD_TTL_HOURS: i32 = 24;
/// Most expired uploads one [`sweep`] removes.
const SWEEP_BATCH: i64 = 16;

/// `expires_at` as an HTTP date (`Upload-Expires`).
const EXPIRES: &str =
    "to_char(expires_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS \"GMT\"')";

/// An upload as its row says.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub obj: ObjectRef,
    pub caller_role: String,
    pub caller_sub: Option<String>,
    pub signed: bool,
    pub upsert: bool,
    pub length: u64,
    pub offset: u64,
    /// The segments' versions (`tus/<id>/<n>-<random>`), in order.
    pub segments: Vec<String>,
    pub content_type: String,
    pub cache_control: String,
    pub user_metadata: Option<Value>,
    /// The `Upload-Metadata` header it was created with.
    pub upload_metadata: String,
    /// `Upload-Expires`.
    pub expires: String,
    pub completed: bool,
}

/// What a new upload records.
pub struct NewUpload<'a> {
    pub id: &'a str,
    pub obj: &'a ObjectRef,
    pub actor: &'a Actor,
    pub signed: bool,
    pub upsert: bool,
    pub length: u64,
    pub content_type: &'a str,
    pub cache_control: &'a str,
    pub user_metadata: Option<&'a Value>,
    pub upload_metadata: &'a str,
}

/// A fresh upload id: 128 random bits, hex (the URL's last segment).
pub fn new_id() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Whether `id` has the shape of an upload id (anything else is not looked up).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where an upload's segments live, below the project's prefix.
fn folder(id: &str) -> String {
    format!("tus/{id}")
}

/// The version (store key below the project) of segment `index` of upload `id`: a random suffix keeps
/// concurrent writers of one chunk apart.
pub fn segment(id: &str, index: u64) -> String {
    let mut raw = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("{}/{index:05}-{}", folder(id), hex::encode(raw))
}

pub fn conflict(message: &str) -> StorageError {
    StorageError::new(StatusCode::CONFLICT, "Conflict", message)
}

pub fn upload_not_found() -> StorageError {
    StorageError::new(StatusCode::NOT_FOUND, "not_found", "Upload not found")
}

async fn service_client(s: &Storage, ctx: &Ctx) -> StorageResult<deadpool_postgres::Object> {
    s.pools.get(&ctx.project).await
}

/// Records a new upload; returns its `Upload-Expires`.
pub async fn insert(s: &Storage, ctx: &Ctx, u: &NewUpload<'_>) -> StorageResult<String> {
    let mut client = service_client(s, ctx).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO storage.resumable_uploads (id, bucket_id, name, caller_role, caller_sub,
                   signed, upsert, upload_length, content_type, cache_control, user_metadata,
                   upload_metadata, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12,
                   now() + make_interval(hours => $13))
                 RETURNING {EXPIRES}"
            ),
            &[
                &u.id,
                &u.obj.bucket,
                &u.obj.name,
                &u.actor.role.as_str(),
                &u.actor.sub,
                &u.signed,
                &u.upsert,
                &(u.length as i64),
                &u.content_type,
                &u.cache_control,
                &u.user_metadata,
                &u.upload_metadata,
                &UPLOAD_TTL_HOURS,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(row.get(0))
}

/// The upload `id`, unless it does not exist or has expired (an expired one is removed now).
pub async fn load(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<Option<UploadRow>> {
    let mut client = service_client(s, ctx).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT id, bucket_id, name, caller_role, caller_sub, signed, upsert, upload_length,
                   upload_offset, segments, content_type, cache_control, user_metadata,
                   upload_metadata, {EXPIRES}, completed_at IS NOT NULL, expires_at < now()
                 FROM storage.resumable_uploads WHERE id = $1"
            ),
            &[&id],
        )
        .await?;
    tx.commit().await?;
    let Some(r) = row else { return Ok(None) };
    if r.get::<_, bool>(16) {
        remove(s, ctx, id).await?;
        return Ok(None);
    }
    Ok(Some(UploadRow {
        id: r.get(0),
        obj: ObjectRef {
            bucket: r.get(1),
            name: r.get(2),
        },
        caller_role: r.get(3),
        caller_sub: r.get(4),
        signed: r.get(5),
        upsert: r.get(6),
        length: r.get::<_, i64>(7) as u64,
        offset: r.get::<_, i64>(8) as u64,
        segments: r.get(9),
        content_type: r.get(10),
        cache_control: r.get(11),
        user_metadata: r.get(12),
        upload_metadata: r.get(13),
        expires: r.get(14),
        completed: r.get(15),
    }))
}

/// Records a chunk: the offset moves from `row.offset` to `offset` and `segment` is appended, if no
/// other request moved it first (then `None`: the caller deletes its segment and answers 409).
pub async fn advance(
    s: &Storage,
    ctx: &Ctx,
    row: &UploadRow,
    offset: u64,
    segment: &str,
) -> StorageResult<Option<String>> {
    let mut client = service_client(s, ctx).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let moved = tx
        .query_opt(
            &format!(
                "UPDATE storage.resumable_uploads
                 SET upload_offset = $3, segments = array_append(segments, $4)
                 WHERE id = $1 AND upload_offset = $2 AND completed_at IS NULL
                 RETURNING {EXPIRES}"
            ),
            &[&row.id, &(row.offset as i64), &(offset as i64), &segment],
        )
        .await?;
    tx.commit().await?;
    Ok(moved.map(|r| r.get(0)))
}

/// Removes an upload: its row, then its bytes. Whether it existed.
pub async fn remove(s: &Storage, ctx: &Ctx, id: &str) -> StorageResult<bool> {
    let mut client = service_client(s, ctx).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let n = tx
        .execute(
            "DELETE FROM storage.resumable_uploads WHERE id = $1",
            &[&id],
        )
        .await?;
    tx.commit().await?;
    s.backend.delete_below(ctx.project_ref(), &folder(id)).await;
    Ok(n > 0)
}

/// Removes up to [`SWEEP_BATCH`] expired uploads of the project (rows, then bytes); how many.
pub async fn sweep(s: &Storage, ctx: &Ctx) -> StorageResult<usize> {
    let mut client = service_client(s, ctx).await?;
    let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
    let ids: Vec<String> = tx
        .query(
            "DELETE FROM storage.resumable_uploads WHERE id IN (
               SELECT id FROM storage.resumable_uploads WHERE expires_at < now()
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING id",
            &[&SWEEP_BATCH],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.commit().await?;
    for id in &ids {
        s.backend.delete_below(ctx.project_ref(), &folder(id)).await;
    }
    if !ids.is_empty() {
        tracing::info!(
            project = ctx.project_ref(),
            uploads = ids.len(),
            "storage: removed expired resumable uploads"
        );
    }
    Ok(ids.len())
}

/// Streams `segments`, in order, into a new object `version` (at most `length` bytes).
async fn assemble(
    s: &Storage,
    ctx: &Ctx,
    segments: Vec<String>,
    version: &str,
    length: u64,
) -> StorageResult<Written> {
    let backend = s.backend.clone();
    let project_ref = ctx.project_ref().to_string();
    let bytes = futures_util::stream::iter(segments)
        .then(move |seg| {
            let (b, r) = (backend.clone(), project_ref.clone());
            async move { b.get(&r, &seg, None).await }
        })
        .map_ok(|part| {
            part.map_err(|e| {
                tracing::error!(error = %e, "storage: cannot read an upload's segment");
                StorageError::internal()
            })
        })
        .try_flatten()
        .boxed();
    s.backend
        .put(ctx.project_ref(), version, bytes, length)
        .await
}

/// Completes `row` with its last chunk `last` (none for an empty object): the object appears as
/// `actor` writes its row (RLS decides), atomically with the upload being marked finished. On failure
/// nothing of the object remains and the upload stays where it was.
pub async fn complete(
    s: &Storage,
    ctx: &Ctx,
    row: &UploadRow,
    actor: &Actor,
    last: Option<&str>,
) -> StorageResult<()> {
    let mut segments = row.segments.clone();
    segments.extend(last.map(str::to_string));
    let version = objects::new_version();
    let written = assemble(s, ctx, segments, &version, row.length).await?;
    let committed = async {
        if written.size != row.length {
            tracing::error!(
                project = ctx.project_ref(),
                upload = row.id,
                "storage: a resumable upload's segments do not add up to its length"
            );
            return Err(StorageError::internal());
        }
        let mut client = service_client(s, ctx).await?;
        let tx = db::begin(&mut client, &ctx.project, &Actor::service()).await?;
        let finished = tx
            .execute(
                "UPDATE storage.resumable_uploads
                 SET upload_offset = upload_length, segments = '{}', completed_at = now()
                 WHERE id = $1 AND upload_offset = $2 AND completed_at IS NULL",
                &[&row.id, &(row.offset as i64)],
            )
            .await?;
        if finished == 0 {
            return Err(conflict("the upload moved on in another request"));
        }
        let new = NewRow {
            obj: &row.obj,
            upsert: row.upsert,
            version: &version,
            written: &written,
            content_type: &row.content_type,
            cache_control: &row.cache_control,
            user_metadata: row.user_metadata.as_ref(),
        };
        let (_, old) = objects::write_row_in(&tx, ctx, actor, &new).await?;
        tx.commit().await?;
        Ok::<_, StorageError>(old)
    }
    .await;
    match committed {
        Ok(old) => {
            s.backend
                .delete_below(ctx.project_ref(), &folder(&row.id))
                .await;
            s.backend
                .delete(ctx.project_ref(), old.into_iter().collect())
                .await;
            Ok(())
        }
        Err(e) => {
            s.backend.delete(ctx.project_ref(), vec![version]).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_checked() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(valid_id(&a));
        for bad in [
            "",
            "sign",
            "../x",
            &a[..31],
            &a.to_uppercase(),
            &format!("{a}0"),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
        let seg = segment(&a, 3);
        assert!(seg.starts_with(&format!("tus/{a}/00003-")), "{seg}");
    }
}
