//! The metrics of what the services call behind a request: the per-project database pools of the
//! connection registry ([`crate::connections`]), the directory's Redis invalidations
//! ([`crate::invalidation`]) and the REST functions on AWS Lambda (the gateway's Function URL client).
//!
//! Names (all under `supactl_`):
//! - `db_pool_connections{service,state}` (gauge, `busy`|`idle`), `db_pool_waiting{service}` (gauge:
//!   requests waiting for a connection), `db_pool_projects{service}` (gauge), read from the pools at each
//!   scrape; `db_connections_open` and `db_connections_budget` (the registry's budget across services);
//!   `db_pool_wait_seconds{service}` (histogram: time to get a connection, opening one included) and
//!   `db_pool_errors_total{service,kind}` (`timeout`: none freed within the wait timeout; `connect`: a
//!   new one could not be opened). `service` is `rest`, `auth` or `realtime`.
//! - `directory_invalidations_total{kind}` (`project`: one project's entries dropped; `all`: everything,
//!   after a lost subscription) and `directory_invalidation_lag_seconds` (histogram: from the
//!   tenant-manager's publish to this process's receipt, by the two hosts' clocks).
//! - `lambda_invocations_total{outcome}` (`ok`: answered by the REST engine, its errors included;
//!   `function_error`, `throttled`, `rejected` (IAM's 403), `timeout`, `unreachable`),
//!   `lambda_invocation_duration_seconds` (histogram) and
//!   `lambda_sigv4_errors_total{kind}` (`credentials`: none could be had; `signing`: the request could
//!   not be signed; `rejected`: AWS refused the signature or the credentials, 403).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolStateLabels {
    pub service: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceKindLabels {
    pub service: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// One service's pools at a scrape, summed over its projects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolSample {
    pub projects: i64,
    pub busy: i64,
    pub idle: i64,
    pub waiting: i64,
}

/// What a connection registry reports at a scrape: per service, and its open count and budget; `None`
/// once the registry is gone.
pub type PoolSource =
    Box<dyn Fn() -> Option<(BTreeMap<String, PoolSample>, i64, i64)> + Send + Sync>;

type Histograms = Family<ServiceLabels, Histogram, fn() -> Histogram>;

