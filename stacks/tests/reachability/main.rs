//! Reachability: the desired security groups and routes allow every connection the stack's parts open (declared
//! once in `stacks/src/compute/edges.rs`, the declaration the task environments are written from) and nothing
//! else. The emulator does not enforce security groups, so these checks are the only guard.
//!
//! Pure checks over the desired state ([`model`]) for REST on Lambda, REST in the gateway and the production
//! config; then against moto_server: a deploy creates exactly the derived rules (DescribeSecurityGroupRules), a
//! second deploy makes no mutating call, and a stack deployed with the previous matrix converges.

#[path = "../common/mod.rs"]
mod common;
mod model;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use common::{config_from, opts, test_config, Moto, REGION};
use model::Net;
use stacks::desired::{desired, Inputs};
use stacks::model::{Desired, Kind, Val};
use stacks::plan::Action;
use stacks::reach::{self, Edge, Peer};
use stacks::{Config, Quiet, Session};

const AZS: [&str; 6] = [
    "us-east-1a",
    "us-east-1b",
    "us-east-1c",
    "us-east-1d",
    "us-east-1e",
    "us-east-1f",
];

fn service_mode() -> Config {
    config_from("config.test.json", |v| v["rest"]["mode"] = "service".into())
}

/// The configs checked: both REST modes, and production's three AZs and two NAT gateways.
fn configs() -> Vec<(&'static str, Config)> {
    vec![
        ("test config, REST on Lambda", test_config()),
        ("test config, REST in the gateway", service_mode()),
        (
            "production config",
            config_from("config.production.json", |_| {}),
        ),
    ]
}

fn desired_of(cfg: &Config) -> Vec<Desired> {
    let azs: Vec<String> = AZS.iter().map(|s| s.to_string()).collect();
    desired(
        cfg,
        &Inputs {
            azs: &azs,
            region: REGION,
            images: &BTreeMap::new(),
        },
    )
}

fn show(e: &Edge) -> String {
    format!("{:?} → {:?}:{} ({})", e.from, e.to, e.port, e.why)
}

#[test]
fn every_declared_connection_is_allowed_by_the_security_groups_and_routed() {
    for (name, cfg) in configs() {
        let d = desired_of(&cfg);
        let net = Net::new(&d);
        let edges = reach::edges(&cfg);
        for e in &edges {
            assert!(
                net.allowed(e.from, e.to, e.port),
                "{name}: {} is blocked by the security groups",
                show(e)
            );
            assert!(net.routed(e.from, e.to), "{name}: {} has no route", show(e));
        }
        // each member takes part in some connection
        for m in reach::members(&cfg) {
            assert!(
                edges.iter().any(|e| e.from == m || e.to == m),
                "{name}: {m:?} neither opens nor accepts a connection"
            );
        }
    }
}

/// What the runtime does, stated without the declaration: auth always runs in the gateway and REST does in service
/// mode, so the gateway reaches the project databases; the REST functions read their config from the
/// tenant-manager and query their database; the tenant-manager owns the platform database.
#[test]
fn the_gateway_and_the_rest_functions_reach_the_project_databases() {
    for cfg in [test_config(), service_mode()] {
        let d = desired_of(&cfg);
        let net = Net::new(&d);
        let gateway = Peer::Service("gateway");
        let tm = Peer::Service("tenant-manager");
        for (from, to, port) in [
            (gateway, Peer::WorkerDb, 5432),
            (gateway, tm, 3001),
            (gateway, Peer::Redis, 6379),
            (tm, Peer::PlatformDb, 5432),
            (tm, Peer::WorkerDb, 5432),
            (Peer::PublicAlb, gateway, 8000),
            (Peer::AdminAlb, tm, 3001),
        ] {
            assert!(net.allowed(from, to, port), "{from:?} → {to:?}:{port}");
        }
        let lambda = cfg.compute.rest.mode == stacks::config::RestMode::Lambda;
        if lambda {
            assert!(net.allowed(Peer::RestFunctions, Peer::WorkerDb, 5432));
            assert!(net.allowed(Peer::RestFunctions, tm, 3001));
        }
        // the groups no task runs with are gone; the REST functions' only in lambda mode
        for gone in ["sg/auth", "sg/rest"] {
            assert!(!net.groups.iter().any(|g| g == gone), "{gone}");
        }
        assert_eq!(net.groups.iter().any(|g| g == "sg/rest-lambda"), lambda);
    }
}

