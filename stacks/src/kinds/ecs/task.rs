//! Task definitions: one family per ECS service, the image by digest, the environment and secrets written
//! through the service's declared connections ([`crate::reach::Outbound`]). A revision is immutable: any change
//! registers a new one, then the older revisions are deregistered.

use std::collections::BTreeMap;

use super::tags::{ecs_tags, observed_tags};
use crate::aws::{absent, err as aws, Clients};
use crate::compute::{env as vars, service, HEALTH_PATH, SERVICES};
use crate::config::{Config, RestMode, ServiceConfig};
use crate::family::build::{Builder, Inputs};
use crate::family::ctx::{built, int, Ctx};
use crate::family::found::{is_ours, s, Sink};
use crate::family::Created;
use crate::model::{props, r, Desired, Kind, Observed, Props, ResId, Val};
use crate::reach::{Outbound, Peer};
use crate::Error;

/// The family of a service's task definitions.
pub fn family(cfg: &Config, service: &str) -> String {
    format!("{}-{service}", cfg.prefix())
}

/// What the tasks of a service get: environment and secrets (`name → value`).
struct TaskEnv {
    env: BTreeMap<String, Val>,
    secrets: BTreeMap<String, Val>,
}

fn task_env(cfg: &Config, inputs: &Inputs<'_>, svc: &ServiceConfig, port: i64) -> TaskEnv {
    let c = &cfg.compute;
    // every address below is one of the service's declared connections (compute/edges.rs)
    let to = Outbound::of(cfg, Peer::Service(svc.name));
    let mut env: BTreeMap<String, Val> = BTreeMap::new();
    let mut secrets: BTreeMap<String, Val> = BTreeMap::new();
    let s = |k: &str| Val::r(&format!("secret/{k}"));
    let master_password = |db: &str| {
        Val::Concat(vec![
            Val::attr(&format!("db/{db}"), "master_secret_arn"),
            Val::str(":password::"),
        ])
    };
    env.insert(vars::LISTEN.into(), Val::str("0.0.0.0"));
    env.insert("AWS_REGION".into(), Val::str(inputs.region));
    secrets.insert(vars::SERVICE_TOKEN.into(), s("service-token"));
    if svc.name == "functions" {
        // user code runs here: no Redis, no database, nothing of the control plane but its internal API
        env.insert(vars::PORT.into(), Val::Int(port));
        env.insert(
            vars::FUNCTIONS_INTERNAL_PORT.into(),
            Val::Int(service(svc.name).and_then(|s| s.internal_port).unwrap_or(0)),
        );
        env.insert(
            vars::TENANT_MANAGER_URL.into(),
            to.url(Peer::Service("tenant-manager")),
        );
        // Deno's --deny-net: no function reaches a private address of the VPC (the tenant-manager, the
        // databases, Redis, the other services), whatever the security groups allow
        env.insert(
            vars::FUNCTIONS_DENY_NET.into(),
            Val::Str(cfg.vpc.cidr.to_string()),
        );
        return TaskEnv { env, secrets };
    }
    env.insert(
        vars::API_URL_TEMPLATE.into(),
        Val::Str(c.project_url_template()),
    );
    env.insert(vars::REST_MODE.into(), Val::str(c.rest.mode.as_str()));
    // Redis (ElastiCache, TLS + AUTH): the URL is composed by `supactl serve` from these parts
    env.insert(vars::REDIS_HOST.into(), to.host(Peer::Redis));
    env.insert(vars::REDIS_PORT.into(), to.port(Peer::Redis));
    env.insert(vars::REDIS_TLS.into(), Val::str("true"));
    secrets.insert(vars::REDIS_PASSWORD.into(), s("redis-auth-token"));
    match svc.name {
        "gateway" => {
            env.insert(vars::PORT.into(), Val::Int(port));
            env.insert(
                vars::TENANT_MANAGER_URL.into(),
                to.url(Peer::Service("tenant-manager")),
            );
            env.insert(
                vars::FUNCTIONS_URL.into(),
                to.url(Peer::Service("functions")),
            );
            env.insert(vars::BASE_DOMAIN.into(), Val::Str(c.base_domain.clone()));
            // the ALB's nodes are in the VPC: only they may name the client in X-Forwarded-For
            env.insert(
                vars::TRUSTED_PROXIES.into(),
                Val::Str(cfg.vpc.cidr.to_string()),
            );
            // Storage's objects: the environment's bucket (the task role may use it and nothing else)
            env.insert(
                vars::STORAGE_S3_BUCKET.into(),
                Val::Str(crate::kinds::storage::bucket_name(cfg, inputs.region)),
            );
            env.insert(vars::STORAGE_S3_REGION.into(), Val::str(inputs.region));
        }
        _ => {
            env.insert(vars::ADMIN_PORT.into(), Val::Int(port));
            // the platform database: the RDS-managed master secret's `password` key
            let db = &cfg.platform_db;
            env.insert(vars::DATABASE_HOST.into(), to.host(Peer::PlatformDb));
            env.insert(vars::DATABASE_PORT.into(), to.port(Peer::PlatformDb));
            env.insert(vars::DATABASE_USER.into(), Val::str("postgres"));
            env.insert(
                vars::DATABASE_NAME.into(),
                Val::Str(db.database_name.clone()),
            );
            secrets.insert(vars::DATABASE_PASSWORD.into(), master_password("platform"));
            // TLS to both clusters, verified against the Amazon RDS CA bundle built into the binary
            env.insert(vars::DATABASE_SSLMODE.into(), Val::str("verify-full"));
            // the worker cluster, registered as a worker at start-up
            let w = &cfg.worker_db;
            env.insert(
                vars::WORKER_IDENTIFIER.into(),
                Val::Str(w.cluster_identifier.clone()),
            );
            env.insert(vars::WORKER_HOST.into(), to.host(Peer::WorkerDb));
            env.insert(vars::WORKER_PORT.into(), to.port(Peer::WorkerDb));
            env.insert(vars::WORKER_USER.into(), Val::str("postgres"));
            env.insert(vars::WORKER_SSLMODE.into(), Val::str("verify-full"));
            secrets.insert(vars::WORKER_PASSWORD.into(), master_password("worker"));
            secrets.insert(vars::ADMIN_KEY.into(), s("admin-api-key"));
            secrets.insert(vars::ENCRYPTION_KEY.into(), s("encryption-key"));
            // function logs, read from every functions replica behind the name
            env.insert(
                vars::FUNCTIONS_INTERNAL_URL.into(),
                to.url(Peer::Service("functions")),
            );
            // the URL the REST functions call back to: one of their declared connections
            env.insert(
                vars::TENANT_MANAGER_INTERNAL_URL.into(),
                Outbound::of(cfg, Peer::RestFunctions).url(Peer::Service("tenant-manager")),
            );
            if c.rest.mode == RestMode::Lambda {
                let image = inputs
                    .images
                    .get("rest-lambda")
                    .cloned()
                    .unwrap_or_default();
                env.insert(vars::REST_LAMBDA_IMAGE.into(), Val::Str(image));
                env.insert(
                    vars::REST_LAMBDA_ROLE_ARN.into(),
                    Val::r("iam/role/rest-lambda"),
                );
                let n_az = cfg.vpc.max_azs.min(inputs.azs.len());
                let mut subnets = vec![];
                for i in 0..n_az {
                    if i > 0 {
                        subnets.push(Val::str(","));
                    }
                    subnets.push(Val::Ref(ResId(format!("subnet/private/{i}"))));
                }
                env.insert(vars::REST_LAMBDA_SUBNETS.into(), Val::Concat(subnets));
                env.insert(
                    vars::REST_LAMBDA_SECURITY_GROUPS.into(),
                    Peer::RestFunctions.group_ref(),
                );
                env.insert(
                    vars::REST_LAMBDA_MEMORY_MB.into(),
                    Val::Int(c.rest.memory_mb),
                );
                env.insert(
                    vars::REST_LAMBDA_TIMEOUT_SECONDS.into(),
                    Val::Int(c.rest.timeout_seconds),
                );
                env.insert(
                    vars::REST_LAMBDA_ARCHITECTURE.into(),
                    Val::str(crate::compute::images::LAMBDA_ARCHITECTURE),
                );
                // the stack's function names (IAM is scoped to them) and log group (with retention)
                env.insert(
                    vars::REST_LAMBDA_NAME_PREFIX.into(),
                    Val::Str(crate::kinds::lambda::function_prefix(cfg)),
                );
                env.insert(
                    vars::REST_LAMBDA_LOG_GROUP.into(),
                    Val::Str(crate::kinds::logs::rest_log_group_name(cfg)),
                );
                // so `supactl status` can tell this stack's functions from another's in the same region
                env.insert(
                    vars::REST_LAMBDA_TAGS.into(),
                    Val::Str(format!(
                        "{}={},{}={}",
                        crate::model::TAG_STACK,
                        cfg.name,
                        crate::model::TAG_ENV,
                        cfg.environment
                    )),
                );
            }
        }
    }
    TaskEnv { env, secrets }
}

