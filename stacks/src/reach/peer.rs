//! The parts of the stack that open or accept connections, and one connection between two of them: the
//! vocabulary the declaration of what connects to what ([`crate::compute::edges`]) is written in.

use crate::model::{ResId, Val};

/// ElastiCache's port (the replication group is created on it).
pub const REDIS_PORT: i64 = 6379;

/// A part of the stack that opens or accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// Anything outside the VPC: clients of the load balancers and, through a NAT gateway, AWS APIs, ECR, Lambda
    /// Function URLs and SMTP servers.
    Internet,
    /// The public load balancer (the gateway's).
    PublicAlb,
    /// The admin load balancer (the tenant-manager's admin API).
    AdminAlb,
    /// An ECS service of the stack, by name ([`crate::compute::SERVICES`]).
    Service(&'static str),
    /// The per-project REST Lambda functions the tenant-manager creates in the private subnets (lambda mode).
    RestFunctions,
    PlatformDb,
    WorkerDb,
    Redis,
}

impl Peer {
    /// The key of its security group (logical id `sg/<key>`, name `<prefix>-<key>`); none for the internet.
    pub fn group(self) -> Option<&'static str> {
        Some(match self {
            Peer::Internet => return None,
            Peer::PublicAlb => "alb",
            Peer::AdminAlb => "admin-alb",
            Peer::Service(name) => name,
            Peer::RestFunctions => "rest-lambda",
            Peer::PlatformDb => "platform-db",
            Peer::WorkerDb => "worker-db",
            Peer::Redis => "redis",
        })
    }

    /// A reference to its security group.
    pub fn group_ref(self) -> Val {
        let key = self.group().expect("the internet has no security group");
        Val::Ref(ResId(format!("sg/{key}")))
    }

    /// Its security group's description (AWS cannot change one in place: these are the deployed texts).
    pub fn description(self) -> String {
        match self {
            Peer::Internet => "the internet".into(),
            Peer::PublicAlb => "public load balancer in front of the gateway".into(),
            Peer::AdminAlb => {
                "admin load balancer in front of the tenant-manager's admin API".into()
            }
            Peer::Service("tenant-manager") => "tenant-manager control plane".into(),
            Peer::Service(name) => format!("{name} service"),
            Peer::RestFunctions => "per-project rest lambda functions".into(),
            Peer::PlatformDb => "platform aurora cluster".into(),
            Peer::WorkerDb => "worker aurora cluster (project databases)".into(),
            Peer::Redis => "redis key cache".into(),
        }
    }
}

/// One connection a part of the stack opens: TCP to `to` on `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: Peer,
    pub to: Peer,
    pub port: i64,
    /// What the connection is for (documentation and test messages).
    pub why: &'static str,
}