fn wait_buckets() -> Histogram {
    // 0.1 ms … ~3 s (the pools' wait timeout is below that)
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Backends {
    pool_connections: Family<PoolStateLabels, Gauge>,
    pool_waiting: Family<ServiceLabels, Gauge>,
    pool_projects: Family<ServiceLabels, Gauge>,
    connections_open: Gauge,
    connections_budget: Gauge,
    pool_wait: Histograms,
    pool_errors: Family<ServiceKindLabels, Counter>,
    pub invalidations: Family<KindLabel, Counter>,
    pub invalidation_lag: Histogram,
    pub lambda_invocations: Family<OutcomeLabels, Counter>,
    pub lambda_duration: Histogram,
    pub sigv4_errors: Family<KindLabel, Counter>,
    sources: Mutex<Vec<PoolSource>>,
}

impl Backends {
    pub(super) fn new() -> Backends {
        Backends {
            pool_connections: Family::default(),
            pool_waiting: Family::default(),
            pool_projects: Family::default(),
            connections_open: Gauge::default(),
            connections_budget: Gauge::default(),
            pool_wait: Family::new_with_constructor(wait_buckets as fn() -> Histogram),
            pool_errors: Family::default(),
            invalidations: Family::default(),
            // 0.1 ms … ~3 s
            invalidation_lag: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            lambda_invocations: Family::default(),
            // 1 ms … ~33 s (a function may take its whole 30 s timeout)
            lambda_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            sigv4_errors: Family::default(),
            sources: Mutex::default(),
        }
    }

    /// Registers every metric under `sub` (the `supactl` prefix).
    pub(super) fn register(&self, sub: &mut Registry) {
        sub.register(
            "db_pool_connections",
            "Open connections of the per-project database pools, busy or idle",
            self.pool_connections.clone(),
        );
        sub.register(
            "db_pool_waiting",
            "Requests waiting for a database connection now",
            self.pool_waiting.clone(),
        );
        sub.register(
            "db_pool_projects",
            "Projects holding a database pool",
            self.pool_projects.clone(),
        );
        sub.register(
            "db_connections_open",
            "Database connections open across every project and service",
            self.connections_open.clone(),
        );
        sub.register(
            "db_connections_budget",
            "Connections the registry keeps open before closing idle ones of other projects",
            self.connections_budget.clone(),
        );
        sub.register(
            "db_pool_wait_seconds",
            "Time to get a database connection from a project's pool",
            self.pool_wait.clone(),
        );
        sub.register(
            "db_pool_errors",
            "Database connections that could not be had (timeout, connect)",
            self.pool_errors.clone(),
        );
        sub.register(
            "directory_invalidations",
            "Cache invalidations received over Redis",
            self.invalidations.clone(),
        );
        sub.register(
            "directory_invalidation_lag_seconds",
            "Time from the tenant-manager's publish to this process's receipt",
            self.invalidation_lag.clone(),
        );
        sub.register(
            "lambda_invocations",
            "REST requests sent to projects' Lambda Function URLs, by outcome",
            self.lambda_invocations.clone(),
        );
        sub.register(
            "lambda_invocation_duration_seconds",
            "Time to a Lambda Function URL's complete answer",
            self.lambda_duration.clone(),
        );
        sub.register(
            "lambda_sigv4_errors",
            "Function URL requests that failed for their SigV4 signature or credentials",
            self.sigv4_errors.clone(),
        );
    }

    /// Adds a connection registry to read at each scrape (see [`PoolSource`]).
    pub fn add_pool_source(&self, source: PoolSource) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    /// The wait histogram of one service's pools (kept by the caller: no label lookup per request).
    pub fn pool_wait(&self, service: &str) -> Histogram {
        self.pool_wait.get_or_create_owned(&ServiceLabels {
            service: service.to_string(),
        })
    }

    /// Counts a connection that could not be had.
    pub fn pool_error(&self, service: &str, kind: &'static str) {
        self.pool_errors
            .get_or_create(&ServiceKindLabels {
                service: service.to_string(),
                kind,
            })
            .inc();
    }

    /// Reads every live connection registry into the gauges (dropped registries are forgotten).
    pub(super) fn refresh(&self) {
        let mut by_service: BTreeMap<String, PoolSample> = BTreeMap::new();
        let (mut open, mut budget) = (0, 0);
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|source| match source() {
                None => false,
                Some((services, o, b)) => {
                    for (name, s) in services {
                        let t = by_service.entry(name).or_default();
                        t.projects += s.projects;
                        t.busy += s.busy;
                        t.idle += s.idle;
                        t.waiting += s.waiting;
                    }
                    open += o;
                    budget += b;
                    true
                }
            });
        self.pool_connections.clear();
        self.pool_waiting.clear();
        self.pool_projects.clear();
        for (service, s) in by_service {
            for (state, n) in [("busy", s.busy), ("idle", s.idle)] {
                self.pool_connections
                    .get_or_create(&PoolStateLabels {
                        service: service.clone(),
                        state,
                    })
                    .set(n);
            }
            let labels = ServiceLabels { service };
            self.pool_waiting.get_or_create(&labels).set(s.waiting);
            self.pool_projects.get_or_create(&labels).set(s.projects);
        }
        self.connections_open.set(open);
        self.connections_budget.set(budget);
    }

    /// Counts one invalidation received; `published_ms` (Unix milliseconds, in messages from a
    /// tenant-manager that stamps them) gives the lag.
    pub fn invalidation(&self, all: bool, published_ms: Option<u64>, now_ms: u64) {
        let kind = if all { "all" } else { "project" };
        self.invalidations.get_or_create(&KindLabel { kind }).inc();
        if let Some(p) = published_ms {
            // clocks of two hosts: a receipt "before" the publish is a lag of zero
            self.invalidation_lag
                .observe(now_ms.saturating_sub(p) as f64 / 1000.0);
        }
    }

    /// Counts one Function URL call by outcome, with its duration.
    pub fn lambda_invocation(&self, outcome: &'static str, seconds: f64) {
        self.lambda_invocations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.lambda_duration.observe(seconds);
    }

    /// Counts a signing failure (`credentials`, `signing`, `rejected`).
    pub fn sigv4_error(&self, kind: &'static str) {
        self.sigv4_errors.get_or_create(&KindLabel { kind }).inc();
    }
}
