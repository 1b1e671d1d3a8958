//! The compute tier's desired resources, appended in dependency order (the [`Kind`] order) to the stack's list.
//!
//! IAM is least privilege and tighter than the original (`upstream.md` §5 "IAM"): the execution role pulls only
//! our images, writes only our log group and reads exactly the secrets injected into the tasks; the gateway may
//! only invoke `rest-*` Function URLs; the tenant-manager may manage `rest-*` functions, pass only the REST
//! Lambda role and only to Lambda, and manage only secrets under `secrets.prefix`; the REST Lambda role is
//! capped by a permission boundary. No AWS-managed policy is attached anywhere.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::policy::{doc, r};
use super::{HEALTH_PATH, NAMESPACE, REPOSITORIES};
use crate::config::{Config, RestMode, ServiceConfig};
use crate::desired::{props, Builder, Inputs};
use crate::model::{Kind, Props, ResId, Val};
use crate::reach::{Outbound, Peer};

/// `aws`, `aws-cn` or `aws-us-gov`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// IAM path of every role and policy of the stack in a region: IAM is global, the path keeps two regions (and
/// two stacks) apart, and `ListRoles(PathPrefix)` finds them all.
pub fn iam_path(cfg: &Config, region: &str) -> String {
    format!("/supactl/{}/{}/{region}/", cfg.name, cfg.environment)
}

/// The IAM roles of the stack: logical key and name suffix.
pub const ROLES: &[(&str, &str)] = &[
    ("execution", "task-exec"),
    ("gateway", "gateway"),
    ("tenant-manager", "tenant-mgr"),
    ("rest-lambda", "rest-lambda"),
];

/// A role's name: `<name>-<env>-<region>-<suffix>` (at most 64 characters with the config's name limits).
pub fn role_name(cfg: &Config, region: &str, key: &str) -> String {
    let suffix = ROLES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, s)| *s)
        .unwrap_or(key);
    format!("{}-{region}-{suffix}", cfg.prefix())
}

pub fn role_arn(cfg: &Config, region: &str, key: &str) -> String {
    format!(
        "arn:{}:iam::{}:role{}{}",
        partition(region),
        cfg.account_id,
        iam_path(cfg, region),
        role_name(cfg, region, key)
    )
}

/// The permission boundary of the REST Lambda role.
pub fn boundary_name(cfg: &Config, region: &str) -> String {
    format!("{}-{region}-rest-lambda-boundary", cfg.prefix())
}

/// ECR repository name of an image: `<name>-<env>/<image>`, lowercase (what `supactl push --env` pushes to).
pub fn repository_name(cfg: &Config, image: &str) -> String {
    format!("{}/{image}", cfg.prefix().to_ascii_lowercase())
}

/// The repository URI of an image: the config's override, else the stack's own repository.
pub fn repository_uri(cfg: &Config, region: &str, image: &str) -> String {
    match cfg.compute.ecr_overrides.get(image) {
        Some(u) => u.split('@').next().unwrap_or(u).to_string(),
        None => format!(
            "{}.dkr.ecr.{region}.amazonaws.com/{}",
            cfg.account_id,
            repository_name(cfg, image)
        ),
    }
}

/// `(registry account, region, repository)` of an ECR URI (`<acct>.dkr.ecr.<region>.amazonaws.com/<repo>`).
pub fn parse_ecr_uri(uri: &str) -> Option<(String, String, String)> {
    let (host, repo) = uri.split_once('/')?;
    let mut parts = host.split('.');
    let acct = parts.next()?;
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let region = parts.next()?;
    let repo = repo.split('@').next()?.split(':').next()?;
    (acct.len() == 12 && acct.chars().all(|c| c.is_ascii_digit()))
        .then(|| (acct.to_string(), region.to_string(), repo.to_string()))
}

/// The ARN of the ECR repository an image is pulled from, when it is one.
fn repository_arn(cfg: &Config, region: &str, image: &str) -> Option<String> {
    let (acct, r, repo) = parse_ecr_uri(&repository_uri(cfg, region, image))?;
    Some(format!(
        "arn:{}:ecr:{r}:{acct}:repository/{repo}",
        partition(&r)
    ))
}

