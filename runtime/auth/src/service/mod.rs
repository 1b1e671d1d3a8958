//! The HTTP face: GoTrue's routes for every project. The gateway names the project in
//! [`PROJECT_HEADER`] and proves the caller's role (and user claims) with a JWT signed by that project's
//! secret, which is verified here again (defence in depth, as in the REST engine).
//!
//! The routes by flow: `account` (settings, sign-up, the token grants, the user, logout),
//! `one_time` (recovery, OTP and magic links, `/verify`), `email_change` (the confirmations of a new
//! address), `phone` (the same flows with a phone
//! number, codes sent by the Send SMS hook), `mfa` (TOTP factors; phone factors in `mfa_phone`), `oauth`
//! (sign-in with OAuth/OIDC providers: `/authorize`, `/callback`, the `id_token` grant), `pkce` (flow
//! states of OAuth and email links, the `pkce` grant), `link`
//! (identity linking: `/user/identities/authorize` and unlinking), `admin`
//! (service_role only); `request`
//! reads the caller and holds what the flows share.

mod account;
mod admin;
mod email_change;
mod link;
mod mfa;
mod mfa_phone;
mod oauth;
mod one_time;
mod phone;
mod pkce;
mod platform;
mod request;

use crate::db::Pools;
use crate::error::{self, AuthError};
use crate::ratelimit::Limiter;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use http::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::Directory;

pub use supactl_common::headers::{CLIENT_IP_HEADER, PROJECT_HEADER};
/// Characters escaped in URL query and fragment values: all but RFC 3986's unreserved ones.
pub(crate) const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// GoTrue's default bcrypt cost (Go's `bcrypt.DefaultCost`).
pub const BCRYPT_COST: u32 = 10;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The URL clients use for a project, with `{ref}` in it (the tenant-manager's `api_url`
    /// template): the issuer of tokens is `{api_url}/auth/v1`, and links point there.
    pub api_url_template: String,
    /// Connections per project pool.
    pub pool_size: usize,
    /// A project's pool is dropped after this long without requests.
    pub idle_timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            api_url_template: "http://127.0.0.1:54321/p/{ref}".into(),
            pool_size: 10,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

pub struct Auth {
    directory: Arc<Directory>,
    pools: Pools,
    limiter: Limiter,
    /// Calls the project's hooks (its Send SMS hook).
    hooks: crate::hook::Dispatcher,
    oauth: crate::oauth::OAuth,
    config: AuthConfig,
}

impl Auth {
    /// Auth with a connection registry of its own.
    pub fn new(directory: Arc<Directory>, config: AuthConfig) -> Arc<Auth> {
        Auth::with_registry(directory, config, &Registry::new(usize::MAX))
    }

    /// Auth taking its connections from `registry`, whose budget it shares with other services.
    pub fn with_registry(
        directory: Arc<Directory>,
        config: AuthConfig,
        registry: &Registry,
    ) -> Arc<Auth> {
        Arc::new(Auth {
            pools: Pools::new(registry, config.pool_size, config.idle_timeout),
            limiter: Limiter::new(),
            hooks: crate::hook::Dispatcher::default(),
            oauth: crate::oauth::OAuth::default(),
            directory,
            config,
        })
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    fn api_url(&self, project_ref: &str) -> String {
        self.config.api_url_template.replace("{ref}", project_ref)
    }
}

/// GoTrue's routes (paths below `/auth/v1`).
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/health", get(account::health))
        .route("/settings", get(account::settings))
        .route("/.well-known/jwks.json", get(account::jwks))
        .route("/signup", post(account::signup))
        .route("/token", post(account::token_grant))
        .route("/user", get(account::get_user).put(account::put_user))
        .route("/logout", post(account::logout))
        .route("/recover", post(one_time::recover))
        .route("/otp", post(one_time::otp))
        .route("/magiclink", post(one_time::magiclink))
        .route(
            "/verify",
            get(one_time::verify_get).post(one_time::verify_post),
        )
        .route("/resend", post(one_time::resend))
        .route("/authorize", get(oauth::authorize))
        .route(
            "/callback",
            get(oauth::callback)
                .post(oauth::callback_form)
                .layer(DefaultBodyLimit::max(oauth::CALLBACK_BODY_LIMIT)),
        )
        .route("/user/identities/authorize", get(link::authorize))
        .route("/user/identities/{identity_id}", delete(link::unlink))
        .route(
            "/admin/users",
            get(admin::admin_list).post(admin::admin_create),
        )
        .route(
            "/admin/users/{id}",
            get(admin::admin_get)
                .put(admin::admin_update)
                .delete(admin::admin_delete),
        )
        .route("/admin/generate_link", post(admin::admin_generate_link))
        .route("/invite", post(admin::invite))
        .route("/reauthenticate", get(account::reauthenticate))
        .route("/factors", post(mfa::enroll))
        .route("/factors/{id}", delete(mfa::unenroll))
        .route("/factors/{id}/challenge", post(mfa::challenge))
        .route("/factors/{id}/verify", post(mfa::verify))
        .route("/admin/users/{id}/factors", get(mfa::admin_list_factors))
        .route(
            "/admin/users/{id}/factors/{factor_id}",
            delete(mfa::admin_delete_factor),
        )
        .fallback(|| async {
            AuthError::new(StatusCode::NOT_FOUND, "not_found", "Not Found").into_response()
        })
        // Inside `render`, which takes the error out of legacy clients' responses.
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            forget_lost_connections,
        ))
        .layer(axum::middleware::from_fn(error::render))
        .with_state(auth)
}

/// Middleware: a request whose database connection was lost (its backend terminated, its socket
/// closed) drops its project's pool before answering, so the next request opens a fresh connection
/// instead of being handed another one to a backend that is gone: PostgreSQL restarting, or an
/// operator clearing connections, usually takes them all. Connections other requests still hold
/// close when those requests end.
pub async fn forget_lost_connections(
    State(auth): State<Arc<Auth>>,
    req: Request,
    next: Next,
) -> Response {
    let project = req
        .headers()
        .get(PROJECT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let res = next.run(req).await;
    let lost = res
        .extensions()
        .get::<AuthError>()
        .is_some_and(|e| e.lost_connection);
    if let (true, Some(project)) = (lost, project) {
        tracing::warn!(%project, "database connection lost: dropping the project's auth pool");
        auth.pools().remove(&project);
    }
    res
}
