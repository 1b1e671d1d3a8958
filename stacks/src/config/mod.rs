//! The environment config file (`config.test.json`, `config.production.json`): parsed in two stages, raw serde
//! types ([`raw`]) then the validated [`Config`] via `TryFrom`. After that no code re-checks a value.
//!
//! Problems are collected, not returned one at a time: every [`Issue`] carries the JSON path, what is wrong and
//! how to fix it. Unknown keys and placeholders in fields another tier uses are [`Warning`]s.

pub mod check;
pub mod compute;
pub mod raw;

pub use compute::{ComputeConfig, RestConfig, RestMode, ServiceConfig, StorageConfig};

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use check::{
    check_capacity, check_name, check_tags, find_placeholders, is_placeholder, json_path, Checker,
};
pub use check::{Issue, Warning};
use raw::{RawConfig, RawRds};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {source} (pass --config PATH or run from the directory holding config.<env>.json)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config: {path} has {} problem(s):\n{}", issues.len(), issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

impl ConfigError {
    /// The individual problems (empty for read/JSON errors).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

/// Options that change how the file is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--region`: when given, a placeholder or missing `project.region` is not an error.
    pub region_override: Option<String>,
    /// `supactl push --env`: only the account and region matter, so other placeholders (the domain, the
    /// certificate) are warnings.
    pub images_only: bool,
}

/// A config file that passed validation, with its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub warnings: Vec<Warning>,
}

/// The validated config of the whole stack: network, data and compute tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `project.name`: the stack name (tag `supactl:stack`, prefix of every resource name).
    pub name: String,
    /// `project.environment` (tag `supactl:env`).
    pub environment: String,
    pub production: bool,
    /// `project.region`, or the `--region` override; `None` only when neither is set.
    pub region: Option<String>,
    pub account_id: String,
    pub vpc: VpcConfig,
    pub platform_db: DbConfig,
    pub worker_db: DbConfig,
    pub redis: RedisConfig,
    /// The compute tier: ECR, IAM, ECS, load balancers, REST on Lambda.
    pub compute: ComputeConfig,
    /// `tags`: applied to every resource.
    pub tags: BTreeMap<String, String>,
}

impl Config {
    /// `<name>-<environment>`, the prefix of resource names.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.name, self.environment)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VpcConfig {
    pub max_azs: usize,
    pub nat_gateways: usize,
    pub cidr: Ipv4Cidr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        if u32::from(addr) & !mask != 0 {
            return None;
        }
        Some(Self { addr, prefix })
    }

    /// The `index`-th sub-block of length `prefix` inside this block.
    pub fn subnet(&self, prefix: u8, index: u32) -> Ipv4Cidr {
        let size = 1u64 << (32 - prefix);
        let base = u64::from(u32::from(self.addr)) + size * u64::from(index);
        Ipv4Cidr {
            addr: Ipv4Addr::from(base as u32),
            prefix,
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DbConfig {
    /// Which cluster: `platform` or `worker` (logical id part).
    pub role: &'static str,
    pub cluster_identifier: String,
    pub engine: String,
    pub engine_version: String,
    /// Parameter group family, e.g. `aurora-postgresql16`.
    pub family: String,
    pub database_name: String,
    pub port: i32,
    pub min_acu: f64,
    pub max_acu: f64,
    pub readers: usize,
    pub deletion_protection: bool,
    pub backup_retention_days: i32,
    /// The worker needs `rds.logical_replication=1` (realtime).
    pub logical_replication: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub node_type: String,
    pub nodes: usize,
    pub multi_az: bool,
}

impl RedisConfig {
    pub fn automatic_failover(&self) -> bool {
        self.nodes >= 2
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, opts)
}

/// Parses and validates config text (`path` is only used in messages).
pub fn parse(text: &str, path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let json_err = |e: serde_json::Error| ConfigError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
    let mut warnings = Vec::new();
    let mut issues = Vec::new();

    // unknown keys: warned with their path, never fatal
    let mut unknown = Vec::new();
    let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(json_path(&p));
    let raw: RawConfig =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&value, &mut on_unknown))
            .map_err(|e| ConfigError::Invalid {
                path: path.to_path_buf(),
                issues: vec![Issue {
                    path: e.path().to_string(),
                    message: e.inner().to_string(),
                    fix: "use the type shown in config.test.json for this field".into(),
                }],
            })?;
    for p in unknown {
        warnings.push(Issue {
            path: p,
            message: "unknown key, ignored".into(),
            fix: "remove it or check its spelling against config.test.json".into(),
        });
    }

    // placeholders such as <your-aws-account-id>
    let mut placeholders = Vec::new();
    find_placeholders(&value, String::new(), &mut placeholders);
    for (p, v) in placeholders {
        if p == "project.region" && opts.region_override.is_some() {
            continue;
        }
        let issue = Issue {
            message: format!("placeholder {v} is not filled in"),
            fix: if p == "project.region" {
                format!("replace {v} with the region, e.g. \"eu-west-1\", or pass --region")
            } else {
                format!("replace {v} with the real value")
            },
            path: p,
        };
        if opts.images_only && !issue.path.starts_with("project.") {
            warnings.push(issue);
        } else {
            issues.push(issue);
        }
    }
    warnings.extend(compute::service_warnings(&value));

    match Config::try_from(Unvalidated {
        raw,
        region_override: opts.region_override.clone(),
    }) {
        Ok(config) if issues.is_empty() => Ok(Loaded {
            path: path.to_path_buf(),
            config,
            warnings,
        }),
        Ok(_) => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            issues,
        }),
        Err(mut more) => {
            // a placeholder also fails its field's own check: report it once
            more.retain(|m| !issues.iter().any(|i| i.path == m.path));
            issues.extend(more);
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                issues,
            })
        }
    }
}

