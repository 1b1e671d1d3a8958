//! The control plane: the tenant-manager's admin API, its internal config endpoint, and provisioning.
//!
//! It owns the platform database (`supactl_platform`: workers, projects, API keys, JWT secrets, all
//! secrets encrypted at rest, and Edge Functions' code: [`crate::functions`]) and is the only service
//! holding worker admin credentials. Provisioning creates each project's database from the tenant
//! template (`templates/`) together with the project's own login role (and, in Lambda mode, the
//! project's REST function (`<stack prefix><ref>`) and its Function URL: see [`rest_lambda`], feature `lambda`), and
//! undoes every step when one fails. Data-plane services read
//! project configs from the internal endpoint with the service token, a project's REST function its own
//! config only, with its project token; nothing here is reachable through the gateway. A project's auth
//! users are created, deleted and sent recovery emails by the `auth` crate's own handlers, in-process
//! ([`auth_users`]), never by SQL of its own on the `auth` schema.
//!
//! Load is kept apart ([`Capacity`]): the internal lookups have their own platform-database pool, so
//! admin work never delays the data plane; creates and deletes pass an admission gate
//! ([`admission`]); an exhausted pool or an unreachable database answers 503 with `Retry-After`.

mod admission;
mod api;
mod api_keys;
mod audit;
mod auth;
mod auth_hooks;
mod auth_providers;
mod auth_users;
mod dashboard;
mod error;
mod function_logs;
mod functions;
mod functions_internal;
mod handler;
mod internal;
mod jwt_keys;
mod limits;
mod meta;
mod projects;
mod provision;
#[cfg(feature = "lambda")]
pub mod rest_lambda;
mod sealed;
mod secrets;
mod sqlrun;
mod store;
mod workers;

pub use error::ApiError;
pub use function_logs::LogSource;
pub use store::WorkerSpec;

use axum::Router;
use std::sync::{Arc, RwLock};
use supactl_common::crypto::Cipher;
use supactl_common::http_client::HttpClient;
use supactl_common::invalidation::Publisher;
use supactl_common::redact::{self, Redacted};

/// Called with a project ref whenever that project's keys or config change, so in-process caches of
/// the data plane can drop it at once.
pub type ChangeHook = supactl_common::invalidation::ProjectHook;

#[derive(Clone)]
pub struct Config {
    /// A superuser connection to the server that holds the platform database (any database on it).
    pub database_url: String,
    pub admin_key: String,
    pub service_token: String,
    pub encryption_key: String,
    /// The URL clients use for a project, with `{ref}` in it, e.g. `http://127.0.0.1:54321/p/{ref}`.
    pub api_url_template: String,
    /// A worker to register (or refresh) at startup; locally, the platform's own server.
    pub local_worker: Option<WorkerSpec>,
    /// Redis to publish invalidations on, so every gateway and REST replica drops a changed project.
    pub redis_url: Option<String>,
    /// Sessions a project's login role may hold at once, unless the project sets its own limit: at least
    /// the data plane's replicas × (REST pool + auth pool), plus a few for health checks.
    pub project_connection_limit: u32,
    /// Platform-database pools and provisioning concurrency.
    pub capacity: Capacity,
}

/// The default of [`Config::project_connection_limit`].
pub const DEFAULT_PROJECT_CONNECTION_LIMIT: u32 = 60;

/// How much of the platform database and of its workers one tenant-manager uses at once.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Platform-database connections of the admin API (and of provisioning's bookkeeping).
    pub admin_pool: usize,
    /// Platform-database connections kept for the data plane's lookups (`/internal/v1`: an API key or
    /// a project's config, one indexed query each), so admin work never delays a request's cache miss.
    pub lookup_pool: usize,
    /// Projects created or deleted at once (each holds a worker connection while its database is
    /// copied from the template or dropped).
    pub provisions: usize,
    /// Further creates and deletes waiting for a slot; beyond that they get 429 with `Retry-After`.
    pub provision_queue: usize,
}

impl Default for Capacity {
    fn default() -> Capacity {
        Capacity {
            admin_pool: 8,
            lookup_pool: 8,
            provisions: 4,
            provision_queue: 8,
        }
    }
}

