//! The data plane composed: the gateway in front of the services it forwards to in-process (REST,
//! auth; realtime and functions plug in here next), over one project directory and one connection
//! registry whose budget covers every service, and the hook that drops everything cached about a
//! project when it changes (from the tenant-manager in the same process, or from Redis across
//! processes).
//!
//! This is what `supactl up` and `supactl serve gateway` run, and what the integration tests run
//! too, so that the wiring under test is the production wiring. It owns the composition only: each
//! service's behaviour stays in its own crate, and the tenant-manager is not part of it (the
//! composer registers [`DataPlane::on_change`] with it).
//!
//! Adding a service is one field and one method of [`Builder`] (its settings), one line in
//! [`Builder::build`] (its router, and its pools in the change hook), and its upstream in the gateway.

use std::sync::Arc;
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::invalidation::{self, ProjectHook};

/// The data plane's settings as the binaries read them (`supactl up`, `supactl serve gateway`).
pub struct Settings {
    pub tenant_manager_url: String,
    pub service_token: String,
    pub redis_url: Option<String>,
    pub cache_ttl: Duration,
    /// How long past its TTL a known key or project keeps its last answer while the tenant-manager
    /// cannot be reached.
    pub cache_stale: Duration,
    /// The REST engine's pools (size and idle timeouts); auth's pools use the same size, and
    /// `max_connections` is the budget of every service's connections.
    pub rest: rest::RestConfig,
    pub base_domain: Option<String>,
    /// Public URL of a project with `{ref}` in it: auth's token issuer and email links derive from it.
    pub api_url_template: String,
}

impl Settings {
    /// The production data plane: REST and auth behind the gateway, with the Function URL upstream
    /// for projects whose REST runs on Lambda when `function_urls` is given.
    pub fn build(&self, function_urls: Option<gateway::FunctionUrls>) -> DataPlane {
        let directory = Arc::new(Directory::new(DirectoryConfig {
            url: self.tenant_manager_url.clone(),
            service_token: self.service_token.clone(),
            ttl: self.cache_ttl,
            stale_for: self.cache_stale,
        }));
        let mut builder = DataPlane::builder(directory)
            .connection_budget(self.rest.max_connections)
            .gateway(gateway::GatewayConfig {
                base_domain: self.base_domain.clone(),
                ..gateway::GatewayConfig::default()
            })
            .rest(self.rest.clone())
            .auth(auth::AuthConfig {
                api_url_template: self.api_url_template.clone(),
                pool_size: self.rest.pool_size,
                ..auth::AuthConfig::default()
            });
        if let Some(url) = &self.redis_url {
            builder = builder.redis(url.clone());
        }
        if let Some(f) = function_urls {
            builder = builder.function_urls(f);
        }
        builder.build()
    }
}

/// The composed data plane.
pub struct DataPlane {
    /// The gateway's router, with every service behind it.
    pub router: axum::Router,
    /// Drops everything cached about a project (directory entries, every service's pools): register
    /// it with the tenant-manager of the same process.
    pub on_change: ProjectHook,
    /// The registry every service takes its connections from.
    pub connections: Registry,
}

impl DataPlane {
    /// A data plane over `directory` serving REST with default settings, and nothing else until asked.
    pub fn builder(directory: Arc<Directory>) -> Builder {
        Builder {
            directory,
            connection_budget: rest::RestConfig::default().max_connections,
            gateway: gateway::GatewayConfig::default(),
            redis_url: None,
            function_urls: None,
            rest: rest::RestConfig::default(),
            auth: None,
        }
    }
}

/// What [`DataPlane`] is built from: one field per service.
pub struct Builder {
    directory: Arc<Directory>,
    connection_budget: usize,
    gateway: gateway::GatewayConfig,
    redis_url: Option<String>,
    function_urls: Option<gateway::FunctionUrls>,
    rest: rest::RestConfig,
    auth: Option<auth::AuthConfig>,
}

impl Builder {
    /// Connections open across every project and service before idle ones are closed.
    pub fn connection_budget(mut self, max_open: usize) -> Builder {
        self.connection_budget = max_open;
        self
    }

    pub fn gateway(mut self, config: gateway::GatewayConfig) -> Builder {
        self.gateway = config;
        self
    }

    /// Subscribes to the invalidations other processes publish on Redis.
    pub fn redis(mut self, url: String) -> Builder {
        self.redis_url = Some(url);
        self
    }

    /// The upstream of projects whose REST runs on Lambda.
    pub fn function_urls(mut self, f: gateway::FunctionUrls) -> Builder {
        self.function_urls = Some(f);
        self
    }

    /// The REST engine's settings (REST is always served).
    pub fn rest(mut self, config: rest::RestConfig) -> Builder {
        self.rest = config;
        self
    }

    /// Serves auth (`/auth/v1`).
    pub fn auth(mut self, config: auth::AuthConfig) -> Builder {
        self.auth = Some(config);
        self
    }

    pub fn build(self) -> DataPlane {
        let registry = Registry::new(self.connection_budget);
        let directory = self.directory;
        let rest = rest::Rest::with_registry(directory.clone(), self.rest, &registry);
        let auth = self
            .auth
            .map(|c| auth::Auth::with_registry(directory.clone(), c, &registry));
        let drop_pools: ProjectHook = {
            let (rest, auth) = (rest.clone(), auth.clone());
            Arc::new(move |r: &str| {
                rest.pools().remove(r);
                if let Some(auth) = &auth {
                    auth.pools().remove(r);
                }
            })
        };
        if let Some(url) = self.redis_url {
            invalidation::subscribe(
                url,
                invalidation::directory_subscriber(directory.clone(), Some(drop_pools.clone())),
            );
        }
        let on_change: ProjectHook = {
            let directory = directory.clone();
            Arc::new(move |r: &str| {
                directory.invalidate_project(r);
                drop_pools(r);
            })
        };
        let gw = gateway::Gateway::with_function_urls(
            self.gateway,
            directory,
            gateway::Upstream::InProcess(rest::router(rest)),
            auth.map(|a| gateway::Upstream::InProcess(auth::router(a))),
            self.function_urls,
        );
        DataPlane {
            router: gateway::router(gw),
            on_change,
            connections: registry,
        }
    }
}
