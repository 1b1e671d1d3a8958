//! Target groups: one per ECS service (IP targets, health checked on [`crate::compute::HEALTH_PATH`]).

use std::collections::BTreeMap;

use super::tags::{elb_name, elb_tags};
use crate::aws::{err as aws, AwsError, Clients};
use crate::compute::HEALTH_PATH;
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{deleted, int, poll_until, Ctx};
use crate::family::found::{is_ours, s, Sink};
use crate::family::Created;
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// A target group per load-balanced ECS service.
pub(super) fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let prefix = cfg.prefix();
    for svc in &c.services {
        let spec = crate::compute::service(svc.name).expect("a known service");
        if !spec.load_balanced {
            continue;
        }
        let name = elb_name(&prefix, spec.short);
        b.add(
            Kind::TargetGroup,
            &format!("tg/{}", svc.name),
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("protocol", Val::str("HTTP")),
                ("port", Val::Int(spec.port)),
                ("vpc", Val::r("vpc")),
                ("target_type", Val::str("ip")),
                ("health_check_path", Val::str(HEALTH_PATH)),
                ("health_check_interval", Val::Int(30)),
                ("health_check_timeout", Val::Int(5)),
                ("healthy_threshold", Val::Int(2)),
                ("unhealthy_threshold", Val::Int(3)),
                ("matcher", Val::str("200")),
                // Realtime sockets on a draining gateway are cut when it ends (the clients rejoin on
                // another replica), so 30 s only has to cover REST requests.
                ("deregistration_delay", Val::Int(30)),
            ]),
            Props::new(),
        );
    }
}

/// One target group, if ours, with its deregistration delay.
pub(super) async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    tg: &aws_sdk_elasticloadbalancingv2::types::TargetGroup,
    tags: &BTreeMap<String, BTreeMap<String, String>>,
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let no_tags = BTreeMap::new();
    let arn = tg.target_group_arn().unwrap_or_default();
    let name = tg.target_group_name().unwrap_or_default();
    let t = tags.get(arn).unwrap_or(&no_tags);
    if !is_ours(cfg, desired, Kind::TargetGroup, name, t)? {
        return Ok(());
    }
    let attrs = c
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(crate::aws::err(
            "elasticloadbalancing:DescribeTargetGroupAttributes",
        ))?;
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    sink.push(
        Kind::TargetGroup,
        arn,
        Some(arn.to_string()),
        t.clone(),
        props([
            ("name", Val::str(name)),
            ("protocol", s(tg.protocol().map(|p| p.as_str()))),
            ("port", Val::Int(i64::from(tg.port().unwrap_or(0)))),
            ("vpc", s(tg.vpc_id())),
            ("target_type", s(tg.target_type().map(|t| t.as_str()))),
            ("health_check_path", s(tg.health_check_path())),
            (
                "health_check_interval",
                Val::Int(i64::from(tg.health_check_interval_seconds().unwrap_or(0))),
            ),
            (
                "health_check_timeout",
                Val::Int(i64::from(tg.health_check_timeout_seconds().unwrap_or(0))),
            ),
            (
                "healthy_threshold",
                Val::Int(i64::from(tg.healthy_threshold_count().unwrap_or(0))),
            ),
            (
                "unhealthy_threshold",
                Val::Int(i64::from(tg.unhealthy_threshold_count().unwrap_or(0))),
            ),
            ("matcher", s(tg.matcher().and_then(|m| m.http_code()))),
            ("deregistration_delay", Val::Int(delay)),
        ]),
        "available",
        BTreeMap::new(),
    );
    Ok(())
}

pub(super) async fn create_target_group(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    let c = x.c;
    use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetTypeEnum};
    let r = c
        .elb
        .create_target_group()
        .name(x.prop(d, "name")?)
        .protocol(ProtocolEnum::from(x.prop(d, "protocol")?.as_str()))
        .port(int(d, "port") as i32)
        .vpc_id(x.prop(d, "vpc")?)
        .target_type(TargetTypeEnum::from(x.prop(d, "target_type")?.as_str()))
        .health_check_path(x.prop(d, "health_check_path")?)
        .health_check_interval_seconds(int(d, "health_check_interval") as i32)
        .health_check_timeout_seconds(int(d, "health_check_timeout") as i32)
        .healthy_threshold_count(int(d, "healthy_threshold") as i32)
        .unhealthy_threshold_count(int(d, "unhealthy_threshold") as i32)
        .matcher(Matcher::builder().http_code(x.prop(d, "matcher")?).build())
        .set_tags(Some(elb_tags(&d.tags)))
        .send()
        .await
        .map_err(aws("elasticloadbalancing:CreateTargetGroup"))?;
    let arn = r
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .unwrap_or_default()
        .to_string();
    tg_deregistration_delay(x, &arn, int(d, "deregistration_delay")).await?;
    Ok((arn, BTreeMap::new()))
}

pub(super) async fn update_target_group(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let hc = [
        "health_check_path",
        "health_check_interval",
        "health_check_timeout",
        "healthy_threshold",
        "unhealthy_threshold",
        "matcher",
    ];
    if hc.iter().any(|k| changed(k)) {
        let mut req = c.elb.modify_target_group().target_group_arn(&o.physical);
        if changed("health_check_path") {
            req = req.health_check_path(x.prop(d, "health_check_path")?);
        }
        if changed("health_check_interval") {
            req = req.health_check_interval_seconds(int(d, "health_check_interval") as i32);
        }
        if changed("health_check_timeout") {
            req = req.health_check_timeout_seconds(int(d, "health_check_timeout") as i32);
        }
        if changed("healthy_threshold") {
            req = req.healthy_threshold_count(int(d, "healthy_threshold") as i32);
        }
        if changed("unhealthy_threshold") {
            req = req.unhealthy_threshold_count(int(d, "unhealthy_threshold") as i32);
        }
        if changed("matcher") {
            req = req.matcher(
                aws_sdk_elasticloadbalancingv2::types::Matcher::builder()
                    .http_code(x.prop(d, "matcher")?)
                    .build(),
            );
        }
        req.send()
            .await
            .map_err(aws("elasticloadbalancing:ModifyTargetGroup"))?;
    }
    if changed("deregistration_delay") {
        tg_deregistration_delay(x, &o.physical, int(d, "deregistration_delay")).await?;
    }
    Ok(())
}

pub(super) async fn delete_target_group(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let t = x.opts.timeouts;
    // a target group is in use until the listeners and rules pointing at it are gone
    let arn = o.physical.clone();
    poll_until(
        "target group to be released by its listeners",
        t.network,
        || {
            let arn = arn.clone();
            async move {
                match c
                    .elb
                    .delete_target_group()
                    .target_group_arn(&arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_in_use_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(Error::Aws(AwsError::new(
                        "elasticloadbalancing:DeleteTargetGroup",
                        &e,
                    ))),
                }
            }
        },
    )
    .await?;
    Ok(deleted(&o.physical, true))
}

async fn tg_deregistration_delay(x: &Ctx<'_>, arn: &str, secs: i64) -> Result<(), Error> {
    x.c.elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(secs.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(aws("elasticloadbalancing:ModifyTargetGroupAttributes"))?;
    Ok(())
}
