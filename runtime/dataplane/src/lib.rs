//! The data plane composed: the gateway in front of the services it forwards to (REST, auth,
//! realtime and storage in-process; Edge Functions in-process or at the address of their own service), over one
//! project directory and one connection registry whose budget covers every service, and the hook that
//! drops everything cached about a project when it changes (from the tenant-manager in the same
//! process, or from Redis across processes).
//!
//! This is what `supactl up` and `supactl serve gateway` run, and what the integration tests run
//! too, so that the wiring under test is the production wiring. It owns the composition only: each
//! service's behaviour stays in its own crate, and the tenant-manager is not part of it (the
//! composer registers [`DataPlane::on_change`] with it).
//!
//! Adding a service is one field and one method of [`Builder`] (its settings), one route in
//! [`Builder::build`] (and its caches in the change hook), and its variant in [`gateway::Service`].

use gateway::{Service, Upstream};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::connections::Registry;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::invalidation::{self, ProjectHook, RedisError};
use tokio_util::sync::CancellationToken;

/// Change-capture slots a process opens per database server by default (each decodes the server's whole
/// WAL; the server's `max_replication_slots` and the capture functions' 8 per database bound it too).
pub const DEFAULT_CAPTURE_SLOTS: usize = 32;

/// Where Edge Functions run.
pub enum Functions {
    /// A supervisor in this process.
    InProcess(functions::Supervisor),
    /// The functions service at this address (`supactl serve functions`).
    At(Box<gateway::HttpUpstream>),
}

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
    /// Peers whose `X-Forwarded-For` names the client (the load balancer's range).
    pub trusted_proxies: Vec<gateway::Cidr>,
    /// Realtime's change-capture slots per database server (0: postgres_changes refused).
    pub capture_slots: usize,
}

impl Settings {
    /// The production data plane: REST, auth and realtime behind the gateway; the caller adds Edge
    /// Functions ([`Builder::functions`]) and, where REST may run on Lambda, the Function URL upstream
    /// ([`Builder::function_urls`]). Realtime's sockets close when `shutdown` fires.
    pub fn builder(&self, shutdown: CancellationToken) -> Builder {
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
                trusted_proxies: self.trusted_proxies.clone(),
                ..gateway::GatewayConfig::default()
            })
            .rest(self.rest.clone())
            .auth(auth::AuthConfig {
                api_url_template: self.api_url_template.clone(),
                pool_size: self.rest.pool_size,
                ..auth::AuthConfig::default()
            })
            .realtime(
                realtime::http::RealtimeConfig {
                    redis_url: self.redis_url.clone(),
                    ..realtime::http::RealtimeConfig::default()
                },
                shutdown,
            )
            .capture_slots(self.capture_slots);
        if let Some(url) = &self.redis_url {
            builder = builder.redis(url.clone());
        }
        builder
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
            functions: None,
            realtime: None,
            capture_slots: DEFAULT_CAPTURE_SLOTS,
            storage: None,
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
    functions: Option<Functions>,
    realtime: Option<(realtime::http::RealtimeConfig, CancellationToken)>,
    capture_slots: usize,
    storage: Option<(storage::Backend, storage::StorageConfig)>,
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

    /// Serves Edge Functions (`/functions/v1`).
    pub fn functions(mut self, f: Functions) -> Builder {
        self.functions = Some(f);
        self
    }

    /// Serves realtime (`/realtime/v1`) in this process; its sockets close when `shutdown` fires.
    pub fn realtime(
        mut self,
        config: realtime::http::RealtimeConfig,
        shutdown: CancellationToken,
    ) -> Builder {
        self.realtime = Some((config, shutdown));
        self
    }

    /// Realtime's change-capture slots per database server.
    pub fn capture_slots(mut self, slots: usize) -> Builder {
        self.capture_slots = slots;
        self
    }

    /// Serves storage (`/storage/v1`) in this process, its objects in `backend`.
    pub fn storage(mut self, backend: storage::Backend, config: storage::StorageConfig) -> Builder {
        self.storage = Some((backend, config));
        self
    }

    pub fn build(self) -> Result<DataPlane, RedisError> {
        let registry = Registry::new(self.connection_budget);
        let directory = self.directory;
        let rest = rest::Rest::with_registry(directory.clone(), self.rest, &registry);
        let auth = self
            .auth
            .map(|c| auth::Auth::with_registry(directory.clone(), c, &registry));
        let supervisor = match &self.functions {
            Some(Functions::InProcess(s)) => Some(s.clone()),
            _ => None,
        };
        let realtime = match self.realtime {
            Some((config, shutdown)) => {
                let rt = realtime::http::Realtime::new(directory.clone(), config, shutdown)?;
                rt.set_registry(&registry);
                rt.set_cdc(realtime::cdc::Cdc::project_login(self.capture_slots));
                Some(rt)
            }
            None => None,
        };
        let storage = self
            .storage
            .map(|(b, c)| storage::Storage::with_registry(directory.clone(), b, c, &registry));
        let drop_pools: ProjectHook = {
            let (rest, auth, rt) = (rest.clone(), auth.clone(), realtime.clone());
            let st = storage.clone();
            Arc::new(move |r: &str| {
                rest.pools().remove(r);
                if let Some(auth) = &auth {
                    auth.pools().remove(r);
                }
                if let Some(rt) = &rt {
                    rt.forget(r);
                }
                // a deleted project's objects go too
                if let Some(st) = &st {
                    st.forget(r);
                }
                // a paused or deleted project's workers must not keep serving
                if let Some(s) = &supervisor {
                    s.stop_project(r);
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
        let mut gw = gateway::Gateway::builder(self.gateway, directory.clone())
            .route(Service::Rest, Upstream::InProcess(rest::router(rest)));
        if let Some(a) = auth {
            gw = gw.route(Service::Auth, Upstream::InProcess(auth::router(a)));
        }
        match self.functions {
            Some(Functions::InProcess(s)) => {
                let router = functions::behind_gateway(s, directory.clone());
                gw = gw.route(Service::Functions, Upstream::InProcess(router));
            }
            Some(Functions::At(http)) => gw = gw.route(Service::Functions, Upstream::Http(http)),
            None => {}
        }
        if let Some(rt) = realtime {
            gw = gw.route(
                Service::Realtime,
                Upstream::InProcess(realtime::http::router(rt)),
            );
        }
        if let Some(st) = storage {
            gw = gw.route(Service::Storage, Upstream::InProcess(storage::router(st)));
        }
        if let Some(f) = self.function_urls {
            gw = gw.function_urls(f);
        }
        Ok(DataPlane {
            router: gateway::router(gw.build()),
            on_change,
            connections: registry,
        })
    }
}
