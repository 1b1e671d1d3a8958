//! The two application load balancers (public: the gateway; admin: the tenant-manager's admin API), in the
//! public subnets.

use std::collections::BTreeMap;

use super::tags::elb_tags;
use crate::aws::{absent, err as aws, Clients};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{deleted, int, waiter_err, Ctx};
use crate::family::found::{is_ours, s, Sink};
use crate::family::Created;
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, ResId, Val};
use crate::Error;

/// Seconds the public balancer keeps a connection with no bytes moving. Set explicitly (AWS's default is
/// 60 s): realtime's WebSockets pass through it and stay quiet between the clients' heartbeats (25 s
/// supabase-js, 30 s supabase-py), so it must stay well above those; and below the gateway's own
/// idle timeout (420 s), so the balancer, not the target, closes an idle keep-alive connection.
pub const PUBLIC_IDLE_TIMEOUT_SECS: i64 = 180;
/// The admin balancer's: above the longest admin call (a project create or delete), below the
/// tenant-manager's idle timeout.
pub const ADMIN_IDLE_TIMEOUT_SECS: i64 = 400;

/// The public and the admin load balancer.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let n_az = cfg.vpc.max_azs.min(inputs.azs.len());
    let public_subnets: Vec<Val> = (0..n_az)
        .map(|i| Val::Ref(ResId(format!("subnet/public/{i}"))))
        .collect();
    let subnet_azs: Vec<Val> = inputs
        .azs
        .iter()
        .take(n_az)
        .map(|a| Val::str(a.as_str()))
        .collect();
    for (key, name, sg, idle) in [
        (
            "public",
            &c.public_alb_name,
            "sg/alb",
            PUBLIC_IDLE_TIMEOUT_SECS,
        ),
        (
            "admin",
            &c.admin_alb_name,
            "sg/admin-alb",
            ADMIN_IDLE_TIMEOUT_SECS,
        ),
    ] {
        b.add(
            Kind::LoadBalancer,
            &format!("alb/{key}"),
            name.clone(),
            props([
                ("name", Val::Str(name.clone())),
                ("scheme", Val::str("internet-facing")),
                ("type", Val::str("application")),
                ("subnets", Val::Set(public_subnets.clone())),
                ("security_groups", Val::Set(vec![Val::r(sg)])),
                ("idle_timeout", Val::Int(idle)),
                ("drop_invalid_header_fields", Val::Bool(true)),
            ]),
            props([("subnet_azs", Val::Set(subnet_azs.clone()))]),
        );
    }
}

