//! Observation of the compute tier. Read-only. Each service is read with its own list/describe calls (the
//! tagging API misses IAM, ECR, listeners and rules in the emulator): by ownership tags where the service has
//! them, by IAM path for roles and policies, and by name for what the config names (cluster, load balancers,
//! task definition families). A resource under one of our names without our tags is an error, never adopted.
//! Application Auto Scaling targets and policies have no readable tags: they are ours when they belong to a
//! service of our (owned) cluster.

use std::collections::BTreeMap;

use crate::aws::{AwsError, Clients};
use crate::config::Config;
use crate::model::{Desired, Kind, Observed, Props, Val, TAG_ENV, TAG_ID, TAG_STACK};
use crate::observe::{conflict, owned, props, s, Sink};
use crate::Error;

use super::desired::{family, iam_path, log_group_name, scaling_resource_id};
use super::policy::normalize;
use super::{NAMESPACE, SERVICES};

fn named(desired: &[Desired], kind: Kind) -> impl Iterator<Item = &Desired> {
    desired.iter().filter(move |d| d.kind == kind)
}

fn wanted(desired: &[Desired], kind: Kind, name: &str) -> bool {
    named(desired, kind).any(|d| d.name == name)
}

fn aws_err<E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl Fn(E) -> Error {
    move |e| Error::Aws(AwsError::new(op, &e))
}

/// Tags for resources that cannot carry readable tags: the desired ones (so there is no tag drift), else
/// ownership tags with the logical id.
fn synthesized(cfg: &Config, desired: &[Desired], id: &str) -> BTreeMap<String, String> {
    desired
        .iter()
        .find(|d| d.id.as_str() == id)
        .map(|d| d.tags.clone())
        .unwrap_or_else(|| {
            BTreeMap::from([
                (TAG_STACK.to_string(), cfg.name.clone()),
                (TAG_ENV.to_string(), cfg.environment.clone()),
                (TAG_ID.to_string(), id.to_string()),
            ])
        })
}

/// Observes every owned compute-tier resource.
pub async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let (ecr, logs, iam, ecs, sd, elb) = tokio::join!(
        Box::pin(observe_ecr(c, cfg, desired)),
        Box::pin(observe_logs(c, cfg, desired)),
        Box::pin(observe_iam(c, cfg, desired)),
        Box::pin(observe_ecs(c, cfg, desired)),
        Box::pin(observe_discovery(c, cfg)),
        Box::pin(observe_elb(c, cfg, desired)),
    );
    let mut out = ecr?;
    out.extend(logs?);
    out.extend(iam?);
    let ecs = ecs?;
    let cluster_owned = ecs.iter().any(|o| o.kind == Kind::EcsCluster);
    out.extend(ecs);
    out.extend(sd?);
    out.extend(elb?);
    if cluster_owned {
        out.extend(observe_scaling(c, cfg, desired).await?);
    }
    Ok(out)
}

fn sink(cfg: &Config) -> Sink<'_> {
    Sink {
        cfg,
        out: Vec::new(),
    }
}