/// Edge Functions run user code: the gateway invokes them, the tenant-manager reads their logs on the
/// internal listener (which the gateway cannot reach, so no client can either), they read their code from the
/// tenant-manager and reach the internet on 443, and nothing else: no database, no Redis, no other service,
/// and Deno denies the whole VPC range on top.
#[test]
fn the_functions_service_reaches_the_tenant_manager_and_the_internet_only() {
    for (name, cfg) in configs() {
        let d = desired_of(&cfg);
        let net = Net::new(&d);
        let functions = Peer::Service("functions");
        let gateway = Peer::Service("gateway");
        let tm = Peer::Service("tenant-manager");
        for (from, to, port) in [
            (gateway, functions, 8081),
            (tm, functions, 8082),
            (functions, tm, 3001),
            (functions, Peer::Internet, 443),
        ] {
            assert!(
                net.allowed(from, to, port),
                "{name}: {from:?} → {to:?}:{port}"
            );
        }
        for (from, to, port) in [
            (gateway, functions, 8082),
            (Peer::PublicAlb, functions, 8081),
            (Peer::Internet, functions, 8081),
            (functions, Peer::WorkerDb, 5432),
            (functions, Peer::PlatformDb, 5432),
            (functions, Peer::Redis, 6379),
            (functions, gateway, 8000),
            (functions, Peer::Internet, 80),
        ] {
            assert!(
                !net.allowed(from, to, port),
                "{name}: {from:?} → {to:?}:{port}"
            );
        }
        let td = d
            .iter()
            .find(|x| x.id.as_str() == "taskdef/functions")
            .unwrap();
        assert_eq!(
            td.props["env:SUPACTL_FUNCTIONS_DENY_NET"],
            Val::Str(cfg.vpc.cidr.to_string()),
            "{name}"
        );
        // its task holds the service token and nothing else secret
        let secrets: Vec<&str> = td
            .props
            .keys()
            .filter_map(|k| k.strip_prefix("secret:"))
            .collect();
        assert_eq!(secrets, ["SUPACTL_SERVICE_TOKEN"], "{name}");
    }
}

/// The peer an address in a task's environment names: an endpoint attribute or a Cloud Map URL.
fn addressed(v: &Val) -> Option<(Peer, Option<i64>)> {
    if let Val::Ref(id) = v {
        return match id.as_str() {
            "db/platform#endpoint" => Some((Peer::PlatformDb, None)),
            "db/worker#endpoint" => Some((Peer::WorkerDb, None)),
            "redis#endpoint" => Some((Peer::Redis, None)),
            _ => None,
        };
    }
    let url = v.as_str()?.strip_prefix("http://")?;
    let (host, port) = url.split_once(':')?;
    let name = host.strip_suffix(&format!(".{}", stacks::compute::NAMESPACE))?;
    let spec = stacks::compute::service(name).expect("a service of this release");
    Some((Peer::Service(spec.name), port.parse().ok()))
}

#[test]
fn every_address_in_a_task_environment_is_an_allowed_declared_connection() {
    for (name, cfg) in configs() {
        let d = desired_of(&cfg);
        let net = Net::new(&d);
        let edges = reach::edges(&cfg);
        let members = reach::members(&cfg);
        let mut seen = 0;
        for svc in &cfg.compute.services {
            let td = d
                .iter()
                .find(|x| x.id.as_str() == format!("taskdef/{}", svc.name))
                .unwrap();
            for (k, v) in &td.props {
                let Some(var) = k.strip_prefix("env:") else {
                    continue;
                };
                let Some((to, port)) = addressed(v) else {
                    continue;
                };
                // the tenant-manager hands this URL to the REST functions it creates
                let from = if var == "SUPACTL_TENANT_MANAGER_INTERNAL_URL" {
                    Peer::RestFunctions
                } else {
                    Peer::Service(svc.name)
                };
                if !members.contains(&from) {
                    continue;
                }
                seen += 1;
                let ok = edges.iter().any(|e| {
                    e.from == from
                        && e.to == to
                        && port.is_none_or(|p| p == e.port)
                        && net.allowed(from, to, e.port)
                });
                assert!(
                    ok,
                    "{name}: {} {var} names {to:?} ({v:?}), which {from:?} may not reach",
                    svc.name
                );
            }
        }
        // Redis (both), the tenant-manager (gateway), the platform and worker clusters (tenant-manager)
        assert!(seen >= 5, "{name}: only {seen} addresses found");
    }
}

