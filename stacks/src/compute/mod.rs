//! What the compute tier's families ([`crate::kinds`]: ECR, IAM, logs, ECS, Cloud Map, load balancing, auto
//! scaling) share: the services this release deploys, the repositories and names they use. [`rules`] holds the
//! checks AWS enforces but the emulator does not; [`images`] resolves image tags to digests and checks the
//! listener certificate before anything is planned; [`edges`] declares what each part of the stack connects
//! to, from which the security groups are derived ([`crate::reach`]) and the task environments written;
//! [`outputs`] is what a deployed stack gives its operator.

pub mod edges;
pub mod env;
pub mod images;
pub mod outputs;
pub mod rules;

/// A deployed ECS service: our name, its key under `ecsTaskStack.services`, its port, and a short form for
/// names with tight length limits (target groups: 32 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub config_key: &'static str,
    pub port: i64,
    pub short: &'static str,
    /// A second listener for the rest of the stack (health, logs), which the gateway never forwards to.
    pub internal_port: Option<i64>,
    /// Whether a load balancer fronts it (a target group); otherwise it is reached over Cloud Map only.
    pub load_balanced: bool,
}

impl ServiceSpec {
    /// Where its container health check asks.
    pub fn health_port(&self) -> i64 {
        self.internal_port.unwrap_or(self.port)
    }
}

/// The services this release deploys. `kong` keeps the original's config key: our gateway replaces Kong (and
/// runs auth in-process).
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "gateway",
        config_key: "kong",
        port: 8000,
        short: "gw",
        internal_port: None,
        load_balanced: true,
    },
    ServiceSpec {
        name: "tenant-manager",
        config_key: "tenantManager",
        port: 3001,
        short: "tm",
        internal_port: None,
        load_balanced: true,
    },
    // Edge Functions: invocations from the gateway on 8081; health and logs on 8082 (its whole path space
    // on 8081 is the functions' slugs)
    ServiceSpec {
        name: "functions",
        config_key: "functionsService",
        port: 8081,
        short: "fn",
        internal_port: Some(8082),
        load_balanced: false,
    },
];

/// `ecsTaskStack.services` entries of the original that are validated but not deployed, and why.
pub const NOT_DEPLOYED: &[(&str, &str)] = &[
    (
        "postgresMeta",
        "the tenant-manager serves its reads at /admin/v1/projects/{ref}/database/*",
    ),
    (
        "studio",
        "the tenant-manager serves the dashboard at the admin URL",
    ),
    (
        "functionDeploy",
        "functions deploy through the tenant-manager's admin API and the dashboard",
    ),
    ("auth", "auth runs inside the gateway"),
];

/// The images supactl builds and deploys (one ECR repository each), as in `images/src/build.rs`'s SERVICES.
pub const REPOSITORIES: &[&str] = &["gateway", "tenant-manager", "functions", "rest-lambda"];

/// The Cloud Map private DNS namespace the services register in (`tenant-manager.supactl.local`).
pub const NAMESPACE: &str = "supactl.local";

/// Where a service answers health checks (the ALB's target group and the container health check).
pub const HEALTH_PATH: &str = "/health";

/// The spec of a deployed service by name.
pub fn service(name: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().find(|s| s.name == name)
}
