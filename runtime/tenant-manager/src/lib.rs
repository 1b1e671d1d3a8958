//! The control plane: the tenant-manager's admin API, its internal config endpoint, and provisioning.
//!
//! It owns the platform database (`supactl_platform`: workers, projects, API keys, JWT secrets, all
//! secrets encrypted at rest) and is the only service holding worker admin credentials. Provisioning
//! creates each project's database from the tenant template (`templates/`) together with the project's
//! own login role, and undoes every step when one fails. Data-plane services read project configs from
//! the internal endpoint with the service token; nothing here is reachable through the gateway.

mod api;
mod auth;
mod error;
mod provision;
mod sqlrun;
mod store;

pub use error::ApiError;
pub use store::WorkerSpec;

use axum::Router;
use std::sync::{Arc, RwLock};
use supactl_common::crypto::Cipher;

/// Called with a project ref whenever that project's keys or config change, so in-process caches of
/// the data plane can drop it at once.
pub type ChangeHook = Arc<dyn Fn(&str) + Send + Sync>;

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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_url_template", &self.api_url_template)
            .finish_non_exhaustive()
    }
}

pub struct TenantManager {
    config: Config,
    cipher: Cipher,
    store: store::Store,
    hooks: RwLock<Vec<ChangeHook>>,
}

impl TenantManager {
    /// Connects to the platform server, creates and migrates the platform database, registers the
    /// local worker and makes sure every worker has the current tenant template.
    pub async fn start(config: Config) -> Result<Arc<TenantManager>, ApiError> {
        let cipher = Cipher::new(&config.encryption_key);
        let store = store::Store::open(&config.database_url).await?;
        if let Some(w) = &config.local_worker {
            store.upsert_worker(w, &cipher).await?;
        }
        for worker in store.workers(&cipher).await? {
            provision::ensure_template(&worker).await?;
        }
        Ok(Arc::new(TenantManager {
            config,
            cipher,
            store,
            hooks: RwLock::new(Vec::new()),
        }))
    }

    /// Registers a hook run after every change to a project's keys or status.
    pub fn on_change(&self, hook: ChangeHook) {
        self.hooks.write().expect("hooks lock").push(hook);
    }

    fn changed(&self, project_ref: &str) {
        for hook in self.hooks.read().expect("hooks lock").iter() {
            hook(project_ref);
        }
    }

    fn api_url(&self, project_ref: &str) -> String {
        self.config.api_url_template.replace("{ref}", project_ref)
    }
}

/// The tenant-manager's HTTP API: `/health`, `/admin/v1/*` (admin key), `/internal/v1/*` (service token).
pub fn router(tm: Arc<TenantManager>) -> Router {
    api::router(tm)
}
