//! Validation of the compute tier's part of the config: `ecsTaskStack`, `domain`, `secrets`, `rest`, and the
//! cluster, load balancer, certificate and ECR parts of `infraStack`.

use std::collections::BTreeMap;

use super::check::{is_placeholder, Checker, Issue, Warning};
use super::raw::{RawConfig, RawEcsService, RawInfraStack};
use crate::compute::rules::fargate_size;
use crate::compute::{NOT_DEPLOYED, REPOSITORIES, SERVICES};

/// The validated compute tier.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeConfig {
    /// `infraStack.cluster.name`, default `<name>-<environment>`.
    pub cluster_name: String,
    /// `infraStack.loadBalancer.name`, default `<name>-<environment>-pub`: the public ALB (gateway).
    pub public_alb_name: String,
    /// `infraStack.studioLoadBalancer.name`, default `<name>-<environment>-admin`: the admin ALB (the
    /// tenant-manager's admin API).
    pub admin_alb_name: String,
    /// `infraStack.certificate.arn`: the ACM certificate of both HTTPS listeners.
    pub certificate_arn: String,
    pub base_domain: String,
    pub api_subdomain: String,
    pub admin_subdomain: String,
    /// `secrets.prefix`: Secrets Manager names the tenant-manager may manage.
    pub secrets_prefix: String,
    /// `infraStack.ecr.repositories[<service>].uri`: images taken from there instead of our repository.
    pub ecr_overrides: BTreeMap<String, String>,
    /// The deployed ECS services, in [`SERVICES`] order.
    pub services: Vec<ServiceConfig>,
    pub rest: RestConfig,
    pub log_retention_days: i32,
    /// `storage`: the environment's storage bucket.
    pub storage: StorageConfig,
}

/// `storage`: how the environment's storage bucket is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `storage.kmsKeyArn`: default encryption with this KMS key; None: SSE-S3 (AES256).
    pub kms_key_arn: Option<String>,
    /// `storage.abortIncompleteUploadDays`: incomplete multipart uploads are aborted after this many days.
    pub abort_incomplete_upload_days: i32,
}

impl ComputeConfig {
    /// The config of a deployed service by its name (`gateway`, `tenant-manager`).
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }
    /// `https://{apiSubdomain}.{baseDomain}`.
    pub fn api_url(&self) -> String {
        format!("https://{}.{}", self.api_subdomain, self.base_domain)
    }
    /// `https://{adminSubdomain}.{baseDomain}`.
    pub fn admin_url(&self) -> String {
        format!("https://{}.{}", self.admin_subdomain, self.base_domain)
    }
    /// A project's URL, with `{ref}` in it.
    pub fn project_url_template(&self) -> String {
        format!("https://{{ref}}.{}", self.base_domain)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// Our service name (`gateway`, `tenant-manager`).
    pub name: &'static str,
    /// Its key under `ecsTaskStack.services` (`kong`, `tenantManager`).
    pub config_key: &'static str,
    pub cpu: i64,
    pub memory: i64,
    pub desired_count: i64,
    pub min_count: i64,
    pub max_count: i64,
}

impl ServiceConfig {
    /// Autoscaling is on when the range is not a single value.
    pub fn autoscaled(&self) -> bool {
        self.min_count < self.max_count
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestMode {
    /// One Lambda function per project behind a Function URL (the original's design).
    Lambda,
    /// REST inside the gateway process.
    Service,
}

impl RestMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RestMode::Lambda => "lambda",
            RestMode::Service => "service",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestConfig {
    pub mode: RestMode,
    pub memory_mb: i64,
    pub timeout_seconds: i64,
}

/// CloudWatch Logs' allowed retention periods.
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn elb_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.starts_with("internal-")
}

pub(super) struct Ctx<'a> {
    /// `<name>-<environment>`: the default names derive from it, so two stacks can share an account.
    pub prefix: &'a str,
    pub production: bool,
    pub region: Option<&'a str>,
    pub max_azs: i64,
    pub nat_gateways: i64,
}

