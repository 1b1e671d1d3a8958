//! The resource families, one module each: its desired state, observation, replace rules, create, update,
//! tag and delete ([`crate::family::Family`]). This module dispatches over the fixed enum of families; the
//! engine ([`crate::desired`], [`crate::observe`], [`crate::plan`], [`crate::apply`]) calls only it.

pub mod account;
pub mod autoscaling;
pub mod discovery;
pub mod ecr;
pub mod ecs;
pub mod elasticache;
pub mod elb;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod network;
pub mod rds;
pub mod secrets;
pub mod storage;

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::config::Config;
use crate::family::ctx::Ctx;
use crate::family::{Created, Family};
use crate::model::{Desired, FieldChange, Kind, Observed};
use crate::Error;

/// The families, each owning a fixed set of kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fam {
    Secrets,
    Network,
    Rds,
    Elasticache,
    Ecr,
    Logs,
    Iam,
    Ecs,
    Discovery,
    Elb,
    Autoscaling,
    Lambda,
    Storage,
}

impl Fam {
    /// Every family; observation reports the first error in this order.
    pub const ALL: [Fam; 13] = [
        Fam::Network,
        Fam::Secrets,
        Fam::Rds,
        Fam::Elasticache,
        Fam::Ecr,
        Fam::Logs,
        Fam::Iam,
        Fam::Ecs,
        Fam::Discovery,
        Fam::Elb,
        Fam::Autoscaling,
        Fam::Lambda,
        Fam::Storage,
    ];
}

/// The family that owns `kind`.
pub fn fam(kind: Kind) -> Fam {
    match kind {
        Kind::Secret => Fam::Secrets,
        Kind::Vpc
        | Kind::Subnet
        | Kind::InternetGateway
        | Kind::ElasticIp
        | Kind::NatGateway
        | Kind::RouteTable
        | Kind::VpcEndpoint
        | Kind::SecurityGroup
        | Kind::SecurityGroupRule => Fam::Network,
        Kind::DbSubnetGroup
        | Kind::DbClusterParameterGroup
        | Kind::DbCluster
        | Kind::DbInstance => Fam::Rds,
        Kind::CacheSubnetGroup | Kind::ReplicationGroup => Fam::Elasticache,
        Kind::StorageBucket => Fam::Storage,
        Kind::EcrRepository => Fam::Ecr,
        Kind::LogGroup => Fam::Logs,
        Kind::IamPolicy | Kind::IamRole => Fam::Iam,
        Kind::EcsCluster | Kind::TaskDefinition | Kind::EcsService => Fam::Ecs,
        Kind::ServiceDiscoveryNamespace | Kind::ServiceDiscoveryService => Fam::Discovery,
        Kind::TargetGroup | Kind::LoadBalancer | Kind::Listener | Kind::ListenerRule => Fam::Elb,
        Kind::ScalableTarget | Kind::ScalingPolicy => Fam::Autoscaling,
        Kind::LambdaFunction | Kind::LambdaNetworkInterfaces => Fam::Lambda,
    }
}

/// Runs `$body` with `$F` naming the family type of `$fam`.
macro_rules! on_family {
    ($fam:expr, $F:ident => $body:expr) => {
        match $fam {
            Fam::Secrets => {
                type $F = secrets::Secrets;
                $body
            }
            Fam::Network => {
                type $F = network::Network;
                $body
            }
            Fam::Rds => {
                type $F = rds::Rds;
                $body
            }
            Fam::Elasticache => {
                type $F = elasticache::Elasticache;
                $body
            }
            Fam::Ecr => {
                type $F = ecr::Ecr;
                $body
            }
            Fam::Logs => {
                type $F = logs::Logs;
                $body
            }
            Fam::Iam => {
                type $F = iam::Iam;
                $body
            }
            Fam::Ecs => {
                type $F = ecs::Ecs;
                $body
            }
            Fam::Discovery => {
                type $F = discovery::Discovery;
                $body
            }
            Fam::Elb => {
                type $F = elb::Elb;
                $body
            }
            Fam::Autoscaling => {
                type $F = autoscaling::Autoscaling;
                $body
            }
            Fam::Lambda => {
                type $F = lambda::Lambda;
                $body
            }
            Fam::Storage => {
                type $F = storage::Storage;
                $body
            }
        }
    };
}

/// The kind whose owned resource family `f`'s observation depends on ([`Family::PARENT`]).
pub fn parent(f: Fam) -> Option<Kind> {
    on_family!(f, F => F::PARENT)
}

/// Whether a change of `field` replaces a resource of `kind`.
pub fn replaces(kind: Kind, field: &str) -> bool {
    on_family!(fam(kind), F => F::replaces(kind, field))
}

/// Whether a replacement of `kind` creates the new resource first and then retires the old one.
pub fn creates_before_replacing(kind: Kind) -> bool {
    on_family!(fam(kind), F => F::creates_before_replacing(kind))
}

/// Every owned resource of family `f`.
pub(crate) async fn observe(
    f: Fam,
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    on_family!(f, F => Box::pin(F::observe(c, cfg, desired)).await)
}

/// Creates `d` with its family.
pub(crate) async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    on_family!(fam(d.kind), F => Box::pin(F::create(x, d)).await)
}

/// Updates the changed `fields` of `o` to `d` with its family.
pub(crate) async fn update(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    on_family!(fam(d.kind), F => Box::pin(F::update(x, d, o, fields)).await)
}

/// Sets tags on `o` with its family.
pub(crate) async fn tag(
    x: &Ctx<'_>,
    o: &Observed,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    on_family!(fam(o.kind), F => Box::pin(F::tag(x, o, tags)).await)
}

/// Deletes `o` with its family.
pub(crate) async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    on_family!(fam(o.kind), F => Box::pin(F::delete(x, o)).await)
}

/// Retires `o`, superseded by `new`, with its family.
pub(crate) async fn retire(x: &Ctx<'_>, o: &Observed, new: &str) -> Result<String, Error> {
    on_family!(fam(o.kind), F => Box::pin(F::retire(x, o, new)).await)
}