async fn observe_ecr(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = sink(cfg);
    let ours = format!("{}/", cfg.prefix().to_ascii_lowercase());
    let repos = c
        .ecr
        .describe_repositories()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("ecr:DescribeRepositories"))?;
    for repo in repos {
        let name = repo.repository_name().unwrap_or_default();
        let is_wanted = wanted(desired, Kind::EcrRepository, name);
        if !name.starts_with(&ours) && !is_wanted {
            continue;
        }
        let arn = repo.repository_arn().unwrap_or_default().to_string();
        let tags: BTreeMap<String, String> = c
            .ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(aws_err("ecr:ListTagsForResource"))?
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        if !owned(cfg, &tags) {
            if is_wanted {
                return Err(conflict(Kind::EcrRepository, name, &tags));
            }
            continue;
        }
        let lifecycle = match c
            .ecr
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await
        {
            Ok(o) => normalize(o.lifecycle_policy_text().unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) =>
            {
                String::new()
            }
            Err(e) => return Err(Error::Aws(AwsError::new("ecr:GetLifecyclePolicy", &e))),
        };
        let policy = match c
            .ecr
            .get_repository_policy()
            .repository_name(name)
            .send()
            .await
        {
            Ok(o) => normalize(o.policy_text().unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_policy_not_found_exception()) =>
            {
                String::new()
            }
            Err(e) => return Err(Error::Aws(AwsError::new("ecr:GetRepositoryPolicy", &e))),
        };
        let mut aux = BTreeMap::new();
        aux.insert("arn".into(), arn.clone());
        if let Some(u) = repo.repository_uri() {
            aux.insert("endpoint".into(), u.to_string());
        }
        sink.push(
            Kind::EcrRepository,
            name,
            Some(arn),
            tags,
            props([
                ("name", Val::str(name)),
                (
                    "scan_on_push",
                    Val::Bool(
                        repo.image_scanning_configuration()
                            .map(|s| s.scan_on_push())
                            .unwrap_or(false),
                    ),
                ),
                (
                    "tag_mutability",
                    s(repo.image_tag_mutability().map(|m| m.as_str())),
                ),
                ("lifecycle_policy", Val::Str(lifecycle)),
                ("repository_policy", Val::Str(policy)),
            ]),
            "available",
            aux,
        );
    }
    Ok(sink.out)
}

async fn observe_logs(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = sink(cfg);
    let ours = log_group_name(cfg);
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&ours)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("logs:DescribeLogGroups"))?;
    for g in groups {
        let name = g.log_group_name().unwrap_or_default();
        let is_wanted = wanted(desired, Kind::LogGroup, name);
        let arn = g
            .arn()
            .unwrap_or_default()
            .trim_end_matches('*')
            .trim_end_matches(':')
            .to_string();
        let tags: BTreeMap<String, String> = c
            .logs
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(aws_err("logs:ListTagsForResource"))?
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if !owned(cfg, &tags) {
            if is_wanted {
                return Err(conflict(Kind::LogGroup, name, &tags));
            }
            continue;
        }
        sink.push(
            Kind::LogGroup,
            name,
            Some(arn.clone()),
            tags,
            props([
                ("name", Val::str(name)),
                (
                    "retention_days",
                    Val::Int(i64::from(g.retention_in_days().unwrap_or(0))),
                ),
            ]),
            "available",
            BTreeMap::from([("arn".to_string(), arn)]),
        );
    }
    Ok(sink.out)
}

fn iam_tags(tags: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn observe_iam(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = sink(cfg);
    let path = iam_path(cfg, &c.region);
    let policies = c
        .iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix(&path)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("iam:ListPolicies"))?;
    for p in policies {
        let arn = p.arn().unwrap_or_default().to_string();
        let got = c
            .iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(aws_err("iam:GetPolicy"))?;
        let tags = iam_tags(got.policy().map(|p| p.tags()).unwrap_or_default());
        let version = p.default_version_id().unwrap_or("v1");
        let document = c
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(aws_err("iam:GetPolicyVersion"))?
            .policy_version()
            .and_then(|v| v.document())
            .map(normalize)
            .unwrap_or_default();
        sink.push(
            Kind::IamPolicy,
            &arn,
            Some(arn.clone()),
            tags,
            props([
                ("name", s(p.policy_name())),
                ("path", s(p.path())),
                ("document", Val::Str(document)),
            ]),
            "available",
            BTreeMap::from([(
                "name".to_string(),
                p.policy_name().unwrap_or_default().to_string(),
            )]),
        );
    }

    let roles = c
        .iam
        .list_roles()
        .path_prefix(&path)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("iam:ListRoles"))?;
    let mut seen = Vec::new();
    for role in &roles {
        let name = role.role_name();
        seen.push(name.to_string());
        let full = c
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(aws_err("iam:GetRole"))?;
        let Some(r) = full.role() else { continue };
        let tags = iam_tags(r.tags());
        let mut p = props([
            ("name", Val::str(name)),
            ("path", Val::str(r.path())),
            (
                "trust",
                Val::Str(normalize(
                    r.assume_role_policy_document().unwrap_or_default(),
                )),
            ),
            (
                "boundary",
                s(r.permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())),
            ),
        ]);
        let inline = c
            .iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(aws_err("iam:ListRolePolicies"))?;
        for pname in inline.policy_names() {
            let d = c
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(pname)
                .send()
                .await
                .map_err(aws_err("iam:GetRolePolicy"))?;
            p.insert(
                format!("policy:{pname}"),
                Val::Str(normalize(d.policy_document())),
            );
        }
        sink.push(
            Kind::IamRole,
            r.arn(),
            Some(r.arn().to_string()),
            tags,
            p,
            "available",
            BTreeMap::from([("name".to_string(), name.to_string())]),
        );
    }
    // a role of ours by name but outside our path is someone else's (IAM role names are account-wide)
    for d in named(desired, Kind::IamRole) {
        if seen.contains(&d.name) {
            continue;
        }
        match c.iam.get_role().role_name(&d.name).send().await {
            Ok(o) => {
                let tags = iam_tags(o.role().map(|r| r.tags()).unwrap_or_default());
                return Err(conflict(Kind::IamRole, &d.name, &tags));
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(Error::Aws(AwsError::new("iam:GetRole", &e))),
        }
    }
    Ok(sink.out)
}

