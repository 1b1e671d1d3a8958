//! ECS services: Fargate in the private subnets, behind their target group (the functions service has none:
//! the gateway reaches it over Cloud Map), registered in Cloud Map, rolling deployments with the circuit
//! breaker. A deploy waits for the service to run its task definition steadily.
//!
//! Emulator notes (moto 5.2.5): `CreateService` drops the deployment configuration and the health-check grace
//! period, so after a create the service is read back and an `UpdateService` sets what is missing (on AWS the
//! read shows them and nothing more is sent); a duplicate `CreateService` would silently replace a service,
//! which observation (describe first) rules out; the service's deployment list is never refreshed, which
//! [`crate::Quirks::ecs_deployments_not_refreshed`] accounts for when waiting.

use std::collections::BTreeMap;

use super::tags::{ecs_tags, observed_tags};
use crate::aws::{absent, err as aws, Clients};
use crate::compute::{service, SERVICES};
use crate::config::Config;
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{built, deleted, int, poll_until, Ctx};
use crate::family::found::{must_own, s, Sink};
use crate::family::Created;
use crate::kinds::account::{retry_while_role_not_ready, PROPAGATION_PAUSES};
use crate::kinds::network::private_subnets;
use crate::model::{changes, props, Desired, FieldChange, Kind, Observed, Props, Val};
use crate::Error;

/// Rolling deployments that never drop below the desired count, stopped and rolled back by the circuit breaker.
pub const DEPLOYMENT: &str = "min-healthy=100,max=200,circuit-breaker=rollback";

/// A service per configured ECS service.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let private_subnets = private_subnets(cfg, inputs);
    for svc in &c.services {
        let spec = service(svc.name).expect("a known service");
        let mut p = props([
            ("name", Val::str(svc.name)),
            ("cluster", Val::r("ecs/cluster")),
            ("launch_type", Val::str("FARGATE")),
            ("task_definition", Val::r(&format!("taskdef/{}", svc.name))),
            ("subnets", Val::Set(private_subnets.clone())),
            (
                "security_groups",
                Val::Set(vec![Val::r(&format!("sg/{}", svc.name))]),
            ),
            ("assign_public_ip", Val::str("DISABLED")),
            (
                "load_balancer",
                if spec.load_balanced {
                    Val::Concat(vec![
                        Val::r(&format!("tg/{}", svc.name)),
                        Val::Str(format!(":{}:{}", svc.name, spec.port)),
                    ])
                } else {
                    Val::str("")
                },
            ),
            (
                "service_registry",
                Val::attr(&format!("sd/{}", svc.name), "arn"),
            ),
            ("deployment", Val::str(DEPLOYMENT)),
            // the grace period covers load balancer health checks; without one there is none to give
            (
                "health_check_grace_period",
                Val::Int(if spec.load_balanced { 60 } else { 0 }),
            ),
        ]);
        let mut create_only = Props::new();
        // with autoscaling on, the running count is Application Auto Scaling's to set: desiredCount only
        // seeds it, and a deploy does not reset it
        let count = ("desired_count".to_string(), Val::Int(svc.desired_count));
        if svc.autoscaled() {
            create_only.insert(count.0, count.1);
        } else {
            p.insert(count.0, count.1);
        }
        b.add(
            Kind::EcsService,
            &format!("ecs/{}", svc.name),
            svc.name.into(),
            p,
            create_only,
        );
    }
}

