//! Application Auto Scaling: a scalable target (the desired count between min and max) and a CPU target
//! tracking policy per autoscaled ECS service. Neither carries readable tags: they are ours when they belong to
//! a service of our (owned) cluster, so they are observed only when the cluster is.

use std::collections::BTreeMap;

use crate::aws::{absent, err as aws, Clients};
use crate::compute::SERVICES;
use crate::config::Config;
use crate::family::build::Builder;
use crate::family::ctx::{built, deleted, int, Ctx};
use crate::family::found::{s, synthesized, Sink};
use crate::family::{Created, Family};
use crate::kinds::account::{retry_while_role_not_ready, PROPAGATION_PAUSES};
use crate::model::{props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// The Application Auto Scaling resource id of a service.
pub fn scaling_resource_id(cfg: &Config, service: &str) -> String {
    format!("service/{}/{service}", cfg.compute.cluster_name)
}

/// A target and a CPU policy per autoscaled service.
pub fn desired(b: &mut Builder<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let prefix = cfg.prefix();
    for svc in c.services.iter().filter(|s| s.autoscaled()) {
        let rid = scaling_resource_id(cfg, svc.name);
        b.add(
            Kind::ScalableTarget,
            &format!("scaling/{}", svc.name),
            rid.clone(),
            props([
                ("resource_id", Val::Str(rid.clone())),
                ("min", Val::Int(svc.min_count)),
                ("max", Val::Int(svc.max_count)),
            ]),
            Props::new(),
        );
    }
    for svc in c.services.iter().filter(|s| s.autoscaled()) {
        let rid = scaling_resource_id(cfg, svc.name);
        let name = format!("{prefix}-{}-cpu", svc.name);
        b.add(
            Kind::ScalingPolicy,
            &format!("scaling/{}/cpu", svc.name),
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("resource_id", Val::Str(rid)),
                ("metric", Val::str("ECSServiceAverageCPUUtilization")),
                ("target", Val::Num(70.0)),
                ("scale_in_cooldown", Val::Int(300)),
                ("scale_out_cooldown", Val::Int(60)),
            ]),
            Props::new(),
        );
    }
}

pub struct Autoscaling;

impl Family for Autoscaling {
    const PARENT: Option<Kind> = Some(Kind::EcsCluster);

    fn replaces(kind: Kind, field: &str) -> bool {
        match kind {
            Kind::ScalingPolicy => ["name", "resource_id"].contains(&field),
            _ => field == "resource_id",
        }
    }

    async fn observe(
        c: &Clients,
        cfg: &Config,
        desired: &[Desired],
    ) -> Result<Vec<Observed>, Error> {
        use aws_sdk_applicationautoscaling::types::ServiceNamespace;
        let mut sink = Sink::new(cfg);
        let ids: Vec<(String, &str)> = SERVICES
            .iter()
            .map(|s| (scaling_resource_id(cfg, s.name), s.name))
            .collect();
        let targets = c
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .set_resource_ids(Some(ids.iter().map(|(r, _)| r.clone()).collect()))
            .send()
            .await
            .map_err(crate::aws::err(
                "application-autoscaling:DescribeScalableTargets",
            ))?;
        for t in targets.scalable_targets() {
            let Some((rid, svc)) = ids.iter().find(|(r, _)| r == t.resource_id()) else {
                continue;
            };
            let id = format!("scaling/{svc}");
            sink.push(
                Kind::ScalableTarget,
                rid,
                t.scalable_target_arn().map(str::to_string),
                synthesized(cfg, desired, &id),
                props([
                    ("resource_id", Val::str(rid.as_str())),
                    ("min", Val::Int(i64::from(t.min_capacity()))),
                    ("max", Val::Int(i64::from(t.max_capacity()))),
                ]),
                "registered",
                BTreeMap::new(),
            );
            let policies = c
                .autoscaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(rid)
                .send()
                .await
                .map_err(crate::aws::err(
                    "application-autoscaling:DescribeScalingPolicies",
                ))?;
            let ours = format!("{}-{svc}-cpu", cfg.prefix());
            for p in policies.scaling_policies() {
                if p.policy_name() != ours {
                    continue;
                }
                let tt = p.target_tracking_scaling_policy_configuration();
                let pid = format!("scaling/{svc}/cpu");
                let mut pp: Props = props([
                    ("name", Val::str(p.policy_name())),
                    ("resource_id", Val::str(p.resource_id())),
                    (
                        "metric",
                        s(tt.and_then(|t| t.predefined_metric_specification())
                            .map(|m| m.predefined_metric_type().as_str())),
                    ),
                    (
                        "target",
                        Val::Num(tt.map(|t| t.target_value()).unwrap_or(0.0)),
                    ),
                ]);
                pp.insert(
                    "scale_in_cooldown".into(),
                    Val::Int(i64::from(
                        tt.and_then(|t| t.scale_in_cooldown()).unwrap_or(0),
                    )),
                );
                pp.insert(
                    "scale_out_cooldown".into(),
                    Val::Int(i64::from(
                        tt.and_then(|t| t.scale_out_cooldown()).unwrap_or(0),
                    )),
                );
                sink.push(
                    Kind::ScalingPolicy,
                    p.policy_arn(),
                    Some(p.policy_arn().to_string()),
                    synthesized(cfg, desired, &pid),
                    pp,
                    "active",
                    BTreeMap::new(),
                );
            }
        }
        Ok(sink.out)
    }