fn ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// A container health check as one line (the form [`super::desired::health_check`] builds).
pub fn render_health_check(h: &aws_sdk_ecs::types::HealthCheck) -> String {
    format!(
        "{};interval={};timeout={};retries={};start={}",
        h.command().join(" "),
        h.interval().unwrap_or(30),
        h.timeout().unwrap_or(5),
        h.retries().unwrap_or(3),
        h.start_period().unwrap_or(0)
    )
}

/// A service's deployment configuration as one line (the form of [`super::desired::DEPLOYMENT`]).
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

async fn observe_ecs(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    use aws_sdk_ecs::types::{ClusterField, ServiceField, TaskDefinitionField};
    let mut sink = sink(cfg);
    let cluster_name = &cfg.compute.cluster_name;
    let clusters = c
        .ecs
        .describe_clusters()
        .clusters(cluster_name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(aws_err("ecs:DescribeClusters"))?;
    let mut cluster_ok = false;
    for cl in clusters.clusters() {
        if cl.status() != Some("ACTIVE") {
            continue;
        }
        let tags = ecs_tags(cl.tags());
        let name = cl.cluster_name().unwrap_or_default();
        if !owned(cfg, &tags) {
            return Err(conflict(Kind::EcsCluster, name, &tags));
        }
        cluster_ok = true;
        let insights = cl
            .settings()
            .iter()
            .find(|s| s.name().map(|n| n.as_str()) == Some("containerInsights"))
            .and_then(|s| s.value())
            .unwrap_or("disabled");
        sink.push(
            Kind::EcsCluster,
            name,
            cl.cluster_arn().map(str::to_string),
            tags,
            props([
                ("name", Val::str(name)),
                ("container_insights", Val::str(insights)),
            ]),
            "active",
            BTreeMap::new(),
        );
    }

    for svc in SERVICES {
        let fam = family(cfg, svc.name);
        let r = c
            .ecs
            .describe_task_definition()
            .task_definition(&fam)
            .include(TaskDefinitionField::Tags)
            .send()
            .await;
        let out = match r {
            Ok(o) => o,
            // ECS answers an unknown family with a ClientException
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_client_exception()) =>
            {
                continue
            }
            Err(e) => return Err(Error::Aws(AwsError::new("ecs:DescribeTaskDefinition", &e))),
        };
        let Some(td) = out.task_definition() else {
            continue;
        };
        // every revision deregistered (AWS may still answer with the last one)
        if td.status() == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Inactive) {
            continue;
        }
        let tags = ecs_tags(out.tags());
        if !owned(cfg, &tags) {
            if wanted(desired, Kind::TaskDefinition, &fam) {
                return Err(conflict(Kind::TaskDefinition, &fam, &tags));
            }
            continue;
        }
        let mut p = props([
            ("family", s(td.family())),
            (
                "cpu",
                Val::Int(td.cpu().and_then(|x| x.parse().ok()).unwrap_or(0)),
            ),
            (
                "memory",
                Val::Int(td.memory().and_then(|x| x.parse().ok()).unwrap_or(0)),
            ),
            ("network_mode", s(td.network_mode().map(|m| m.as_str()))),
            (
                "requires_compatibilities",
                Val::Str(
                    td.requires_compatibilities()
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ),
            ("execution_role", s(td.execution_role_arn())),
            ("task_role", s(td.task_role_arn())),
        ]);
        if let Some(cd) = td.container_definitions().first() {
            p.insert("image".into(), s(cd.image()));
            p.insert(
                "container_port".into(),
                Val::Int(i64::from(
                    cd.port_mappings()
                        .first()
                        .and_then(|m| m.container_port())
                        .unwrap_or(0),
                )),
            );
            p.insert(
                "health_check".into(),
                Val::Str(
                    cd.health_check()
                        .map(render_health_check)
                        .unwrap_or_default(),
                ),
            );
            let opts = cd.log_configuration().and_then(|l| l.options());
            let opt = |k: &str| s(opts.and_then(|o| o.get(k)).map(String::as_str));
            p.insert("log_group".into(), opt("awslogs-group"));
            p.insert("log_region".into(), opt("awslogs-region"));
            p.insert("log_stream_prefix".into(), opt("awslogs-stream-prefix"));
            for kv in cd.environment() {
                if let Some(n) = kv.name() {
                    p.insert(format!("env:{n}"), s(kv.value()));
                }
            }
            for sec in cd.secrets() {
                p.insert(format!("secret:{}", sec.name()), Val::str(sec.value_from()));
            }
        }
        let arn = td.task_definition_arn().unwrap_or_default().to_string();
        sink.push(
            Kind::TaskDefinition,
            &arn,
            Some(arn.clone()),
            tags,
            p,
            td.status().map(|s| s.as_str()).unwrap_or("ACTIVE"),
            BTreeMap::from([("revision".to_string(), td.revision().to_string())]),
        );
    }

    if cluster_ok {
        let names: Vec<String> = SERVICES.iter().map(|s| s.name.to_string()).collect();
        let services = c
            .ecs
            .describe_services()
            .cluster(cluster_name)
            .set_services(Some(names))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(aws_err("ecs:DescribeServices"))?;
        for sv in services.services() {
            // DRAINING: being deleted; INACTIVE: gone
            if sv.status() != Some("ACTIVE") {
                continue;
            }
            let tags = ecs_tags(sv.tags());
            let name = sv.service_name().unwrap_or_default();
            if !owned(cfg, &tags) {
                return Err(conflict(Kind::EcsService, name, &tags));
            }
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
    }
    Ok(sink.out)
}

async fn observe_discovery(c: &Clients, cfg: &Config) -> Result<Vec<Observed>, Error> {
    use aws_sdk_servicediscovery::types::{
        FilterCondition, NamespaceFilter, NamespaceFilterName, ServiceFilter, ServiceFilterName,
    };
    let mut sink = sink(cfg);
    let namespaces = c
        .discovery
        .list_namespaces()
        .filters(
            NamespaceFilter::builder()
                .name(NamespaceFilterName::Type)
                .values("DNS_PRIVATE")
                .condition(FilterCondition::Eq)
                .build()
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("servicediscovery:ListNamespaces"))?
        .into_iter()
        .flat_map(|page| page.namespaces.unwrap_or_default())
        .collect::<Vec<_>>();
    let sd_tags = |arn: String| async move {
        c.discovery
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map(|o| {
                o.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect::<BTreeMap<String, String>>()
            })
            .map_err(aws_err("servicediscovery:ListTagsForResource"))
    };
    for ns in namespaces {
        if ns.name() != Some(NAMESPACE) {
            continue;
        }
        let arn = ns.arn().unwrap_or_default().to_string();
        let tags = sd_tags(arn.clone()).await?;
        // other stacks' namespaces of the same name live in their own VPCs: not a conflict
        if !owned(cfg, &tags) {
            continue;
        }
        let ns_id = ns.id().unwrap_or_default().to_string();
        sink.push(
            Kind::ServiceDiscoveryNamespace,
            &ns_id,
            Some(arn.clone()),
            tags,
            props([("name", s(ns.name()))]),
            "available",
            BTreeMap::from([("arn".to_string(), arn)]),
        );
        let services = c
            .discovery
            .list_services()
            .filters(
                ServiceFilter::builder()
                    .name(ServiceFilterName::NamespaceId)
                    .values(&ns_id)
                    .condition(FilterCondition::Eq)
                    .build()
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws_err("servicediscovery:ListServices"))?
            .into_iter()
            .flat_map(|page| page.services.unwrap_or_default())
            .collect::<Vec<_>>();
        for sv in services {
            let arn = sv.arn().unwrap_or_default().to_string();
            let tags = sd_tags(arn.clone()).await?;
            let ttl = sv
                .dns_config()
                .and_then(|d| d.dns_records().first())
                .map(|r| r.ttl())
                .unwrap_or(0);
            sink.push(
                Kind::ServiceDiscoveryService,
                sv.id().unwrap_or_default(),
                Some(arn.clone()),
                tags,
                props([
                    ("name", s(sv.name())),
                    ("namespace", Val::Str(ns_id.clone())),
                    ("dns_ttl", Val::Int(ttl)),
                ]),
                "available",
                BTreeMap::from([("arn".to_string(), arn)]),
            );
        }
    }
    Ok(sink.out)
}

/// An ELB action in one line (the form desired state uses).
pub fn render_action(a: &aws_sdk_elasticloadbalancingv2::types::Action) -> String {
    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum as T;
    match a.r#type() {
        Some(T::Forward) => format!(
            "forward:{}",
            a.target_group_arn()
                .or_else(|| a
                    .forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn()))
                .unwrap_or_default()
        ),
        Some(T::FixedResponse) => {
            let f = a.fixed_response_config();
            format!(
                "fixed-response:{}:{}:{}",
                f.and_then(|f| f.status_code()).unwrap_or_default(),
                f.and_then(|f| f.content_type()).unwrap_or_default(),
                f.and_then(|f| f.message_body()).unwrap_or_default()
            )
        }
        Some(T::Redirect) => {
            let r = a.redirect_config();
            format!(
                "redirect:{}:{}:{}:{}:{}:{}",
                r.and_then(|r| r.protocol()).unwrap_or_default(),
                r.and_then(|r| r.port()).unwrap_or_default(),
                r.and_then(|r| r.host()).unwrap_or_default(),
                r.and_then(|r| r.path()).unwrap_or_default(),
                r.and_then(|r| r.query()).unwrap_or_default(),
                r.and_then(|r| r.status_code())
                    .map(|c| c.as_str())
                    .unwrap_or_default()
            )
        }
        other => other.map(|t| t.as_str()).unwrap_or("unknown").to_string(),
    }
}

