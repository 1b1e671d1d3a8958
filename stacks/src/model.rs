//! The resource model shared by desired state, observation, diff and apply: a fixed enum of kinds, logical ids,
//! property values that may refer to other resources (and how they render), and the field changes a diff finds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    VpcEndpoint,
    SecurityGroup,
    /// Lambda's network interfaces in the VPC (destroy waits for their release before the security groups).
    LambdaNetworkInterfaces,
    SecurityGroupRule,
    DbSubnetGroup,
    DbClusterParameterGroup,
    DbCluster,
    DbInstance,
    CacheSubnetGroup,
    ReplicationGroup,
    /// The environment's storage bucket (S3).
    StorageBucket,
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
    /// A REST function of the tenant-manager's (destroy deletes it after the ECS services, before the network).
    LambdaFunction,
    EcsService,
    ScalableTarget,
    ScalingPolicy,
}

impl Kind {
    pub const ALL: [Kind; 34] = [
        Kind::Secret,
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::VpcEndpoint,
        Kind::SecurityGroup,
        Kind::LambdaNetworkInterfaces,
        Kind::SecurityGroupRule,
        Kind::DbSubnetGroup,
        Kind::DbClusterParameterGroup,
        Kind::DbCluster,
        Kind::DbInstance,
        Kind::CacheSubnetGroup,
        Kind::ReplicationGroup,
        Kind::StorageBucket,
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
        Kind::LambdaFunction,
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
            Kind::VpcEndpoint => "vpc-endpoint",
            Kind::SecurityGroup => "security-group",
            Kind::LambdaNetworkInterfaces => "lambda-network-interfaces",
            Kind::SecurityGroupRule => "security-group-rule",
            Kind::DbSubnetGroup => "db-subnet-group",
            Kind::DbClusterParameterGroup => "db-cluster-parameter-group",
            Kind::DbCluster => "db-cluster",
            Kind::DbInstance => "db-instance",
            Kind::CacheSubnetGroup => "cache-subnet-group",
            Kind::ReplicationGroup => "replication-group",
            Kind::StorageBucket => "storage-bucket",
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
            Kind::LambdaFunction => "lambda-function",
            Kind::EcsService => "ecs-service",
            Kind::ScalableTarget => "scalable-target",
            Kind::ScalingPolicy => "scaling-policy",
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
/// JSON document compared in canonical form ([`crate::policy`]).
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

/// Properties from name/value pairs.
pub fn props<const N: usize>(kv: [(&str, Val); N]) -> Props {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

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

impl Observed {
    /// A string property ("" when absent or not a string).
    pub fn prop_str(&self, k: &str) -> &str {
        self.props.get(k).and_then(Val::as_str).unwrap_or_default()
    }

    /// The ARN, else the physical id (for the services that tag by either).
    pub fn arn_or_physical(&self) -> String {
        self.arn.clone().unwrap_or_else(|| self.physical.clone())
    }
}

/// Ownership tag keys.
pub const TAG_STACK: &str = "supactl:stack";
pub const TAG_ENV: &str = "supactl:env";
pub const TAG_ID: &str = "supactl:id";

const REF_OPEN: &str = "@@ref:";
const REF_CLOSE: &str = "@@";

/// A placeholder for another resource's physical id (or `id#attr` attribute) inside a JSON document built
/// with [`doc`].
pub fn r(id: &str) -> String {
    format!("{REF_OPEN}{id}{REF_CLOSE}")
}

/// A document as a property: the JSON text with its [`r`] placeholders turned into references, rendered
/// canonically.
pub fn doc(v: &Value) -> Val {
    let text = v.to_string();
    let mut parts = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(REF_OPEN) {
        if i > 0 {
            parts.push(Val::Str(rest[..i].to_string()));
        }
        let after = &rest[i + REF_OPEN.len()..];
        let Some(j) = after.find(REF_CLOSE) else {
            break;
        };
        parts.push(Val::Ref(ResId::new(&after[..j])));
        rest = &after[j + REF_CLOSE.len()..];
    }
    if !rest.is_empty() {
        parts.push(Val::Str(rest.to_string()));
    }
    Val::Policy(Box::new(Val::Concat(parts)))
}

/// What an unknown reference renders as.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Renders a value with references resolved through `phys`; `None` when a reference is not known yet.
pub fn render(v: &Val, phys: &dyn Fn(&ResId) -> Option<String>) -> Option<String> {
    Some(match v {
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Num(n) => n.to_string(),
        Val::Str(s) => s.clone(),
        Val::Ref(id) => phys(id)?,
        Val::Set(items) => {
            let mut parts = items
                .iter()
                .map(|i| render(i, phys))
                .collect::<Option<Vec<_>>>()?;
            parts.sort();
            format!("[{}]", parts.join(", "))
        }
        Val::Concat(parts) => parts
            .iter()
            .map(|p| render(p, phys))
            .collect::<Option<String>>()?,
        Val::Policy(inner) => crate::policy::normalize(&render(inner, phys)?),
    })
}

/// One field that differs: `old → new` (rendered values; `None` = absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Whether a field is among the changed `fields`.
pub fn changes(fields: &[FieldChange]) -> impl Fn(&str) -> bool + '_ {
    move |k| fields.iter().any(|f| f.field == k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_carry_references() {
        let v = json!({"Resource": [r("secret/a"), format!("{}:password::", r("db/platform#master_secret_arn"))]});
        let Val::Policy(inner) = doc(&v) else {
            panic!()
        };
        let Val::Concat(parts) = *inner else { panic!() };
        assert_eq!(parts[0], Val::str("{\"Resource\":[\""));
        assert_eq!(parts[1], Val::r("secret/a"));
        assert_eq!(parts[3], Val::r("db/platform#master_secret_arn"));
        assert_eq!(parts[4], Val::str(":password::\"]}"));
    }
}