/// The family of a service's task definitions.
pub fn family(cfg: &Config, service: &str) -> String {
    format!("{}-{service}", cfg.prefix())
}

/// The ECS log group.
pub fn log_group_name(cfg: &Config) -> String {
    format!("/ecs/{}", cfg.prefix())
}

/// An ELBv2 name (≤ 32 characters: letters, digits, hyphens) for `<prefix>-<suffix>`; long prefixes are cut and
/// a short hash of the whole keeps names of different stacks apart.
pub fn elb_name(prefix: &str, suffix: &str) -> String {
    let full = format!("{prefix}-{suffix}");
    if full.len() <= 32 {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let tag = format!("{:06x}", hash & 0xff_ffff);
    let keep = 32 - suffix.len() - tag.len() - 2;
    let head = prefix[..keep.min(prefix.len())].trim_end_matches('-');
    format!("{head}-{tag}-{suffix}")
}

/// The Application Auto Scaling resource id of a service.
pub fn scaling_resource_id(cfg: &Config, service: &str) -> String {
    format!("service/{}/{service}", cfg.compute.cluster_name)
}

const ASSUME: &str = "sts:AssumeRole";

fn ecs_trust(cfg: &Config) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": ASSUME,
            "Condition": {"StringEquals": {"aws:SourceAccount": cfg.account_id}}
        }]
    })
}

fn statements(stmts: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": stmts})
}