/// The secrets every task's environment references (the execution role may read exactly these).
pub fn injected_secrets(cfg: &Config, inputs: &Inputs<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for svc in &cfg.compute.services {
        let port = service(svc.name).map(|s| s.port).unwrap_or(0);
        for v in task_env(cfg, inputs, svc, port).secrets.values() {
            let arn = match v {
                Val::Ref(id) => r(id.as_str()),
                // `<secret arn>:password::` → the secret itself
                Val::Concat(parts) => match parts.first() {
                    Some(Val::Ref(id)) => r(id.as_str()),
                    _ => continue,
                },
                _ => continue,
            };
            if !out.contains(&arn) {
                out.push(arn);
            }
        }
    }
    out.sort();
    out
}

/// The container health check: the image has no shell or curl, so `supactl healthcheck` asks the service.
pub fn health_check(port: i64) -> String {
    format!(
        "CMD /usr/local/bin/supactl healthcheck http://127.0.0.1:{port}{HEALTH_PATH};interval=30;timeout=5;retries=3;start=15"
    )
}

/// A task definition per ECS service.
pub(super) fn desired(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let region = inputs.region;
    for svc in &c.services {
        let spec = service(svc.name).expect("a known service");
        let family = family(cfg, svc.name);
        let te = task_env(cfg, inputs, svc, spec.port);
        let mut p = props([
            ("family", Val::Str(family.clone())),
            ("cpu", Val::Int(svc.cpu)),
            ("memory", Val::Int(svc.memory)),
            ("network_mode", Val::str("awsvpc")),
            ("requires_compatibilities", Val::str("FARGATE")),
            (
                "cpu_architecture",
                Val::str(crate::compute::images::ECS_CPU_ARCHITECTURE),
            ),
            ("os_family", Val::str("LINUX")),
            ("execution_role", Val::r("iam/role/execution")),
            ("task_role", Val::r(&format!("iam/role/{}", svc.name))),
            (
                "image",
                Val::Str(inputs.images.get(svc.name).cloned().unwrap_or_default()),
            ),
            ("container_port", Val::Int(spec.port)),
            ("health_check", Val::Str(health_check(spec.health_port()))),
            ("log_group", Val::r("logs/ecs")),
            ("log_region", Val::str(region)),
            ("log_stream_prefix", Val::str(svc.name)),
        ]);
        for (k, v) in te.env {
            p.insert(format!("env:{k}"), v);
        }
        for (k, v) in te.secrets {
            p.insert(format!("secret:{k}"), v);
        }
        b.add(
            Kind::TaskDefinition,
            &format!("taskdef/{}", svc.name),
            family,
            p,
            Props::new(),
        );
    }
}

