//! Supabase Storage for many projects, served at `{api_url}/storage/v1` behind the gateway, so
//! storage-js (supabase-js), storage3 (supabase-py) and TUS clients (tus-js-client, Uppy) work
//! unchanged: buckets, objects (streamed uploads, resumable uploads, downloads with ranges and ETags,
//! user metadata), listing, move/copy/remove, public and signed URLs.
//!
//! It owns each project's `storage` schema (`storage.buckets`, `storage.objects`, created by
//! `templates/storage.sql`) and the project's `<ref>/` prefix of the object store ([`backend`]). Every
//! operation runs SQL as the caller's role with `request.jwt.claims` set, so the project's RLS policies
//! decide for `anon` and `authenticated` and `service_role` bypasses them, as on Supabase. The caller
//! comes from the gateway (the in-process [`Caller`](supactl_common::forwarded::Caller) or its minted
//! token, checked again by [`supactl_common::forwarded`]); public objects and signed URLs need none.
//! It must not touch platform state or any schema but `storage`.
//!
//! Modules: [`route`] parses a request's path, [`names`] checks bucket and object names, [`body`] reads
//! an upload, [`backend`] stores bytes (on the local disk, or in S3 through [`s3`]), [`db`] runs SQL as the caller, [`token`] signs URLs; the
//! handlers are in `buckets`, `objects` (upload, download, info, delete), `manage` (list, move, copy,
//! remove), `sign`, and [`tus`] (resumable uploads, their state in `tus_state`).

pub mod backend;
pub mod body;
mod buckets;
mod caller;
pub mod db;
pub mod error;
mod http_util;
mod manage;
pub mod names;
mod objects;
pub mod route;
pub mod s3;
mod sign;
pub mod token;
pub mod tus;
mod tus_state;

use crate::caller::Ctx;
use crate::error::StorageResult;
use crate::route::Route;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
pub use backend::{Backend, BackendConfig};
pub use s3::S3Location;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::Directory;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The largest object accepted in any bucket (a bucket's `file_size_limit` can only lower it).
    pub max_object_size: u64,
    /// Connections per project pool.
    pub pool_size: usize,
    /// A project's pool is dropped after this long without requests.
    pub idle_timeout: Duration,
    /// Longest wait for the next chunk of an upload's body.
    pub upload_idle_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            max_object_size: 5 * 1024 * 1024 * 1024,
            pool_size: 10,
            idle_timeout: Duration::from_secs(300),
            upload_idle_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Storage {
    directory: Arc<Directory>,
    pools: db::Pools,
    backend: Backend,
    config: StorageConfig,
}

impl Storage {
    /// Storage over `backend`, taking its connections from `registry`, whose budget it shares with
    /// other services.
    pub fn with_registry(
        directory: Arc<Directory>,
        backend: Backend,
        config: StorageConfig,
        registry: &Registry,
    ) -> Arc<Storage> {
        Arc::new(Storage {
            pools: db::Pools::new(registry, config.pool_size, config.idle_timeout),
            backend,
            directory,
            config,
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A project changed (paused, deleted, new credentials): its pool is dropped, and when the project
    /// is gone its objects are deleted in the background.
    pub fn forget(self: &Arc<Self>, project_ref: &str) {
        self.pools.remove(project_ref);
        let (s, r) = (self.clone(), project_ref.to_string());
        tokio::spawn(async move {
            // `Ok(None)`: the tenant-manager says the project does not exist (an error says nothing)
            if let Ok(None) = s.directory.project(&r).await {
                s.backend.delete_project(&r).await;
            }
        });
    }
}

/// The Storage API (paths below `/storage/v1`).
pub fn router(storage: Arc<Storage>) -> Router {
    Router::new().fallback(handle).with_state(storage)
}

async fn handle(State(s): State<Arc<Storage>>, req: Request) -> Response {
    let method = req.method().clone();
    let resumable = req.uri().path().starts_with("/upload/resumable");
    let (parts, body) = req.into_parts();
    match serve(&s, parts, body).await {
        Ok(r) => r,
        // the TUS routes answer errors as Supabase's TUS server does
        Err(e) if resumable => tus::error_response(e, &method),
        Err(e) => e.for_method(&method),
    }
}

async fn serve(s: &Storage, parts: http::request::Parts, body: Body) -> StorageResult<Response> {
    let route = route::parse(&parts.method, parts.uri.path())?;
    let ctx = Ctx::from_parts(s, &parts).await?;
    let result = dispatch(s, &ctx, route, &parts, body).await;
    if let Err(e) = &result {
        if e.lost_connection {
            tracing::warn!(
                project = ctx.project_ref(),
                "database connection lost: dropping the project's storage pool"
            );
            s.pools.remove(ctx.project_ref());
        }
    }
    result
}

async fn dispatch(
    s: &Storage,
    ctx: &Ctx,
    route: Route,
    parts: &http::request::Parts,
    body: Body,
) -> StorageResult<Response> {
    if !route::open(&route) {
        ctx.actor()?;
    }
    // every route but the uploads takes a small JSON object as its body, read only where it is used
    match route {
        Route::ListBuckets => buckets::list(s, ctx).await,
        Route::CreateBucket => buckets::create(s, ctx, http_util::json_body(body).await?).await,
        Route::GetBucket(id) => buckets::get(s, ctx, &id).await,
        Route::UpdateBucket(id) => {
            buckets::update(s, ctx, &id, http_util::json_body(body).await?).await
        }
        Route::DeleteBucket(id) => buckets::delete(s, ctx, &id).await,
        Route::EmptyBucket(id) => buckets::empty(s, ctx, &id).await,
        Route::Upload { obj, replace } => {
            let upsert = replace || http_util::upsert_header(&parts.headers);
            objects::upload(s, ctx, ctx.actor()?, &obj, upsert, parts, body).await
        }
        Route::UploadSigned(obj) => sign::upload_signed(s, ctx, &obj, parts, body).await,
        Route::Download { obj, read_as } => objects::download(s, ctx, &obj, read_as, parts).await,
        Route::Info { obj, read_as } => objects::info(s, ctx, &obj, read_as).await,
        Route::DeleteObject(obj) => objects::delete(s, ctx, &obj).await,
        Route::RemoveMany(b) => manage::remove(s, ctx, &b, http_util::json_body(body).await?).await,
        Route::List(b) => manage::list(s, ctx, &b, http_util::json_body(body).await?).await,
        Route::Move => manage::move_object(s, ctx, http_util::json_body(body).await?).await,
        Route::Copy => manage::copy(s, ctx, http_util::json_body(body).await?).await,
        Route::SignOne(obj) => {
            sign::sign_one(s, ctx, &obj, http_util::json_body(body).await?).await
        }
        Route::SignMany(b) => sign::sign_many(s, ctx, &b, http_util::json_body(body).await?).await,
        Route::SignUpload(obj) => sign::sign_upload(s, ctx, &obj, &parts.headers).await,
        Route::TusOptions => Ok(tus::options(s)),
        Route::TusCreate { signed } => tus::create(s, ctx, signed, parts, body).await,
        Route::TusUpload { id, signed } => tus::upload(s, ctx, &id, signed, parts, body).await,
    }
}

/// `{"message": …}` with 200, as Supabase answers bucket and delete operations.
fn message(text: &str) -> Response {
    axum::Json(serde_json::json!({ "message": text })).into_response()
}
