//! A model of how AWS lets a connection through, evaluated over the desired state only: the security groups each
//! part's network interfaces carry are read from the resource that runs it (the ECS service, the load balancer,
//! the tenant-manager's settings for the REST functions, the clusters), the rules from the desired
//! `SecurityGroupRule`s, the routes from the route tables. Nothing here is taken from `stacks::reach` but the
//! names of the parts, so the derivation in the engine is checked, not restated.

use std::collections::HashMap;

use stacks::model::{Desired, Kind, Val};
use stacks::reach::Peer;

/// Where a rule lets traffic go to or come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulePeer {
    Group(String),
    Cidr(String),
}

/// A desired security group rule (TCP, one port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRule {
    pub id: String,
    /// Logical id of its group (`sg/<key>`).
    pub group: String,
    pub egress: bool,
    pub port: i64,
    pub peer: RulePeer,
}

pub struct Net<'a> {
    by_id: HashMap<&'a str, &'a Desired>,
    pub rules: Vec<SgRule>,
    pub groups: Vec<String>,
}

/// Every reference in a value (sets and concatenations included).
pub fn refs(v: &Val) -> Vec<String> {
    match v {
        Val::Ref(id) => vec![id.as_str().to_string()],
        Val::Set(items) | Val::Concat(items) => items.iter().flat_map(refs).collect(),
        _ => vec![],
    }
}

/// `a.b.c.d/n` as (address, prefix length).
fn cidr(s: &str) -> (u32, u32) {
    let (addr, len) = s.split_once('/').expect("a CIDR block");
    let addr: std::net::Ipv4Addr = addr.parse().expect("an IPv4 address");
    (u32::from(addr), len.parse().expect("a prefix length"))
}