/// The services of our cluster (only looked for when the cluster is ours).
pub(super) async fn observe(c: &Clients, cfg: &Config, sink: &mut Sink<'_>) -> Result<(), Error> {
    use aws_sdk_ecs::types::ServiceField;
    let cluster_name = &cfg.compute.cluster_name;
    let names: Vec<String> = SERVICES.iter().map(|s| s.name.to_string()).collect();
    let services = c
        .ecs
        .describe_services()
        .cluster(cluster_name)
        .set_services(Some(names))
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(crate::aws::err("ecs:DescribeServices"))?;
    for sv in services.services() {
        // DRAINING: being deleted; INACTIVE: gone
        if sv.status() != Some("ACTIVE") {
            continue;
        }
        let tags = observed_tags(sv.tags());
        let name = sv.service_name().unwrap_or_default();
        must_own(cfg, Kind::EcsService, name, &tags)?;
        let net = sv
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration());
        let lb = sv
            .load_balancers()
            .first()
            .map(|l| {
                format!(
                    "{}:{}:{}",
                    l.target_group_arn().unwrap_or_default(),
                    l.container_name().unwrap_or_default(),
                    l.container_port().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        let mut aux = BTreeMap::from([
            ("desired".to_string(), sv.desired_count().to_string()),
            ("running".to_string(), sv.running_count().to_string()),
            ("pending".to_string(), sv.pending_count().to_string()),
        ]);
        if let Some(d) = sv
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
        {
            if let Some(r) = d.rollout_state() {
                aux.insert("rollout".into(), r.as_str().to_string());
            }
        }
        sink.push(
            Kind::EcsService,
            sv.service_arn().unwrap_or_default(),
            sv.service_arn().map(str::to_string),
            tags,
            props([
                ("name", Val::str(name)),
                ("cluster", Val::str(cluster_name)),
                ("launch_type", s(sv.launch_type().map(|l| l.as_str()))),
                ("task_definition", s(sv.task_definition())),
                ("desired_count", Val::Int(i64::from(sv.desired_count()))),
                (
                    "subnets",
                    Val::Set(
                        net.map(|n| n.subnets())
                            .unwrap_or_default()
                            .iter()
                            .map(|x| Val::str(x.as_str()))
                            .collect(),
                    ),
                ),
                (
                    "security_groups",
                    Val::Set(
                        net.map(|n| n.security_groups())
                            .unwrap_or_default()
                            .iter()
                            .map(|x| Val::str(x.as_str()))
                            .collect(),
                    ),
                ),
                (
                    "assign_public_ip",
                    s(net.and_then(|n| n.assign_public_ip()).map(|a| a.as_str())),
                ),
                ("load_balancer", Val::Str(lb)),
                (
                    "service_registry",
                    s(sv.service_registries()
                        .first()
                        .and_then(|r| r.registry_arn())),
                ),
                (
                    "deployment",
                    Val::Str(render_deployment(sv.deployment_configuration())),
                ),
                (
                    "health_check_grace_period",
                    Val::Int(i64::from(
                        sv.health_check_grace_period_seconds().unwrap_or(0),
                    )),
                ),
            ]),
            sv.status().unwrap_or(""),
            aux,
        );
    }
    Ok(())
}

/// A service's deployment configuration as one line (the form of [`DEPLOYMENT`]).
pub fn render_deployment(d: Option<&aws_sdk_ecs::types::DeploymentConfiguration>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    let breaker = match d.deployment_circuit_breaker() {
        Some(b) if b.enable() && b.rollback() => "rollback",
        Some(b) if b.enable() => "on",
        _ => "off",
    };
    format!(
        "min-healthy={},max={},circuit-breaker={breaker}",
        d.minimum_healthy_percent().unwrap_or(100),
        d.maximum_percent().unwrap_or(200)
    )
}

pub(super) async fn create_service(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    use aws_sdk_ecs::types::{LaunchType, PropagateTags, ServiceRegistry};
    let c = x.c;
    let cluster = x.prop(d, "cluster")?;
    let name = x.prop(d, "name")?;
    let td = x.prop(d, "task_definition")?;
    let deployment = deployment_configuration(&x.prop(d, "deployment")?)?;
    let grace = int(d, "health_check_grace_period") as i32;
    let desired = int(d, "desired_count") as i32;
    let grace_opt = (grace > 0).then_some(grace);
    let r = c
        .ecs
        .create_service()
        .cluster(&cluster)
        .service_name(&name)
        .task_definition(&td)
        .desired_count(desired)
        .launch_type(LaunchType::from(x.prop(d, "launch_type")?.as_str()))
        .network_configuration(ecs_network(x, d)?)
        .set_load_balancers(ecs_load_balancer(x, d)?.map(|lb| vec![lb]))
        .service_registries(
            ServiceRegistry::builder()
                .registry_arn(x.prop(d, "service_registry")?)
                .build(),
        )
        .deployment_configuration(deployment.clone())
        .set_health_check_grace_period_seconds(grace_opt)
        .propagate_tags(PropagateTags::Service)
        .enable_ecs_managed_tags(true)
        .set_tags(Some(ecs_tags(&d.tags)));
    // the service-linked role, or a task role created moments ago, may not be usable yet
    let r = retry_while_role_not_ready(&PROPAGATION_PAUSES, || r.clone().send())
        .await
        .map_err(aws("ecs:CreateService"))?;
    let arn = r
        .service()
        .and_then(|s| s.service_arn())
        .unwrap_or_default()
        .to_string();
    // read it back: the emulator drops the deployment configuration and grace period on create
    let back = c
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(&name)
        .send()
        .await
        .map_err(aws("ecs:DescribeServices"))?;
    let sv = back.services().first();
    let lost_deployment = sv
        .map(|s| render_deployment(s.deployment_configuration()))
        .as_deref()
        != Some(x.prop(d, "deployment")?.as_str());
    let lost_grace = sv
        .and_then(|s| s.health_check_grace_period_seconds())
        .unwrap_or(0)
        != grace;
    if lost_deployment || lost_grace {
        c.ecs
            .update_service()
            .cluster(&cluster)
            .service(&name)
            .desired_count(desired)
            .deployment_configuration(deployment)
            .set_health_check_grace_period_seconds(grace_opt)
            .send()
            .await
            .map_err(aws("ecs:UpdateService"))?;
    }
    wait_service(x, &cluster, &name, &td).await?;
    Ok((arn, BTreeMap::new()))
}

pub(super) async fn update_ecs_service(
    x: &Ctx<'_>,
    d: &Desired,
    o: &Observed,
    fields: &[FieldChange],
) -> Result<(), Error> {
    let c = x.c;
    let changed = changes(fields);
    let cluster = x.prop(d, "cluster")?;
    let mut req = c
        .ecs
        .update_service()
        .cluster(&cluster)
        .service(&o.physical);
    let mut any = false;
    if changed("task_definition") {
        req = req.task_definition(x.prop(d, "task_definition")?);
        any = true;
    }
    if changed("desired_count") {
        req = req.desired_count(int(d, "desired_count") as i32);
        any = true;
    }
    if changed("subnets") || changed("security_groups") || changed("assign_public_ip") {
        req = req.network_configuration(ecs_network(x, d)?);
        any = true;
    }
    if changed("load_balancer") {
        // an empty list detaches the load balancer
        req = req.set_load_balancers(Some(ecs_load_balancer(x, d)?.into_iter().collect()));
        any = true;
    }
    if changed("service_registry") {
        req = req.service_registries(
            aws_sdk_ecs::types::ServiceRegistry::builder()
                .registry_arn(x.prop(d, "service_registry")?)
                .build(),
        );
        any = true;
    }
    if changed("deployment") {
        req = req.deployment_configuration(deployment_configuration(&x.prop(d, "deployment")?)?);
        any = true;
    }
    if changed("health_check_grace_period") {
        req = req.health_check_grace_period_seconds(int(d, "health_check_grace_period") as i32);
        any = true;
    }
    if any {
        let r = req.send().await.map_err(aws("ecs:UpdateService"))?;
        let td = r
            .service()
            .and_then(|s| s.task_definition())
            .unwrap_or_default()
            .to_string();
        let name = x.prop(d, "name")?;
        wait_service(x, &cluster, &name, &td).await?;
    }
    Ok(())
}

pub(super) async fn delete_ecs_service(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let c = x.c;
    let cluster = o.prop_str("cluster").to_string();
    if absent(
        "ecs:DeleteService",
        c.ecs
            .delete_service()
            .cluster(&cluster)
            .service(&o.physical)
            .force(true)
            .send(),
        |e| e.is_service_not_found_exception(),
    )
    .await?
    .is_none()
    {
        return Ok(deleted(&o.physical, false));
    }
    let arn = o.physical.clone();
    poll_until("ecs service to drain", x.opts.timeouts.service, || {
        let (cluster, arn) = (cluster.clone(), arn.clone());
        async move {
            let r = c
                .ecs
                .describe_services()
                .cluster(&cluster)
                .services(&arn)
                .send()
                .await
                .map_err(aws("ecs:DescribeServices"))?;
            Ok(r.services().iter().all(|s| s.status() == Some("INACTIVE")))
        }
    })
    .await?;
    Ok(deleted(&o.physical, true))
}

/// Waits until a service runs `task_definition` steadily; a deployment the circuit breaker rolled back or
/// marked failed is an error.
async fn wait_service(
    x: &Ctx<'_>,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<(), Error> {
    let c = x.c;
    let t = x.opts.timeouts.service;
    let no_refresh = x.opts.quirks.ecs_deployments_not_refreshed;
    let what = format!("ecs service {service} to reach a steady state");
    poll_until(&what, t, || async move {
        let out = c
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(aws("ecs:DescribeServices"))?;
        let Some(sv) = out.services().first() else {
            return Err(Error::Internal(format!("ecs service {service} disappeared")));
        };
        if sv.task_definition() != Some(task_definition) {
            return Err(Error::Internal(format!(
                "ecs service {service} was rolled back to {} by the deployment circuit breaker: check the \
                 service's events and the tasks' logs, fix the cause and deploy again",
                sv.task_definition().unwrap_or("?")
            )));
        }
        let primary = sv.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        let steady = sv.running_count() == sv.desired_count() && sv.pending_count() == 0;
        if no_refresh {
            return Ok(steady);
        }
        use aws_sdk_ecs::types::DeploymentRolloutState as R;
        match primary.and_then(|d| d.rollout_state()) {
            Some(R::Failed) => Err(Error::Internal(format!(
                "ecs service {service}: the deployment failed: {}",
                primary
                    .and_then(|d| d.rollout_state_reason())
                    .unwrap_or("no reason given")
            ))),
            Some(R::Completed) => Ok(primary.and_then(|d| d.task_definition()) == Some(task_definition)),
            _ => Ok(steady && sv.deployments().len() == 1),
        }
    })
    .await
}

fn ecs_network(
    x: &Ctx<'_>,
    d: &Desired,
) -> Result<aws_sdk_ecs::types::NetworkConfiguration, Error> {
    use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, NetworkConfiguration};
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(built(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(x.resolve_set(d.props.get("subnets"))?))
                .set_security_groups(Some(x.resolve_set(d.props.get("security_groups"))?))
                .assign_public_ip(AssignPublicIp::from(
                    x.prop(d, "assign_public_ip")?.as_str(),
                ))
                .build(),
        )?)
        .build())
}

