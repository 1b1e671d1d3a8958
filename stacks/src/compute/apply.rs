//! Create, update (only the changed fields) and delete for the compute tier's kinds, dispatched from
//! [`crate::apply::Applier`]. Deletes tolerate "already gone"; waits run under the apply options' timeouts.
//!
//! Emulator notes (moto 5.2.5, `aws-emulator.md`): `CreateService` drops the deployment configuration and the
//! health-check grace period, so after a create the service is read back and an `UpdateService` sets what is
//! missing (on AWS the read shows them and nothing more is sent); a duplicate `CreateService` would silently
//! replace a service, which observation (describe first) rules out; the service's deployment list is never
//! refreshed, which [`crate::Quirks::ecs_deployments_not_refreshed`] accounts for when waiting.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::apply::{poll_until, waiter_err, Applier};
use crate::aws::{err as aws, AwsError};
use crate::model::{Desired, Kind, Observed, Val};
use crate::plan::{field_map, Change};
use crate::Error;

type Aux = BTreeMap<String, String>;

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, Error> {
    r.map_err(|e| Error::Internal(format!("building a request: {e}")))
}

fn int(d: &Desired, k: &str) -> i64 {
    d.props
        .get(k)
        .or_else(|| d.create_only.get(k))
        .and_then(Val::as_int)
        .unwrap_or(0)
}

/// `forward:<arn>`, `fixed-response:<status>:<type>:<body>` or
/// `redirect:<proto>:<port>:<host>:<path>:<query>:<status>` into an ELB action.
fn elb_action(text: &str) -> Result<aws_sdk_elasticloadbalancingv2::types::Action, Error> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig,
        RedirectActionStatusCodeEnum,
    };
    let bad = || Error::Internal(format!("unknown listener action {text:?}"));
    let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
    let action = match kind {
        "forward" => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(rest),
        "fixed-response" => {
            let mut p = rest.splitn(3, ':');
            let (status, ctype, body) = (p.next(), p.next(), p.next());
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code(status.ok_or_else(bad)?)
                        .content_type(ctype.ok_or_else(bad)?)
                        .message_body(body.unwrap_or_default())
                        .build(),
                )
        }
        "redirect" => {
            let p: Vec<&str> = rest.split(':').collect();
            if p.len() != 6 {
                return Err(bad());
            }
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol(p[0])
                        .port(p[1])
                        .host(p[2])
                        .path(p[3])
                        .query(p[4])
                        .status_code(RedirectActionStatusCodeEnum::from(p[5]))
                        .build(),
                )
        }
        _ => return Err(bad()),
    };
    Ok(action.build())
}

fn elb_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

fn ecs_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_ecs::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Result<Vec<aws_sdk_iam::types::Tag>, Error> {
    tags.iter()
        .map(|(k, v)| build(aws_sdk_iam::types::Tag::builder().key(k).value(v).build()))
        .collect()
}

fn sd_tags(
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_servicediscovery::types::Tag>, Error> {
    tags.iter()
        .map(|(k, v)| {
            build(
                aws_sdk_servicediscovery::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build(),
            )
        })
        .collect()
}

fn path_condition(paths: Vec<String>) -> aws_sdk_elasticloadbalancingv2::types::RuleCondition {
    use aws_sdk_elasticloadbalancingv2::types::{PathPatternConditionConfig, RuleCondition};
    RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(Some(paths))
                .build(),
        )
        .build()
}

/// `CMD a b;interval=30;timeout=5;retries=3;start=15` into a container health check.
fn health_check(text: &str) -> Result<aws_sdk_ecs::types::HealthCheck, Error> {
    let mut parts = text.split(';');
    let command: Vec<String> = parts
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut b = aws_sdk_ecs::types::HealthCheck::builder().set_command(Some(command));
    for kv in parts {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "0"));
        let n: i32 = v.parse().unwrap_or(0);
        b = match k {
            "interval" => b.interval(n),
            "timeout" => b.timeout(n),
            "retries" => b.retries(n),
            "start" => b.start_period(n),
            _ => b,
        };
    }
    build(b.build())
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

