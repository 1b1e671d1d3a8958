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
}

impl Kind {
    pub const ALL: [Kind; 15] = [
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
            Kind::SecurityGroupRule => &["group", "protocol", "port", "source"],
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
        }
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
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A property value. `Ref` points at another resource and resolves to its physical id; `Set` is unordered.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Ref(ResId),
    Set(Vec<Val>),
}

impl Val {
    pub fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }
    pub fn r(id: &str) -> Val {
        Val::Ref(ResId::new(id))
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
