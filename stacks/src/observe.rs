//! Observation: find every resource this stack owns (by ownership tags, or by name for services whose describe
//! calls cannot filter by tag) and read its live properties into the same shape as the desired ones. The compute
//! tier's kinds are read by [`crate::compute::observe`].
//! Read-only: only Describe/List/Get calls.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Tag};

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::model::{Desired, Kind, Observed, Props, ResId, Val, TAG_ENV, TAG_ID, TAG_STACK};
use crate::Error;

fn ec2_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(crate) fn owned(cfg: &Config, tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_STACK) == Some(&cfg.name) && tags.get(TAG_ENV) == Some(&cfg.environment)
}

fn id_of(tags: &BTreeMap<String, String>) -> Option<ResId> {
    tags.get(TAG_ID).map(|s| ResId::new(s.as_str()))
}

fn owner_filters(cfg: &Config) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{TAG_STACK}"))
            .values(&cfg.name)
            .build(),
        Filter::builder()
            .name(format!("tag:{TAG_ENV}"))
            .values(&cfg.environment)
            .build(),
    ]
}

pub(crate) fn props<const N: usize>(kv: [(&str, Val); N]) -> Props {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(crate) fn s(v: Option<&str>) -> Val {
    Val::Str(v.unwrap_or("").to_string())
}

pub(crate) struct Sink<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) out: Vec<Observed>,
}

impl Sink<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        kind: Kind,
        physical: &str,
        arn: Option<String>,
        tags: BTreeMap<String, String>,
        props: Props,
        state: &str,
        aux: BTreeMap<String, String>,
    ) {
        if !owned(self.cfg, &tags) {
            return;
        }
        let Some(id) = id_of(&tags) else { return };
        self.out.push(Observed {
            id,
            kind,
            physical: physical.to_string(),
            arn,
            props,
            tags,
            state: state.to_string(),
            aux,
        });
    }
}

/// Observes every owned resource. `desired` names the resources found by name (RDS subnet/parameter groups,
/// ElastiCache); a resource found there that is not owned by this stack is an error, never adopted.
pub async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    // boxed: the SDK's futures are large, and several of them side by side would sit on the caller's stack
    let (ec2, rds, ec, sm, compute) = tokio::join!(
        Box::pin(observe_ec2(c, cfg)),
        Box::pin(observe_rds(c, cfg, desired)),
        Box::pin(observe_elasticache(c, cfg, desired)),
        Box::pin(observe_secrets(c, cfg)),
        Box::pin(crate::compute::observe::observe(c, cfg, desired))
    );
    let mut out = ec2?;
    out.extend(sm?);
    out.extend(rds?);
    out.extend(ec?);
    out.extend(compute?);
    out.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