/// Stage-one input of [`Config::try_from`].
pub struct Unvalidated {
    pub raw: RawConfig,
    pub region_override: Option<String>,
}

/// Node families that support Redis 7.1 with encryption in transit and at rest.
const REDIS_FAMILIES: &[&str] = &[
    "t3", "t4g", "m5", "m6g", "m7g", "r5", "r6g", "r6gd", "r7g", "c7gn",
];
const REDIS_BURSTABLE_SIZES: &[&str] = &["micro", "small", "medium"];

fn check_db(
    c: &mut Checker,
    raw: Option<&RawRds>,
    key: &str,
    role: &'static str,
    ctx: &DbCtx,
) -> Option<DbConfig> {
    let Some(r) = raw else {
        c.err(
            key,
            "is missing",
            format!("add a \"{key}\" object like the one in config.test.json"),
        );
        return None;
    };
    let p = |f: &str| format!("{key}.{f}");
    let engine = r
        .engine
        .clone()
        .unwrap_or_else(|| "aurora-postgresql".into());
    if engine != "aurora-postgresql" {
        c.err(
            &p("engine"),
            format!("engine {engine:?} is not supported"),
            "use \"aurora-postgresql\"",
        );
    }
    let engine_version = c.required(
        &r.engine_version,
        &p("engineVersion"),
        "set it, e.g. \"16.6\"",
    );
    let family = engine_version.as_deref().and_then(|v| {
        let major = v.split('.').next()?;
        let n: u32 = major.parse().ok()?;
        (13..=17)
            .contains(&n)
            .then(|| format!("aurora-postgresql{n}"))
    });
    if engine_version.is_some() && family.is_none() {
        c.err(
            &p("engineVersion"),
            format!(
                "{:?} is not an Aurora PostgreSQL version supporting Serverless v2",
                engine_version.as_deref().unwrap_or("")
            ),
            "use a version like \"16.6\" (major 13 to 17)",
        );
    }
    let database_name = c.required(
        &r.database_name,
        &p("databaseName"),
        "set it, e.g. \"postgres\"",
    );
    if let Some(d) = &database_name {
        let ok = !d.is_empty()
            && d.len() <= 63
            && d.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && d.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !ok {
            c.err(
                &p("databaseName"),
                format!("{d:?} is not a valid database name"),
                "use 1-63 letters, digits and underscores, starting with a letter",
            );
        }
    }
    let port = r.port.unwrap_or(5432);
    if !(1150..=65535).contains(&port) {
        c.err(
            &p("port"),
            format!("port {port} is out of range"),
            "use a port between 1150 and 65535 (usually 5432)",
        );
    }
    let (min, max) = check_capacity(c, r, &p);
    let readers = r.readers.unwrap_or(if ctx.production { 1 } else { 0 });
    if !(0..=15).contains(&readers) {
        c.err(
            &p("readers"),
            format!("{readers} readers is out of range"),
            "use 0 to 15 reader instances",
        );
    }
    let retention = r
        .backup_retention_days
        .unwrap_or(if ctx.production { 30 } else { 7 });
    if !(1..=35).contains(&retention) {
        c.err(
            &p("backupRetentionDays"),
            format!("{retention} days is out of range"),
            "use 1 to 35 days",
        );
    }
    let cluster_identifier = match &r.cluster_identifier {
        Some(id) => {
            check_name(c, &p("clusterIdentifier"), id, 50);
            id.clone()
        }
        // derived from project.name and environment, which are checked themselves
        None => format!("{}-{role}", ctx.prefix),
    };
    Some(DbConfig {
        role,
        cluster_identifier,
        engine,
        engine_version: engine_version?,
        family: family?,
        database_name: database_name?,
        port: port as i32,
        min_acu: min?,
        max_acu: max?,
        readers: readers.clamp(0, 15) as usize,
        deletion_protection: r.deletion_protection.unwrap_or(ctx.production),
        backup_retention_days: retention as i32,
        logical_replication: role == "worker",
    })
}