/// The REST Lambda's permissions: its boundary and its inline policy are the same document.
fn rest_lambda_statements(cfg: &Config, region: &str) -> Vec<Value> {
    let p = partition(region);
    let acct = &cfg.account_id;
    let mut s = vec![
        json!({
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses"
            ],
            "Resource": "*"
        }),
        json!({
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                format!("arn:{p}:logs:{region}:{acct}:log-group:/aws/lambda/rest-*"),
                format!("arn:{p}:logs:{region}:{acct}:log-group:/aws/lambda/rest-*:*")
            ]
        }),
    ];
    if let Some(repo) = repository_arn(cfg, region, "rest-lambda") {
        s.push(json!({
            "Sid": "PullRestImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repo
        }));
    }
    s
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
    env.insert("SUPACTL_LISTEN".into(), Val::str("0.0.0.0"));
    env.insert("AWS_REGION".into(), Val::str(inputs.region));
    env.insert(
        "SUPACTL_API_URL_TEMPLATE".into(),
        Val::Str(c.project_url_template()),
    );
    env.insert("SUPACTL_REST_MODE".into(), Val::str(c.rest.mode.as_str()));
    // Redis (ElastiCache, TLS + AUTH): the URL is composed by `supactl serve` from these parts
    env.insert("SUPACTL_REDIS_HOST".into(), to.host(Peer::Redis));
    env.insert("SUPACTL_REDIS_PORT".into(), to.port(Peer::Redis));
    env.insert("SUPACTL_REDIS_TLS".into(), Val::str("true"));
    secrets.insert("SUPACTL_REDIS_PASSWORD".into(), s("redis-auth-token"));
    secrets.insert("SUPACTL_SERVICE_TOKEN".into(), s("service-token"));
    match svc.name {
        "gateway" => {
            env.insert("SUPACTL_PORT".into(), Val::Int(port));
            env.insert(
                "SUPACTL_TENANT_MANAGER_URL".into(),
                to.url(Peer::Service("tenant-manager")),
            );
            env.insert(
                "SUPACTL_BASE_DOMAIN".into(),
                Val::Str(c.base_domain.clone()),
            );
        }
        _ => {
            env.insert("SUPACTL_ADMIN_PORT".into(), Val::Int(port));
            // the platform database: the RDS-managed master secret's `password` key
            let db = &cfg.platform_db;
            env.insert("SUPACTL_DATABASE_HOST".into(), to.host(Peer::PlatformDb));
            env.insert("SUPACTL_DATABASE_PORT".into(), to.port(Peer::PlatformDb));
            env.insert("SUPACTL_DATABASE_USER".into(), Val::str("postgres"));
            env.insert(
                "SUPACTL_DATABASE_NAME".into(),
                Val::Str(db.database_name.clone()),
            );
            secrets.insert(
                "SUPACTL_DATABASE_PASSWORD".into(),
                master_password("platform"),
            );
            // TLS to both clusters, verified against the Amazon RDS CA bundle built into the binary
            env.insert("SUPACTL_DATABASE_SSLMODE".into(), Val::str("verify-full"));
            // the worker cluster, registered as a worker at start-up
            let w = &cfg.worker_db;
            env.insert(
                "SUPACTL_WORKER_IDENTIFIER".into(),
                Val::Str(w.cluster_identifier.clone()),
            );
            env.insert("SUPACTL_WORKER_HOST".into(), to.host(Peer::WorkerDb));
            env.insert("SUPACTL_WORKER_PORT".into(), to.port(Peer::WorkerDb));
            env.insert("SUPACTL_WORKER_USER".into(), Val::str("postgres"));
            env.insert("SUPACTL_WORKER_SSLMODE".into(), Val::str("verify-full"));
            secrets.insert("SUPACTL_WORKER_PASSWORD".into(), master_password("worker"));
            secrets.insert("SUPACTL_ADMIN_KEY".into(), s("admin-api-key"));
            secrets.insert("SUPACTL_ENCRYPTION_KEY".into(), s("encryption-key"));
            // the URL the REST functions call back to: one of their declared connections
            env.insert(
                "SUPACTL_TENANT_MANAGER_INTERNAL_URL".into(),
                Outbound::of(cfg, Peer::RestFunctions).url(Peer::Service("tenant-manager")),
            );
            if c.rest.mode == RestMode::Lambda {
                let image = inputs
                    .images
                    .get("rest-lambda")
                    .cloned()
                    .unwrap_or_default();
                env.insert("SUPACTL_REST_LAMBDA_IMAGE".into(), Val::Str(image));
                env.insert(
                    "SUPACTL_REST_LAMBDA_ROLE_ARN".into(),
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
                env.insert("SUPACTL_REST_LAMBDA_SUBNETS".into(), Val::Concat(subnets));
                env.insert(
                    "SUPACTL_REST_LAMBDA_SECURITY_GROUPS".into(),
                    Peer::RestFunctions.group_ref(),
                );
                env.insert(
                    "SUPACTL_REST_LAMBDA_MEMORY_MB".into(),
                    Val::Int(c.rest.memory_mb),
                );
                env.insert(
                    "SUPACTL_REST_LAMBDA_TIMEOUT_SECONDS".into(),
                    Val::Int(c.rest.timeout_seconds),
                );
                // so `supactl status` can tell this stack's functions from another's in the same region
                env.insert(
                    "SUPACTL_REST_LAMBDA_TAGS".into(),
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
fn injected_secrets(cfg: &Config, inputs: &Inputs<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for svc in &cfg.compute.services {
        let port = super::service(svc.name).map(|s| s.port).unwrap_or(0);
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

const NOT_FOUND_BODY: &str =
    r#"{"code":"not_found","message":"no such route on this load balancer"}"#;

/// A listener or rule action rendered the way observation renders live ones.
pub fn fixed_response(status: u16, body: &str) -> Val {
    Val::Str(format!("fixed-response:{status}:application/json:{body}"))
}

pub fn forward(tg: &str) -> Val {
    Val::Concat(vec![Val::str("forward:"), Val::r(tg)])
}

pub const REDIRECT_TO_HTTPS: &str = "redirect:HTTPS:443:#{host}:/#{path}:#{query}:HTTP_301";

/// The TLS policy of the HTTPS listeners: TLS 1.3, with TLS 1.2 for older clients.
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// A role to create: logical key, trust policy, inline policies (name, document), bounded by the boundary.
type Role = (&'static str, Value, Vec<(&'static str, Value)>, bool);

/// Appends the compute tier to `b`.
pub(crate) fn add(b: &mut Builder<'_>, inputs: &Inputs<'_>) {
    let cfg = b.cfg;
    let c = &cfg.compute;
    let region = inputs.region;
    let p = partition(region);
    let acct = cfg.account_id.clone();
    let prefix = cfg.prefix();
    let lambda_mode = c.rest.mode == RestMode::Lambda;
    let n_az = cfg.vpc.max_azs.min(inputs.azs.len());

    // ECR: one repository per image unless the config points elsewhere
    let lifecycle = json!({
        "rules": [{
            "rulePriority": 1,
            "description": "keep the last 10 untagged images",
            "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10},
            "action": {"type": "expire"}
        }]
    });
    for image in REPOSITORIES {
        if c.ecr_overrides.contains_key(*image) {
            continue;
        }
        let name = repository_name(cfg, image);
        let policy = if *image == "rest-lambda" && lambda_mode {
            doc(&json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "LambdaPullsRestImage",
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": acct},
                        "StringLike": {"aws:SourceArn": format!("arn:{p}:lambda:{region}:{acct}:function:rest-*")}
                    }
                }]
            }))
        } else {
            Val::str("")
        };
        b.add(
            Kind::EcrRepository,
            &format!("ecr/{image}"),
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("scan_on_push", Val::Bool(true)),
                ("tag_mutability", Val::str("MUTABLE")),
                ("lifecycle_policy", doc(&lifecycle)),
                ("repository_policy", policy),
            ]),
            Props::new(),
        );
    }

    let log_group = log_group_name(cfg);
    b.add(
        Kind::LogGroup,
        "logs/ecs",
        log_group.clone(),
        props([
            ("name", Val::Str(log_group.clone())),
            ("retention_days", Val::Int(i64::from(c.log_retention_days))),
        ]),
        Props::new(),
    );

    // IAM
    let path = iam_path(cfg, region);
    if lambda_mode {
        let name = boundary_name(cfg, region);
        b.add(
            Kind::IamPolicy,
            "iam/policy/rest-lambda-boundary",
            name.clone(),
            props([
                ("name", Val::Str(name)),
                ("path", Val::Str(path.clone())),
                (
                    "document",
                    doc(&statements(rest_lambda_statements(cfg, region))),
                ),
            ]),
            props([(
                "description",
                Val::str("supactl: permission boundary of the per-project REST Lambda functions"),
            )]),
        );
    }
    let log_arn = format!("arn:{p}:logs:{region}:{acct}:log-group:{log_group}:*");
    let task_images: Vec<String> = c
        .services
        .iter()
        .filter_map(|s| repository_arn(cfg, region, s.name))
        .collect();
    let mut exec = vec![
        json!({"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
        json!({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": log_arn}),
        json!({"Sid": "InjectedSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
               "Resource": injected_secrets(cfg, inputs)}),
    ];
    if !task_images.is_empty() {
        exec.push(json!({"Sid": "PullImages", "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": task_images}));
    }
    let functions = format!("arn:{p}:lambda:{region}:{acct}:function:rest-*");
    let mut roles: Vec<Role> = vec![
        (
            "execution",
            ecs_trust(cfg),
            vec![("pull-and-log", statements(exec))],
            false,
        ),
        (
            "gateway",
            ecs_trust(cfg),
            if lambda_mode {
                vec![(
                    "invoke-rest",
                    statements(vec![
                        json!({"Sid": "InvokeRestFunctionUrls", "Effect": "Allow",
                        "Action": "lambda:InvokeFunctionUrl", "Resource": functions}),
                    ]),
                )]
            } else {
                vec![]
            },
            false,
        ),
    ];
    let mut tm = vec![json!({
        "Sid": "ProjectSecrets",
        "Effect": "Allow",
        "Action": [
            "secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret",
            "secretsmanager:TagResource"
        ],
        "Resource": format!("arn:{p}:secretsmanager:{region}:{acct}:secret:{}*", c.secrets_prefix)
    })];
    if lambda_mode {
        tm.push(json!({
            "Sid": "RestFunctions",
            "Effect": "Allow",
            "Action": [
                "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
                "lambda:CreateFunctionUrlConfig", "lambda:GetFunctionUrlConfig",
                "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
                "lambda:AddPermission", "lambda:RemovePermission", "lambda:TagResource"
            ],
            "Resource": functions
        }));
        tm.push(json!({
            "Sid": "PassRestRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": r("iam/role/rest-lambda"),
            "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
        }));
        tm.push(json!({
            "Sid": "VpcLookupsForFunctions",
            "Effect": "Allow",
            "Action": ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
            "Resource": "*"
        }));
    }
    // before the tenant-manager's role, whose policy names it
    if lambda_mode {
        roles.push((
            "rest-lambda",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ASSUME}]}),
            vec![(
                "rest-lambda",
                statements(rest_lambda_statements(cfg, region)),
            )],
            true,
        ));
    }
    roles.push((
        "tenant-manager",
        ecs_trust(cfg),
        vec![("control-plane", statements(tm))],
        false,
    ));
    for (key, trust, inline, bounded) in roles {
        let name = role_name(cfg, region, key);
        let mut p = props([
            ("name", Val::Str(name.clone())),
            ("path", Val::Str(path.clone())),
            ("trust", doc(&trust)),
            (
                "boundary",
                if bounded {
                    Val::r("iam/policy/rest-lambda-boundary")
                } else {
                    Val::str("")
                },
            ),
        ]);
        for (pname, d) in inline {
            p.insert(format!("policy:{pname}"), doc(&d));
        }
        b.add(
            Kind::IamRole,
            &format!("iam/role/{key}"),
            name,
            p,
            props([(
                "description",
                Val::Str(format!("supactl: {key} role of {}", cfg.prefix())),
            )]),
        );
    }

    b.add(
        Kind::EcsCluster,
        "ecs/cluster",
        c.cluster_name.clone(),
        props([
            ("name", Val::Str(c.cluster_name.clone())),
            ("container_insights", Val::str("enabled")),
        ]),
        Props::new(),
    );

    b.add(
        Kind::ServiceDiscoveryNamespace,
        "sd/namespace",
        NAMESPACE.into(),
        props([("name", Val::str(NAMESPACE))]),
        // Cloud Map does not answer a namespace's VPC (it is on the Route 53 zone): set on create only
        props([
            ("vpc", Val::r("vpc")),
            (
                "description",
                Val::Str(format!("supactl: service discovery of {prefix}")),
            ),
        ]),
    );
    for svc in &c.services {
        b.add(
            Kind::ServiceDiscoveryService,
            &format!("sd/{}", svc.name),
            svc.name.into(),
            props([
                ("name", Val::str(svc.name)),
                ("namespace", Val::r("sd/namespace")),
                ("dns_ttl", Val::Int(10)),
            ]),
            Props::new(),
        );
    }

    for svc in &c.services {
        let spec = super::service(svc.name).expect("a known service");
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
                ("deregistration_delay", Val::Int(30)),
            ]),
            Props::new(),
        );
    }

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
        ("public", &c.public_alb_name, "sg/alb", 180),
        ("admin", &c.admin_alb_name, "sg/admin-alb", 400),
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

    let has = |svc: &str| c.service(svc).is_some();
    for (alb, default_https) in [
        (
            "public",
            if has("gateway") {
                forward("tg/gateway")
            } else {
                fixed_response(404, NOT_FOUND_BODY)
            },
        ),
        ("admin", fixed_response(404, NOT_FOUND_BODY)),
    ] {
        b.add(
            Kind::Listener,
            &format!("listener/{alb}/https"),
            format!("{alb}:443"),
            props([
                ("load_balancer", Val::r(&format!("alb/{alb}"))),
                ("port", Val::Int(443)),
                ("protocol", Val::str("HTTPS")),
                ("certificate", Val::Str(c.certificate_arn.clone())),
                ("ssl_policy", Val::str(SSL_POLICY)),
                ("default_action", default_https),
            ]),
            Props::new(),
        );
        b.add(
            Kind::Listener,
            &format!("listener/{alb}/http"),
            format!("{alb}:80"),
            props([
                ("load_balancer", Val::r(&format!("alb/{alb}"))),
                ("port", Val::Int(80)),
                ("protocol", Val::str("HTTP")),
                ("default_action", Val::str(REDIRECT_TO_HTTPS)),
            ]),
            Props::new(),
        );
    }
    b.add(
        Kind::ListenerRule,
        "rule/public/no-admin",
        "public:443 /admin/*, /internal/*".into(),
        props([
            ("listener", Val::r("listener/public/https")),
            ("priority", Val::Int(10)),
            (
                "paths",
                Val::Set(vec![Val::str("/admin/*"), Val::str("/internal/*")]),
            ),
            (
                "action",
                fixed_response(
                    404,
                    r#"{"code":"not_found","message":"the admin API is not served on this host"}"#,
                ),
            ),
        ]),
        Props::new(),
    );
    if has("tenant-manager") {
        b.add(
            Kind::ListenerRule,
            "rule/admin/tenant-manager",
            "admin:443 /admin/v1/*, /health".into(),
            props([
                ("listener", Val::r("listener/admin/https")),
                ("priority", Val::Int(10)),
                (
                    "paths",
                    Val::Set(vec![Val::str("/admin/v1/*"), Val::str(HEALTH_PATH)]),
                ),
                ("action", forward("tg/tenant-manager")),
            ]),
            Props::new(),
        );
    }

    for svc in &c.services {
        let spec = super::service(svc.name).expect("a known service");
        let family = family(cfg, svc.name);
        let te = task_env(cfg, inputs, svc, spec.port);
        let mut p = props([
            ("family", Val::Str(family.clone())),
            ("cpu", Val::Int(svc.cpu)),
            ("memory", Val::Int(svc.memory)),
            ("network_mode", Val::str("awsvpc")),
            ("requires_compatibilities", Val::str("FARGATE")),
            ("execution_role", Val::r("iam/role/execution")),
            ("task_role", Val::r(&format!("iam/role/{}", svc.name))),
            (
                "image",
                Val::Str(inputs.images.get(svc.name).cloned().unwrap_or_default()),
            ),
            ("container_port", Val::Int(spec.port)),
            ("health_check", Val::Str(health_check(spec.port))),
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

    let private_subnets: Vec<Val> = (0..n_az)
        .map(|i| Val::Ref(ResId(format!("subnet/private/{i}"))))
        .collect();
    for svc in &c.services {
        let spec = super::service(svc.name).expect("a known service");
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
                Val::Concat(vec![
                    Val::r(&format!("tg/{}", svc.name)),
                    Val::Str(format!(":{}:{}", svc.name, spec.port)),
                ]),
            ),
            (
                "service_registry",
                Val::attr(&format!("sd/{}", svc.name), "arn"),
            ),
            ("deployment", Val::str(DEPLOYMENT)),
            ("health_check_grace_period", Val::Int(60)),
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

/// Rolling deployments that never drop below the desired count, stopped and rolled back by the circuit breaker.
pub const DEPLOYMENT: &str = "min-healthy=100,max=200,circuit-breaker=rollback";

/// The container health check: the image has no shell or curl, so `supactl healthcheck` asks the service.
pub fn health_check(port: i64) -> String {
    format!(
        "CMD /usr/local/bin/supactl healthcheck http://127.0.0.1:{port}{HEALTH_PATH};interval=30;timeout=5;retries=3;start=15"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_names_fit_in_32_characters() {
        assert_eq!(
            elb_name("supabase-on-aws-test", "gw"),
            "supabase-on-aws-test-gw"
        );
        let long = elb_name("a-very-long-stack-name-production", "tm");
        assert!(long.len() <= 32, "{long}");
        assert!(long.ends_with("-tm") && long.starts_with("a-very-long"));
        assert_ne!(long, elb_name("a-very-long-stack-name-productioo", "tm"));
    }

    #[test]
    fn ecr_uris() {
        assert_eq!(
            parse_ecr_uri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/gateway@sha256:ab"),
            Some((
                "123456789012".into(),
                "eu-west-1".into(),
                "a/gateway".into()
            ))
        );
        assert_eq!(parse_ecr_uri("ghcr.io/org/gateway"), None);
    }
}