impl Capacity {
    fn validate(&self) -> Result<(), ApiError> {
        for (name, n) in [
            ("admin_pool", self.admin_pool),
            ("lookup_pool", self.lookup_pool),
            ("provisions", self.provisions),
        ] {
            if n == 0 {
                return Err(ApiError::BadRequest(format!(
                    "capacity: {name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

/// Secrets and URLs that may carry a password show as `<redacted>`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &Redacted)
            .field("admin_key", &Redacted)
            .field("service_token", &Redacted)
            .field("encryption_key", &Redacted)
            .field("api_url_template", &self.api_url_template)
            .field("local_worker", &self.local_worker)
            .field("redis_url", &redact::optional(&self.redis_url))
            .field("project_connection_limit", &self.project_connection_limit)
            .field("capacity", &self.capacity)
            .finish()
    }
}

pub struct TenantManager {
    config: Config,
    cipher: Cipher,
    store: store::Store,
    hooks: RwLock<Vec<ChangeHook>>,
    /// Bounds the audit records of failed admin authentications.
    failed_auth: audit::FailedAuthLimiter,
    http: HttpClient,
    /// The projects' auth services, in-process, for the admin API's user operations.
    auth: Arc<::auth::Auth>,
    publisher: Option<Publisher>,
    /// Admission of creates and deletes.
    provisioning: admission::Gate,
    /// The deploy-time check of Edge Functions' code.
    checker: functions::Checker,
    /// Where functions' logs are read ([`TenantManager::set_function_logs`]).
    function_logs: std::sync::OnceLock<function_logs::LogSource>,
    /// Lambda mode for REST: each project gets its own function.
    #[cfg(feature = "lambda")]
    rest_lambda: Option<rest_lambda::RestLambda>,
}

impl TenantManager {
    /// Connects to the platform server, creates and migrates the platform database, registers the
    /// local worker and makes sure every worker has the current tenant template.
    pub async fn start(config: Config) -> Result<Arc<TenantManager>, ApiError> {
        Ok(Arc::new(TenantManager::open(config).await?))
    }

    /// As [`TenantManager::start`], in Lambda mode: every project created gets its own REST function
    /// and Function URL.
    #[cfg(feature = "lambda")]
    pub async fn start_with_rest_lambda(
        config: Config,
        rest_lambda: rest_lambda::RestLambda,
    ) -> Result<Arc<TenantManager>, ApiError> {
        let mut tm = TenantManager::open(config).await?;
        tm.rest_lambda = Some(rest_lambda);
        Ok(Arc::new(tm))
    }

    async fn open(config: Config) -> Result<TenantManager, ApiError> {
        config.capacity.validate()?;
        let cipher = Cipher::new(&config.encryption_key);
        let store = store::Store::open(&config.database_url, &config.capacity).await?;
        sealed::migrate(&mut store.client().await?, &cipher).await?;
        if let Some(w) = &config.local_worker {
            store.upsert_worker(w, &cipher).await?;
        }
        for worker in store.workers(&cipher).await? {
            provision::ensure_template(&worker).await?;
            let projects = store.projects_on_worker(worker.id).await?;
            let roles: Vec<(String, u32)> = projects
                .iter()
                .map(|p| {
                    let limit = p.limits.connection_limit(config.project_connection_limit);
                    (p.db_user.clone(), limit)
                })
                .collect();
            provision::reconcile_login_roles(&worker, &roles).await?;
            let databases: Vec<String> = projects.into_iter().map(|p| p.db_name).collect();
            provision::upgrade_projects(&worker, &databases).await?;
        }
        let publisher = match &config.redis_url {
            Some(url) => Some(
                Publisher::connect(url)
                    .await
                    .map_err(|e| ApiError::BadRequest(format!("redis url: {e}")))?,
            ),
            None => None,
        };
        let auth = auth_users::platform_auth(&config.api_url_template);
        Ok(TenantManager {
            provisioning: admission::Gate::new(
                config.capacity.provisions,
                config.capacity.provision_queue,
            ),
            config,
            cipher,
            store,
            hooks: RwLock::new(Vec::new()),
            failed_auth: audit::FailedAuthLimiter::new(std::time::Instant::now()),
            http: HttpClient::new(std::time::Duration::from_secs(5)),
            auth,
            publisher,
            checker: functions::Checker::new(),
            function_logs: std::sync::OnceLock::new(),
            #[cfg(feature = "lambda")]
            rest_lambda: None,
        })
    }

    /// In Lambda mode, creates the project's REST function and its URL (undone by itself on failure).
    async fn create_rest_function(
        &self,
        project_ref: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
        #[cfg(feature = "lambda")]
        if let Some(l) = &self.rest_lambda {
            let token =
                supactl_common::tokens::project_token(&self.config.service_token, project_ref);
            let f = l.create(project_ref, &token).await?;
            return Ok(Some((f.name, f.url)));
        }
        let _ = project_ref;
        Ok(None)
    }

    /// Whether projects get a REST function on Lambda.
    fn lambda_mode(&self) -> bool {
        #[cfg(feature = "lambda")]
        let on = self.rest_lambda.is_some();
        #[cfg(not(feature = "lambda"))]
        let on = false;
        on
    }

    /// Deletes a project's REST function and URL (already gone is fine).
    async fn delete_rest_function(&self, name: &str) -> Result<(), ApiError> {
        #[cfg(feature = "lambda")]
        if let Some(l) = &self.rest_lambda {
            return l.delete(name).await;
        }
        Err(ApiError::Conflict(format!(
            "the project has the REST function {name} but this tenant-manager is not in lambda mode \
             (SUPACTL_REST_MODE=lambda): it cannot delete it"
        )))
    }

    /// Serves functions' logs from this runtime: in-process, or the functions service's replicas (the
    /// first call wins).
    pub fn set_function_logs(&self, source: function_logs::LogSource) {
        let _ = self.function_logs.set(source);
    }

    /// Registers a hook run after every change to a project's keys or status.
    pub fn on_change(&self, hook: ChangeHook) {
        self.hooks.write().expect("hooks lock").push(hook);
    }

    /// Tells every cache of the data plane that the project changed: in-process hooks at once, other
    /// replicas through Redis when it is configured (their cache TTL bounds the delay otherwise).
    fn changed(&self, project_ref: &str) {
        self.auth.pools().remove(project_ref);
        for hook in self.hooks.read().expect("hooks lock").iter() {
            hook(project_ref);
        }
        if let Some(p) = self.publisher.clone() {
            let r = project_ref.to_string();
            tokio::spawn(async move {
                if let Err(e) = p.publish(&r).await {
                    tracing::warn!(error = %e, project = %r, "cannot publish an invalidation");
                }
            });
        }
    }

    fn api_url(&self, project_ref: &str) -> String {
        self.config.api_url_template.replace("{ref}", project_ref)
    }

    /// Whether a data-plane URL of the project answers (any status below 500), with its publishable key.
    async fn probe(&self, url: &str, project_ref: &str) -> serde_json::Value {
        let key = match self.store.keys(project_ref).await {
            Ok(keys) => keys
                .iter()
                .find(|k| k.key_type == "publishable")
                .and_then(|k| {
                    sealed::Column::ApiKey
                        .open(&self.cipher, &k.id, &k.key_enc)
                        .ok()
                }),
            Err(_) => None,
        };
        let Some(key) = key else {
            return serde_json::json!({"healthy": false, "error": "the project has no publishable key"});
        };
        let req = http::Request::builder()
            .uri(url)
            .header("apikey", key)
            .body(http_body_util::Full::new(bytes::Bytes::new()));
        let started = std::time::Instant::now();
        match req {
            Ok(req) => match self.http.send(req).await {
                Ok((status, _)) if status.as_u16() < 500 => serde_json::json!({
                    "healthy": true, "status": status.as_u16(), "latency_ms": started.elapsed().as_millis() as u64
                }),
                Ok((status, _)) => serde_json::json!({"healthy": false, "status": status.as_u16()}),
                Err(e) => serde_json::json!({"healthy": false, "error": e.to_string()}),
            },
            Err(e) => serde_json::json!({"healthy": false, "error": e.to_string()}),
        }
    }
}

/// The tenant-manager's HTTP API: `/health`, `/admin/v1/*` (admin key), `/internal/v1/*` (service token).
pub fn router(tm: Arc<TenantManager>) -> Router {
    api::router(tm)
}