/// `project.region` (or `--region`): an AWS region name; a placeholder counts as unset.
fn check_region(
    c: &mut Checker,
    region_override: Option<String>,
    project: &raw::RawProject,
) -> Option<String> {
    let region = region_override
        .or(project.region.clone())
        .filter(|r| !is_placeholder(r));
    if let Some(r) = &region {
        let ok = r.split('-').count() >= 3
            && r.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
        if !ok {
            c.err(
                "project.region",
                format!("{r:?} is not an AWS region name"),
                "use a region such as \"eu-west-1\"",
            );
        }
    } else if project.region.is_none() {
        c.err(
            "project.region",
            "is missing",
            "set the AWS region, e.g. \"eu-west-1\", or pass --region",
        );
    }
    region
}

/// `project.accountId`: 12 digits (or a placeholder).
fn check_account(c: &mut Checker, project: &raw::RawProject) -> Option<String> {
    let account_id = c.required(
        &project.account_id,
        "project.accountId",
        "set the 12-digit AWS account id",
    );
    if let Some(a) = &account_id {
        let digits12 = a.len() == 12 && a.chars().all(|ch| ch.is_ascii_digit());
        if !(is_placeholder(a) || digits12) {
            c.err(
                "project.accountId",
                format!("{a:?} is not a 12-digit AWS account id"),
                "copy it from `aws sts get-caller-identity`",
            );
        }
    }
    account_id
}

/// `infraStack.vpc`: the number of AZs, of NAT gateways, and the VPC's block.
fn check_vpc(c: &mut Checker, vpc: raw::RawVpc) -> (i64, i64, Option<Ipv4Cidr>) {
    let max_azs = vpc.max_azs.unwrap_or(2);
    if !(1..=6).contains(&max_azs) {
        c.err(
            "infraStack.vpc.maxAzs",
            format!("{max_azs} is out of range"),
            "use 1 to 6 availability zones (2 or 3 is usual)",
        );
    }
    let nat = vpc.nat_gateways.unwrap_or(1);
    if nat < 0 {
        c.err(
            "infraStack.vpc.natGateways",
            format!("{nat} is negative"),
            "use 0 (no internet egress from private subnets) up to maxAzs",
        );
    } else if nat > max_azs {
        c.err(
            "infraStack.vpc.natGateways",
            format!("must be ≤ maxAzs (got {nat} > {max_azs})"),
            "lower natGateways or raise maxAzs: each NAT gateway lives in its own AZ",
        );
    }
    let cidr_text = vpc.cidr.clone().unwrap_or_else(|| "10.0.0.0/16".into());
    let cidr = Ipv4Cidr::parse(&cidr_text);
    match cidr {
        None => c.err(
            "infraStack.vpc.cidr",
            format!("{cidr_text:?} is not an IPv4 network"),
            "use a block like \"10.0.0.0/16\" (host bits zero)",
        ),
        Some(b) if !(16..=24).contains(&b.prefix) => c.err(
            "infraStack.vpc.cidr",
            format!("/{} is not allowed for a VPC here", b.prefix),
            "use a prefix between /16 and /24",
        ),
        _ => {}
    }
    (max_azs, nat, cidr)
}

