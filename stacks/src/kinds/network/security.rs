//! Security groups (one per part of the stack in the VPC) and their rules, derived from what each part
//! connects to ([`crate::reach`]). A rule is its own resource, found and revoked by its rule id.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, UserIdGroupPair};

use super::ec2::{ec2_tags, sent, tag_spec};
use crate::aws::{ec2_is_not_found, err as aws, AwsError, Clients};
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{deleted, poll_until, Ctx};
use crate::family::found::{owned, s, Sink};
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, ResId, Val};
use crate::reach;
use crate::Error;

/// The security groups: one per part of the stack in the VPC ([`reach::members`]), with the rules derived from
/// what each part connects to ([`reach::edges`], declared in [`crate::compute::edges`]). Upstream's CDK security
/// groups → here: KongSG → `gateway` (which also runs auth and, in service mode, REST: upstream's AuthSG and a
/// REST service group have no task here, so no group), LambdaSG → `rest-lambda` (lambda mode only), RdsSG →
/// `platform-db`, WorkerRdsSG → `worker-db`, RedisSG → `redis`, ALBSG → `alb`, StudioALBSG → `admin-alb`,
/// TenantManagerSG → `tenant-manager`. Dropped with their services: FunctionsSG, FunctionDeploySG,
/// PostgresMetaSG, StudioSG, EFS. Differences: the gateway (not only auth) reaches the worker cluster, since
/// auth and REST run in it; the platform database is reached by the tenant-manager only (Kong kept its own
/// store there); the tenant-manager reaches Redis to invalidate the gateway's key cache; Kong's admin port 8001
/// and its 8000 from the VPC's block have no consumer here; and egress is explicit on every group (upstream
/// kept AWS's allow-all on the services and the Lambda).
pub(super) fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let prefix = cfg.prefix();
    for peer in reach::members(cfg) {
        let key = peer.group().expect("every member has a security group");
        let name = format!("{prefix}-{key}");
        b.add(
            Kind::SecurityGroup,
            &format!("sg/{key}"),
            name.clone(),
            props([
                ("vpc", Val::r("vpc")),
                ("group_name", Val::Str(name)),
                (
                    "description",
                    Val::Str(format!("supactl: {}", peer.description())),
                ),
                // egress is the explicit rules below: AWS's default allow-all rule is revoked
                ("egress_all", Val::Bool(false)),
            ]),
            Props::new(),
        );
    }
    for rule in reach::rules(&reach::edges(cfg)) {
        let peer = match rule.peer.group() {
            Some(_) => rule.peer.group_ref(),
            None => Val::str(reach::ANYWHERE),
        };
        let (key, word) = (rule.peer_key(), rule.direction.as_str());
        let name = match rule.direction {
            reach::Direction::Ingress => format!("{prefix}-{}-{}-{key}", rule.group, rule.port),
            reach::Direction::Egress => {
                format!("{prefix}-{}-{word}-{}-{key}", rule.group, rule.port)
            }
        };
        b.add(
            Kind::SecurityGroupRule,
            &rule.id(),
            name,
            props([
                ("group", Val::Ref(ResId(format!("sg/{}", rule.group)))),
                ("direction", Val::str(word)),
                ("protocol", Val::str("tcp")),
                ("port", Val::Int(rule.port)),
                ("peer", peer),
            ]),
            props([(
                "description",
                Val::Str(match rule.direction {
                    reach::Direction::Ingress => format!("from {key}"),
                    reach::Direction::Egress => format!("to {key}"),
                }),
            )]),
        );
    }
}

/// Security groups, then the rules of the owned ones.
pub(super) async fn observe_security_groups(
    c: &Clients,
    cfg: &Config,
    f: &[Filter],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let sgs = c
        .ec2
        .describe_security_groups()
        .set_filters(Some(f.to_vec()))
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

    Ok(())
}

pub(super) async fn create_security_group(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let c = x.c;
    let r = c
        .ec2
        .create_security_group()
        .group_name(x.prop(d, "group_name")?)
        .description(x.prop(d, "description")?)
        .vpc_id(x.prop(d, "vpc")?)
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, &d.tags))
        .send()
        .await
        .map_err(aws("ec2:CreateSecurityGroup"))?;
    let id = r.group_id().unwrap_or_default().to_string();
    if !Ctx::flag(d, "egress_all") {
        egress_all(x, &id, false).await?;
    }
    Ok(id)
}