#[test]
fn nothing_else_is_allowed_and_every_rule_and_group_has_a_consumer() {
    for (name, cfg) in configs() {
        let d = desired_of(&cfg);
        let net = Net::new(&d);
        let edges = reach::edges(&cfg);
        let members = reach::members(&cfg);
        let declared = |a: Peer, b: Peer, p: i64| {
            edges
                .iter()
                .any(|e| e.from == a && e.to == b && e.port == p)
        };
        let peers: Vec<Peer> = std::iter::once(Peer::Internet)
            .chain(members.iter().copied())
            .collect();
        let mut ports: BTreeSet<i64> = net.rules.iter().map(|r| r.port).collect();
        ports.extend([
            22, 25, 80, 443, 2525, 3000, 3001, 5432, 6379, 8000, 8001, 8080, 8081, 8082, 9999,
        ]);
        for &a in &peers {
            for &b in peers
                .iter()
                .filter(|b| (a, **b) != (Peer::Internet, Peer::Internet))
            {
                for &p in &ports {
                    // a connection to a public listener through the NAT gateway is as good as the internet's
                    let expected = declared(a, b, p)
                        || (declared(a, Peer::Internet, p) && declared(Peer::Internet, b, p));
                    assert!(
                        !net.allowed(a, b, p) || expected,
                        "{name}: {a:?} → {b:?}:{p} is allowed but nothing declares it"
                    );
                }
            }
        }
        for r in &net.rules {
            assert!(
                edges
                    .iter()
                    .any(|e| net.rules_used(e.from, e.to, e.port).contains(&r)),
                "{name}: rule {} lets no declared connection through",
                r.id
            );
        }
        for g in &net.groups {
            let carried: Vec<&Peer> = members
                .iter()
                .filter(|m| net.groups_of(**m).contains(g))
                .collect();
            assert_eq!(carried.len(), 1, "{name}: {g} is carried by {carried:?}");
        }
        for m in &members {
            assert_eq!(
                net.groups_of(*m).len(),
                1,
                "{name}: {m:?} has its own group only"
            );
        }
        // no AWS default egress is wanted anywhere
        for g in d.iter().filter(|x| x.kind == Kind::SecurityGroup) {
            assert_eq!(g.props["egress_all"], Val::Bool(false), "{}", g.id);
        }
    }
}

fn owner() -> Vec<Filter> {
    vec![Filter::builder()
        .name("tag:supactl:stack")
        .values("supabase-on-aws")
        .build()]
}

fn tag(tags: &[Tag], key: &str) -> String {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string()
}

/// The stack's security groups: group id → key (`sg/<key>` without `sg/`).
async fn live_groups(s: &Session) -> BTreeMap<String, String> {
    let sgs = s
        .clients
        .ec2
        .describe_security_groups()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    sgs.security_groups()
        .iter()
        .map(|g| {
            let id = tag(g.tags(), "supactl:id");
            (
                g.group_id().unwrap().to_string(),
                id.strip_prefix("sg/").unwrap().to_string(),
            )
        })
        .collect()
}