async fn observe_ec2(c: &Clients, cfg: &Config) -> Result<Vec<Observed>, Error> {
    let mut sink = Sink {
        cfg,
        out: Vec::new(),
    };
    let f = owner_filters(cfg);

    let vpcs = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(|err| Error::Aws(AwsError::new("ec2:DescribeVpcs", &err)))?;
    for v in vpcs.vpcs() {
        let id = v.vpc_id().unwrap_or_default();
        let attr = |a| {
            c.ec2
                .describe_vpc_attribute()
                .vpc_id(id)
                .attribute(a)
                .send()
        };
        let (sup, host) = tokio::join!(
            attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport),
            attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        );
        let sup = sup.map_err(crate::aws::err("ec2:DescribeVpcAttribute"))?;
        let host = host.map_err(crate::aws::err("ec2:DescribeVpcAttribute"))?;
        sink.push(
            Kind::Vpc,
            id,
            None,
            ec2_tags(v.tags()),
            props([
                ("cidr_block", s(v.cidr_block())),
                (
                    "enable_dns_support",
                    Val::Bool(
                        sup.enable_dns_support()
                            .and_then(|a| a.value())
                            .unwrap_or(false),
                    ),
                ),
                (
                    "enable_dns_hostnames",
                    Val::Bool(
                        host.enable_dns_hostnames()
                            .and_then(|a| a.value())
                            .unwrap_or(false),
                    ),
                ),
            ]),
            v.state().map(|s| s.as_str()).unwrap_or(""),
            BTreeMap::new(),
        );
    }

    let subnets = c
        .ec2
        .describe_subnets()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeSubnets"))?;
    for sn in subnets.subnets() {
        sink.push(
            Kind::Subnet,
            sn.subnet_id().unwrap_or_default(),
            sn.subnet_arn().map(str::to_string),
            ec2_tags(sn.tags()),
            props([
                ("vpc", s(sn.vpc_id())),
                ("cidr_block", s(sn.cidr_block())),
                ("availability_zone", s(sn.availability_zone())),
                (
                    "map_public_ip_on_launch",
                    Val::Bool(sn.map_public_ip_on_launch().unwrap_or(false)),
                ),
            ]),
            sn.state().map(|s| s.as_str()).unwrap_or(""),
            BTreeMap::new(),
        );
    }

    let igws = c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeInternetGateways"))?;
    for g in igws.internet_gateways() {
        let mut p = Props::new();
        let attached = g.attachments().iter().find_map(|a| a.vpc_id());
        if let Some(v) = attached {
            p.insert("vpc".into(), Val::str(v));
        }
        sink.push(
            Kind::InternetGateway,
            g.internet_gateway_id().unwrap_or_default(),
            None,
            ec2_tags(g.tags()),
            p,
            if attached.is_some() {
                "attached"
            } else {
                "detached"
            },
            BTreeMap::new(),
        );
    }

    let addrs = c
        .ec2
        .describe_addresses()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeAddresses"))?;
    for a in addrs.addresses() {
        let mut aux = BTreeMap::new();
        if let Some(assoc) = a.association_id() {
            aux.insert("association_id".into(), assoc.to_string());
        }
        if let Some(ip) = a.public_ip() {
            aux.insert("endpoint".into(), ip.to_string());
        }
        sink.push(
            Kind::ElasticIp,
            a.allocation_id().unwrap_or_default(),
            None,
            ec2_tags(a.tags()),
            props([("domain", s(a.domain().map(|d| d.as_str())))]),
            if a.association_id().is_some() {
                "in-use"
            } else {
                "allocated"
            },
            aux,
        );
    }

    let nats = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeNatGateways"))?;
    for n in nats.nat_gateways() {
        let state = n.state().map(|s| s.as_str()).unwrap_or("");
        // deleted NAT gateways stay listed for a while (in AWS as in the emulator)
        if matches!(state, "deleted" | "deleting" | "failed") {
            continue;
        }
        sink.push(
            Kind::NatGateway,
            n.nat_gateway_id().unwrap_or_default(),
            None,
            ec2_tags(n.tags()),
            props([
                ("subnet", s(n.subnet_id())),
                (
                    "allocation",
                    s(n.nat_gateway_addresses()
                        .iter()
                        .find_map(|a| a.allocation_id())),
                ),
            ]),
            state,
            BTreeMap::new(),
        );
    }

    let rts = c
        .ec2
        .describe_route_tables()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeRouteTables"))?;
    for rt in rts.route_tables() {
        let mut p = props([("vpc", s(rt.vpc_id()))]);
        let mut aux = BTreeMap::new();
        for r in rt.routes() {
            let Some(dest) = r.destination_cidr_block() else {
                continue;
            };
            let target = r
                .gateway_id()
                .filter(|g| *g != "local")
                .or(r.nat_gateway_id());
            if let Some(t) = target {
                p.insert(format!("route:{dest}"), Val::str(t));
            }
        }
        let mut subnets = Vec::new();
        for a in rt.associations() {
            if a.main().unwrap_or(false) {
                continue;
            }
            if let (Some(sn), Some(id)) = (a.subnet_id(), a.route_table_association_id()) {
                subnets.push(Val::str(sn));
                aux.insert(format!("assoc:{sn}"), id.to_string());
            }
        }
        p.insert("subnets".into(), Val::Set(subnets));
        sink.push(
            Kind::RouteTable,
            rt.route_table_id().unwrap_or_default(),
            None,
            ec2_tags(rt.tags()),
            p,
            "available",
            aux,
        );
    }

    let sgs = c
        .ec2
        .describe_security_groups()
        .set_filters(Some(f.clone()))
        .send()
        .await
        .map_err(crate::aws::err("ec2:DescribeSecurityGroups"))?;
    let mut sg_ids = Vec::new();
    for g in sgs.security_groups() {
        let egress_all = g.ip_permissions_egress().iter().any(|p| {
            p.ip_protocol() == Some("-1")
                && p.ip_ranges()
                    .iter()
                    .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
        });
        let tags = ec2_tags(g.tags());
        if owned(cfg, &tags) {
            sg_ids.push(g.group_id().unwrap_or_default().to_string());
        }
        sink.push(
            Kind::SecurityGroup,
            g.group_id().unwrap_or_default(),
            g.security_group_arn().map(str::to_string),
            tags,
            props([
                ("vpc", s(g.vpc_id())),
                ("group_name", s(g.group_name())),
                ("description", s(g.description())),
                ("egress_all", Val::Bool(egress_all)),
            ]),
            "available",
            BTreeMap::new(),
        );
    }

    if !sg_ids.is_empty() {
        let rules = c
            .ec2
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(sg_ids))
                    .build(),
            )
            .send()
            .await
            .map_err(crate::aws::err("ec2:DescribeSecurityGroupRules"))?;
        // ingress and egress; AWS's default allow-all egress rule carries no tags of ours and is left out (it
        // shows as the group's `egress_all`)
        for r in rules.security_group_rules() {
            let direction = if r.is_egress().unwrap_or(false) {
                "egress"
            } else {
                "ingress"
            };
            let peer = r
                .referenced_group_info()
                .and_then(|g| g.group_id())
                .or(r.cidr_ipv4())
                .unwrap_or("");
            sink.push(
                Kind::SecurityGroupRule,
                r.security_group_rule_id().unwrap_or_default(),
                r.security_group_rule_arn().map(str::to_string),
                ec2_tags(r.tags()),
                props([
                    ("group", s(r.group_id())),
                    ("direction", Val::str(direction)),
                    ("protocol", s(r.ip_protocol())),
                    ("port", Val::Int(i64::from(r.from_port().unwrap_or(-1)))),
                    ("peer", Val::str(peer)),
                ]),
                "active",
                BTreeMap::new(),
            );
        }
    }
    Ok(sink.out)
}