/// The latest active revision of each service's family.
pub(super) async fn observe(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    for svc in SERVICES {
        observe_family(c, cfg, desired, &family(cfg, svc.name), sink).await?;
    }
    Ok(())
}

async fn observe_family(
    c: &Clients,
    cfg: &Config,
    desired: &[Desired],
    fam: &str,
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    use aws_sdk_ecs::types::TaskDefinitionField;
    let call = c
        .ecs
        .describe_task_definition()
        .task_definition(fam)
        .include(TaskDefinitionField::Tags)
        .send();
    // ECS answers an unknown family with a ClientException
    let Some(out) = absent("ecs:DescribeTaskDefinition", call, |s| {
        s.is_client_exception()
    })
    .await?
    else {
        return Ok(());
    };
    let Some(td) = out.task_definition() else {
        return Ok(());
    };
    // every revision deregistered (AWS may still answer with the last one)
    if td.status() == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Inactive) {
        return Ok(());
    }
    let tags = observed_tags(out.tags());
    if !is_ours(cfg, desired, Kind::TaskDefinition, fam, &tags)? {
        return Ok(());
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
        (
            "cpu_architecture",
            s(td.runtime_platform()
                .and_then(|p| p.cpu_architecture())
                .map(|a| a.as_str())),
        ),
        (
            "os_family",
            s(td.runtime_platform()
                .and_then(|p| p.operating_system_family())
                .map(|f| f.as_str())),
        ),
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
    Ok(())
}

