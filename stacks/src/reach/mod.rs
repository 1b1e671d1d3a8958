//! Reachability: who in the stack opens connections to whom, and the security groups derived from that alone.
//!
//! Each part of the stack in the VPC is a [`Peer`] with its own security group. What a part connects to is
//! declared once, as [`Edge`]s, next to the code that configures it ([`crate::compute::edges`]); an ECS service's
//! task environment is written through [`Outbound`], which refuses to hand out the address of a destination the
//! service has not declared, so the environment and the edges cannot drift apart.
//!
//! From the edges: per edge, an egress rule on the source's group and an ingress rule on the destination's
//! (`0.0.0.0/0` where the other side is the internet). No rule exists without an edge that needs it, AWS's default
//! allow-all egress rule is revoked on every group, and a group exists only for a part the stack runs
//! ([`members`]). Not declared, because security groups do not filter it: the VPC's DNS resolver (Cloud Map
//! names), the ECS task metadata and credentials endpoint, Amazon Time Sync. Responses need no rule (security
//! groups are stateful).

use crate::config::{Config, RestMode};
use crate::model::Val;

pub mod peer;

pub use peer::{Edge, Peer, REDIS_PORT};

/// What the stack runs in the VPC, each behind its own security group: the two load balancers, every ECS
/// service, the REST functions in lambda mode, the two Aurora clusters and Redis.
pub fn members(cfg: &Config) -> Vec<Peer> {
    let mut out = vec![Peer::PublicAlb, Peer::AdminAlb];
    out.extend(cfg.compute.services.iter().map(|s| Peer::Service(s.name)));
    if cfg.compute.rest.mode == RestMode::Lambda {
        out.push(Peer::RestFunctions);
    }
    out.extend([Peer::PlatformDb, Peer::WorkerDb, Peer::Redis]);
    out
}

/// Every connection opened in or into the stack: what the internet opens, then what each member opens.
pub fn edges(cfg: &Config) -> Vec<Edge> {
    std::iter::once(Peer::Internet)
        .chain(members(cfg))
        .flat_map(|p| crate::compute::edges::outbound(cfg, p))
        .collect()
}

/// The connections one peer opens, and the addresses its configuration names for them.
pub struct Outbound {
    from: Peer,
    edges: Vec<Edge>,
}

impl Outbound {
    pub fn of(cfg: &Config, from: Peer) -> Outbound {
        Outbound {
            from,
            edges: crate::compute::edges::outbound(cfg, from),
        }
    }

    /// The declared edge to `to`; configuring an address without declaring the connection is a bug.
    fn edge(&self, to: Peer) -> &Edge {
        self.edges.iter().find(|e| e.to == to).unwrap_or_else(|| {
            panic!(
                "{:?} is configured to reach {to:?} but declares no edge to it: add it in stacks/src/compute/edges.rs",
                self.from
            )
        })
    }

    /// The port of `to`.
    pub fn port(&self, to: Peer) -> Val {
        Val::Int(self.edge(to).port)
    }

    /// The host name of `to` (an endpoint known after it is created, or a Cloud Map name).
    pub fn host(&self, to: Peer) -> Val {
        self.edge(to);
        match to {
            Peer::PlatformDb => Val::attr("db/platform", "endpoint"),
            Peer::WorkerDb => Val::attr("db/worker", "endpoint"),
            Peer::Redis => Val::attr("redis", "endpoint"),
            Peer::Service(name) => Val::Str(format!("{name}.{}", crate::compute::NAMESPACE)),
            other => panic!("{other:?} has no host name a task is configured with"),
        }
    }

    /// `http://<host>:<port>` of an ECS service.
    pub fn url(&self, to: Peer) -> Val {
        let (Val::Str(host), Val::Int(port)) = (self.host(to), self.port(to)) else {
            panic!("{to:?} has no URL");
        };
        Val::Str(format!("http://{host}:{port}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// A security group rule: on `group`, TCP `port` from (ingress) or to (egress) `peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub group: &'static str,
    pub direction: Direction,
    pub port: i64,
    pub peer: Peer,
}

/// The CIDR block that stands for the internet in a rule.
pub const ANYWHERE: &str = "0.0.0.0/0";

impl Rule {
    /// How the rule names its peer in ids and descriptions: a group key, or the CIDR with `_` for `/`.
    pub fn peer_key(&self) -> String {
        self.peer
            .group()
            .map(str::to_string)
            .unwrap_or_else(|| ANYWHERE.replace('/', "_"))
    }

    /// The logical id: `sgr/<group>/<port>/<peer>` for ingress (as deployed before egress was explicit),
    /// `sgr/<group>/egress/<port>/<peer>` for egress.
    pub fn id(&self) -> String {
        match self.direction {
            Direction::Ingress => format!("sgr/{}/{}/{}", self.group, self.port, self.peer_key()),
            Direction::Egress => format!(
                "sgr/{}/egress/{}/{}",
                self.group,
                self.port,
                self.peer_key()
            ),
        }
    }
}

/// The rules that allow exactly `edges`, sorted, each once.
pub fn rules(edges: &[Edge]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for e in edges {
        if let Some(group) = e.from.group() {
            out.push(Rule {
                group,
                direction: Direction::Egress,
                port: e.port,
                peer: e.to,
            });
        }
        if let Some(group) = e.to.group() {
            out.push(Rule {
                group,
                direction: Direction::Ingress,
                port: e.port,
                peer: e.from,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: Peer, to: Peer, port: i64) -> Edge {
        Edge {
            from,
            to,
            port,
            why: "test",
        }
    }

    #[test]
    fn an_edge_between_groups_is_one_egress_and_one_ingress_rule() {
        let gw = Peer::Service("gateway");
        let rules = rules(&[
            edge(gw, Peer::WorkerDb, 5432),
            // a second reason for the same connection adds nothing
            edge(gw, Peer::WorkerDb, 5432),
        ]);
        assert_eq!(
            rules.iter().map(Rule::id).collect::<Vec<_>>(),
            vec![
                "sgr/gateway/egress/5432/worker-db",
                "sgr/worker-db/5432/gateway"
            ]
        );
    }

    #[test]
    fn the_internet_side_of_an_edge_has_no_rule_of_its_own() {
        let rules = rules(&[
            edge(Peer::Internet, Peer::PublicAlb, 443),
            edge(Peer::Service("gateway"), Peer::Internet, 443),
        ]);
        assert_eq!(
            rules.iter().map(Rule::id).collect::<Vec<_>>(),
            vec!["sgr/alb/443/0.0.0.0_0", "sgr/gateway/egress/443/0.0.0.0_0"]
        );
    }
}