pub(super) async fn update_security_group(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let changed = changes(fields);
    if changed("egress_all") {
        egress_all(x, &o.physical, Ctx::flag(d, "egress_all")).await?;
    }
    Ok(())
}

pub(super) async fn delete_security_group(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    // a load balancer's or task's network interfaces linger a while after it is deleted: retry
    // while the group is still in use (DependencyViolation)
    let id = o.physical.clone();
    let was_gone = std::sync::atomic::AtomicBool::new(false);
    let was_gone_ref = &was_gone;
    poll_until("security group to be released", t.network, || {
        let id = id.clone();
        async move {
            match c.ec2.delete_security_group().group_id(&id).send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(ec2_is_not_found) => {
                    was_gone_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(true)
                }
                Err(e)
                    if e.as_service_error().and_then(|s| crate::aws::ec2_code(s))
                        == Some("DependencyViolation") =>
                {
                    Ok(false)
                }
                Err(e) => Err(Error::Aws(AwsError::new("ec2:DeleteSecurityGroup", &e))),
            }
        }
    })
    .await?;
    if was_gone.load(std::sync::atomic::Ordering::Relaxed) {
        Ok(deleted(&o.physical, false))
    } else {
        Ok(deleted(&o.physical, true))
    }
}

pub(super) async fn create_security_group_rule(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    authorize_rule(x, d).await
}

pub(super) async fn delete_security_group_rule(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    // by rule id: the emulator cannot revoke a source-group rule with a description by its permission
    let group = o.prop_str("group");
    if o.props.get("direction").and_then(Val::as_str) == Some("egress") {
        if !sent(
            "ec2:RevokeSecurityGroupEgress",
            c.ec2
                .revoke_security_group_egress()
                .group_id(group)
                .security_group_rule_ids(&o.physical)
                .send(),
        )
        .await?
        {
            return Ok(deleted(&o.physical, false));
        }
    } else {
        if !sent(
            "ec2:RevokeSecurityGroupIngress",
            c.ec2
                .revoke_security_group_ingress()
                .group_id(group)
                .security_group_rule_ids(&o.physical)
                .send(),
        )
        .await?
        {
            return Ok(deleted(&o.physical, false));
        }
    }
    Ok(deleted(&o.physical, true))
}

/// Authorizes one ingress or egress rule (TCP, one port, a group or a CIDR as its peer) with its tags, and
/// returns the rule's id.
async fn authorize_rule(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    let port = d.props.get("port").and_then(Val::as_int).unwrap_or(0) as i32;
    let desc = x.prop(d, "description")?;
    let peer = x.prop(d, "peer")?;
    let perm = IpPermission::builder()
        .ip_protocol(x.prop(d, "protocol")?)
        .from_port(port)
        .to_port(port);
    let perm = match d.props.get("peer") {
        Some(Val::Ref(_)) => perm.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(peer)
                .description(desc)
                .build(),
        ),
        _ => perm.ip_ranges(IpRange::builder().cidr_ip(peer).description(desc).build()),
    }
    .build();
    let group = x.prop(d, "group")?;
    let tags = tag_spec(ResourceType::SecurityGroupRule, &d.tags);
    let ec2 = &x.c.ec2;
    let rules = if x.prop(d, "direction")? == "egress" {
        ec2.authorize_security_group_egress()
            .group_id(group)
            .ip_permissions(perm)
            .tag_specifications(tags)
            .send()
            .await
            .map_err(aws("ec2:AuthorizeSecurityGroupEgress"))?
            .security_group_rules
    } else {
        ec2.authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(perm)
            .tag_specifications(tags)
            .send()
            .await
            .map_err(aws("ec2:AuthorizeSecurityGroupIngress"))?
            .security_group_rules
    };
    Ok(rules
        .unwrap_or_default()
        .first()
        .and_then(|r| r.security_group_rule_id())
        .unwrap_or_default()
        .to_string())
}

async fn egress_all(x: &Ctx<'_>, sg: &str, allow: bool) -> Result<(), Error> {
    let perm = IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    if allow {
        x.c.ec2
            .authorize_security_group_egress()
            .group_id(sg)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(aws("ec2:AuthorizeSecurityGroupEgress"))?;
    } else {
        x.c.ec2
            .revoke_security_group_egress()
            .group_id(sg)
            .ip_permissions(perm)
            .send()
            .await
            .map_err(aws("ec2:RevokeSecurityGroupEgress"))?;
    }
    Ok(())
}