impl Applier<'_> {
    fn ecs_network(&self, d: &Desired) -> Result<aws_sdk_ecs::types::NetworkConfiguration, Error> {
        use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, NetworkConfiguration};
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(build(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.resolve_set(d.props.get("subnets"))?))
                    .set_security_groups(Some(self.resolve_set(d.props.get("security_groups"))?))
                    .assign_public_ip(AssignPublicIp::from(
                        self.prop(d, "assign_public_ip")?.as_str(),
                    ))
                    .build(),
            )?)
            .build())
    }

    fn ecs_load_balancer(&self, d: &Desired) -> Result<aws_sdk_ecs::types::LoadBalancer, Error> {
        let text = self.prop(d, "load_balancer")?;
        let mut parts = text.rsplitn(3, ':');
        let port: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let container = parts.next().unwrap_or_default().to_string();
        let tg = parts.next().unwrap_or_default().to_string();
        Ok(aws_sdk_ecs::types::LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(container)
            .container_port(port)
            .build())
    }

    /// Waits until a service runs `task_definition` steadily; a deployment the circuit breaker rolled back or
    /// marked failed is an error.
    async fn wait_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<(), Error> {
        let c = self.c;
        let t = self.opts.timeouts.service;
        let no_refresh = self.opts.quirks.ecs_deployments_not_refreshed;
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

    pub(crate) async fn create_compute(&self, d: &Desired) -> Result<(String, Aux), Error> {
        let c = self.c;
        let t = self.opts.timeouts;
        match d.kind {
            Kind::EcrRepository => {
                let name = self.prop(d, "name")?;
                let tags: Vec<_> = d
                    .tags
                    .iter()
                    .map(|(k, v)| build(aws_sdk_ecr::types::Tag::builder().key(k).value(v).build()))
                    .collect::<Result<_, _>>()?;
                let r = c
                    .ecr
                    .create_repository()
                    .repository_name(&name)
                    .image_scanning_configuration(
                        aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                            .scan_on_push(Self::flag(d, "scan_on_push"))
                            .build(),
                    )
                    .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                        self.prop(d, "tag_mutability")?.as_str(),
                    ))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws("ecr:CreateRepository"))?;
                self.ecr_policies(d, &name, true, true).await?;
                let repo = r.repository();
                let mut aux = Aux::new();
                if let Some(a) = repo.and_then(|r| r.repository_arn()) {
                    aux.insert("arn".into(), a.to_string());
                }
                if let Some(u) = repo.and_then(|r| r.repository_uri()) {
                    aux.insert("endpoint".into(), u.to_string());
                }
                Ok((name, aux))
            }
            Kind::LogGroup => {
                let name = self.prop(d, "name")?;
                c.logs
                    .create_log_group()
                    .log_group_name(&name)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(aws("logs:CreateLogGroup"))?;
                self.log_retention(&name, int(d, "retention_days")).await?;
                Ok((name, Aux::new()))
            }
            Kind::IamPolicy => {
                let r = c
                    .iam
                    .create_policy()
                    .policy_name(self.prop(d, "name")?)
                    .path(self.prop(d, "path")?)
                    .policy_document(self.prop(d, "document")?)
                    .description(self.prop(d, "description")?)
                    .set_tags(Some(iam_tags(&d.tags)?))
                    .send()
                    .await
                    .map_err(aws("iam:CreatePolicy"))?;
                let arn = r
                    .policy()
                    .and_then(|p| p.arn())
                    .unwrap_or_default()
                    .to_string();
                Ok((arn, Aux::from([("name".to_string(), d.name.clone())])))
            }
            Kind::IamRole => {
                let name = self.prop(d, "name")?;
                let boundary = self.prop(d, "boundary")?;
                let r = c
                    .iam
                    .create_role()
                    .role_name(&name)
                    .path(self.prop(d, "path")?)
                    .assume_role_policy_document(self.prop(d, "trust")?)
                    .description(self.prop(d, "description")?)
                    .set_permissions_boundary((!boundary.is_empty()).then_some(boundary))
                    .set_tags(Some(iam_tags(&d.tags)?))
                    .send()
                    .await
                    .map_err(aws("iam:CreateRole"))?;
                for (k, v) in &d.props {
                    if let Some(pname) = k.strip_prefix("policy:") {
                        self.put_role_policy(&name, pname, &self.resolve(v)?)
                            .await?;
                    }
                }
                let arn = r.role().map(|r| r.arn()).unwrap_or_default().to_string();
                Ok((arn, Aux::from([("name".to_string(), name)])))
            }
            Kind::EcsCluster => {
                let name = self.prop(d, "name")?;
                let r = c
                    .ecs
                    .create_cluster()
                    .cluster_name(&name)
                    .settings(
                        aws_sdk_ecs::types::ClusterSetting::builder()
                            .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                            .value(self.prop(d, "container_insights")?)
                            .build(),
                    )
                    .set_tags(Some(ecs_tags(&d.tags)))
                    .send()
                    .await
                    .map_err(aws("ecs:CreateCluster"))?;
                let mut aux = Aux::new();
                if let Some(a) = r.cluster().and_then(|c| c.cluster_arn()) {
                    aux.insert("arn".into(), a.to_string());
                }
                Ok((name, aux))
            }
            Kind::ServiceDiscoveryNamespace => {
                let r = c
                    .discovery
                    .create_private_dns_namespace()
                    .name(self.prop(d, "name")?)
                    .vpc(self.prop(d, "vpc")?)
                    .description(self.prop(d, "description")?)
                    .creator_request_id(format!("supactl-{}", crate::apply::generate_secret(20)))
                    .set_tags(Some(sd_tags(&d.tags)?))
                    .send()
                    .await
                    .map_err(aws("servicediscovery:CreatePrivateDnsNamespace"))?;
                let op = r.operation_id().unwrap_or_default().to_string();
                let id = self.wait_operation(&op, "NAMESPACE").await?;
                let ns = c
                    .discovery
                    .get_namespace()
                    .id(&id)
                    .send()
                    .await
                    .map_err(aws("servicediscovery:GetNamespace"))?;
                let arn = ns
                    .namespace()
                    .and_then(|n| n.arn())
                    .unwrap_or_default()
                    .to_string();
                Ok((id, Aux::from([("arn".to_string(), arn)])))
            }
            Kind::ServiceDiscoveryService => {
                use aws_sdk_servicediscovery::types::{
                    DnsConfig, DnsRecord, HealthCheckCustomConfig, RecordType, RoutingPolicy,
                };
                let r = c
                    .discovery
                    .create_service()
                    .name(self.prop(d, "name")?)
                    .namespace_id(self.prop(d, "namespace")?)
                    .dns_config(build(
                        DnsConfig::builder()
                            .routing_policy(RoutingPolicy::Multivalue)
                            .dns_records(build(
                                DnsRecord::builder()
                                    .r#type(RecordType::A)
                                    .ttl(int(d, "dns_ttl"))
                                    .build(),
                            )?)
                            .build(),
                    )?)
                    .health_check_custom_config(HealthCheckCustomConfig::builder().build())
                    .set_tags(Some(sd_tags(&d.tags)?))
                    .send()
                    .await
                    .map_err(aws("servicediscovery:CreateService"))?;
                let s = r.service();
                Ok((
                    s.and_then(|s| s.id()).unwrap_or_default().to_string(),
                    Aux::from([(
                        "arn".to_string(),
                        s.and_then(|s| s.arn()).unwrap_or_default().to_string(),
                    )]),
                ))
            }
            Kind::TargetGroup => {
                use aws_sdk_elasticloadbalancingv2::types::{
                    Matcher, ProtocolEnum, TargetTypeEnum,
                };
                let r = c
                    .elb
                    .create_target_group()
                    .name(self.prop(d, "name")?)
                    .protocol(ProtocolEnum::from(self.prop(d, "protocol")?.as_str()))
                    .port(int(d, "port") as i32)
                    .vpc_id(self.prop(d, "vpc")?)
                    .target_type(TargetTypeEnum::from(self.prop(d, "target_type")?.as_str()))
                    .health_check_path(self.prop(d, "health_check_path")?)
                    .health_check_interval_seconds(int(d, "health_check_interval") as i32)
                    .health_check_timeout_seconds(int(d, "health_check_timeout") as i32)
                    .healthy_threshold_count(int(d, "healthy_threshold") as i32)
                    .unhealthy_threshold_count(int(d, "unhealthy_threshold") as i32)
                    .matcher(
                        Matcher::builder()
                            .http_code(self.prop(d, "matcher")?)
                            .build(),
                    )
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
                self.tg_deregistration_delay(&arn, int(d, "deregistration_delay"))
                    .await?;
                Ok((arn, Aux::new()))
            }
            Kind::LoadBalancer => {
                use aws_sdk_elasticloadbalancingv2::types::{
                    IpAddressType, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
                };
                let r = c
                    .elb
                    .create_load_balancer()
                    .name(self.prop(d, "name")?)
                    .set_subnets(Some(self.resolve_set(d.props.get("subnets"))?))
                    .set_security_groups(Some(self.resolve_set(d.props.get("security_groups"))?))
                    .scheme(LoadBalancerSchemeEnum::from(
                        self.prop(d, "scheme")?.as_str(),
                    ))
                    .r#type(LoadBalancerTypeEnum::from(self.prop(d, "type")?.as_str()))
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
                let mut aux = Aux::new();
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
                    .map_err(|e| {
                        waiter_err("load balancer to become active", t.network)(e.to_string())
                    })?;
                self.lb_attributes(d, &arn, true, true).await?;
                Ok((arn, aux))
            }
            Kind::Listener => {
                use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum};
                let protocol = self.prop(d, "protocol")?;
                let mut req = c
                    .elb
                    .create_listener()
                    .load_balancer_arn(self.prop(d, "load_balancer")?)
                    .port(int(d, "port") as i32)
                    .protocol(ProtocolEnum::from(protocol.as_str()))
                    .default_actions(elb_action(&self.prop(d, "default_action")?)?)
                    .set_tags(Some(elb_tags(&d.tags)));
                if d.props.contains_key("certificate") {
                    req = req
                        .certificates(
                            Certificate::builder()
                                .certificate_arn(self.prop(d, "certificate")?)
                                .build(),
                        )
                        .ssl_policy(self.prop(d, "ssl_policy")?);
                }
                let r = req
                    .send()
                    .await
                    .map_err(aws("elasticloadbalancing:CreateListener"))?;
                Ok((
                    r.listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .unwrap_or_default()
                        .to_string(),
                    Aux::new(),
                ))
            }
            Kind::ListenerRule => {
                let r = c
                    .elb
                    .create_rule()
                    .listener_arn(self.prop(d, "listener")?)
                    .priority(int(d, "priority") as i32)
                    .conditions(path_condition(self.resolve_set(d.props.get("paths"))?))
                    .actions(elb_action(&self.prop(d, "action")?)?)
                    .set_tags(Some(elb_tags(&d.tags)))
                    .send()
                    .await
                    .map_err(aws("elasticloadbalancing:CreateRule"))?;
                Ok((
                    r.rules()
                        .first()
                        .and_then(|r| r.rule_arn())
                        .unwrap_or_default()
                        .to_string(),
                    Aux::new(),
                ))
            }
            Kind::TaskDefinition => self.register_task_definition(d).await,
            Kind::EcsService => self.create_service(d).await,
            Kind::ScalableTarget => {
                self.register_target(d).await?;
                Ok((self.prop(d, "resource_id")?, Aux::new()))
            }
            Kind::ScalingPolicy => Ok((self.put_scaling_policy(d).await?, Aux::new())),
            other => Err(Error::Internal(format!(
                "{other} is not a compute-tier kind"
            ))),
        }
    }

    async fn register_task_definition(&self, d: &Desired) -> Result<(String, Aux), Error> {
        use aws_sdk_ecs::types::{
            Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver,
            NetworkMode, PortMapping, Secret, TransportProtocol,
        };
        let name = d
            .props
            .get("log_stream_prefix")
            .and_then(Val::as_str)
            .unwrap_or("app")
            .to_string();
        let mut env = Vec::new();
        let mut secrets = Vec::new();
        for (k, v) in &d.props {
            if let Some(n) = k.strip_prefix("env:") {
                env.push(
                    KeyValuePair::builder()
                        .name(n)
                        .value(self.resolve(v)?)
                        .build(),
                );
            } else if let Some(n) = k.strip_prefix("secret:") {
                secrets.push(build(
                    Secret::builder()
                        .name(n)
                        .value_from(self.resolve(v)?)
                        .build(),
                )?);
            }
        }
        let container = ContainerDefinition::builder()
            .name(&name)
            .image(self.prop(d, "image")?)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(int(d, "container_port") as i32)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .set_environment(Some(env))
            .set_secrets(Some(secrets))
            .health_check(health_check(&self.prop(d, "health_check")?)?)
            .log_configuration(build(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", self.prop(d, "log_group")?)
                    .options("awslogs-region", self.prop(d, "log_region")?)
                    .options("awslogs-stream-prefix", self.prop(d, "log_stream_prefix")?)
                    .build(),
            )?)
            .build();
        let r = self
            .c
            .ecs
            .register_task_definition()
            .family(self.prop(d, "family")?)
            .cpu(int(d, "cpu").to_string())
            .memory(int(d, "memory").to_string())
            .network_mode(NetworkMode::from(self.prop(d, "network_mode")?.as_str()))
            .requires_compatibilities(Compatibility::from(
                self.prop(d, "requires_compatibilities")?.as_str(),
            ))
            .execution_role_arn(self.prop(d, "execution_role")?)
            .task_role_arn(self.prop(d, "task_role")?)
            .container_definitions(container)
            .set_tags(Some(ecs_tags(&d.tags)))
            .send()
            .await
            .map_err(aws("ecs:RegisterTaskDefinition"))?;
        let td = r.task_definition();
        Ok((
            td.and_then(|t| t.task_definition_arn())
                .unwrap_or_default()
                .to_string(),
            Aux::from([(
                "revision".to_string(),
                td.map(|t| t.revision()).unwrap_or(0).to_string(),
            )]),
        ))
    }

    /// Deregisters every ACTIVE revision of a family but `keep`.
    async fn deregister_family(&self, family: &str, keep: Option<&str>) -> Result<usize, Error> {
        let arns = self
            .c
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws("ecs:ListTaskDefinitions"))?;
        let mut n = 0;
        for arn in arns {
            // the prefix also matches `<family>x`: keep exact family matches only
            let fam = arn
                .rsplit('/')
                .next()
                .and_then(|s| s.rsplit_once(':'))
                .map(|(f, _)| f);
            if fam != Some(family) || Some(arn.as_str()) == keep {
                continue;
            }
            self.c
                .ecs
                .deregister_task_definition()
                .task_definition(&arn)
                .send()
                .await
                .map_err(aws("ecs:DeregisterTaskDefinition"))?;
            n += 1;
        }
        Ok(n)
    }

    async fn create_service(&self, d: &Desired) -> Result<(String, Aux), Error> {
        use aws_sdk_ecs::types::{LaunchType, PropagateTags, ServiceRegistry};
        let c = self.c;
        let cluster = self.prop(d, "cluster")?;
        let name = self.prop(d, "name")?;
        let td = self.prop(d, "task_definition")?;
        let deployment = deployment_configuration(&self.prop(d, "deployment")?)?;
        let grace = int(d, "health_check_grace_period") as i32;
        let desired = int(d, "desired_count") as i32;
        let r = c
            .ecs
            .create_service()
            .cluster(&cluster)
            .service_name(&name)
            .task_definition(&td)
            .desired_count(desired)
            .launch_type(LaunchType::from(self.prop(d, "launch_type")?.as_str()))
            .network_configuration(self.ecs_network(d)?)
            .load_balancers(self.ecs_load_balancer(d)?)
            .service_registries(
                ServiceRegistry::builder()
                    .registry_arn(self.prop(d, "service_registry")?)
                    .build(),
            )
            .deployment_configuration(deployment.clone())
            .health_check_grace_period_seconds(grace)
            .propagate_tags(PropagateTags::Service)
            .enable_ecs_managed_tags(true)
            .set_tags(Some(ecs_tags(&d.tags)))
            .send()
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
            .map(|s| super::observe::render_deployment(s.deployment_configuration()))
            .as_deref()
            != Some(self.prop(d, "deployment")?.as_str());
        let lost_grace = sv.and_then(|s| s.health_check_grace_period_seconds()) != Some(grace);
        if lost_deployment || lost_grace {
            c.ecs
                .update_service()
                .cluster(&cluster)
                .service(&name)
                .desired_count(desired)
                .deployment_configuration(deployment)
                .health_check_grace_period_seconds(grace)
                .send()
                .await
                .map_err(aws("ecs:UpdateService"))?;
        }
        self.wait_service(&cluster, &name, &td).await?;
        Ok((arn, Aux::new()))
    }

    async fn register_target(&self, d: &Desired) -> Result<(), Error> {
        use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
        self.c
            .autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.prop(d, "resource_id")?)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(int(d, "min") as i32)
            .max_capacity(int(d, "max") as i32)
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws("application-autoscaling:RegisterScalableTarget"))?;
        Ok(())
    }

    async fn put_scaling_policy(&self, d: &Desired) -> Result<String, Error> {
        use aws_sdk_applicationautoscaling::types::{
            MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
            ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
        };
        let r = self
            .c
            .autoscaling
            .put_scaling_policy()
            .policy_name(self.prop(d, "name")?)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.prop(d, "resource_id")?)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(build(
                TargetTrackingScalingPolicyConfiguration::builder()
                    .target_value(d.props.get("target").and_then(Val::as_num).unwrap_or(70.0))
                    .predefined_metric_specification(build(
                        PredefinedMetricSpecification::builder()
                            .predefined_metric_type(MetricType::from(
                                self.prop(d, "metric")?.as_str(),
                            ))
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

    async fn wait_operation(&self, op: &str, target: &str) -> Result<String, Error> {
        use aws_sdk_servicediscovery::types::{OperationStatus, OperationTargetType};
        let c = self.c;
        let t = self.opts.timeouts.network;
        let found = std::sync::Mutex::new(String::new());
        let found_ref = &found;
        poll_until("cloud map operation to finish", t, || async move {
            let r = c
                .discovery
                .get_operation()
                .operation_id(op)
                .send()
                .await
                .map_err(aws("servicediscovery:GetOperation"))?;
            let Some(o) = r.operation() else {
                return Ok(false);
            };
            match o.status() {
                Some(OperationStatus::Success) => {
                    if let Some(id) = o
                        .targets()
                        .and_then(|m| m.get(&OperationTargetType::from(target)))
                    {
                        if let Ok(mut f) = found_ref.lock() {
                            *f = id.clone();
                        }
                    }
                    Ok(true)
                }
                Some(OperationStatus::Fail) => Err(Error::Internal(format!(
                    "cloud map operation {op} failed: {}",
                    o.error_message().unwrap_or("no message")
                ))),
                _ => Ok(false),
            }
        })
        .await?;
        let id = found.lock().map(|f| f.clone()).unwrap_or_default();
        Ok(id)
    }

    async fn ecr_policies(
        &self,
        d: &Desired,
        name: &str,
        lifecycle: bool,
        policy: bool,
    ) -> Result<(), Error> {
        let c = self.c;
        if lifecycle {
            let text = self.prop(d, "lifecycle_policy")?;
            if text.is_empty() {
                match c
                    .ecr
                    .delete_lifecycle_policy()
                    .repository_name(name)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) => {}
                    Err(e) => {
                        return Err(Error::Aws(AwsError::new("ecr:DeleteLifecyclePolicy", &e)))
                    }
                }
            } else {
                c.ecr
                    .put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(text)
                    .send()
                    .await
                    .map_err(aws("ecr:PutLifecyclePolicy"))?;
            }
        }
        if policy {
            let text = self.prop(d, "repository_policy")?;
            if text.is_empty() {
                match c
                    .ecr
                    .delete_repository_policy()
                    .repository_name(name)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_repository_policy_not_found_exception()) => {}
                    Err(e) => {
                        return Err(Error::Aws(AwsError::new("ecr:DeleteRepositoryPolicy", &e)))
                    }
                }
            } else {
                c.ecr
                    .set_repository_policy()
                    .repository_name(name)
                    .policy_text(text)
                    .send()
                    .await
                    .map_err(aws("ecr:SetRepositoryPolicy"))?;
            }
        }
        Ok(())
    }

    async fn log_retention(&self, name: &str, days: i64) -> Result<(), Error> {
        if days > 0 {
            self.c
                .logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days as i32)
                .send()
                .await
                .map_err(aws("logs:PutRetentionPolicy"))?;
        } else {
            self.c
                .logs
                .delete_retention_policy()
                .log_group_name(name)
                .send()
                .await
                .map_err(aws("logs:DeleteRetentionPolicy"))?;
        }
        Ok(())
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), Error> {
        self.c
            .iam
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(aws("iam:PutRolePolicy"))?;
        Ok(())
    }

    async fn tg_deregistration_delay(&self, arn: &str, secs: i64) -> Result<(), Error> {
        self.c
            .elb
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

    async fn lb_attributes(
        &self,
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
                    .value(Self::flag(d, "drop_invalid_header_fields").to_string())
                    .build(),
            );
        }
        self.c
            .elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(aws("elasticloadbalancing:ModifyLoadBalancerAttributes"))?;
        Ok(())
    }

    pub(crate) async fn update_compute(
        &self,
        d: &Desired,
        o: &Observed,
        ch: &Change,
    ) -> Result<(), Error> {
        let c = self.c;
        let f = field_map(ch);
        let changed = |k: &str| f.contains_key(k);
        match d.kind {
            Kind::EcrRepository => {
                if changed("scan_on_push") {
                    c.ecr
                        .put_image_scanning_configuration()
                        .repository_name(&o.physical)
                        .image_scanning_configuration(
                            aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                                .scan_on_push(Self::flag(d, "scan_on_push"))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(aws("ecr:PutImageScanningConfiguration"))?;
                }
                if changed("tag_mutability") {
                    c.ecr
                        .put_image_tag_mutability()
                        .repository_name(&o.physical)
                        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::from(
                            self.prop(d, "tag_mutability")?.as_str(),
                        ))
                        .send()
                        .await
                        .map_err(aws("ecr:PutImageTagMutability"))?;
                }
                self.ecr_policies(
                    d,
                    &o.physical,
                    changed("lifecycle_policy"),
                    changed("repository_policy"),
                )
                .await?;
            }
            Kind::LogGroup => {
                if changed("retention_days") {
                    self.log_retention(&o.physical, int(d, "retention_days"))
                        .await?;
                }
            }
            Kind::IamPolicy => {
                if changed("document") {
                    let versions = c
                        .iam
                        .list_policy_versions()
                        .policy_arn(&o.physical)
                        .send()
                        .await
                        .map_err(aws("iam:ListPolicyVersions"))?;
                    // IAM keeps at most 5 versions: drop the oldest non-default one first
                    let mut old: Vec<_> = versions
                        .versions()
                        .iter()
                        .filter(|v| !v.is_default_version())
                        .collect();
                    old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or(0));
                    if versions.versions().len() >= 5 {
                        if let Some(v) = old.first().and_then(|v| v.version_id()) {
                            c.iam
                                .delete_policy_version()
                                .policy_arn(&o.physical)
                                .version_id(v)
                                .send()
                                .await
                                .map_err(aws("iam:DeletePolicyVersion"))?;
                        }
                    }
                    c.iam
                        .create_policy_version()
                        .policy_arn(&o.physical)
                        .policy_document(self.prop(d, "document")?)
                        .set_as_default(true)
                        .send()
                        .await
                        .map_err(aws("iam:CreatePolicyVersion"))?;
                }
            }
            Kind::IamRole => {
                let name = o.aux.get("name").cloned().unwrap_or_else(|| d.name.clone());
                if changed("trust") {
                    c.iam
                        .update_assume_role_policy()
                        .role_name(&name)
                        .policy_document(self.prop(d, "trust")?)
                        .send()
                        .await
                        .map_err(aws("iam:UpdateAssumeRolePolicy"))?;
                }
                if changed("boundary") {
                    let b = self.prop(d, "boundary")?;
                    if b.is_empty() {
                        c.iam
                            .delete_role_permissions_boundary()
                            .role_name(&name)
                            .send()
                            .await
                            .map_err(aws("iam:DeleteRolePermissionsBoundary"))?;
                    } else {
                        c.iam
                            .put_role_permissions_boundary()
                            .role_name(&name)
                            .permissions_boundary(b)
                            .send()
                            .await
                            .map_err(aws("iam:PutRolePermissionsBoundary"))?;
                    }
                }
                for fc in &ch.fields {
                    let Some(pname) = fc.field.strip_prefix("policy:") else {
                        continue;
                    };
                    match d.props.get(&fc.field) {
                        Some(v) => {
                            self.put_role_policy(&name, pname, &self.resolve(v)?)
                                .await?
                        }
                        None => {
                            c.iam
                                .delete_role_policy()
                                .role_name(&name)
                                .policy_name(pname)
                                .send()
                                .await
                                .map_err(aws("iam:DeleteRolePolicy"))?;
                        }
                    }
                }
            }
            Kind::EcsCluster => {
                if changed("container_insights") {
                    c.ecs
                        .update_cluster()
                        .cluster(&o.physical)
                        .settings(
                            aws_sdk_ecs::types::ClusterSetting::builder()
                                .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                                .value(self.prop(d, "container_insights")?)
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(aws("ecs:UpdateCluster"))?;
                }
            }
            Kind::ServiceDiscoveryNamespace => {}
            Kind::ServiceDiscoveryService => {
                if changed("dns_ttl") {
                    use aws_sdk_servicediscovery::types::{
                        DnsConfigChange, DnsRecord, RecordType, ServiceChange,
                    };
                    let r = c
                        .discovery
                        .update_service()
                        .id(&o.physical)
                        .service(
                            ServiceChange::builder()
                                .dns_config(build(
                                    DnsConfigChange::builder()
                                        .dns_records(build(
                                            DnsRecord::builder()
                                                .r#type(RecordType::A)
                                                .ttl(int(d, "dns_ttl"))
                                                .build(),
                                        )?)
                                        .build(),
                                )?)
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(aws("servicediscovery:UpdateService"))?;
                    if let Some(op) = r.operation_id() {
                        self.wait_operation(op, "SERVICE").await?;
                    }
                }
            }
            Kind::TargetGroup => {
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
                        req = req.health_check_path(self.prop(d, "health_check_path")?);
                    }
                    if changed("health_check_interval") {
                        req = req
                            .health_check_interval_seconds(int(d, "health_check_interval") as i32);
                    }
                    if changed("health_check_timeout") {
                        req =
                            req.health_check_timeout_seconds(int(d, "health_check_timeout") as i32);
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
                                .http_code(self.prop(d, "matcher")?)
                                .build(),
                        );
                    }
                    req.send()
                        .await
                        .map_err(aws("elasticloadbalancing:ModifyTargetGroup"))?;
                }
                if changed("deregistration_delay") {
                    self.tg_deregistration_delay(&o.physical, int(d, "deregistration_delay"))
                        .await?;
                }
            }
            Kind::LoadBalancer => {
                if changed("subnets") {
                    c.elb
                        .set_subnets()
                        .load_balancer_arn(&o.physical)
                        .set_subnets(Some(self.resolve_set(d.props.get("subnets"))?))
                        .send()
                        .await
                        .map_err(aws("elasticloadbalancing:SetSubnets"))?;
                }
                if changed("security_groups") {
                    c.elb
                        .set_security_groups()
                        .load_balancer_arn(&o.physical)
                        .set_security_groups(Some(
                            self.resolve_set(d.props.get("security_groups"))?,
                        ))
                        .send()
                        .await
                        .map_err(aws("elasticloadbalancing:SetSecurityGroups"))?;
                }
                let (idle, drop) = (
                    changed("idle_timeout"),
                    changed("drop_invalid_header_fields"),
                );
                if idle || drop {
                    self.lb_attributes(d, &o.physical, idle, drop).await?;
                }
            }
            Kind::Listener => {
                use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum};
                let mut req = c.elb.modify_listener().listener_arn(&o.physical);
                if changed("port") {
                    req = req.port(int(d, "port") as i32);
                }
                if changed("protocol") {
                    req = req.protocol(ProtocolEnum::from(self.prop(d, "protocol")?.as_str()));
                }
                if changed("certificate") {
                    req = req.certificates(
                        Certificate::builder()
                            .certificate_arn(self.prop(d, "certificate")?)
                            .build(),
                    );
                }
                if changed("ssl_policy") {
                    req = req.ssl_policy(self.prop(d, "ssl_policy")?);
                }
                if changed("default_action") {
                    req = req.default_actions(elb_action(&self.prop(d, "default_action")?)?);
                }
                req.send()
                    .await
                    .map_err(aws("elasticloadbalancing:ModifyListener"))?;
            }
            Kind::ListenerRule => {
                if changed("paths") || changed("action") {
                    let mut req = c.elb.modify_rule().rule_arn(&o.physical);
                    if changed("paths") {
                        req =
                            req.conditions(path_condition(self.resolve_set(d.props.get("paths"))?));
                    }
                    if changed("action") {
                        req = req.actions(elb_action(&self.prop(d, "action")?)?);
                    }
                    req.send()
                        .await
                        .map_err(aws("elasticloadbalancing:ModifyRule"))?;
                }
                if changed("priority") {
                    c.elb
                        .set_rule_priorities()
                        .rule_priorities(
                            aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                                .rule_arn(&o.physical)
                                .priority(int(d, "priority") as i32)
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(aws("elasticloadbalancing:SetRulePriorities"))?;
                }
            }
            // every change replaces a task definition (a new revision)
            Kind::TaskDefinition => {}
            Kind::EcsService => {
                let cluster = self.prop(d, "cluster")?;
                let mut req = c
                    .ecs
                    .update_service()
                    .cluster(&cluster)
                    .service(&o.physical);
                let mut any = false;
                if changed("task_definition") {
                    req = req.task_definition(self.prop(d, "task_definition")?);
                    any = true;
                }
                if changed("desired_count") {
                    req = req.desired_count(int(d, "desired_count") as i32);
                    any = true;
                }
                if changed("subnets") || changed("security_groups") || changed("assign_public_ip") {
                    req = req.network_configuration(self.ecs_network(d)?);
                    any = true;
                }
                if changed("load_balancer") {
                    req = req.load_balancers(self.ecs_load_balancer(d)?);
                    any = true;
                }
                if changed("service_registry") {
                    req = req.service_registries(
                        aws_sdk_ecs::types::ServiceRegistry::builder()
                            .registry_arn(self.prop(d, "service_registry")?)
                            .build(),
                    );
                    any = true;
                }
                if changed("deployment") {
                    req = req.deployment_configuration(deployment_configuration(
                        &self.prop(d, "deployment")?,
                    )?);
                    any = true;
                }
                if changed("health_check_grace_period") {
                    req = req.health_check_grace_period_seconds(
                        int(d, "health_check_grace_period") as i32,
                    );
                    any = true;
                }
                if any {
                    let r = req.send().await.map_err(aws("ecs:UpdateService"))?;
                    let td = r
                        .service()
                        .and_then(|s| s.task_definition())
                        .unwrap_or_default()
                        .to_string();
                    let name = self.prop(d, "name")?;
                    self.wait_service(&cluster, &name, &td).await?;
                }
            }
            Kind::ScalableTarget => self.register_target(d).await?,
            Kind::ScalingPolicy => {
                self.put_scaling_policy(d).await?;
            }
            other => {
                return Err(Error::Internal(format!(
                    "{other} is not a compute-tier kind"
                )))
            }
        }
        Ok(())
    }

    pub(crate) async fn delete_compute(&self, o: &Observed) -> Result<String, Error> {
        let c = self.c;
        let t = self.opts.timeouts;
        let gone = || Ok(format!("deleted {}", o.physical));
        let already = || Ok(format!("{} was already gone", o.physical));
        macro_rules! tolerate {
            ($op:literal, $fut:expr, $pred:ident) => {
                match $fut.await {
                    Ok(_) => {}
                    Err(e) if e.as_service_error().is_some_and(|s| s.$pred()) => return already(),
                    Err(e) => return Err(Error::Aws(AwsError::new($op, &e))),
                }
            };
        }
        match o.kind {
            Kind::EcrRepository => {
                // images go with it: destroy is confirmed, and the images can be pushed again
                tolerate!(
                    "ecr:DeleteRepository",
                    c.ecr
                        .delete_repository()
                        .repository_name(&o.physical)
                        .force(true)
                        .send(),
                    is_repository_not_found_exception
                );
                gone()
            }
            Kind::LogGroup => {
                tolerate!(
                    "logs:DeleteLogGroup",
                    c.logs.delete_log_group().log_group_name(&o.physical).send(),
                    is_resource_not_found_exception
                );
                gone()
            }
            Kind::IamPolicy => {
                let entities = c
                    .iam
                    .list_entities_for_policy()
                    .policy_arn(&o.physical)
                    .send()
                    .await;
                let entities = match entities {
                    Ok(e) => e,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        return already()
                    }
                    Err(e) => {
                        return Err(Error::Aws(AwsError::new("iam:ListEntitiesForPolicy", &e)))
                    }
                };
                for r in entities.policy_roles() {
                    if let Some(name) = r.role_name() {
                        c.iam
                            .detach_role_policy()
                            .role_name(name)
                            .policy_arn(&o.physical)
                            .send()
                            .await
                            .map_err(aws("iam:DetachRolePolicy"))?;
                    }
                }
                let versions = c
                    .iam
                    .list_policy_versions()
                    .policy_arn(&o.physical)
                    .send()
                    .await
                    .map_err(aws("iam:ListPolicyVersions"))?;
                for v in versions.versions() {
                    if !v.is_default_version() {
                        if let Some(id) = v.version_id() {
                            c.iam
                                .delete_policy_version()
                                .policy_arn(&o.physical)
                                .version_id(id)
                                .send()
                                .await
                                .map_err(aws("iam:DeletePolicyVersion"))?;
                        }
                    }
                }
                tolerate!(
                    "iam:DeletePolicy",
                    c.iam.delete_policy().policy_arn(&o.physical).send(),
                    is_no_such_entity_exception
                );
                gone()
            }
            Kind::IamRole => {
                let name = o.aux.get("name").cloned().unwrap_or_else(|| {
                    o.physical
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                });
                let inline = match c.iam.list_role_policies().role_name(&name).send().await {
                    Ok(r) => r,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        return already()
                    }
                    Err(e) => return Err(Error::Aws(AwsError::new("iam:ListRolePolicies", &e))),
                };
                for p in inline.policy_names() {
                    c.iam
                        .delete_role_policy()
                        .role_name(&name)
                        .policy_name(p)
                        .send()
                        .await
                        .map_err(aws("iam:DeleteRolePolicy"))?;
                }
                let attached = c
                    .iam
                    .list_attached_role_policies()
                    .role_name(&name)
                    .send()
                    .await
                    .map_err(aws("iam:ListAttachedRolePolicies"))?;
                for p in attached.attached_policies() {
                    if let Some(arn) = p.policy_arn() {
                        c.iam
                            .detach_role_policy()
                            .role_name(&name)
                            .policy_arn(arn)
                            .send()
                            .await
                            .map_err(aws("iam:DetachRolePolicy"))?;
                    }
                }
                tolerate!(
                    "iam:DeleteRole",
                    c.iam.delete_role().role_name(&name).send(),
                    is_no_such_entity_exception
                );
                gone()
            }
            Kind::EcsCluster => {
                tolerate!(
                    "ecs:DeleteCluster",
                    c.ecs.delete_cluster().cluster(&o.physical).send(),
                    is_cluster_not_found_exception
                );
                gone()
            }
            Kind::ServiceDiscoveryNamespace => {
                let r = c.discovery.delete_namespace().id(&o.physical).send().await;
                match r {
                    Ok(out) => {
                        if let Some(op) = out.operation_id() {
                            self.wait_operation(op, "NAMESPACE").await?;
                        }
                        gone()
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_namespace_not_found()) =>
                    {
                        already()
                    }
                    Err(e) => Err(Error::Aws(AwsError::new(
                        "servicediscovery:DeleteNamespace",
                        &e,
                    ))),
                }
            }
            Kind::ServiceDiscoveryService => {
                // ECS deregisters a deleted service's instances shortly after: retry while they are in use
                let id = o.physical.clone();
                let done = std::sync::atomic::AtomicBool::new(false);
                let done_ref = &done;
                poll_until("cloud map service to be deleted", t.network, || {
                    let id = id.clone();
                    async move {
                        match c.discovery.delete_service().id(&id).send().await {
                            Ok(_) => Ok(true),
                            Err(e)
                                if e.as_service_error()
                                    .is_some_and(|s| s.is_service_not_found()) =>
                            {
                                done_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                                Ok(true)
                            }
                            Err(e)
                                if e.as_service_error().is_some_and(|s| s.is_resource_in_use()) =>
                            {
                                Ok(false)
                            }
                            Err(e) => Err(Error::Aws(AwsError::new(
                                "servicediscovery:DeleteService",
                                &e,
                            ))),
                        }
                    }
                })
                .await?;
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    already()
                } else {
                    gone()
                }
            }
            Kind::TargetGroup => {
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
                gone()
            }
            Kind::LoadBalancer => {
                tolerate!(
                    "elasticloadbalancing:DeleteLoadBalancer",
                    c.elb
                        .delete_load_balancer()
                        .load_balancer_arn(&o.physical)
                        .send(),
                    is_load_balancer_not_found_exception
                );
                use aws_sdk_elasticloadbalancingv2::client::Waiters;
                c.elb
                    .wait_until_load_balancers_deleted()
                    .load_balancer_arns(&o.physical)
                    .wait(t.network)
                    .await
                    .map_err(|e| {
                        waiter_err("load balancer to be deleted", t.network)(e.to_string())
                    })?;
                gone()
            }
            Kind::Listener => {
                tolerate!(
                    "elasticloadbalancing:DeleteListener",
                    c.elb.delete_listener().listener_arn(&o.physical).send(),
                    is_listener_not_found_exception
                );
                gone()
            }
            Kind::ListenerRule => {
                tolerate!(
                    "elasticloadbalancing:DeleteRule",
                    c.elb.delete_rule().rule_arn(&o.physical).send(),
                    is_rule_not_found_exception
                );
                gone()
            }
            Kind::TaskDefinition => {
                let family = o
                    .props
                    .get("family")
                    .and_then(Val::as_str)
                    .unwrap_or_default()
                    .to_string();
                let n = self.deregister_family(&family, None).await?;
                Ok(format!("deregistered {n} revision(s) of {family}"))
            }
            Kind::EcsService => {
                let cluster = o
                    .props
                    .get("cluster")
                    .and_then(Val::as_str)
                    .unwrap_or_default()
                    .to_string();
                tolerate!(
                    "ecs:DeleteService",
                    c.ecs
                        .delete_service()
                        .cluster(&cluster)
                        .service(&o.physical)
                        .force(true)
                        .send(),
                    is_service_not_found_exception
                );
                let arn = o.physical.clone();
                poll_until("ecs service to drain", self.opts.timeouts.service, || {
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
                gone()
            }
            Kind::ScalableTarget => {
                use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
                tolerate!(
                    "application-autoscaling:DeregisterScalableTarget",
                    c.autoscaling
                        .deregister_scalable_target()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&o.physical)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send(),
                    is_object_not_found_exception
                );
                gone()
            }
            Kind::ScalingPolicy => {
                use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
                let p = |k: &str| {
                    o.props
                        .get(k)
                        .and_then(Val::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                tolerate!(
                    "application-autoscaling:DeleteScalingPolicy",
                    c.autoscaling
                        .delete_scaling_policy()
                        .policy_name(p("name"))
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(p("resource_id"))
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send(),
                    is_object_not_found_exception
                );
                gone()
            }
            other => Err(Error::Internal(format!(
                "{other} is not a compute-tier kind"
            ))),
        }
    }

    /// After a replacement's new task definition is registered: retire the older revisions.
    pub(crate) async fn retire_revisions(&self, o: &Observed, keep: &str) -> Result<String, Error> {
        let family = o
            .props
            .get("family")
            .and_then(Val::as_str)
            .unwrap_or_default()
            .to_string();
        let n = self.deregister_family(&family, Some(keep)).await?;
        Ok(format!("{n} older revision(s) deregistered"))
    }

    pub(crate) async fn tag_compute(
        &self,
        o: &Observed,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let c = self.c;
        let arn = o.arn.clone().unwrap_or_else(|| o.physical.clone());
        match o.kind {
            Kind::EcrRepository => {
                let t: Vec<_> = tags
                    .iter()
                    .map(|(k, v)| build(aws_sdk_ecr::types::Tag::builder().key(k).value(v).build()))
                    .collect::<Result<_, _>>()?;
                c.ecr
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(t))
                    .send()
                    .await
                    .map_err(aws("ecr:TagResource"))?;
            }
            Kind::LogGroup => {
                c.logs
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(aws("logs:TagResource"))?;
            }
            Kind::IamPolicy => {
                c.iam
                    .tag_policy()
                    .policy_arn(&o.physical)
                    .set_tags(Some(iam_tags(tags)?))
                    .send()
                    .await
                    .map_err(aws("iam:TagPolicy"))?;
            }
            Kind::IamRole => {
                c.iam
                    .tag_role()
                    .role_name(o.aux.get("name").cloned().unwrap_or_default())
                    .set_tags(Some(iam_tags(tags)?))
                    .send()
                    .await
                    .map_err(aws("iam:TagRole"))?;
            }
            Kind::EcsCluster | Kind::TaskDefinition | Kind::EcsService => {
                c.ecs
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(ecs_tags(tags)))
                    .send()
                    .await
                    .map_err(aws("ecs:TagResource"))?;
            }
            Kind::ServiceDiscoveryNamespace | Kind::ServiceDiscoveryService => {
                c.discovery
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(sd_tags(tags)?))
                    .send()
                    .await
                    .map_err(aws("servicediscovery:TagResource"))?;
            }
            Kind::TargetGroup | Kind::LoadBalancer | Kind::Listener | Kind::ListenerRule => {
                c.elb
                    .add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(elb_tags(tags)))
                    .send()
                    .await
                    .map_err(aws("elasticloadbalancing:AddTags"))?;
            }
            // no readable tags (see observe): ownership follows the service's
            Kind::ScalableTarget | Kind::ScalingPolicy => {}
            other => {
                return Err(Error::Internal(format!(
                    "{other} is not a compute-tier kind"
                )))
            }
        }
        Ok(())
    }
}

/// How long a service may take to reach a steady state by default.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