fn rds_tags(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(crate) fn conflict(kind: Kind, name: &str, tags: &BTreeMap<String, String>) -> Error {
    Error::NotOwned {
        kind,
        name: name.to_string(),
        owner: match (tags.get(TAG_STACK), tags.get(TAG_ENV)) {
            (Some(s), Some(e)) => format!("stack {s} ({e})"),
            _ => "nobody known to supactl".into(),
        },
    }
}

fn named(desired: &[Desired], kind: Kind) -> impl Iterator<Item = &Desired> {
    desired.iter().filter(move |d| d.kind == kind)
}

async fn observe_rds(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = Sink {
        cfg,
        out: Vec::new(),
    };
    for d in named(desired, Kind::DbSubnetGroup) {
        let r = c
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(&d.name)
            .send()
            .await;
        let groups = match r {
            Ok(o) => o.db_subnet_groups,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_subnet_group_not_found_fault()) =>
            {
                None
            }
            Err(err) => {
                return Err(Error::Aws(AwsError::new(
                    "rds:DescribeDBSubnetGroups",
                    &err,
                )))
            }
        };
        for g in groups.unwrap_or_default() {
            let arn = g.db_subnet_group_arn().unwrap_or_default().to_string();
            let tags = rds_tags(
                c.rds
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
                    .await
                    .map_err(|err| Error::Aws(AwsError::new("rds:ListTagsForResource", &err)))?
                    .tag_list(),
            );
            if !owned(cfg, &tags) {
                return Err(conflict(Kind::DbSubnetGroup, &d.name, &tags));
            }
            sink.push(
                Kind::DbSubnetGroup,
                g.db_subnet_group_name().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("name", s(g.db_subnet_group_name())),
                    (
                        "subnets",
                        Val::Set(
                            g.subnets()
                                .iter()
                                .filter_map(|s| s.subnet_identifier())
                                .map(Val::str)
                                .collect(),
                        ),
                    ),
                ]),
                g.subnet_group_status().unwrap_or(""),
                BTreeMap::new(),
            );
        }
    }
    for d in named(desired, Kind::DbClusterParameterGroup) {
        let r = c
            .rds
            .describe_db_cluster_parameter_groups()
            .db_cluster_parameter_group_name(&d.name)
            .send()
            .await;
        let groups = match r {
            Ok(o) => o.db_cluster_parameter_groups,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_parameter_group_not_found_fault()) =>
            {
                None
            }
            Err(err) => {
                return Err(Error::Aws(AwsError::new(
                    "rds:DescribeDBClusterParameterGroups",
                    &err,
                )))
            }
        };
        for g in groups.unwrap_or_default() {
            let arn = g
                .db_cluster_parameter_group_arn()
                .unwrap_or_default()
                .to_string();
            let tags = rds_tags(
                c.rds
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
                    .await
                    .map_err(|err| Error::Aws(AwsError::new("rds:ListTagsForResource", &err)))?
                    .tag_list(),
            );
            if !owned(cfg, &tags) {
                return Err(conflict(Kind::DbClusterParameterGroup, &d.name, &tags));
            }
            let params = c
                .rds
                .describe_db_cluster_parameters()
                .db_cluster_parameter_group_name(&d.name)
                .source("user")
                .send()
                .await
                .map_err(|err| {
                    Error::Aws(AwsError::new("rds:DescribeDBClusterParameters", &err))
                })?;
            let mut p = props([
                ("name", s(g.db_cluster_parameter_group_name())),
                ("family", s(g.db_parameter_group_family())),
            ]);
            for prm in params.parameters() {
                if let (Some(n), Some(v)) = (prm.parameter_name(), prm.parameter_value()) {
                    p.insert(format!("parameter:{n}"), Val::str(v));
                }
            }
            sink.push(
                Kind::DbClusterParameterGroup,
                g.db_cluster_parameter_group_name().unwrap_or_default(),
                Some(arn),
                tags,
                p,
                "available",
                BTreeMap::new(),
            );
        }
    }

    let wanted_clusters: Vec<&str> = named(desired, Kind::DbCluster)
        .map(|d| d.name.as_str())
        .collect();
    let clusters = c
        .rds
        .describe_db_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBClusters", &err)))?;
    for cl in &clusters {
        let tags = rds_tags(cl.tag_list());
        let ident = cl.db_cluster_identifier().unwrap_or_default();
        if !owned(cfg, &tags) {
            if wanted_clusters.contains(&ident) {
                return Err(conflict(Kind::DbCluster, ident, &tags));
            }
            continue;
        }
        let state = cl.status().unwrap_or("");
        if state == "deleting" {
            continue;
        }
        let scaling = cl.serverless_v2_scaling_configuration();
        let mut aux = BTreeMap::new();
        if let Some(sec) = cl.master_user_secret().and_then(|m| m.secret_arn()) {
            aux.insert("master_secret_arn".into(), sec.to_string());
        }
        if let Some(ep) = cl.endpoint() {
            aux.insert("endpoint".into(), ep.to_string());
        }
        sink.push(
            Kind::DbCluster,
            ident,
            cl.db_cluster_arn().map(str::to_string),
            tags,
            props([
                ("identifier", Val::str(ident)),
                ("engine", s(cl.engine())),
                ("engine_version", s(cl.engine_version())),
                ("database_name", s(cl.database_name())),
                ("port", Val::Int(i64::from(cl.port().unwrap_or(0)))),
                ("master_username", s(cl.master_username())),
                (
                    "manage_master_user_password",
                    Val::Bool(cl.master_user_secret().is_some()),
                ),
                (
                    "storage_encrypted",
                    Val::Bool(cl.storage_encrypted().unwrap_or(false)),
                ),
                ("db_subnet_group", s(cl.db_subnet_group())),
                (
                    "security_groups",
                    Val::Set(
                        cl.vpc_security_groups()
                            .iter()
                            .filter_map(|g| g.vpc_security_group_id())
                            .map(Val::str)
                            .collect(),
                    ),
                ),
                (
                    "min_capacity",
                    Val::Num(scaling.and_then(|s| s.min_capacity()).unwrap_or(0.0)),
                ),
                (
                    "max_capacity",
                    Val::Num(scaling.and_then(|s| s.max_capacity()).unwrap_or(0.0)),
                ),
                (
                    "deletion_protection",
                    Val::Bool(cl.deletion_protection().unwrap_or(false)),
                ),
                (
                    "backup_retention_days",
                    Val::Int(i64::from(cl.backup_retention_period().unwrap_or(0))),
                ),
                ("parameter_group", s(cl.db_cluster_parameter_group())),
            ]),
            state,
            aux,
        );
    }

    let wanted_instances: Vec<&str> = named(desired, Kind::DbInstance)
        .map(|d| d.name.as_str())
        .collect();
    let instances = c
        .rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| Error::Aws(AwsError::new("rds:DescribeDBInstances", &err)))?;
    for i in &instances {
        let tags = rds_tags(i.tag_list());
        let ident = i.db_instance_identifier().unwrap_or_default();
        if !owned(cfg, &tags) {
            if wanted_instances.contains(&ident) {
                return Err(conflict(Kind::DbInstance, ident, &tags));
            }
            continue;
        }
        let state = i.db_instance_status().unwrap_or("");
        if state == "deleting" {
            continue;
        }
        sink.push(
            Kind::DbInstance,
            ident,
            i.db_instance_arn().map(str::to_string),
            tags,
            props([
                ("identifier", Val::str(ident)),
                ("cluster", s(i.db_cluster_identifier())),
                ("engine", s(i.engine())),
                ("instance_class", s(i.db_instance_class())),
            ]),
            state,
            BTreeMap::new(),
        );
    }
    Ok(sink.out)
}