/// One load balancer, if ours, with its attributes; returns its listeners.
pub(super) async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer,
    tags: &BTreeMap<String, BTreeMap<String, String>>,
    sink: &mut Sink<'_>,
) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>, Error> {
    let no_tags = BTreeMap::new();
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let name = lb.load_balancer_name().unwrap_or_default();
    let t = tags.get(arn).unwrap_or(&no_tags);
    if !is_ours(cfg, desired, Kind::LoadBalancer, name, t)? {
        return Ok(Vec::new());
    }
    let attrs = c
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(crate::aws::err(
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
        ))?;
    let attr = |k: &str| {
        attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(k))
            .and_then(|a| a.value())
            .unwrap_or("")
            .to_string()
    };
    let mut aux = BTreeMap::new();
    if let Some(d) = lb.dns_name() {
        aux.insert("endpoint".to_string(), d.to_string());
        aux.insert("dns_name".to_string(), d.to_string());
    }
    if let Some(z) = lb.canonical_hosted_zone_id() {
        aux.insert("zone_id".to_string(), z.to_string());
    }
    sink.push(
        Kind::LoadBalancer,
        arn,
        Some(arn.to_string()),
        t.clone(),
        props([
            ("name", Val::str(name)),
            ("scheme", s(lb.scheme().map(|x| x.as_str()))),
            ("type", s(lb.r#type().map(|x| x.as_str()))),
            (
                "subnets",
                Val::Set(
                    lb.availability_zones()
                        .iter()
                        .filter_map(|z| z.subnet_id())
                        .map(Val::str)
                        .collect(),
                ),
            ),
            (
                "security_groups",
                Val::Set(
                    lb.security_groups()
                        .iter()
                        .map(|g| Val::str(g.as_str()))
                        .collect(),
                ),
            ),
            (
                "idle_timeout",
                Val::Int(attr("idle_timeout.timeout_seconds").parse().unwrap_or(60)),
            ),
            (
                "drop_invalid_header_fields",
                Val::Bool(attr("routing.http.drop_invalid_header_fields.enabled") == "true"),
            ),
        ]),
        lb.state()
            .and_then(|s| s.code())
            .map(|c| c.as_str())
            .unwrap_or(""),
        aux,
    );
    let ls = c
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(crate::aws::err("elasticloadbalancing:DescribeListeners"))?;
    Ok(ls)
}

pub(super) async fn create_load_balancer(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    use aws_sdk_elasticloadbalancingv2::types::{
        IpAddressType, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    };
    let r = c
        .elb
        .create_load_balancer()
        .name(x.prop(d, "name")?)
        .set_subnets(Some(x.resolve_set(d.props.get("subnets"))?))
        .set_security_groups(Some(x.resolve_set(d.props.get("security_groups"))?))
        .scheme(LoadBalancerSchemeEnum::from(x.prop(d, "scheme")?.as_str()))
        .r#type(LoadBalancerTypeEnum::from(x.prop(d, "type")?.as_str()))
        .ip_address_type(IpAddressType::Ipv4)
        .set_tags(Some(elb_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("elasticloadbalancing:CreateLoadBalancer"))?;
    let lb = r.load_balancers().first();
    let arn = lb
        .and_then(|l| l.load_balancer_arn())
        .unwrap_or_default()
        .to_string();
    let mut aux = BTreeMap::new();
    if let Some(dns) = lb.and_then(|l| l.dns_name()) {
        aux.insert("dns_name".into(), dns.to_string());
        aux.insert("endpoint".into(), dns.to_string());
    }
    if let Some(z) = lb.and_then(|l| l.canonical_hosted_zone_id()) {
        aux.insert("zone_id".into(), z.to_string());
    }
    use aws_sdk_elasticloadbalancingv2::client::Waiters;
    c.elb
        .wait_until_load_balancer_available()
        .load_balancer_arns(&arn)
        .wait(t.network)
        .await
        .map_err(|e| waiter_err("load balancer to become active", t.network)(e.to_string()))?;
    lb_attributes(x, d, &arn, true, true).await?;
    Ok((arn, aux))
}

pub(super) async fn update_load_balancer(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    if changed("subnets") {
        c.elb
            .set_subnets()
            .load_balancer_arn(&o.physical)
            .set_subnets(Some(x.resolve_set(d.props.get("subnets"))?))
            .send()
            .await
            .map_err(aws("elasticloadbalancing:SetSubnets"))?;
    }
    if changed("security_groups") {
        c.elb
            .set_security_groups()
            .load_balancer_arn(&o.physical)
            .set_security_groups(Some(x.resolve_set(d.props.get("security_groups"))?))
            .send()
            .await
            .map_err(aws("elasticloadbalancing:SetSecurityGroups"))?;
    }
    let (idle, drop) = (
        changed("idle_timeout"),
        changed("drop_invalid_header_fields"),
    );
    if idle || drop {
        lb_attributes(x, d, &o.physical, idle, drop).await?;
    }
    Ok(())
}

pub(super) async fn delete_load_balancer(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    if absent(
        "elasticloadbalancing:DeleteLoadBalancer",
        c.elb
            .delete_load_balancer()
            .load_balancer_arn(&o.physical)
            .send(),
        |e| e.is_load_balancer_not_found_exception(),
    )
    .await?
    .is_none()
    {
        return Ok(deleted(&o.physical, false));
    }
    use aws_sdk_elasticloadbalancingv2::client::Waiters;
    c.elb
        .wait_until_load_balancers_deleted()
        .load_balancer_arns(&o.physical)
        .wait(t.network)
        .await
        .map_err(|e| waiter_err("load balancer to be deleted", t.network)(e.to_string()))?;
    Ok(deleted(&o.physical, true))
}

async fn lb_attributes(
    x: &Ctx<'_>,
    d: &Desired,
    arn: &str,
    idle: bool,
    drop: bool,
) -> Result<(), Error> {
    use aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute as A;
    let mut attrs = Vec::new();
    if idle {
        attrs.push(
            A::builder()
                .key("idle_timeout.timeout_seconds")
                .value(int(d, "idle_timeout").to_string())
                .build(),
        );
    }
    if drop {
        attrs.push(
            A::builder()
                .key("routing.http.drop_invalid_header_fields.enabled")
                .value(Ctx::flag(d, "drop_invalid_header_fields").to_string())
                .build(),
        );
    }
    x.c.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(attrs))
        .send()
        .await
        .map_err(aws("elasticloadbalancing:ModifyLoadBalancerAttributes"))?;
    Ok(())
}