/// `redis`: a node type that supports Redis 7.1 with encryption, the node count, Multi-AZ.
fn check_redis(
    c: &mut Checker,
    redis: raw::RawRedis,
    production: bool,
    prefix: &str,
) -> RedisConfig {
    let node_type = redis.node_type.clone().unwrap_or_else(|| {
        if production {
            "cache.r6g.large"
        } else {
            "cache.t3.micro"
        }
        .into()
    });
    let parts: Vec<&str> = node_type.split('.').collect();
    let family_ok = parts.len() == 3 && parts[0] == "cache" && REDIS_FAMILIES.contains(&parts[1]);
    if !family_ok {
        c.err(
            "redis.nodeType",
            format!("{node_type:?} is not a node type that supports Redis 7.1 with encryption"),
            "use a current node type such as cache.t4g.micro, cache.t3.micro, cache.m6g.large or cache.r6g.large",
        );
    } else if parts[1].starts_with('t') && !REDIS_BURSTABLE_SIZES.contains(&parts[2]) {
        c.err(
            "redis.nodeType",
            format!("burstable family {} has no size {:?}", parts[1], parts[2]),
            "use micro, small or medium",
        );
    }
    let nodes = redis
        .num_cache_clusters
        .unwrap_or(if production { 2 } else { 1 });
    if !(1..=6).contains(&nodes) {
        c.err(
            "redis.numCacheClusters",
            format!("{nodes} is out of range"),
            "use 1 (primary only) to 6 (primary + 5 replicas)",
        );
    }
    let multi_az = redis.multi_az.unwrap_or(nodes >= 2);
    if multi_az && nodes < 2 {
        c.err(
            "redis.multiAz",
            format!("Multi-AZ needs at least 2 nodes (got {nodes})"),
            "set numCacheClusters to 2 or more, or multiAz to false",
        );
    }
    let rg_id = format!("{prefix}-redis");
    if rg_id.len() > 40 {
        c.err(
            "project.name",
            format!("the Redis replication group id {rg_id:?} would be longer than 40 characters"),
            "shorten project.name or project.environment",
        );
    }
    RedisConfig {
        node_type,
        nodes: nodes as usize,
        multi_az,
    }
}

struct DbCtx {
    production: bool,
    prefix: String,
}

impl TryFrom<Unvalidated> for Config {
    type Error = Vec<Issue>;

    fn try_from(u: Unvalidated) -> Result<Self, Self::Error> {
        let mut raw = u.raw;
        let mut c = Checker { issues: Vec::new() };
        let project = raw.project.take().unwrap_or_default();
        let name = c.required(
            &project.name,
            "project.name",
            "set the stack name, e.g. \"supabase-on-aws\"",
        );
        if let Some(n) = &name {
            check_name(&mut c, "project.name", n, 24);
        }
        let environment = c.required(
            &project.environment,
            "project.environment",
            "set \"test\" or \"production\"",
        );
        if let Some(e) = &environment {
            check_name(&mut c, "project.environment", e, 12);
        }
        let production = environment.as_deref() == Some("production");
        let region = check_region(&mut c, u.region_override.clone(), &project);
        let account_id = check_account(&mut c, &project);
        let prefix = format!(
            "{}-{}",
            name.as_deref().unwrap_or("x"),
            environment.as_deref().unwrap_or("x")
        );

        let mut infra = raw.infra_stack.take().unwrap_or_default();
        let (max_azs, nat, cidr) = check_vpc(&mut c, infra.vpc.take().unwrap_or_default());
        let ctx = DbCtx {
            production,
            prefix: prefix.clone(),
        };
        let platform_db = check_db(&mut c, raw.rds.as_ref(), "rds", "platform", &ctx);
        let worker_db = check_db(&mut c, raw.worker_rds.as_ref(), "workerRds", "worker", &ctx);
        if let (Some(p), Some(w)) = (&platform_db, &worker_db) {
            if p.cluster_identifier == w.cluster_identifier {
                c.err(
                    "workerRds.clusterIdentifier",
                    "is the same as the platform cluster's",
                    "give the worker cluster its own identifier",
                );
            }
        }

        let compute = compute::check(
            &mut c,
            infra,
            &mut raw,
            &compute::Ctx {
                prefix: &prefix,
                production,
                region: region.as_deref(),
                max_azs,
                nat_gateways: nat,
            },
        );

        let redis = check_redis(
            &mut c,
            raw.redis.take().unwrap_or_default(),
            production,
            &prefix,
        );

        let tags = raw.tags.take().unwrap_or_default();
        check_tags(&mut c, &tags);

        if !c.issues.is_empty() {
            return Err(c.issues);
        }
        // every Option below was checked above
        let (
            Some(name),
            Some(environment),
            Some(account_id),
            Some(cidr),
            Some(platform_db),
            Some(worker_db),
            Some(compute),
        ) = (
            name,
            environment,
            account_id,
            cidr,
            platform_db,
            worker_db,
            compute,
        )
        else {
            return Err(vec![Issue {
                path: "$".into(),
                message: "incomplete config".into(),
                fix: "see the other messages".into(),
            }]);
        };
        Ok(Config {
            name,
            environment,
            production,
            region,
            account_id,
            vpc: VpcConfig {
                max_azs: max_azs as usize,
                nat_gateways: nat as usize,
                cidr,
            },
            platform_db,
            worker_db,
            redis,
            compute,
            tags,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