/// Checks the compute tier's fields; returns the validated part (when its own fields are valid) and warnings.
pub(super) fn check(
    c: &mut Checker,
    infra: RawInfraStack,
    raw: &mut RawConfig,
    ctx: &Ctx<'_>,
) -> Option<ComputeConfig> {
    let before = c.issues.len();
    let name_of = |n: Option<super::raw::RawNamed>| n.and_then(|n| n.name);

    let cluster_name = name_of(infra.cluster).unwrap_or_else(|| ctx.prefix.to_string());
    let ok = !cluster_name.is_empty()
        && cluster_name.len() <= 255
        && cluster_name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !ok {
        c.err(
            "infraStack.cluster.name",
            format!("{cluster_name:?} is not a valid ECS cluster name"),
            "use up to 255 letters, digits, hyphens and underscores",
        );
    }
    let public_alb_name = name_of(infra.load_balancer);
    let admin_alb_name = name_of(infra.studio_load_balancer);
    let derived = [public_alb_name.is_none(), admin_alb_name.is_none()];
    let public_alb_name = public_alb_name.unwrap_or_else(|| format!("{}-pub", ctx.prefix));
    let admin_alb_name = admin_alb_name.unwrap_or_else(|| format!("{}-admin", ctx.prefix));
    for ((path, n), derived) in [
        ("infraStack.loadBalancer.name", &public_alb_name),
        ("infraStack.studioLoadBalancer.name", &admin_alb_name),
    ]
    .into_iter()
    .zip(derived)
    {
        // a derived name's characters are project.name's, checked there
        if derived {
            if n.len() > 32 {
                c.err(
                    path,
                    format!("the default name {n:?} (from project.name and environment) is longer than a load balancer name's 32 characters"),
                    "set the name here, or shorten project.name",
                );
            }
        } else if !elb_name_ok(n) {
            c.err(
                path,
                format!("{n:?} is not a valid load balancer name"),
                "use 1-32 letters, digits and hyphens, not starting or ending with a hyphen nor with \"internal-\"",
            );
        }
    }
    if public_alb_name == admin_alb_name {
        c.err(
            "infraStack.studioLoadBalancer.name",
            "is the same as infraStack.loadBalancer.name",
            "give the admin load balancer its own name",
        );
    }
    if (1..=6).contains(&ctx.max_azs) && ctx.nat_gateways == 0 {
        c.err(
            "infraStack.vpc.natGateways",
            "the ECS tasks and REST functions run in the private subnets and reach ECR, Secrets Manager and CloudWatch Logs through a NAT gateway; with none they cannot start",
            "set natGateways to 1 or more",
        );
    }
    if ctx.max_azs == 1 {
        c.err(
            "infraStack.vpc.maxAzs",
            "an application load balancer needs subnets in at least 2 availability zones, maxAzs is 1",
            "set maxAzs to 2 or more",
        );
    }

    let certificate_arn = infra.certificate.and_then(|x| x.arn);
    check_certificate(c, certificate_arn.as_deref(), ctx.region);

    let ecr_overrides = check_ecr_overrides(c, infra.ecr.and_then(|e| e.repositories));

    let log_retention_days =
        infra
            .log_retention_days
            .unwrap_or(if ctx.production { 90 } else { 30 });
    if !RETENTION_DAYS.contains(&log_retention_days) {
        c.err(
            "infraStack.logRetentionDays",
            format!("{log_retention_days} is not a CloudWatch Logs retention period"),
            "use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        );
    }

    let (base_domain, api_subdomain, admin_subdomain) =
        check_domain(c, raw.domain.take().unwrap_or_default());

    let secrets_prefix = check_secrets_prefix(c, raw.secrets.take().and_then(|s| s.prefix));

    let rest = check_rest(c, raw.rest.take().unwrap_or_default());

    let storage = check_storage(c, raw.storage.take().unwrap_or_default(), ctx.region);

    let services = check_services(c, raw.ecs_task_stack.take().and_then(|e| e.services));

    if c.issues.len() > before {
        return None;
    }
    Some(ComputeConfig {
        cluster_name,
        public_alb_name,
        admin_alb_name,
        certificate_arn: certificate_arn?,
        base_domain: base_domain?,
        api_subdomain,
        admin_subdomain,
        secrets_prefix,
        ecr_overrides,
        services,
        rest,
        log_retention_days: log_retention_days as i32,
        storage,
    })
}

/// `infraStack.certificate.arn`: an ACM certificate ARN in the load balancers' region.
fn check_certificate(c: &mut Checker, certificate_arn: Option<&str>, region: Option<&str>) {
    match certificate_arn {
        None => c.err(
            "infraStack.certificate.arn",
            "is missing",
            "set the ARN of an ISSUED ACM certificate for *.<baseDomain> in the stack's region",
        ),
        Some(a) if is_placeholder(a) => {}
        Some(a) => {
            let parts: Vec<&str> = a.split(':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == "acm"
                && parts[5].starts_with("certificate/");
            if !ok {
                c.err(
                    "infraStack.certificate.arn",
                    format!("{a:?} is not an ACM certificate ARN"),
                    "copy the ARN from `aws acm list-certificates` (arn:aws:acm:<region>:<account>:certificate/<id>)",
                );
            } else if let Some(r) = region {
                if parts[3] != r {
                    c.err(
                        "infraStack.certificate.arn",
                        format!(
                            "the certificate is in region {}, the load balancers in {r}",
                            parts[3]
                        ),
                        format!("request or import the certificate in {r}: an ALB can only use one from its own region"),
                    );
                }
            }
        }
    }
}

/// `infraStack.ecr.repositories`: images pulled from elsewhere than the stack's own repositories.
fn check_ecr_overrides(
    c: &mut Checker,
    repositories: Option<BTreeMap<String, super::raw::RawEcrRepository>>,
) -> BTreeMap<String, String> {
    let mut ecr_overrides = BTreeMap::new();
    for (k, v) in repositories.unwrap_or_default() {
        let path = format!("infraStack.ecr.repositories.{k}");
        if !REPOSITORIES.contains(&k.as_str()) {
            c.err(
                &path,
                format!("{k:?} is not an image supactl deploys"),
                format!("use one of {}", REPOSITORIES.join(", ")),
            );
            continue;
        }
        match v.uri {
            Some(u) if !u.is_empty() && !u.contains("://") && u.contains('/') => {
                ecr_overrides.insert(k, u);
            }
            Some(u) => c.err(
                &format!("{path}.uri"),
                format!("{u:?} is not an image repository"),
                "use HOST/REPOSITORY (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/gateway), optionally @sha256:<digest>",
            ),
            None => c.err(
                &format!("{path}.uri"),
                "is missing",
                "set the repository URI, or remove the entry to use the stack's own repository",
            ),
        }
    }
    ecr_overrides
}

/// `domain`: the base domain and the API and admin hosts under it.
fn check_domain(
    c: &mut Checker,
    domain: super::raw::RawDomain,
) -> (Option<String>, String, String) {
    let base_domain = domain.base_domain;
    match &base_domain {
        None => c.err(
            "domain.baseDomain",
            "is missing",
            "set the domain whose subdomains serve the projects, e.g. \"supabase.example.com\"",
        ),
        Some(d) if is_placeholder(d) => {}
        Some(d) => {
            let labels: Vec<&str> = d.split('.').collect();
            if labels.len() < 2 || d.len() > 200 || !labels.iter().all(|l| is_label(l)) {
                c.err(
                    "domain.baseDomain",
                    format!("{d:?} is not a lowercase DNS name"),
                    "use a name such as \"supabase.example.com\" (no scheme, no trailing dot)",
                );
            }
        }
    }
    let api_subdomain = domain.api_subdomain.unwrap_or_else(|| "api".into());
    let admin_subdomain = domain.admin_subdomain.unwrap_or_else(|| "admin".into());
    for (path, l) in [
        ("domain.apiSubdomain", &api_subdomain),
        ("domain.adminSubdomain", &admin_subdomain),
    ] {
        if !is_label(l) {
            c.err(
                path,
                format!("{l:?} is not a DNS label"),
                "use lowercase letters, digits and hyphens (one label, no dots)",
            );
        }
    }
    if api_subdomain == admin_subdomain {
        c.err(
            "domain.adminSubdomain",
            "is the same as domain.apiSubdomain",
            "give the admin host its own name",
        );
    }
    (base_domain, api_subdomain, admin_subdomain)
}

/// `secrets.prefix`: where the tenant-manager keeps project secrets.
fn check_secrets_prefix(c: &mut Checker, prefix: Option<String>) -> String {
    let secrets_prefix = prefix.unwrap_or_else(|| "postgrest/".into());
    let ok = !secrets_prefix.is_empty()
        && secrets_prefix.len() <= 256
        && secrets_prefix
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch));
    if !ok {
        c.err(
            "secrets.prefix",
            format!("{secrets_prefix:?} is not a Secrets Manager name prefix"),
            "use letters, digits and /_+=.@- (e.g. \"postgrest/\")",
        );
    }
    secrets_prefix
}

