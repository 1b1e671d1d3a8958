//! What each part of the stack connects to: the one declaration the security groups are derived from
//! ([`crate::reach`]) and the ECS task environments are written from ([`crate::reach::Outbound`]). A new ECS
//! service adds its arm here (one without fails every plan), and the reachability tests cover it unchanged.
//!
//! Through the NAT gateway on 443: a Fargate task pulls its image from ECR (and S3), reads its Secrets Manager
//! secrets and ships its logs over its own network interface, so every ECS service needs it; the gateway also
//! calls the REST functions' Function URLs, the tenant-manager the Lambda API, and Edge Functions fetch their
//! `npm:`/`jsr:` imports and call what they call. The REST functions need no
//! internet: Lambda pulls their image and takes their logs outside the VPC.

use super::service;
use crate::config::{Config, RestMode};
use crate::reach::peer::{Edge, Peer, REDIS_PORT};

const GATEWAY: Peer = Peer::Service("gateway");
const TENANT_MANAGER: Peer = Peer::Service("tenant-manager");
const FUNCTIONS: Peer = Peer::Service("functions");

/// The port an ECS service listens on.
fn port_of(name: &str) -> i64 {
    spec_of(name).port
}

/// The port of an ECS service's internal listener.
fn internal_port_of(name: &str) -> i64 {
    spec_of(name)
        .internal_port
        .unwrap_or_else(|| panic!("{name} has no internal listener"))
}

fn spec_of(name: &str) -> &'static super::ServiceSpec {
    service(name).unwrap_or_else(|| panic!("{name} is not an ECS service of this release"))
}

/// The connections `from` opens.
pub fn outbound(cfg: &Config, from: Peer) -> Vec<Edge> {
    let e = |to: Peer, port: i64, why: &'static str| Edge {
        from,
        to,
        port,
        why,
    };
    let platform_db = i64::from(cfg.platform_db.port);
    let worker_db = i64::from(cfg.worker_db.port);
    let lambda = cfg.compute.rest.mode == RestMode::Lambda;
    match from {
        Peer::Internet => vec![
            e(Peer::PublicAlb, 443, "clients of the projects' APIs"),
            e(Peer::PublicAlb, 80, "plain HTTP, redirected to HTTPS"),
            e(Peer::AdminAlb, 443, "operators on the admin API"),
            e(Peer::AdminAlb, 80, "plain HTTP, redirected to HTTPS"),
        ],
        Peer::PublicAlb => vec![e(
            GATEWAY,
            port_of("gateway"),
            "requests and health checks",
        )],
        Peer::AdminAlb => vec![e(
            TENANT_MANAGER,
            port_of("tenant-manager"),
            "admin API requests and health checks",
        )],
        Peer::Service("gateway") => vec![
            e(
                TENANT_MANAGER,
                port_of("tenant-manager"),
                "key and project lookups on the internal config endpoint",
            ),
            e(Peer::Redis, REDIS_PORT, "the key and project cache"),
            e(FUNCTIONS, port_of("functions"), "Edge Function invocations"),
            e(
                Peer::WorkerDb,
                worker_db,
                "project databases: auth, and REST in service mode (addresses from the project config)",
            ),
            e(
                Peer::Internet,
                443,
                if lambda {
                    "the REST functions' Function URLs; ECR, Secrets Manager and CloudWatch Logs for the task"
                } else {
                    "ECR, Secrets Manager and CloudWatch Logs for the task"
                },
            ),
            e(Peer::Internet, 465, "auth mail to a project's SMTP server (TLS)"),
            e(
                Peer::Internet,
                587,
                "auth mail to a project's SMTP server (STARTTLS)",
            ),
        ],
        Peer::Service("tenant-manager") => vec![
            e(Peer::PlatformDb, platform_db, "the platform database"),
            e(
                Peer::WorkerDb,
                worker_db,
                "the worker cluster: project databases and login roles",
            ),
            e(Peer::Redis, REDIS_PORT, "cache invalidation"),
            e(
                FUNCTIONS,
                internal_port_of("functions"),
                "function logs on the functions service's internal listener",
            ),
            e(
                Peer::Internet,
                443,
                if lambda {
                    "the Lambda API (REST functions); ECR, Secrets Manager and CloudWatch Logs for the task"
                } else {
                    "ECR, Secrets Manager and CloudWatch Logs for the task"
                },
            ),
        ],
        // user code runs here: the network it may reach besides these is cut by Deno's --deny-net (the
        // VPC's range), which security groups back up (no rule to the data tier)
        Peer::Service("functions") => vec![
            e(
                TENANT_MANAGER,
                port_of("tenant-manager"),
                "function code, environments and projects on the internal endpoint",
            ),
            e(
                Peer::Internet,
                443,
                "npm: and jsr: imports and the functions' own HTTPS calls; ECR, Secrets Manager and CloudWatch Logs for the task",
            ),
        ],
        Peer::Service(other) => panic!(
            "ECS service {other} declares no connections: add its arm to stacks/src/compute/edges.rs"
        ),
        Peer::RestFunctions => vec![
            e(
                TENANT_MANAGER,
                port_of("tenant-manager"),
                "the project's config on the internal endpoint",
            ),
            e(Peer::WorkerDb, worker_db, "the project's database"),
        ],
        // the data tier opens no connections
        Peer::PlatformDb | Peer::WorkerDb | Peer::Redis => vec![],
    }
}
