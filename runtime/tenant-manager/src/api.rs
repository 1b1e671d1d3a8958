//! The routes: `/health`, the admin API (`/admin/v1`, admin key, audited) and the internal config
//! endpoint (`/internal/v1`, service or project token). Handlers live with what they manage: projects in
//! [`crate::projects`], keys in [`crate::api_keys`] and [`crate::jwt_keys`], secrets, database metadata, workers and the audit
//! log in their own modules, the data plane's lookups in [`crate::internal`], Edge Functions in
//! [`crate::functions`] (admin) and [`crate::functions_internal`] (the runtime's reads), a project's auth
//! users and sign-in providers in [`crate::auth_users`] and [`crate::auth_providers`]; the dashboard's page and sessions in [`crate::dashboard`].

use crate::auth::{require_admin, require_internal};
use crate::error::ApiError;
use crate::TenantManager;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The process's Prometheus metrics (under `supactl up`, every service's: they share the process).
async fn metrics() -> impl axum::response::IntoResponse {
    supactl_common::metrics::exposition()
}

pub fn router(tm: Arc<TenantManager>) -> Router {
    use crate::{
        api_keys, audit, auth_hooks, auth_providers, auth_users, function_logs, functions,
        functions_internal, internal, meta, projects,
    };
    use crate::{jwt_keys, secrets, workers};
    // a deploy carries a whole bundle: more than the other routes' limit
    let deploy_limit = || DefaultBodyLimit::max(functions::MAX_DEPLOY_BODY);
    let admin = Router::new()
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{ref}",
            get(projects::show)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route("/projects/{ref}/pause", post(projects::pause))
        .route("/projects/{ref}/restore", post(projects::restore))
        .route("/projects/{ref}/health", get(projects::health))
        .route(
            "/projects/{ref}/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/projects/{ref}/api-keys/{id}",
            get(api_keys::show).delete(api_keys::revoke),
        )
        .route("/projects/{ref}/jwt-keys", get(jwt_keys::list))
        .route("/projects/{ref}/jwt-keys/standby", post(jwt_keys::standby))
        .route("/projects/{ref}/jwt-keys/rotate", post(jwt_keys::rotate))
        .route(
            "/projects/{ref}/jwt-keys/previous",
            delete(jwt_keys::revoke_previous),
        )
        .route(
            "/projects/{ref}/secrets",
            get(secrets::list).post(secrets::set).delete(secrets::unset),
        )
        .route(
            "/projects/{ref}/functions",
            get(functions::list).post(functions::deploy.layer(deploy_limit())),
        )
        .route(
            "/projects/{ref}/functions/{slug}",
            get(functions::show)
                .patch(functions::update.layer(deploy_limit()))
                .delete(functions::delete),
        )
        .route(
            "/projects/{ref}/functions/{slug}/code",
            get(functions::code),
        )
        .route(
            "/projects/{ref}/functions/{slug}/logs",
            get(function_logs::logs),
        )
        .route("/projects/{ref}/auth/users", post(auth_users::create))
        .route(
            "/projects/{ref}/auth/users/{id}",
            delete(auth_users::delete),
        )
        .route("/projects/{ref}/auth/recover", post(auth_users::recover))
        .route("/projects/{ref}/auth/providers", get(auth_providers::list))
        .route(
            "/projects/{ref}/auth/providers/{provider}",
            put(auth_providers::put).delete(auth_providers::delete),
        )
        .route(
            "/projects/{ref}/auth/hooks/{hook}",
            get(auth_hooks::get)
                .put(auth_hooks::put)
                .delete(auth_hooks::delete),
        )
        .route("/projects/{ref}/database/query", post(projects::query))
        .route("/projects/{ref}/database/{kind}", get(meta::list))
        .route("/workers", get(workers::list).post(workers::create))
        .route(
            "/workers/{id}",
            get(workers::show)
                .patch(workers::update)
                .delete(workers::remove),
        )
        .route("/workers/{id}/drain", post(workers::drain))
        .route("/workers/{id}/projects", get(workers::projects))
        .route(
            "/placement",
            get(workers::placement).put(workers::set_placement),
        )
        .route("/audit", get(audit::list))
        .layer(from_fn_with_state(tm.clone(), audit::record))
        .layer(from_fn_with_state(tm.clone(), require_admin));
    let internal = Router::new()
        .route("/api-keys/{hash}", get(internal::internal_key))
        .route("/projects/{ref}/config", get(internal::internal_config))
        .route(
            "/projects/{ref}/functions/{slug}",
            get(functions_internal::function),
        )
        .route(
            "/projects/{ref}/functions/{slug}/versions/{version}",
            get(functions_internal::bundle),
        )
        .route(
            "/projects/{ref}/function-env",
            get(functions_internal::environment),
        )
        .layer(from_fn_with_state(tm.clone(), require_internal));
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/metrics",
            get(metrics).layer(from_fn_with_state(tm.clone(), require_admin)),
        )
        .nest("/admin/v1", admin)
        .nest("/internal/v1", internal)
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(tm)
}