async fn elb_tags(
    c: &Clients,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let r = c
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws_err("elasticloadbalancing:DescribeTags"))?;
        for d in r.tag_descriptions() {
            out.insert(
                d.resource_arn().unwrap_or_default().to_string(),
                d.tags()
                    .iter()
                    .filter_map(|t| {
                        Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

async fn observe_elb(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    let mut sink = sink(cfg);
    let lbs = c
        .elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("elasticloadbalancing:DescribeLoadBalancers"))?;
    let tgs = c
        .elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(aws_err("elasticloadbalancing:DescribeTargetGroups"))?;
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .chain(
            tgs.iter()
                .filter_map(|t| t.target_group_arn().map(str::to_string)),
        )
        .collect();
    let tags = elb_tags(c, &arns).await?;
    let no_tags = BTreeMap::new();

    for tg in &tgs {
        let arn = tg.target_group_arn().unwrap_or_default();
        let name = tg.target_group_name().unwrap_or_default();
        let t = tags.get(arn).unwrap_or(&no_tags);
        if !owned(cfg, t) {
            if wanted(desired, Kind::TargetGroup, name) {
                return Err(conflict(Kind::TargetGroup, name, t));
            }
            continue;
        }
        let attrs = c
            .elb
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(aws_err(
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
    }

    let mut listener_arns = Vec::new();
    let mut listeners = Vec::new();
    for lb in &lbs {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let name = lb.load_balancer_name().unwrap_or_default();
        let t = tags.get(arn).unwrap_or(&no_tags);
        if !owned(cfg, t) {
            if wanted(desired, Kind::LoadBalancer, name) {
                return Err(conflict(Kind::LoadBalancer, name, t));
            }
            continue;
        }
        let attrs = c
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(aws_err(
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
            .map_err(aws_err("elasticloadbalancing:DescribeListeners"))?;
        for l in ls {
            listener_arns.push(l.listener_arn().unwrap_or_default().to_string());
            listeners.push(l);
        }
    }
    let mut rules = Vec::new();
    for l in &listeners {
        let r = c
            .elb
            .describe_rules()
            .listener_arn(l.listener_arn().unwrap_or_default())
            .send()
            .await
            .map_err(aws_err("elasticloadbalancing:DescribeRules"))?;
        for rule in r.rules() {
            if !rule.is_default().unwrap_or(false) {
                rules.push((
                    l.listener_arn().unwrap_or_default().to_string(),
                    rule.clone(),
                ));
            }
        }
    }
    let more: Vec<String> = listener_arns
        .iter()
        .cloned()
        .chain(
            rules
                .iter()
                .filter_map(|(_, r)| r.rule_arn().map(str::to_string)),
        )
        .collect();
    let tags = elb_tags(c, &more).await?;
    for l in &listeners {
        let arn = l.listener_arn().unwrap_or_default();
        let protocol = l.protocol().map(|p| p.as_str()).unwrap_or("");
        let mut p = props([
            ("load_balancer", s(l.load_balancer_arn())),
            ("port", Val::Int(i64::from(l.port().unwrap_or(0)))),
            ("protocol", Val::str(protocol)),
            (
                "default_action",
                Val::Str(
                    l.default_actions()
                        .first()
                        .map(render_action)
                        .unwrap_or_default(),
                ),
            ),
        ]);
        if protocol == "HTTPS" {
            p.insert(
                "certificate".into(),
                s(l.certificates().first().and_then(|c| c.certificate_arn())),
            );
            p.insert("ssl_policy".into(), s(l.ssl_policy()));
        }
        sink.push(
            Kind::Listener,
            arn,
            Some(arn.to_string()),
            tags.get(arn).cloned().unwrap_or_default(),
            p,
            "active",
            BTreeMap::new(),
        );
    }
    for (listener, r) in &rules {
        let arn = r.rule_arn().unwrap_or_default();
        let paths: Vec<Val> = r
            .conditions()
            .iter()
            .filter(|c| c.field() == Some("path-pattern"))
            .flat_map(|c| {
                let v: Vec<String> = match c.path_pattern_config() {
                    Some(pp) if !pp.values().is_empty() => pp.values().to_vec(),
                    _ => c.values().to_vec(),
                };
                v
            })
            .map(Val::Str)
            .collect();
        sink.push(
            Kind::ListenerRule,
            arn,
            Some(arn.to_string()),
            tags.get(arn).cloned().unwrap_or_default(),
            props([
                ("listener", Val::Str(listener.clone())),
                (
                    "priority",
                    Val::Int(r.priority().and_then(|p| p.parse().ok()).unwrap_or(0)),
                ),
                ("paths", Val::Set(paths)),
                (
                    "action",
                    Val::Str(r.actions().first().map(render_action).unwrap_or_default()),
                ),
            ]),
            "active",
            BTreeMap::new(),
        );
    }
    Ok(sink.out)
}

async fn observe_scaling(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
) -> Result<Vec<Observed>, Error> {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let mut sink = sink(cfg);
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
        .map_err(aws_err("application-autoscaling:DescribeScalableTargets"))?;
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
            .map_err(aws_err("application-autoscaling:DescribeScalingPolicies"))?;
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