/// `storage`: a KMS key ARN in the stack's region (when given) and the days before an incomplete upload is
/// aborted.
fn check_storage(
    c: &mut Checker,
    raw: super::raw::RawStorage,
    region: Option<&str>,
) -> StorageConfig {
    if let Some(arn) = &raw.kms_key_arn {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "kms"
            && region.is_none_or(|r| parts[3] == r)
            // a key, not an alias: the gateway's role is granted the key itself
            && parts[5].starts_with("key/");
        if !ok {
            c.err(
                "storage.kmsKeyArn",
                format!("{arn:?} is not a KMS key ARN in the stack's region"),
                "use arn:aws:kms:<region>:<account>:key/<id>, or leave it out for SSE-S3",
            );
        }
    }
    let days = raw.abort_incomplete_upload_days.unwrap_or(7);
    if !(1..=365).contains(&days) {
        c.err(
            "storage.abortIncompleteUploadDays",
            format!("{days} is outside 1 to 365 days"),
            "use a number of days from 1 to 365 (default 7)",
        );
    }
    StorageConfig {
        kms_key_arn: raw.kms_key_arn,
        abort_incomplete_upload_days: days.clamp(1, 365) as i32,
    }
}

/// `rest`: the REST mode and, in lambda mode, the functions' size.
fn check_rest(c: &mut Checker, rest: super::raw::RawRest) -> RestConfig {
    let mode = match rest.mode.as_deref() {
        None | Some("lambda") => RestMode::Lambda,
        Some("service") => RestMode::Service,
        Some(m) => {
            c.err(
                "rest.mode",
                format!("{m:?} is not a REST mode"),
                "use \"lambda\" (one function per project) or \"service\" (inside the gateway)",
            );
            RestMode::Lambda
        }
    };
    let memory_mb = rest.memory_mb.unwrap_or(512);
    if !(128..=10240).contains(&memory_mb) {
        c.err(
            "rest.memoryMb",
            format!("{memory_mb} MB is outside Lambda's range"),
            "use 128 to 10240 MB",
        );
    }
    let timeout_seconds = rest.timeout_seconds.unwrap_or(30);
    if !(1..=900).contains(&timeout_seconds) {
        c.err(
            "rest.timeoutSeconds",
            format!("{timeout_seconds} s is outside Lambda's range"),
            "use 1 to 900 seconds",
        );
    }
    RestConfig {
        mode,
        memory_mb,
        timeout_seconds,
    }
}