/// A container health check as one line (the form [`health_check`] builds).
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

pub(super) async fn register_task_definition(x: &Ctx<'_>, d: &Desired) -> Result<Created, Error> {
    use aws_sdk_ecs::types::{
        Compatibility, ContainerDefinition, CpuArchitecture, KeyValuePair, LogConfiguration,
        LogDriver, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret, TransportProtocol,
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
            env.push(KeyValuePair::builder().name(n).value(x.resolve(v)?).build());
        } else if let Some(n) = k.strip_prefix("secret:") {
            secrets.push(built(
                Secret::builder().name(n).value_from(x.resolve(v)?).build(),
            )?);
        }
    }
    let container = ContainerDefinition::builder()
        .name(&name)
        .image(x.prop(d, "image")?)
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .container_port(int(d, "container_port") as i32)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .set_environment(Some(env))
        .set_secrets(Some(secrets))
        .health_check(parse_health_check(&x.prop(d, "health_check")?)?)
        .log_configuration(built(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", x.prop(d, "log_group")?)
                .options("awslogs-region", x.prop(d, "log_region")?)
                .options("awslogs-stream-prefix", x.prop(d, "log_stream_prefix")?)
                .build(),
        )?)
        .build();
    let r =
        x.c.ecs
            .register_task_definition()
            .family(x.prop(d, "family")?)
            .cpu(int(d, "cpu").to_string())
            .memory(int(d, "memory").to_string())
            .network_mode(NetworkMode::from(x.prop(d, "network_mode")?.as_str()))
            .requires_compatibilities(Compatibility::from(
                x.prop(d, "requires_compatibilities")?.as_str(),
            ))
            .execution_role_arn(x.prop(d, "execution_role")?)
            .task_role_arn(x.prop(d, "task_role")?)
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::from(
                        x.prop(d, "cpu_architecture")?.as_str(),
                    ))
                    .operating_system_family(OsFamily::from(x.prop(d, "os_family")?.as_str()))
                    .build(),
            )
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
        BTreeMap::from([(
            "revision".to_string(),
            td.map(|t| t.revision()).unwrap_or(0).to_string(),
        )]),
    ))
}

pub(super) async fn delete_task_definition(x: &Ctx<'_>, o: &Observed) -> Result<String, Error> {
    let family = o.prop_str("family").to_string();
    let n = deregister_family(x, &family, None).await?;
    Ok(format!("deregistered {n} revision(s) of {family}"))
}

/// After a replacement's new task definition is registered: retire the older revisions.
pub(super) async fn retire_revisions(
    x: &Ctx<'_>,
    o: &Observed,
    keep: &str,
) -> Result<String, Error> {
    let family = o.prop_str("family").to_string();
    let n = deregister_family(x, &family, Some(keep)).await?;
    Ok(format!("{n} older revision(s) deregistered"))
}

/// Deregisters every ACTIVE revision of a family but `keep`.
async fn deregister_family(x: &Ctx<'_>, family: &str, keep: Option<&str>) -> Result<usize, Error> {
    let arns =
        x.c.ecs
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
        x.c.ecs
            .deregister_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .map_err(aws("ecs:DeregisterTaskDefinition"))?;
        n += 1;
    }
    Ok(n)
}

/// `CMD a b;interval=30;timeout=5;retries=3;start=15` into a container health check.
fn parse_health_check(text: &str) -> Result<aws_sdk_ecs::types::HealthCheck, Error> {
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
    built(b.build())
}