/// Whether two CIDR blocks share an address.
fn overlaps(a: &str, b: &str) -> bool {
    let ((a, al), (b, bl)) = (cidr(a), cidr(b));
    let len = al.min(bl);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

impl<'a> Net<'a> {
    pub fn new(desired: &'a [Desired]) -> Net<'a> {
        let by_id: HashMap<&str, &Desired> = desired.iter().map(|d| (d.id.as_str(), d)).collect();
        let rules = desired
            .iter()
            .filter(|d| d.kind == Kind::SecurityGroupRule)
            .map(|d| {
                let p = |k: &str| {
                    d.props
                        .get(k)
                        .unwrap_or_else(|| panic!("{} has no {k}", d.id))
                };
                assert_eq!(p("protocol").as_str(), Some("tcp"), "{}", d.id);
                SgRule {
                    id: d.id.to_string(),
                    group: refs(p("group")).remove(0),
                    egress: match p("direction").as_str() {
                        Some("egress") => true,
                        Some("ingress") => false,
                        other => panic!("{}: direction {other:?}", d.id),
                    },
                    port: p("port").as_int().expect("a port"),
                    peer: match p("peer") {
                        Val::Ref(id) => RulePeer::Group(id.as_str().to_string()),
                        Val::Str(c) => RulePeer::Cidr(c.clone()),
                        other => panic!("{}: peer {other:?}", d.id),
                    },
                }
            })
            .collect();
        let groups = desired
            .iter()
            .filter(|d| d.kind == Kind::SecurityGroup)
            .map(|d| d.id.to_string())
            .collect();
        Net {
            by_id,
            rules,
            groups,
        }
    }

    fn get(&self, id: &str) -> &'a Desired {
        self.by_id
            .get(id)
            .copied()
            .unwrap_or_else(|| panic!("{id} is not in the desired state"))
    }

    /// A property of a resource, whether compared or sent on create only.
    fn prop(&self, id: &str, k: &str) -> &'a Val {
        let d = self.get(id);
        d.props
            .get(k)
            .or_else(|| d.create_only.get(k))
            .unwrap_or_else(|| panic!("{id} has no {k}"))
    }

    /// The security groups `peer`'s network interfaces carry, from the resource that runs it.
    pub fn groups_of(&self, peer: Peer) -> Vec<String> {
        match peer {
            Peer::Internet => vec![],
            Peer::PublicAlb => refs(self.prop("alb/public", "security_groups")),
            Peer::AdminAlb => refs(self.prop("alb/admin", "security_groups")),
            Peer::Service(name) => refs(self.prop(&format!("ecs/{name}"), "security_groups")),
            // what the tenant-manager creates the functions with
            Peer::RestFunctions => refs(self.prop(
                "taskdef/tenant-manager",
                "env:SUPACTL_REST_LAMBDA_SECURITY_GROUPS",
            )),
            Peer::PlatformDb => refs(self.prop("db/platform", "security_groups")),
            Peer::WorkerDb => refs(self.prop("db/worker", "security_groups")),
            Peer::Redis => refs(self.prop("redis", "security_groups")),
        }
    }

    /// The subnets (logical ids) `peer` runs in.
    pub fn subnets_of(&self, peer: Peer) -> Vec<String> {
        // a subnet group's subnets
        let grouped = |id: &str, k: &str| refs(self.prop(&refs(self.prop(id, k))[0], "subnets"));
        match peer {
            Peer::Internet => vec![],
            Peer::PublicAlb => refs(self.prop("alb/public", "subnets")),
            Peer::AdminAlb => refs(self.prop("alb/admin", "subnets")),
            Peer::Service(name) => refs(self.prop(&format!("ecs/{name}"), "subnets")),
            Peer::RestFunctions => {
                refs(self.prop("taskdef/tenant-manager", "env:SUPACTL_REST_LAMBDA_SUBNETS"))
            }
            Peer::PlatformDb => grouped("db/platform", "db_subnet_group"),
            Peer::WorkerDb => grouped("db/worker", "db_subnet_group"),
            Peer::Redis => grouped("redis", "cache_subnet_group"),
        }
    }

    /// Whether a rule's peer covers `p`: its group is one `p` carries, or its block holds `p`'s addresses (the
    /// internet: every address, so only a block of length 0).
    fn covers(&self, rule: &RulePeer, p: Peer) -> bool {
        match rule {
            RulePeer::Group(g) => self.groups_of(p).contains(g),
            RulePeer::Cidr(c) if p == Peer::Internet => cidr(c).1 == 0,
            RulePeer::Cidr(c) => self.subnets_of(p).iter().any(|s| {
                overlaps(
                    c,
                    self.prop(s, "cidr_block").as_str().expect("a subnet block"),
                )
            }),
        }
    }

    /// The security groups let a TCP connection from `from` to `to` on `port` through: one of `from`'s groups
    /// lets it out and one of `to`'s lets it in (the internet has no groups of ours).
    pub fn allowed(&self, from: Peer, to: Peer, port: i64) -> bool {
        let leaves = from == Peer::Internet
            || self.rules.iter().any(|r| {
                r.egress
                    && r.port == port
                    && self.groups_of(from).contains(&r.group)
                    && self.covers(&r.peer, to)
            });
        let enters = to == Peer::Internet
            || self.rules.iter().any(|r| {
                !r.egress
                    && r.port == port
                    && self.groups_of(to).contains(&r.group)
                    && self.covers(&r.peer, from)
            });
        leaves && enters
    }

    /// The rules a connection from `from` to `to` on `port` goes through.
    pub fn rules_used(&self, from: Peer, to: Peer, port: i64) -> Vec<&SgRule> {
        self.rules
            .iter()
            .filter(|r| r.port == port)
            .filter(|r| {
                (r.egress && self.groups_of(from).contains(&r.group) && self.covers(&r.peer, to))
                    || (!r.egress
                        && self.groups_of(to).contains(&r.group)
                        && self.covers(&r.peer, from))
            })
            .collect()
    }

    /// Where the default route of a subnet's route table goes (`igw`, `nat/<n>`), if it has one.
    fn default_route(&self, subnet: &str) -> Option<String> {
        let rt = self.by_id.values().find(|d| {
            d.kind == Kind::RouteTable
                && d.props
                    .get("subnets")
                    .is_some_and(|v| refs(v).iter().any(|s| s == subnet))
        })?;
        rt.props.get("route:0.0.0.0/0").map(|v| refs(v).remove(0))
    }

    /// The subnet's default route is the VPC's internet gateway.
    fn public(&self, subnet: &str) -> bool {
        self.default_route(subnet).as_deref() == Some("igw")
            && refs(self.prop("igw", "vpc")) == vec!["vpc".to_string()]
    }

    /// The routes carry a connection from `from` to `to`: inside the VPC the local route does (both sides in its
    /// subnets); from the internet only to public subnets; to the internet from public subnets or through a NAT
    /// gateway that sits in a public one.
    pub fn routed(&self, from: Peer, to: Peer) -> bool {
        let in_vpc = |p: Peer| {
            let s = self.subnets_of(p);
            !s.is_empty()
                && s.iter()
                    .all(|s| refs(self.prop(s, "vpc")) == vec!["vpc".to_string()])
        };
        match (from, to) {
            (Peer::Internet, Peer::Internet) => false,
            (Peer::Internet, p) => in_vpc(p) && self.subnets_of(p).iter().all(|s| self.public(s)),
            (p, Peer::Internet) => {
                in_vpc(p)
                    && self.subnets_of(p).iter().all(|s| {
                        self.public(s)
                            || self.default_route(s).is_some_and(|r| {
                                r.starts_with("nat/")
                                    && self.get(&r).kind == Kind::NatGateway
                                    && self.public(&refs(self.prop(&r, "subnet"))[0])
                            })
                    })
            }
            (a, b) => in_vpc(a) && in_vpc(b),
        }
    }
}
