//! The resource model shared by desired state, observation, diff and apply: a fixed enum of kinds, logical ids,
//! and property values that may refer to other resources.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Every kind of resource this tier manages, in forward dependency order (apply creates in this order and
/// deletes in the reverse one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Secret,
    Vpc,
    Subnet,
    InternetGateway,
    ElasticIp,
    NatGateway,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    DbSubnetGroup,
    DbClusterParameterGroup,
    DbCluster,
    DbInstance,
    CacheSubnetGroup,
    ReplicationGroup,
    // compute tier (crate::compute)
    EcrRepository,
    LogGroup,
    IamPolicy,
    IamRole,
    EcsCluster,
    ServiceDiscoveryNamespace,
    ServiceDiscoveryService,
    TargetGroup,
    LoadBalancer,
    Listener,
    ListenerRule,
    TaskDefinition,
    EcsService,
    ScalableTarget,
    ScalingPolicy,
}

impl Kind {
    pub const ALL: [Kind; 30] = [
        Kind::Secret,
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::SecurityGroupRule,
        Kind::DbSubnetGroup,
        Kind::DbClusterParameterGroup,
        Kind::DbCluster,
        Kind::DbInstance,
        Kind::CacheSubnetGroup,
        Kind::ReplicationGroup,
        Kind::EcrRepository,
        Kind::LogGroup,
        Kind::IamPolicy,
        Kind::IamRole,
        Kind::EcsCluster,
        Kind::ServiceDiscoveryNamespace,
        Kind::ServiceDiscoveryService,
        Kind::TargetGroup,
        Kind::LoadBalancer,
        Kind::Listener,
        Kind::ListenerRule,
        Kind::TaskDefinition,
        Kind::EcsService,
        Kind::ScalableTarget,
        Kind::ScalingPolicy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::InternetGateway => "internet-gateway",
            Kind::ElasticIp => "elastic-ip",
            Kind::NatGateway => "nat-gateway",
            Kind::RouteTable => "route-table",
            Kind::SecurityGroup => "security-group",
            Kind::SecurityGroupRule => "security-group-rule",
            Kind::DbSubnetGroup => "db-subnet-group",
            Kind::DbClusterParameterGroup => "db-cluster-parameter-group",
            Kind::DbCluster => "db-cluster",
            Kind::DbInstance => "db-instance",
            Kind::CacheSubnetGroup => "cache-subnet-group",
            Kind::ReplicationGroup => "replication-group",
            Kind::EcrRepository => "ecr-repository",
            Kind::LogGroup => "log-group",
            Kind::IamPolicy => "iam-policy",
            Kind::IamRole => "iam-role",
            Kind::EcsCluster => "ecs-cluster",
            Kind::ServiceDiscoveryNamespace => "service-discovery-namespace",
            Kind::ServiceDiscoveryService => "service-discovery-service",
            Kind::TargetGroup => "target-group",
            Kind::LoadBalancer => "load-balancer",
            Kind::Listener => "listener",
            Kind::ListenerRule => "listener-rule",
            Kind::TaskDefinition => "task-definition",
            Kind::EcsService => "ecs-service",
            Kind::ScalableTarget => "scalable-target",
            Kind::ScalingPolicy => "scaling-policy",
        }
    }

    /// Properties whose change cannot be applied in place: the resource is replaced.
    pub fn replace_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Secret => &["name"],
            Kind::Vpc => &["cidr_block"],
            Kind::Subnet => &["vpc", "cidr_block", "availability_zone"],
            Kind::InternetGateway => &[],
            Kind::ElasticIp => &[],
            Kind::NatGateway => &["subnet", "allocation"],
            Kind::RouteTable => &["vpc"],
            Kind::SecurityGroup => &["vpc", "group_name", "description"],
            Kind::SecurityGroupRule => &["group", "direction", "protocol", "port", "peer"],
            Kind::DbSubnetGroup => &["name"],
            Kind::DbClusterParameterGroup => &["name", "family"],
            Kind::DbCluster => &[
                "identifier",
                "engine",
                "database_name",
                "master_username",
                "storage_encrypted",
                "db_subnet_group",
            ],
            Kind::DbInstance => &["identifier", "cluster", "engine"],
            Kind::CacheSubnetGroup => &["name"],
            Kind::ReplicationGroup => &[
                "identifier",
                "engine",
                "transit_encryption",
                "at_rest_encryption",
                "cache_subnet_group",
            ],
            Kind::EcrRepository => &["name"],
            Kind::LogGroup => &["name"],
            Kind::IamPolicy => &["name", "path"],
            Kind::IamRole => &["name", "path"],
            Kind::EcsCluster => &["name"],
            Kind::ServiceDiscoveryNamespace => &["name"],
            Kind::ServiceDiscoveryService => &["name", "namespace"],
            Kind::TargetGroup => &["name", "protocol", "port", "vpc", "target_type"],
            Kind::LoadBalancer => &["name", "scheme", "type"],
            Kind::Listener => &["load_balancer"],
            Kind::ListenerRule => &["listener"],
            // every field: a task definition revision is immutable (a change registers a new one)
            Kind::TaskDefinition => &[],
            Kind::EcsService => &["name", "cluster", "launch_type"],
            Kind::ScalableTarget => &["resource_id"],
            Kind::ScalingPolicy => &["name", "resource_id"],
        }
    }

    /// Whether a change of `field` replaces the resource.
    pub fn replaces(self, field: &str) -> bool {
        self == Kind::TaskDefinition || self.replace_fields().contains(&field)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Logical id of a resource, stable across deploys (tag `supactl:id`), e.g. `subnet/private/1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResId(pub String);

impl ResId {
    pub fn new(s: impl Into<String>) -> Self {
        ResId(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `id#attr` refers to an attribute of resource `id` (an endpoint, an ARN) rather than its physical id.
    pub fn split_attr(&self) -> (&str, Option<&str>) {
        match self.0.split_once('#') {
            Some((id, attr)) => (id, Some(attr)),
            None => (&self.0, None),
        }
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A property value. `Ref` points at another resource and resolves to its physical id (or, for an `id#attr`
/// reference, to that attribute of it); `Set` is unordered; `Concat` joins its parts' renderings; `Policy` is a
/// JSON document compared in canonical form ([`crate::compute::policy`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Ref(ResId),
    Set(Vec<Val>),
    Concat(Vec<Val>),
    Policy(Box<Val>),
}

impl Val {
    pub fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }
    pub fn r(id: &str) -> Val {
        Val::Ref(ResId::new(id))
    }
    /// A reference to attribute `attr` of resource `id` (kept in its observed `aux`).
    pub fn attr(id: &str, attr: &str) -> Val {
        Val::Ref(ResId(format!("{id}#{attr}")))
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Properties by name, sorted (deterministic plans).
pub type Props = BTreeMap<String, Val>;

/// What the config asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub id: ResId,
    pub kind: Kind,
    /// Resource name (Name tag or AWS identifier).
    pub name: String,
    pub props: Props,
    /// Sent on create only, never compared (not observable, or immutable and not worth a replace).
    pub create_only: Props,
    /// All tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

/// What exists in AWS and is owned by this stack (or sits where an owned resource must go).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: ResId,
    pub kind: Kind,
    /// Physical id (vpc-…, sg-…, cluster identifier, secret ARN…).
    pub physical: String,
    pub arn: Option<String>,
    /// Fully resolved: references are physical ids.
    pub props: Props,
    pub tags: BTreeMap<String, String>,
    /// Live state for `status` (available, creating…).
    pub state: String,
    /// Kind-specific facts apply/delete need (association ids, rule ids…).
    pub aux: BTreeMap<String, String>,
}

/// Ownership tag keys.
pub const TAG_STACK: &str = "supactl:stack";
pub const TAG_ENV: &str = "supactl:env";
pub const TAG_ID: &str = "supactl:id";