/// `ecsTaskStack.services`: every deployed service sized; entries of services not deployed are checked too.
fn check_services(
    c: &mut Checker,
    raw_services: Option<BTreeMap<String, RawEcsService>>,
) -> Vec<ServiceConfig> {
    let mut raw_services = raw_services.unwrap_or_default();
    let mut services = Vec::new();
    for spec in SERVICES {
        let path = format!("ecsTaskStack.services.{}", spec.config_key);
        match raw_services.remove(spec.config_key) {
            None => c.err(
                &path,
                "is missing",
                format!(
                    "add {{\"cpu\": 512, \"memory\": 1024, \"desiredCount\": 1}} (it sizes the {} service)",
                    spec.name
                ),
            ),
            Some(r) => {
                if let Some(s) = check_service(c, &path, &r) {
                    services.push(ServiceConfig {
                        name: spec.name,
                        config_key: spec.config_key,
                        cpu: s.0,
                        memory: s.1,
                        desired_count: s.2,
                        min_count: s.3,
                        max_count: s.4,
                    });
                }
            }
        }
    }
    for (key, r) in raw_services {
        if NOT_DEPLOYED.iter().any(|(k, _)| *k == key) {
            check_service(c, &format!("ecsTaskStack.services.{key}"), &r);
        }
    }
    services
}