/// A rule as (group, direction, protocol, from port, to port, peer, its `supactl:id`); a peer group by key.
type RuleRow = (String, &'static str, String, i32, i32, String, String);

/// Every rule of the stack's groups, AWS's defaults included, read with DescribeSecurityGroupRules.
async fn live_rules(s: &Session) -> BTreeSet<RuleRow> {
    let groups = live_groups(s).await;
    let r = s
        .clients
        .ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(groups.keys().cloned().collect()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    r.security_group_rules()
        .iter()
        .map(|r| {
            let peer = match r.referenced_group_info().and_then(|g| g.group_id()) {
                Some(g) => groups
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| format!("foreign {g}")),
                None => r.cidr_ipv4().unwrap_or("?").replace('/', "_"),
            };
            (
                groups[r.group_id().unwrap()].clone(),
                if r.is_egress().unwrap() {
                    "egress"
                } else {
                    "ingress"
                },
                r.ip_protocol().unwrap().to_string(),
                r.from_port().unwrap(),
                r.to_port().unwrap(),
                peer,
                tag(r.tags(), "supactl:id"),
            )
        })
        .collect()
}

/// What the declaration asks for, in the same shape.
fn derived_rules(cfg: &Config) -> BTreeSet<RuleRow> {
    reach::rules(&reach::edges(cfg))
        .iter()
        .map(|r| {
            (
                r.group.to_string(),
                r.direction.as_str(),
                "tcp".to_string(),
                r.port as i32,
                r.port as i32,
                r.peer_key(),
                r.id(),
            )
        })
        .collect()
}

async fn deploy_creates_exactly_the_derived_rules(cfg: Config) {
    let moto = Moto::start();
    let s = moto.session(cfg).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let want: BTreeSet<String> = reach::members(&s.config)
        .iter()
        .map(|m| m.group().unwrap().to_string())
        .collect();
    let got: BTreeSet<String> = live_groups(&s).await.into_values().collect();
    assert_eq!(got, want);
    // exactly: no default allow-all egress left, no rule without a declared connection
    assert_eq!(live_rules(&s).await, derived_rules(&s.config));

    s.clients.log.clear();
    let p = s.plan().await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    s.deploy(None, &Quiet, opts()).await.expect("second deploy");
    assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn a_deploy_with_rest_on_lambda_creates_exactly_the_derived_rules() {
    deploy_creates_exactly_the_derived_rules(test_config()).await;
}

#[tokio::test]
async fn a_deploy_with_rest_in_the_gateway_creates_exactly_the_derived_rules() {
    deploy_creates_exactly_the_derived_rules(service_mode()).await;
}

fn ownership_tags(id: &str, rt: ResourceType) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .tags(
            Tag::builder()
                .key("supactl:stack")
                .value("supabase-on-aws")
                .build(),
        )
        .tags(Tag::builder().key("supactl:env").value("test").build())
        .tags(Tag::builder().key("supactl:id").value(id).build())
        .tags(
            Tag::builder()
                .key("Name")
                .value(format!("supabase-on-aws-test-{id}"))
                .build(),
        )
        .build()
}

/// Puts the stack's security groups back the way an earlier release deployed them: AWS's allow-all egress on
/// the load balancers', services' and functions' groups and no egress rules of ours; groups for auth and REST
/// services that never ran, and the functions group open to the gateway on the original's 8080; the worker
/// cluster open to those instead of the gateway, and the gateway open to the whole VPC.
async fn previous_matrix(s: &Session) {
    let ec2 = &s.clients.ec2;
    let mut ids: BTreeMap<String, String> = live_groups(s)
        .await
        .into_iter()
        .map(|(id, k)| (k, id))
        .collect();
    let vpc = ec2
        .describe_vpcs()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let rules = ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(ids.values().cloned().collect()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    for r in rules.security_group_rules() {
        let id = tag(r.tags(), "supactl:id");
        let group = r.group_id().unwrap();
        let rule = r.security_group_rule_id().unwrap();
        if r.is_egress().unwrap() {
            ec2.revoke_security_group_egress()
                .group_id(group)
                .security_group_rule_ids(rule)
                .send()
                .await
                .unwrap();
        } else if id == "sgr/worker-db/5432/gateway" {
            ec2.revoke_security_group_ingress()
                .group_id(group)
                .security_group_rule_ids(rule)
                .send()
                .await
                .unwrap();
        }
    }
    let all = IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    for key in [
        "alb",
        "admin-alb",
        "gateway",
        "tenant-manager",
        "functions",
        "rest-lambda",
    ] {
        ec2.authorize_security_group_egress()
            .group_id(&ids[key])
            .ip_permissions(all.clone())
            .send()
            .await
            .unwrap();
    }
    for key in ["auth", "rest"] {
        let g = ec2
            .create_security_group()
            .group_name(format!("supabase-on-aws-test-{key}"))
            .description(format!("supactl: {key} service"))
            .vpc_id(&vpc)
            .tag_specifications(ownership_tags(
                &format!("sg/{key}"),
                ResourceType::SecurityGroup,
            ))
            .send()
            .await
            .unwrap();
        ids.insert(key.into(), g.group_id().unwrap().to_string());
    }
    for (group, port, source) in [
        ("gateway", 8000, "cidr:10.0.0.0/16"),
        ("tenant-manager", 3001, "rest"),
        ("tenant-manager", 3001, "auth"),
        ("auth", 9999, "gateway"),
        ("rest", 3000, "gateway"),
        ("functions", 8080, "gateway"),
        ("worker-db", 5432, "rest"),
        ("worker-db", 5432, "auth"),
    ] {
        let (perm, key) = match source.strip_prefix("cidr:") {
            Some(c) => (
                IpPermission::builder().ip_ranges(IpRange::builder().cidr_ip(c).build()),
                "vpc-cidr".to_string(),
            ),
            None => (
                IpPermission::builder()
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id(&ids[source]).build()),
                source.to_string(),
            ),
        };
        let id = format!("sgr/{group}/{port}/{key}");
        ec2.authorize_security_group_ingress()
            .group_id(&ids[group])
            .ip_permissions(
                perm.ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .build(),
            )
            .tag_specifications(ownership_tags(&id, ResourceType::SecurityGroupRule))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_stack_deployed_with_the_previous_matrix_converges() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    previous_matrix(&s).await;

    let p = s.plan().await.unwrap();
    let mut got: Vec<(String, Action)> = p
        .plan
        .pending()
        .map(|c| (c.id.to_string(), c.action))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, Action)> = reach::rules(&reach::edges(&s.config))
        .iter()
        .filter(|r| r.direction == reach::Direction::Egress)
        .map(|r| (r.id(), Action::Create))
        .collect();
    want.push(("sgr/worker-db/5432/gateway".into(), Action::Create));
    for key in [
        "alb",
        "admin-alb",
        "gateway",
        "tenant-manager",
        "functions",
        "rest-lambda",
    ] {
        want.push((format!("sg/{key}"), Action::Update));
    }
    for id in [
        "sg/auth",
        "sg/rest",
        "sgr/gateway/8000/vpc-cidr",
        "sgr/tenant-manager/3001/rest",
        "sgr/tenant-manager/3001/auth",
        "sgr/auth/9999/gateway",
        "sgr/rest/3000/gateway",
        "sgr/functions/8080/gateway",
        "sgr/worker-db/5432/rest",
        "sgr/worker-db/5432/auth",
    ] {
        want.push((id.into(), Action::Delete));
    }
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "{}", p.plan);
    for key in ["alb", "gateway"] {
        let c = p.plan.get(&format!("sg/{key}")).unwrap();
        assert_eq!(c.fields.len(), 1, "{c:?}");
        assert_eq!(c.fields[0].field, "egress_all");
        assert_eq!(c.fields[0].new.as_deref(), Some("false"));
    }

    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("converge");
    assert_eq!(live_rules(&s).await, derived_rules(&s.config));
    let groups: BTreeSet<String> = live_groups(&s).await.into_values().collect();
    assert!(!groups.contains("auth") && !groups.contains("rest"));
    s.clients.log.clear();
    let again = s.plan().await.unwrap();
    assert!(!again.plan.has_changes(), "{}", again.plan);
    s.deploy(None, &Quiet, opts()).await.expect("no-op deploy");
    assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
}
