//! The process's Prometheus metrics (the `prometheus-client` crate, text exposition format): what every
//! service records, in one registry per process, rendered by whoever serves `/metrics` (admin-only: the
//! tenant-manager's admin listener, or a service's own metrics listener; never the public gateway).
//!
//! Names: `supactl_gateway_requests_total{project,route,status}`,
//! `supactl_gateway_request_duration_seconds{route}` (to the response's head),
//! `supactl_directory_lookups_total{cache}` and `supactl_directory_fetches_total{cache,outcome}` (a lookup
//! that fetched nothing was answered from the cache), `supactl_admin_requests_total{method,status}`,
//! `process_resident_memory_bytes`, `process_cpu_seconds` (a gauge, read from /proc at each scrape). Project labels are bounded
//! ([`MAX_PROJECT_LABELS`]): past it, further projects are counted under `project="other"`. Database
//! pools, invalidations and Lambda calls: [`backends`].

pub mod backends;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, RwLock};

/// Distinct `project` label values kept; the series of one more project would grow without bound.
pub const MAX_PROJECT_LABELS: usize = 5_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub project: Arc<str>,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    pub cache: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdminLabels {
    pub method: String,
    pub status: u16,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms,
    pub directory_lookups: Family<CacheLabels, Counter>,
    pub directory_fetches: Family<FetchLabels, Counter>,
    pub admin_requests: Family<AdminLabels, Counter>,
    pub backends: backends::Backends,
    rss: Gauge,
    cpu: Gauge<f64, AtomicU64>,
    /// The `project` label values in use (shared, so that counting a request allocates nothing).
    projects: RwLock<HashSet<Arc<str>>>,
}

fn latency_buckets() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets as fn() -> Histogram),
            directory_lookups: Family::default(),
            directory_fetches: Family::default(),
            admin_requests: Family::default(),
            backends: backends::Backends::new(),
            rss: Gauge::default(),
            cpu: Gauge::default(),
            projects: RwLock::default(),
            registry: Registry::default(),
        };
        let sub = registry.sub_registry_with_prefix("supactl");
        sub.register(
            "gateway_requests",
            "Requests through the gateway",
            m.requests.clone(),
        );
        sub.register(
            "gateway_request_duration_seconds",
            "Time to the response's head through the gateway",
            m.latency.clone(),
        );
        sub.register(
            "directory_lookups",
            "Project and API-key lookups",
            m.directory_lookups.clone(),
        );
        sub.register(
            "directory_fetches",
            "Lookups sent to the tenant-manager (cache misses and refreshes)",
            m.directory_fetches.clone(),
        );
        sub.register(
            "admin_requests",
            "Admin API requests",
            m.admin_requests.clone(),
        );
        m.backends.register(sub);
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory",
            m.rss.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time",
            m.cpu.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a request through the gateway (`project` None: none was resolved).
    pub fn request(&self, project: Option<&str>, route: &'static str, status: u16, seconds: f64) {
        let project = self.project_label(project.unwrap_or("-"));
        self.requests
            .get_or_create(&RequestLabels {
                project,
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// The label value of `project`: itself while fewer than [`MAX_PROJECT_LABELS`] are in use, else
    /// `other`. A known project takes only the read lock.
    fn project_label(&self, project: &str) -> Arc<str> {
        let known = self.projects.read().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = known.get(project) {
            return p.clone();
        }
        drop(known);
        let mut known = self.projects.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = known.get(project) {
            return p.clone();
        }
        if known.len() < MAX_PROJECT_LABELS {
            let p: Arc<str> = project.into();
            known.insert(p.clone());
            p
        } else {
            Arc::from("other")
        }
    }

    /// The text exposition, with the process gauges read now.
    pub fn render(&self) -> String {
        self.backends.refresh();
        if let Some((rss, cpu)) = process_usage() {
            self.rss.set(rss);
            self.cpu.set(cpu);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The response to a scrape: the text exposition with its content type.
pub fn exposition() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics().render(),
    )
}

/// `GET /metrics` for a service's own metrics listener, answering only a bearer `token` (the service token:
/// the listener is for the platform's scraper, never the public).
pub fn router(token: String) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let token = std::sync::Arc::new(token);
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: HeaderMap| {
            let token = token.clone();
            async move {
                match crate::headers::bearer(&headers) {
                    Some(t) if crate::crypto::secret_eq(t, &token) => exposition().into_response(),
                    _ => crate::error::HttpError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "metrics: send Authorization: Bearer <service token>",
                    )
                    .into_response(),
                }
            }
        }),
    )
}

/// Resident bytes and CPU seconds of this process, from /proc (Linux; None elsewhere).
fn process_usage() -> Option<(i64, f64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the command name (which may hold spaces) start at ") "
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // the kernel's USER_HZ is 100 on every Linux this runs on
    Some((pages * 4096, (utime + stime) / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_process_usage_are_rendered() {
        let m = Metrics::new();
        m.request(Some("abc"), "rest", 200, 0.004);
        m.request(Some("abc"), "rest", 200, 0.002);
        m.request(None, "none", 404, 0.0001);
        let text = m.render();
        assert!(
            text.contains(
                r#"supactl_gateway_requests_total{project="abc",route="rest",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"supactl_gateway_request_duration_seconds_count{route="rest"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"project="-",route="none",status="404"} 1"#),
            "{text}"
        );
        let rss = text
            .lines()
            .find(|l| l.starts_with("process_resident_memory_bytes "))
            .unwrap();
        assert!(
            rss.split(' ').nth(1).unwrap().parse::<f64>().unwrap() > 1e6,
            "{rss}"
        );
    }

    #[test]
    fn project_labels_are_bounded() {
        let m = Metrics::new();
        for i in 0..MAX_PROJECT_LABELS + 3 {
            m.request(Some(&format!("p{i}")), "rest", 200, 0.001);
        }
        m.request(Some("p0"), "rest", 200, 0.001);
        let text = m.render();
        assert!(
            text.contains(r#"project="other",route="rest",status="200"} 3"#),
            "{text:.300}"
        );
        assert!(text.contains(r#"project="p0",route="rest",status="200"} 2"#));
    }
}