/// (cpu, memory, desired, min, max) of one service entry.
fn check_service(
    c: &mut Checker,
    path: &str,
    r: &RawEcsService,
) -> Option<(i64, i64, i64, i64, i64)> {
    let before = c.issues.len();
    let p = |f: &str| format!("{path}.{f}");
    let cpu = c.required(&r.cpu, &p("cpu"), "set the task's CPU units, e.g. 512");
    let memory = c.required(
        &r.memory,
        &p("memory"),
        "set the task's memory in MiB, e.g. 1024",
    );
    if let (Some(cpu), Some(memory)) = (cpu, memory) {
        if let Err(m) = fargate_size(cpu, memory) {
            let path = if m.starts_with("cpu") {
                p("cpu")
            } else {
                p("memory")
            };
            c.err(&path, m, "pick a CPU/memory pair from the Fargate table");
        }
    }
    let desired = r.desired_count.unwrap_or(1);
    if !(0..=1000).contains(&desired) {
        c.err(
            &p("desiredCount"),
            format!("{desired} tasks is out of range"),
            "use 0 to 1000",
        );
    }
    let min = r.min_count.unwrap_or(desired);
    let max = r.max_count.unwrap_or(desired.max(min));
    if !(0..=1000).contains(&min) || !(0..=1000).contains(&max) {
        c.err(
            &p("minCount"),
            format!("the range {min}..{max} is out of bounds"),
            "use counts between 0 and 1000",
        );
    } else if min > max {
        c.err(
            &p("maxCount"),
            format!("must be ≥ minCount (got {max} < {min})"),
            "raise maxCount or lower minCount",
        );
    } else if !(min..=max).contains(&desired) {
        c.err(
            &p("desiredCount"),
            format!("{desired} is outside minCount..maxCount ({min}..{max})"),
            "set desiredCount between minCount and maxCount",
        );
    }
    if c.issues.len() > before {
        return None;
    }
    Some((cpu?, memory?, desired, min, max))
}

/// Warnings for `ecsTaskStack.services` entries that are validated but not deployed, or unknown.
pub(super) fn service_warnings(value: &serde_json::Value) -> Vec<Warning> {
    let mut out = Vec::new();
    let Some(services) = value
        .get("ecsTaskStack")
        .and_then(|e| e.get("services"))
        .and_then(|s| s.as_object())
    else {
        return out;
    };
    for key in services.keys() {
        if SERVICES.iter().any(|s| s.config_key == key) {
            continue;
        }
        let path = format!("ecsTaskStack.services.{key}");
        match NOT_DEPLOYED.iter().find(|(k, _)| k == key) {
            Some((_, why)) => out.push(Issue {
                path,
                message: format!("not deployed in this release ({why})"),
                fix: "nothing to do; the entry is validated and kept for when the service ships"
                    .into(),
            }),
            None => out.push(Issue {
                path,
                message: "unknown service, ignored".into(),
                fix: format!(
                    "use one of {}",
                    SERVICES
                        .iter()
                        .map(|s| s.config_key)
                        .chain(NOT_DEPLOYED.iter().map(|(k, _)| *k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    out
}