/// The service's target group, container and port; none for a service no load balancer fronts.
fn ecs_load_balancer(
    x: &Ctx<'_>,
    d: &Desired,
) -> Result<Option<aws_sdk_ecs::types::LoadBalancer>, Error> {
    let text = x.prop(d, "load_balancer")?;
    if text.is_empty() {
        return Ok(None);
    }
    let mut parts = text.rsplitn(3, ':');
    let port: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let container = parts.next().unwrap_or_default().to_string();
    let tg = parts.next().unwrap_or_default().to_string();
    Ok(Some(
        aws_sdk_ecs::types::LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(container)
            .container_port(port)
            .build(),
    ))
}

fn deployment_configuration(
    text: &str,
) -> Result<aws_sdk_ecs::types::DeploymentConfiguration, Error> {
    use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};
    let mut min = 100;
    let mut max = 200;
    let mut breaker = (false, false);
    for kv in text.split(',') {
        match kv.split_once('=') {
            Some(("min-healthy", v)) => min = v.parse().unwrap_or(100),
            Some(("max", v)) => max = v.parse().unwrap_or(200),
            Some(("circuit-breaker", "rollback")) => breaker = (true, true),
            Some(("circuit-breaker", "on")) => breaker = (true, false),
            _ => {}
        }
    }
    Ok(DeploymentConfiguration::builder()
        .minimum_healthy_percent(min)
        .maximum_percent(max)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(breaker.0)
                .rollback(breaker.1)
                .build(),
        )
        .build())
}