fn ec_tags(tags: &[aws_sdk_elasticache::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

async fn ec_list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, Error> {
    Ok(ec_tags(
        c.elasticache
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|err| Error::Aws(AwsError::new("elasticache:ListTagsForResource", &err)))?
            .tag_list(),
    ))
}

async fn observe_elasticache(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = Sink {
        cfg,
        out: Vec::new(),
    };
    for d in named(desired, Kind::CacheSubnetGroup) {
        let r = c
            .elasticache
            .describe_cache_subnet_groups()
            .cache_subnet_group_name(&d.name)
            .send()
            .await;
        let groups = match r {
            Ok(o) => o.cache_subnet_groups,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_cache_subnet_group_not_found_fault()) =>
            {
                None
            }
            Err(err) => {
                return Err(Error::Aws(AwsError::new(
                    "elasticache:DescribeCacheSubnetGroups",
                    &err,
                )))
            }
        };
        for g in groups.unwrap_or_default() {
            let arn = g.arn().unwrap_or_default().to_string();
            let tags = ec_list_tags(c, &arn).await?;
            if !owned(cfg, &tags) {
                return Err(conflict(Kind::CacheSubnetGroup, &d.name, &tags));
            }
            sink.push(
                Kind::CacheSubnetGroup,
                g.cache_subnet_group_name().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("name", s(g.cache_subnet_group_name())),
                    (
                        "subnets",
                        Val::Set(
                            g.subnets()
                                .iter()
                                .filter_map(|s| s.subnet_identifier())
                                .map(Val::str)
                                .collect(),
                        ),
                    ),
                ]),
                "available",
                BTreeMap::new(),
            );
        }
    }
    for d in named(desired, Kind::ReplicationGroup) {
        let r = c
            .elasticache
            .describe_replication_groups()
            .replication_group_id(&d.name)
            .send()
            .await;
        let groups = match r {
            Ok(o) => o.replication_groups,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_replication_group_not_found_fault()) =>
            {
                None
            }
            Err(err) => {
                return Err(Error::Aws(AwsError::new(
                    "elasticache:DescribeReplicationGroups",
                    &err,
                )))
            }
        };
        for g in groups.unwrap_or_default() {
            let state = g.status().unwrap_or("");
            // a group being deleted is going away (the emulator never finishes deleting: see aws-emulator.md)
            if state == "deleting" {
                continue;
            }
            let arn = g.arn().unwrap_or_default().to_string();
            let tags = ec_list_tags(c, &arn).await?;
            if !owned(cfg, &tags) {
                return Err(conflict(Kind::ReplicationGroup, &d.name, &tags));
            }
            use aws_sdk_elasticache::types::{AutomaticFailoverStatus, MultiAzStatus};
            let mut aux = BTreeMap::new();
            if let Some(ep) = g
                .node_groups()
                .iter()
                .find_map(|n| n.primary_endpoint())
                .and_then(|e| e.address())
            {
                aux.insert("endpoint".into(), ep.to_string());
            }
            sink.push(
                Kind::ReplicationGroup,
                g.replication_group_id().unwrap_or_default(),
                Some(arn),
                tags,
                props([
                    ("identifier", s(g.replication_group_id())),
                    ("engine", Val::str(g.engine().unwrap_or("redis"))),
                    ("node_type", s(g.cache_node_type())),
                    (
                        "num_cache_clusters",
                        Val::Int(g.member_clusters().len() as i64),
                    ),
                    (
                        "automatic_failover",
                        Val::Bool(matches!(
                            g.automatic_failover(),
                            Some(
                                AutomaticFailoverStatus::Enabled
                                    | AutomaticFailoverStatus::Enabling
                            )
                        )),
                    ),
                    (
                        "multi_az",
                        Val::Bool(matches!(g.multi_az(), Some(MultiAzStatus::Enabled))),
                    ),
                    (
                        "transit_encryption",
                        Val::Bool(g.transit_encryption_enabled().unwrap_or(false)),
                    ),
                    (
                        "at_rest_encryption",
                        Val::Bool(g.at_rest_encryption_enabled().unwrap_or(false)),
                    ),
                    (
                        "auth_token_enabled",
                        Val::Bool(g.auth_token_enabled().unwrap_or(false)),
                    ),
                ]),
                state,
                aux,
            );
        }
    }
    Ok(sink.out)
}

async fn observe_secrets(c: &Clients, cfg: &Config) -> Result<Vec<Observed>, Error> {
    use aws_sdk_secretsmanager::types::{Filter as SmFilter, FilterNameStringType};
    let mut sink = Sink {
        cfg,
        out: Vec::new(),
    };
    let prefix = format!("{}/{}/", cfg.name, cfg.environment);
    let list = c
        .secrets
        .list_secrets()
        .filters(
            SmFilter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .send()
        .await
        .map_err(|err| Error::Aws(AwsError::new("secretsmanager:ListSecrets", &err)))?;
    for sec in list.secret_list() {
        if sec.deleted_date().is_some() {
            continue;
        }
        let tags: BTreeMap<String, String> = sec
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect();
        sink.push(
            Kind::Secret,
            sec.arn().unwrap_or_default(),
            sec.arn().map(str::to_string),
            tags,
            props([("name", s(sec.name()))]),
            "available",
            BTreeMap::new(),
        );
    }
    Ok(sink.out)
}