    async fn create(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
        match d.kind {
            Kind::ScalableTarget => {
                register_target(x, d).await?;
                Ok((x.prop(d, "resource_id")?, BTreeMap::new()))
            }
            _ => Ok((put_scaling_policy(x, d).await?, BTreeMap::new())),
        }
    }

    async fn update(
        x: &Ctx<'_>,
        d: &Desired,
        _: &Observed,
        _: &[FieldChange],
    ) -> Result<(), Error> {
        // both calls set the whole resource
        match d.kind {
            Kind::ScalableTarget => register_target(x, d).await,
            _ => put_scaling_policy(x, d).await.map(drop),
        }
    }

    async fn tag(_: &Ctx<'_>, _: &Observed, _: &BTreeMap<String, String>) -> Result<(), Error> {
        // no readable tags (see observe): ownership follows the service's
        Ok(())
    }

    async fn delete(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
        match o.kind {
            Kind::ScalableTarget => delete_scalable_target(x, o).await,
            _ => delete_scaling_policy(x, o).await,
        }
    }
}

async fn delete_scalable_target(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let r = absent(
        "application-autoscaling:DeregisterScalableTarget",
        c.autoscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&o.physical)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send(),
        |e| e.is_object_not_found_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

async fn delete_scaling_policy(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let r = absent(
        "application-autoscaling:DeleteScalingPolicy",
        c.autoscaling
            .delete_scaling_policy()
            .policy_name(o.prop_str("name"))
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(o.prop_str("resource_id"))
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send(),
        |e| e.is_object_not_found_exception(),
    )
    .await?;
    Ok(deleted(&o.physical, r.is_some()))
}

async fn register_target(x: &Ctx<'_>, d: &Desired) -> Result<(), Error> {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let req =
        x.c.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(x.prop(d, "resource_id")?)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(int(d, "min") as i32)
            .max_capacity(int(d, "max") as i32)
            .set_tags(Some(d.tags.clone().into_iter().collect()));
    // Application Auto Scaling acts through its service-linked role, which a fresh account may only just have
    retry_while_role_not_ready(&PROPAGATION_PAUSES, || req.clone().send())
        .await
        .map_err(aws("application-autoscaling:RegisterScalableTarget"))?;
    Ok(())
}

async fn put_scaling_policy(x: &Ctx<'_>, d: &Desired) -> Result<String, Error> {
    use aws_sdk_applicationautoscaling::types::{
        MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
        TargetTrackingScalingPolicyConfiguration,
    };
    let r =
        x.c.autoscaling
            .put_scaling_policy()
            .policy_name(x.prop(d, "name")?)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(x.prop(d, "resource_id")?)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(built(
                TargetTrackingScalingPolicyConfiguration::builder()
                    .target_value(d.props.get("target").and_then(Val::as_num).unwrap_or(70.0))
                    .predefined_metric_specification(built(
                        PredefinedMetricSpecification::builder()
                            .predefined_metric_type(MetricType::from(x.prop(d, "metric")?.as_str()))
                            .build(),
                    )?)
                    .scale_in_cooldown(int(d, "scale_in_cooldown") as i32)
                    .scale_out_cooldown(int(d, "scale_out_cooldown") as i32)
                    .build(),
            )?)
            .send()
            .await
            .map_err(aws("application-autoscaling:PutScalingPolicy"))?;
    Ok(r.policy_arn().to_string())
}
