//! The compute tier against moto_server: a full deploy asserting every ECS service, task definition, target
//! group, listener, rule, ECR policy, IAM role and policy document; single-service changes; image digests;
//! preflight; outputs and status; destroy. Each check reads the service's own list/describe API (the tagging
//! API misses IAM, ECR and listeners in the emulator).

mod common;

use std::collections::BTreeMap;

use common::{config_from, opts, pending, push_images, Moto, ACCOUNT, BASE_DOMAIN, REGION};
use serde_json::{json, Value};
use stacks::plan::Action;
use stacks::{Error, Quiet, Session};

/// The test config with autoscaling on the gateway (1..3), so the scaling resources exist.
fn scaled_config() -> stacks::Config {
    config_from("config.test.json", |v| {
        v["ecsTaskStack"]["services"]["kong"]["minCount"] = 1.into();
        v["ecsTaskStack"]["services"]["kong"]["maxCount"] = 3.into();
    })
}

fn doc(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap()
        .into_owned();
    serde_json::from_str(&decoded).unwrap()
}

/// `Statement` as a list, whatever shape IAM gave back.
fn statements(d: &Value) -> Vec<Value> {
    match &d["Statement"] {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// A single string, whether IAM gave it as a string or a one-element list.
fn one(v: &Value) -> String {
    let s = strings(v);
    assert_eq!(s.len(), 1, "{v}");
    s[0].clone()
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    };
    out.sort();
    out
}

async fn role_policy(s: &Session, key: &str, policy: &str) -> Value {
    let name = stacks::kinds::iam::role_name(&s.config, REGION, key);
    let r = s
        .clients
        .iam
        .get_role_policy()
        .role_name(name)
        .policy_name(policy)
        .send()
        .await
        .unwrap();
    doc(r.policy_document())
}

async fn secret_arn(s: &Session, key: &str) -> String {
    s.clients
        .secrets
        .describe_secret()
        .secret_id(format!("supabase-on-aws/test/{key}"))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

async fn master_secret(s: &Session, cluster: &str) -> (String, String) {
    let c = s
        .clients
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .unwrap();
    let cl = &c.db_clusters()[0];
    (
        cl.master_user_secret()
            .unwrap()
            .secret_arn()
            .unwrap()
            .to_string(),
        cl.endpoint().unwrap().to_string(),
    )
}

async fn task_definition(
    s: &Session,
    family: &str,
) -> (
    aws_sdk_ecs::types::TaskDefinition,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
) {
    let r = s
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(family)
        .send()
        .await
        .unwrap();
    let td = r.task_definition().unwrap().clone();
    let cd = &td.container_definitions()[0];
    let env = cd
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap().to_string(),
                kv.value().unwrap().to_string(),
            )
        })
        .collect();
    let secrets = cd
        .secrets()
        .iter()
        .map(|s| (s.name().to_string(), s.value_from().to_string()))
        .collect();
    (td, env, secrets)
}

async fn service(s: &Session, name: &str) -> aws_sdk_ecs::types::Service {
    let r = s
        .clients
        .ecs
        .describe_services()
        .cluster("supabase-on-aws-test")
        .services(name)
        .send()
        .await
        .unwrap();
    r.services()[0].clone()
}

#[tokio::test]
async fn full_deploy_creates_the_compute_tier_with_its_settings() {
    let moto = Moto::start();
    let s = moto.session(scaled_config()).await;
    let digests = push_images(&s, "latest", 1).await;
    let plan = s.deploy(None, &Quiet, opts()).await.expect("deploy");
    assert!(plan.count(Action::Create) > 70, "{plan}");
    let c = &s.clients;
    let prefix = "supabase-on-aws-test";
    let repo = |image: &str| format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{prefix}/{image}");

    // ECR: scan on push, lifecycle policy, the Lambda pull policy on the REST image only
    for image in ["gateway", "tenant-manager", "functions", "rest-lambda"] {
        let name = format!("{prefix}/{image}");
        let r = c
            .ecr
            .describe_repositories()
            .repository_names(&name)
            .send()
            .await
            .unwrap();
        let rp = &r.repositories()[0];
        assert_eq!(rp.repository_uri(), Some(repo(image).as_str()));
        assert!(rp.image_scanning_configuration().unwrap().scan_on_push());
        let lc = c
            .ecr
            .get_lifecycle_policy()
            .repository_name(&name)
            .send()
            .await
            .unwrap();
        let lc: Value = serde_json::from_str(lc.lifecycle_policy_text().unwrap()).unwrap();
        assert_eq!(lc["rules"][0]["selection"]["tagStatus"], "untagged");
        assert_eq!(lc["rules"][0]["selection"]["countNumber"], 10);
        assert_eq!(lc["rules"][0]["action"]["type"], "expire");
        let policy = c
            .ecr
            .get_repository_policy()
            .repository_name(&name)
            .send()
            .await;
        if image == "rest-lambda" {
            let p: Value = serde_json::from_str(policy.unwrap().policy_text().unwrap()).unwrap();
            let st = &statements(&p)[0];
            assert_eq!(one(&st["Principal"]["Service"]), "lambda.amazonaws.com");
            assert_eq!(
                strings(&st["Action"]),
                vec!["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
            );
            // only the documented condition (Lambda's "Amazon ECR permissions")
            assert_eq!(st["Condition"].as_object().unwrap().len(), 1, "{st}");
            assert_eq!(
                one(&st["Condition"]["StringLike"]["aws:SourceArn"]),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:rest-*")
            );
        } else {
            assert!(policy.is_err(), "{image} has no repository policy");
        }
        let tags = c
            .ecr
            .list_tags_for_resource()
            .resource_arn(rp.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(tags
            .tags()
            .iter()
            .any(|t| t.key() == "supactl:id" && t.value() == format!("ecr/{image}")));
    }

    // the log group, its retention (30 days for test)
    let lg = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/ecs/{prefix}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lg.log_groups().len(), 1);
    assert_eq!(lg.log_groups()[0].retention_in_days(), Some(30));
    // the REST functions' group, with the same retention
    let lg = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{prefix}-rest"))
        .send()
        .await
        .unwrap();
    assert_eq!(lg.log_groups().len(), 1);
    assert_eq!(lg.log_groups()[0].retention_in_days(), Some(30));

    // IAM: roles under the stack's path, least-privilege documents, the boundary
    let path = format!("/supactl/supabase-on-aws/test/{REGION}/");
    let roles = c.iam.list_roles().path_prefix(&path).send().await.unwrap();
    let mut names: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("{prefix}-{REGION}-functions"),
            format!("{prefix}-{REGION}-gateway"),
            format!("{prefix}-{REGION}-rest-lambda"),
            format!("{prefix}-{REGION}-task-exec"),
            format!("{prefix}-{REGION}-tenant-mgr"),
        ]
    );
    let exec = c
        .iam
        .get_role()
        .role_name(format!("{prefix}-{REGION}-task-exec"))
        .send()
        .await
        .unwrap();
    let trust = doc(exec.role().unwrap().assume_role_policy_document().unwrap());
    let st = &statements(&trust)[0];
    assert_eq!(one(&st["Principal"]["Service"]), "ecs-tasks.amazonaws.com");
    assert_eq!(
        one(&st["Condition"]["StringEquals"]["aws:SourceAccount"]),
        ACCOUNT
    );
    assert!(exec.role().unwrap().permissions_boundary().is_none());

    let (platform_secret, platform_endpoint) =
        master_secret(&s, "supabase-on-aws-test-platform").await;
    let (worker_secret, worker_endpoint) = master_secret(&s, "supabase-on-aws-test-worker").await;
    let pull = role_policy(&s, "execution", "pull-and-log").await;
    let by_sid = |d: &Value, sid: &str| {
        statements(d)
            .into_iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid} in {d}"))
    };
    let mut want_secrets = vec![
        secret_arn(&s, "admin-api-key").await,
        secret_arn(&s, "encryption-key").await,
        secret_arn(&s, "redis-auth-token").await,
        secret_arn(&s, "service-token").await,
        platform_secret.clone(),
        worker_secret.clone(),
    ];
    want_secrets.sort();
    let injected = by_sid(&pull, "InjectedSecrets");
    assert_eq!(
        strings(&injected["Action"]),
        vec!["secretsmanager:GetSecretValue"]
    );
    assert_eq!(
        strings(&injected["Resource"]),
        want_secrets,
        "exactly the secrets injected"
    );
    assert_eq!(
        strings(&by_sid(&pull, "PullImages")["Resource"]),
        vec![
            format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{prefix}/functions"),
            format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{prefix}/gateway"),
            format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{prefix}/tenant-manager"),
        ]
    );
    assert_eq!(
        strings(&by_sid(&pull, "Logs")["Resource"]),
        vec![format!(
            "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/{prefix}:*"
        )]
    );
    // the stack's functions only: `rest-<8 hex>-*`
    let fn_prefix = stacks::kinds::lambda::function_prefix(&s.config);
    assert!(fn_prefix.starts_with("rest-") && fn_prefix.len() == 14);
    let functions = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn_prefix}*");
    let gw = role_policy(&s, "gateway", "invoke-rest").await;
    assert_eq!(
        statements(&gw).len(),
        1,
        "the gateway may only invoke the REST functions"
    );
    // a Function URL created since October 2025 needs both from its caller
    assert_eq!(
        strings(&statements(&gw)[0]["Action"]),
        vec!["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    );
    assert_eq!(
        strings(&statements(&gw)[0]["Resource"]),
        vec![functions.clone()]
    );
    let tm = role_policy(&s, "tenant-manager", "control-plane").await;
    let lambda_role_arn = format!("arn:aws:iam::{ACCOUNT}:role{path}{prefix}-{REGION}-rest-lambda");
    let pass = by_sid(&tm, "PassRestRole");
    assert_eq!(strings(&pass["Resource"]), vec![lambda_role_arn.clone()]);
    assert_eq!(
        one(&pass["Condition"]["StringEquals"]["iam:PassedToService"]),
        "lambda.amazonaws.com"
    );
    let fns = by_sid(&tm, "RestFunctions");
    assert_eq!(strings(&fns["Resource"]), vec![functions.clone()]);
    for a in [
        "lambda:CreateFunction",
        "lambda:DeleteFunction",
        "lambda:CreateFunctionUrlConfig",
        "lambda:DeleteFunctionUrlConfig",
        "lambda:AddPermission",
        "lambda:RemovePermission",
        "lambda:TagResource",
    ] {
        assert!(strings(&fns["Action"]).contains(&a.to_string()), "{a}");
    }
    assert_eq!(
        strings(&by_sid(&tm, "ProjectSecrets")["Resource"]),
        vec![format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:postgrest/*"
        )]
    );
    let lambda_role = c
        .iam
        .get_role()
        .role_name(format!("{prefix}-{REGION}-rest-lambda"))
        .send()
        .await
        .unwrap();
    let lr = lambda_role.role().unwrap();
    assert_eq!(lr.arn(), lambda_role_arn);
    assert_eq!(
        one(
            &statements(&doc(lr.assume_role_policy_document().unwrap()))[0]["Principal"]["Service"]
        ),
        "lambda.amazonaws.com"
    );
    let boundary_arn = lr
        .permissions_boundary()
        .unwrap()
        .permissions_boundary_arn()
        .unwrap()
        .to_string();
    assert_eq!(
        boundary_arn,
        format!("arn:aws:iam::{ACCOUNT}:policy{path}{prefix}-{REGION}-rest-lambda-boundary")
    );
    let bv = c
        .iam
        .get_policy_version()
        .policy_arn(&boundary_arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let boundary = doc(bv.policy_version().unwrap().document().unwrap());
    assert_eq!(
        strings(&by_sid(&boundary, "OwnLogs")["Resource"]),
        vec![
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{prefix}-rest"),
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{prefix}-rest:*"),
        ]
    );
    assert_eq!(
        strings(&by_sid(&boundary, "OwnLogs")["Action"]),
        vec!["logs:CreateLogStream", "logs:PutLogEvents"],
        "the group exists with its retention: the functions may not create another"
    );
    assert!(
        strings(&by_sid(&boundary, "VpcNetworkInterfaces")["Action"])
            .contains(&"ec2:CreateNetworkInterface".to_string())
    );
    assert_eq!(
        strings(&by_sid(&boundary, "PullRestImage")["Resource"]),
        vec![format!(
            "arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{prefix}/rest-lambda"
        )]
    );

    // the cluster with Container Insights
    let cl = c
        .ecs
        .describe_clusters()
        .clusters("supabase-on-aws-test")
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let cl = &cl.clusters()[0];
    assert_eq!(cl.status(), Some("ACTIVE"));
    assert_eq!(cl.settings()[0].value(), Some("enabled"));

    // Cloud Map: the namespace and one service per ECS service
    let ns = c.discovery.list_namespaces().send().await.unwrap();
    let ns: Vec<_> = ns
        .namespaces()
        .iter()
        .filter(|n| n.name() == Some("supactl.local"))
        .collect();
    assert_eq!(ns.len(), 1);
    let sd = c.discovery.list_services().send().await.unwrap();
    let sd_arn = |name: &str| {
        sd.services()
            .iter()
            .find(|s| s.name() == Some(name))
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    };

    // target groups, load balancers, listeners, rules
    let tgs = c.elb.describe_target_groups().send().await.unwrap();
    let tg = |name: &str| {
        tgs.target_groups()
            .iter()
            .find(|t| t.target_group_name() == Some(name))
            .unwrap_or_else(|| panic!("no target group {name}"))
            .clone()
    };
    let gw_tg = tg(&format!("{prefix}-gw"));
    let tm_tg = tg(&format!("{prefix}-tm"));
    for (t, port) in [(&gw_tg, 8000), (&tm_tg, 3001)] {
        assert_eq!(t.port(), Some(port));
        assert_eq!(t.health_check_path(), Some("/health"));
        assert_eq!(t.target_type().map(|x| x.as_str()), Some("ip"));
        assert_eq!(t.healthy_threshold_count(), Some(2));
        assert_eq!(t.unhealthy_threshold_count(), Some(3));
        let attrs = c
            .elb
            .describe_target_group_attributes()
            .target_group_arn(t.target_group_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(attrs
            .attributes()
            .iter()
            .any(|a| a.key() == Some("deregistration_delay.timeout_seconds")
                && a.value() == Some("30")));
    }
    let lbs = c.elb.describe_load_balancers().send().await.unwrap();
    let lb = |name: &str| {
        lbs.load_balancers()
            .iter()
            .find(|l| l.load_balancer_name() == Some(name))
            .unwrap()
            .clone()
    };
    let sgs = c.ec2.describe_security_groups().send().await.unwrap();
    let sg = |key: &str| {
        sgs.security_groups()
            .iter()
            .find(|g| g.group_name() == Some(format!("{prefix}-{key}").as_str()))
            .unwrap()
            .group_id()
            .unwrap()
            .to_string()
    };
    let mut certs = Vec::new();
    for (name, sg_key, idle) in [
        ("supabase-on-aws-test-pub", "alb", "180"),
        ("supabase-on-aws-test-admin", "admin-alb", "400"),
    ] {
        let l = lb(name);
        assert_eq!(l.scheme().map(|s| s.as_str()), Some("internet-facing"));
        assert_eq!(l.availability_zones().len(), 2, "two AZs");
        assert_eq!(l.security_groups(), [sg(sg_key)]);
        let attrs = c
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(l.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(attrs
            .attributes()
            .iter()
            .any(|a| a.key() == Some("idle_timeout.timeout_seconds") && a.value() == Some(idle)));
        let ls = c
            .elb
            .describe_listeners()
            .load_balancer_arn(l.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(ls.listeners().len(), 2, "{name}: 443 and 80");
        for li in ls.listeners() {
            let action = &li.default_actions()[0];
            let rules = c
                .elb
                .describe_rules()
                .listener_arn(li.listener_arn().unwrap())
                .send()
                .await
                .unwrap();
            let rules: Vec<_> = rules
                .rules()
                .iter()
                .filter(|r| !r.is_default().unwrap_or(false))
                .cloned()
                .collect();
            match li.port() {
                Some(80) => {
                    let r = action.redirect_config().unwrap();
                    assert_eq!(
                        (r.protocol(), r.port(), r.status_code().map(|c| c.as_str())),
                        (Some("HTTPS"), Some("443"), Some("HTTP_301"))
                    );
                    assert!(rules.is_empty());
                }
                Some(443) => {
                    assert_eq!(li.protocol().map(|p| p.as_str()), Some("HTTPS"));
                    assert_eq!(li.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
                    certs.push(li.certificates()[0].certificate_arn().unwrap().to_string());
                    assert_eq!(rules.len(), 1);
                    let rule = &rules[0];
                    let paths: Vec<String> = rule.conditions()[0]
                        .path_pattern_config()
                        .unwrap()
                        .values()
                        .to_vec();
                    if name == "supabase-on-aws-test-pub" {
                        // public: everything to the gateway, but never the admin API
                        assert_eq!(action.target_group_arn(), gw_tg.target_group_arn());
                        assert_eq!(paths, vec!["/admin/*", "/internal/*"]);
                        let f = rule.actions()[0].fixed_response_config().unwrap();
                        assert_eq!(f.status_code(), Some("404"));
                        assert_eq!(f.content_type(), Some("application/json"));
                        let body: Value = serde_json::from_str(f.message_body().unwrap()).unwrap();
                        assert_eq!(body["code"], "not_found");
                    } else {
                        // admin: 404 by default, the admin API and health to the tenant-manager
                        assert_eq!(
                            action.fixed_response_config().unwrap().status_code(),
                            Some("404")
                        );
                        let mut p = paths.clone();
                        p.sort();
                        assert_eq!(p, vec!["/admin/v1/*", "/health"]);
                        assert_eq!(
                            rule.actions()[0].target_group_arn(),
                            tm_tg.target_group_arn()
                        );
                    }
                }
                other => panic!("unexpected listener port {other:?}"),
            }
        }
    }
    assert_eq!(certs, vec![s.config.compute.certificate_arn.clone(); 2]);

    // the tenant-manager accepts 3001 from the admin load balancer
    let tm_sg = sgs
        .security_groups()
        .iter()
        .find(|g| g.group_name() == Some(format!("{prefix}-tenant-manager").as_str()))
        .unwrap();
    assert!(tm_sg
        .ip_permissions()
        .iter()
        .any(|p| p.from_port() == Some(3001)
            && p.user_id_group_pairs()
                .iter()
                .any(|g| g.group_id() == Some(sg("admin-alb").as_str()))));

    // task definitions: images by digest, sizes, environment, secrets, health check, logs
    let redis = c
        .elasticache
        .describe_replication_groups()
        .replication_group_id("supabase-on-aws-test-redis")
        .send()
        .await
        .unwrap();
    let redis_host = redis.replication_groups()[0].node_groups()[0]
        .primary_endpoint()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    let subnets = c
        .ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:supactl:stack")
                .values("supabase-on-aws")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut private: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter(|s| !s.map_public_ip_on_launch().unwrap())
        .map(|s| {
            let id = s
                .tags()
                .iter()
                .find(|t| t.key() == Some("supactl:id"))
                .unwrap()
                .value()
                .unwrap()
                .to_string();
            (id, s.subnet_id().unwrap().to_string())
        })
        .collect();
    private.sort();
    let private: Vec<String> = private.into_iter().map(|(_, s)| s).collect();

    let (gw_td, gw_env, gw_secrets) = task_definition(&s, &format!("{prefix}-gateway")).await;
    assert_eq!(
        gw_td.container_definitions()[0].image(),
        Some(format!("{}@{}", repo("gateway"), digests["gateway"]).as_str())
    );
    assert_eq!((gw_td.cpu(), gw_td.memory()), (Some("512"), Some("1024")));
    assert_eq!(gw_td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(gw_td.requires_compatibilities()[0].as_str(), "FARGATE");
    assert_eq!(gw_td.execution_role_arn(), Some(exec.role().unwrap().arn()));
    assert!(gw_td
        .task_role_arn()
        .unwrap()
        .ends_with(&format!("{prefix}-{REGION}-gateway")));
    assert_eq!(gw_env["SUPACTL_LISTEN"], "0.0.0.0");
    assert_eq!(gw_env["SUPACTL_PORT"], "8000");
    assert_eq!(
        gw_env["SUPACTL_TENANT_MANAGER_URL"],
        "http://tenant-manager.supactl.local:3001"
    );
    assert_eq!(gw_env["SUPACTL_BASE_DOMAIN"], BASE_DOMAIN);
    // X-Forwarded-For is believed from the VPC's range (the ALB) only
    assert_eq!(gw_env["SUPACTL_TRUSTED_PROXIES"], "10.0.0.0/16");
    assert_eq!(
        gw_env["SUPACTL_API_URL_TEMPLATE"],
        format!("https://{{ref}}.{BASE_DOMAIN}")
    );
    assert_eq!(gw_env["AWS_REGION"], REGION);
    assert_eq!(gw_env["SUPACTL_REDIS_HOST"], redis_host);
    assert_eq!(gw_env["SUPACTL_REDIS_TLS"], "true");
    assert_eq!(
        gw_secrets,
        BTreeMap::from([
            (
                "SUPACTL_REDIS_PASSWORD".to_string(),
                secret_arn(&s, "redis-auth-token").await
            ),
            (
                "SUPACTL_SERVICE_TOKEN".to_string(),
                secret_arn(&s, "service-token").await
            ),
        ]),
        "the gateway gets neither the admin key nor the database password"
    );
    assert_eq!(
        gw_env["SUPACTL_FUNCTIONS_URL"],
        "http://functions.supactl.local:8081"
    );
    let cd = &gw_td.container_definitions()[0];
    let hc = cd.health_check().unwrap();
    assert_eq!(
        hc.command(),
        [
            "CMD",
            "/usr/local/bin/supactl",
            "healthcheck",
            "http://127.0.0.1:8000/health"
        ]
    );
    assert_eq!((hc.interval(), hc.retries()), (Some(30), Some(3)));
    let logs = cd.log_configuration().unwrap();
    assert_eq!(logs.log_driver().as_str(), "awslogs");
    let o = logs.options().unwrap();
    assert_eq!(o["awslogs-group"], format!("/ecs/{prefix}"));
    assert_eq!(o["awslogs-stream-prefix"], "gateway");
    assert_eq!(cd.port_mappings()[0].container_port(), Some(8000));

    let (tm_td, tm_env, tm_secrets) =
        task_definition(&s, &format!("{prefix}-tenant-manager")).await;
    assert_eq!(
        tm_td.container_definitions()[0].image(),
        Some(format!("{}@{}", repo("tenant-manager"), digests["tenant-manager"]).as_str())
    );
    assert_eq!(tm_env["SUPACTL_ADMIN_PORT"], "3001");
    assert_eq!(tm_env["SUPACTL_DATABASE_HOST"], platform_endpoint);
    assert_eq!(tm_env["SUPACTL_DATABASE_USER"], "postgres");
    assert_eq!(tm_env["SUPACTL_DATABASE_NAME"], "supabase");
    // both clusters over TLS, verified with the built-in Amazon RDS bundle (no CA file to name)
    assert_eq!(tm_env["SUPACTL_DATABASE_SSLMODE"], "verify-full");
    assert_eq!(tm_env["SUPACTL_WORKER_SSLMODE"], "verify-full");
    assert!(!tm_env.contains_key("SUPACTL_DATABASE_SSLROOTCERT"));
    assert_eq!(tm_env["SUPACTL_WORKER_HOST"], worker_endpoint);
    assert_eq!(
        tm_env["SUPACTL_WORKER_IDENTIFIER"],
        "supabase-on-aws-test-worker"
    );
    assert_eq!(tm_env["SUPACTL_REST_MODE"], "lambda");
    assert_eq!(
        tm_env["SUPACTL_REST_LAMBDA_IMAGE"],
        format!("{}@{}", repo("rest-lambda"), digests["rest-lambda"])
    );
    assert_eq!(tm_env["SUPACTL_REST_LAMBDA_ROLE_ARN"], lambda_role_arn);
    assert_eq!(tm_env["SUPACTL_REST_LAMBDA_SUBNETS"], private.join(","));
    assert_eq!(
        tm_env["SUPACTL_REST_LAMBDA_SECURITY_GROUPS"],
        sg("rest-lambda")
    );
    assert_eq!(tm_env["SUPACTL_REST_LAMBDA_MEMORY_MB"], "512");
    assert_eq!(tm_env["SUPACTL_REST_LAMBDA_TIMEOUT_SECONDS"], "30");
    assert_eq!(tm_env["SUPACTL_REST_LAMBDA_NAME_PREFIX"], fn_prefix);
    assert_eq!(
        tm_env["SUPACTL_REST_LAMBDA_LOG_GROUP"],
        format!("/aws/lambda/{prefix}-rest")
    );
    assert_eq!(
        tm_env["SUPACTL_TENANT_MANAGER_INTERNAL_URL"],
        "http://tenant-manager.supactl.local:3001"
    );
    assert_eq!(tm_env["AWS_REGION"], REGION);
    assert_eq!(
        tm_secrets["SUPACTL_DATABASE_PASSWORD"],
        format!("{platform_secret}:password::")
    );
    assert_eq!(
        tm_secrets["SUPACTL_WORKER_PASSWORD"],
        format!("{worker_secret}:password::")
    );
    assert_eq!(
        tm_secrets["SUPACTL_ADMIN_KEY"],
        secret_arn(&s, "admin-api-key").await
    );
    assert_eq!(
        tm_secrets["SUPACTL_ENCRYPTION_KEY"],
        secret_arn(&s, "encryption-key").await
    );
    assert_eq!(
        tm_secrets["SUPACTL_SERVICE_TOKEN"],
        secret_arn(&s, "service-token").await
    );

    assert_eq!(
        tm_env["SUPACTL_FUNCTIONS_INTERNAL_URL"],
        "http://functions.supactl.local:8082"
    );

    // Edge Functions: its image, the tenant-manager's internal API, the VPC denied to the functions, the
    // service token as its only secret, health on the internal listener, a role that allows nothing
    let (fn_td, fn_env, fn_secrets) = task_definition(&s, &format!("{prefix}-functions")).await;
    assert_eq!(
        fn_td.container_definitions()[0].image(),
        Some(format!("{}@{}", repo("functions"), digests["functions"]).as_str())
    );
    assert_eq!(fn_env["SUPACTL_PORT"], "8081");
    assert_eq!(fn_env["SUPACTL_FUNCTIONS_INTERNAL_PORT"], "8082");
    assert_eq!(
        fn_env["SUPACTL_TENANT_MANAGER_URL"],
        "http://tenant-manager.supactl.local:3001"
    );
    assert_eq!(fn_env["SUPACTL_FUNCTIONS_DENY_NET"], "10.0.0.0/16");
    assert!(!fn_env.contains_key("SUPACTL_REDIS_HOST"), "{fn_env:?}");
    assert_eq!(
        fn_secrets,
        BTreeMap::from([(
            "SUPACTL_SERVICE_TOKEN".to_string(),
            secret_arn(&s, "service-token").await
        )])
    );
    assert_eq!(
        fn_td.container_definitions()[0]
            .health_check()
            .unwrap()
            .command()[3],
        "http://127.0.0.1:8082/health"
    );
    let fn_role = c
        .iam
        .list_role_policies()
        .role_name(format!("{prefix}-{REGION}-functions"))
        .send()
        .await
        .unwrap();
    assert!(fn_role.policy_names().is_empty(), "{fn_role:?}");
    let fsv = service(&s, "functions").await;
    assert_eq!(fsv.task_definition(), fn_td.task_definition_arn());
    assert!(fsv.load_balancers().is_empty(), "no load balancer in front");
    assert_eq!(
        fsv.service_registries()[0].registry_arn(),
        Some(sd_arn("functions").as_str())
    );
    assert_eq!(
        fsv.network_configuration()
            .unwrap()
            .awsvpc_configuration()
            .unwrap()
            .security_groups(),
        [sg("functions")]
    );
    assert!(!tgs
        .target_groups()
        .iter()
        .any(|t| t.target_group_name() == Some(format!("{prefix}-fn").as_str())));

    // services: Fargate in the private subnets with their own group, the load balancer, Cloud Map,
    // the circuit breaker with rollback
    for (name, td, tg, port) in [
        ("gateway", &gw_td, &gw_tg, 8000),
        ("tenant-manager", &tm_td, &tm_tg, 3001),
    ] {
        let sv = service(&s, name).await;
        assert_eq!(sv.status(), Some("ACTIVE"));
        assert_eq!(sv.desired_count(), 1);
        assert_eq!(sv.launch_type().map(|l| l.as_str()), Some("FARGATE"));
        assert_eq!(sv.task_definition(), td.task_definition_arn());
        let net = sv
            .network_configuration()
            .unwrap()
            .awsvpc_configuration()
            .unwrap();
        let mut got = net.subnets().to_vec();
        got.sort();
        let mut want = private.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(net.security_groups(), [sg(name)]);
        assert_eq!(net.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
        let lb = &sv.load_balancers()[0];
        assert_eq!(lb.target_group_arn(), tg.target_group_arn());
        assert_eq!(
            (lb.container_name(), lb.container_port()),
            (Some(name), Some(port))
        );
        assert_eq!(
            sv.service_registries()[0].registry_arn(),
            Some(sd_arn(name).as_str())
        );
        let dc = sv.deployment_configuration().unwrap();
        let cb = dc.deployment_circuit_breaker().unwrap();
        assert!(cb.enable() && cb.rollback());
        assert_eq!(
            (dc.minimum_healthy_percent(), dc.maximum_percent()),
            (Some(100), Some(200))
        );
    }

    // autoscaling on the gateway only (the tenant-manager's range is 1..1)
    let targets = c
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    assert_eq!(targets.scalable_targets().len(), 1);
    let t = &targets.scalable_targets()[0];
    assert_eq!(t.resource_id(), "service/supabase-on-aws-test/gateway");
    assert_eq!((t.min_capacity(), t.max_capacity()), (1, 3));
    let policies = c
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.scaling_policies().len(), 1);
    let tt = policies.scaling_policies()[0]
        .target_tracking_scaling_policy_configuration()
        .unwrap();
    assert_eq!(tt.target_value(), 70.0);
    assert_eq!(
        (tt.scale_in_cooldown(), tt.scale_out_cooldown()),
        (Some(300), Some(60))
    );
    assert_eq!(
        tt.predefined_metric_specification()
            .unwrap()
            .predefined_metric_type()
            .as_str(),
        "ECSServiceAverageCPUUtilization"
    );

    // and a second deploy has nothing to do: zero mutating calls
    s.clients.log.clear();
    let again = s.deploy(None, &Quiet, opts()).await.expect("redeploy");
    assert!(!again.has_changes(), "{again}");
    assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
}

#[tokio::test]
async fn one_service_changes_alone_and_a_new_image_is_a_new_revision() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let gw_td_1 = service(&s, "gateway")
        .await
        .task_definition()
        .unwrap()
        .to_string();

    // desiredCount of the gateway: one UpdateService, nothing else written
    let s = moto
        .session(config_from("config.test.json", |v| {
            v["ecsTaskStack"]["services"]["kong"]["desiredCount"] = 2.into();
        }))
        .await;
    let p = s.plan().await.unwrap();
    assert_eq!(
        pending(&p.plan),
        vec![(
            "ecs/gateway".to_string(),
            Action::Update,
            vec!["desired_count: 1 -> 2".to_string()]
        )],
        "{}",
        p.plan
    );
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("scale");
    assert_eq!(
        s.clients.log.mutating(),
        vec!["ECS:UpdateService".to_string()]
    );
    assert_eq!(service(&s, "gateway").await.desired_count(), 2);
    assert_eq!(
        service(&s, "gateway").await.task_definition(),
        Some(gw_td_1.as_str())
    );

    // the tenant-manager's cpu: a new task definition revision and the service moved to it, nothing else
    let cfg = config_from("config.test.json", |v| {
        v["ecsTaskStack"]["services"]["kong"]["desiredCount"] = 2.into();
        v["ecsTaskStack"]["services"]["tenantManager"]["cpu"] = 1024.into();
        v["ecsTaskStack"]["services"]["tenantManager"]["memory"] = 2048.into();
    });
    let s = moto.session(cfg).await;
    let tm_before = service(&s, "tenant-manager")
        .await
        .task_definition()
        .unwrap()
        .to_string();
    let p = s.plan().await.unwrap();
    let got = pending(&p.plan);
    assert_eq!(got.len(), 2, "{}", p.plan);
    assert_eq!(got[0].0, "taskdef/tenant-manager");
    assert_eq!(got[0].1, Action::Replace);
    assert_eq!(
        got[0].2,
        vec![
            "cpu: 512 -> 1024".to_string(),
            "memory: 1024 -> 2048".to_string()
        ]
    );
    assert_eq!(
        got[1],
        (
            "ecs/tenant-manager".to_string(),
            Action::Update,
            vec![format!(
                "task_definition: {tm_before} -> (known after apply)"
            )]
        )
    );
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("resize");
    let writes = s.clients.log.mutating();
    assert_eq!(
        writes,
        vec![
            "ECS:RegisterTaskDefinition".to_string(),
            "ECS:DeregisterTaskDefinition".to_string(),
            "ECS:UpdateService".to_string()
        ],
        "a new revision, the old one retired, the service moved: nothing else"
    );
    let tm_after = service(&s, "tenant-manager")
        .await
        .task_definition()
        .unwrap()
        .to_string();
    assert!(
        tm_before.ends_with(":1") && tm_after.ends_with(":2"),
        "{tm_before} {tm_after}"
    );
    let (td, _, _) = task_definition(&s, &tm_after).await;
    assert_eq!((td.cpu(), td.memory()), (Some("1024"), Some("2048")));
    let old = s
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(&tm_before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.task_definition().unwrap().status().map(|s| s.as_str()),
        Some("INACTIVE")
    );
    assert!(!s.plan().await.unwrap().plan.has_changes());

    // a new image under the same tag: new digests, new revisions of every task definition
    let digests = push_images(&s, "latest", 2).await;
    s.clients.log.clear();
    let p = s.plan().await.unwrap();
    let ids: Vec<(String, Action)> = p
        .plan
        .pending()
        .map(|c| (c.id.to_string(), c.action))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("taskdef/gateway".to_string(), Action::Replace),
            ("taskdef/tenant-manager".to_string(), Action::Replace),
            ("taskdef/functions".to_string(), Action::Replace),
            ("ecs/gateway".to_string(), Action::Update),
            ("ecs/tenant-manager".to_string(), Action::Update),
            ("ecs/functions".to_string(), Action::Update),
        ],
        "{}",
        p.plan
    );
    let gw_change = p.plan.get("taskdef/gateway").unwrap();
    assert_eq!(gw_change.fields.len(), 1);
    assert_eq!(gw_change.fields[0].field, "image");
    assert!(gw_change.fields[0]
        .new
        .as_deref()
        .unwrap()
        .ends_with(&digests["gateway"]));
    // the REST Lambda image the tenant-manager hands out moves with it
    let tm_change = p.plan.get("taskdef/tenant-manager").unwrap();
    let fields: Vec<&str> = tm_change.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, vec!["env:SUPACTL_REST_LAMBDA_IMAGE", "image"]);
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("roll out");
    let gw = service(&s, "gateway").await;
    let (td, _, _) = task_definition(&s, gw.task_definition().unwrap()).await;
    assert!(td.container_definitions()[0]
        .image()
        .unwrap()
        .ends_with(&digests["gateway"]));
    assert_eq!(td.revision(), 2);
    assert!(!s.plan().await.unwrap().plan.has_changes());

    // --image-tag picks another pushed tag
    push_images(&s, "v2", 3).await;
    let mut s = moto.session(s.config.clone()).await;
    s.image_tag = "v2".into();
    let p = s.plan().await.unwrap();
    assert_eq!(p.plan.count(Action::Replace), 3, "{}", p.plan);
}

#[tokio::test]
async fn missing_images_and_a_wrong_certificate_stop_the_plan_before_any_write() {
    let moto = Moto::start();
    let s = moto.session_without_images(common::test_config()).await;
    let err = s.plan().await.err().expect("preflight error");
    let Error::Preflight(issues) = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    assert_eq!(issues.len(), 4, "{text}");
    assert!(
        text.contains("ecr:supabase-on-aws-test/gateway: the ECR repository supabase-on-aws-test/gateway does not exist (so it has no image latest)"),
        "{text}"
    );
    assert!(
        text.contains("run `supactl build` and `supactl push --env test`"),
        "{text}"
    );
    assert!(
        text.contains("ecr:supabase-on-aws-test/rest-lambda"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 2);
    assert!(s.clients.log.mutating().is_empty());

    // repositories but no such tag
    push_images(&s, "v1", 1).await;
    let err = s.plan().await.err().expect("preflight error").to_string();
    assert!(
        err.contains(
            "the ECR repository supabase-on-aws-test/tenant-manager has no image tagged latest"
        ),
        "{err}"
    );

    // a certificate that does not exist, and one for another domain
    let mut s = moto.session(common::test_config()).await;
    s.config.compute.certificate_arn =
        format!("arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000");
    let err = s.plan().await.err().expect("no certificate").to_string();
    assert!(
        err.contains("infraStack.certificate.arn: no ACM certificate"),
        "{err}"
    );
    let other = s
        .clients
        .acm
        .request_certificate()
        .domain_name("api.example.org")
        .validation_method("DNS".into())
        .send()
        .await
        .unwrap();
    s.config.compute.certificate_arn = other.certificate_arn().unwrap().to_string();
    s.clients.log.clear();
    let err = s.plan().await.err().expect("wrong certificate").to_string();
    assert!(
        err.contains(&format!(
            "the certificate does not cover *.{BASE_DOMAIN}, api.{BASE_DOMAIN}, admin.{BASE_DOMAIN}"
        )),
        "{err}"
    );
    assert!(s.clients.log.mutating().is_empty());

    // an image pinned by digest in the config needs no lookup
    let pinned = format!("ghcr.io/acme/gateway@sha256:{}", "a".repeat(64));
    let mut s = moto
        .session(config_from("config.test.json", |v| {
            v["infraStack"]["ecr"]["repositories"]["gateway"] = json!({"uri": pinned});
        }))
        .await;
    s.image_tag = "latest".into();
    let p = s.plan().await.expect("plan with a pinned image");
    let td = p
        .desired
        .iter()
        .find(|d| d.id.as_str() == "taskdef/gateway")
        .unwrap();
    assert_eq!(td.props["image"].as_str(), Some(pinned.as_str()));
    assert!(
        p.desired.iter().all(|d| d.id.as_str() != "ecr/gateway"),
        "no repository of our own"
    );
}

#[tokio::test]
async fn outputs_and_status_report_the_deployed_stack() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let o = s.outputs().await.unwrap();
    assert_eq!(o.api_url, format!("https://api.{BASE_DOMAIN}"));
    assert_eq!(
        o.project_url_pattern,
        format!("https://<ref>.{BASE_DOMAIN}")
    );
    assert_eq!(o.admin_url, format!("https://admin.{BASE_DOMAIN}"));
    let public = o.public_load_balancer_dns.clone().unwrap();
    assert!(public.starts_with("supabase-on-aws-test-pub"), "{public}");
    assert_eq!(o.dns_records[0].name, format!("*.{BASE_DOMAIN}"));
    assert_eq!(o.dns_records[0].value.as_deref(), Some(public.as_str()));
    assert_eq!(o.dns_records[1].name, format!("admin.{BASE_DOMAIN}"));
    assert_eq!(o.dns_records[1].value, o.admin_load_balancer_dns);
    assert!(o.platform_db_endpoint.is_some() && o.worker_db_endpoint.is_some());
    assert!(o.redis_endpoint.is_some());
    let keys: Vec<&str> = o.secrets.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "admin-api-key",
            "encryption-key",
            "platform-db-master",
            "redis-auth-token",
            "service-token",
            "worker-db-master"
        ]
    );
    assert!(o
        .rest_lambda_role_arn
        .as_deref()
        .unwrap()
        .ends_with("-rest-lambda"));
    assert_eq!(o.ecr_repositories.len(), 4);
    assert_eq!(
        o.storage_bucket.as_deref(),
        Some("supabase-on-aws-test-storage-us-east-1-123456789012")
    );
    let text = o.to_string();
    assert!(text.contains(&format!("*.{BASE_DOMAIN}")), "{text}");
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["dns_records"][0]["type"], "CNAME");

    // REST functions: ours by prefix (and tags when present), not another stack's
    let role = o.rest_lambda_role_arn.clone().unwrap();
    for (name, stack) in [
        ("rest-abcdefghij", "supabase-on-aws"),
        ("rest-otherstack", "someone-else"),
    ] {
        s.clients
            .lambda
            .create_function()
            .function_name(name)
            .role(&role)
            .package_type(aws_sdk_lambda::types::PackageType::Image)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .image_uri(format!(
                        "{}@sha256:{}",
                        o.ecr_repositories["rest-lambda"],
                        "b".repeat(64)
                    ))
                    .build(),
            )
            .tags("supactl:stack", stack)
            .tags("supactl:env", "test")
            .send()
            .await
            .unwrap();
    }
    let rows = s.status().await.unwrap();
    let gw = rows.iter().find(|r| r.id == "ecs/gateway").unwrap();
    // (moto never refreshes the deployment, so its rollout stays "in_progress")
    assert!(
        gw.detail
            .as_deref()
            .unwrap()
            .starts_with("running 1/1, pending 0"),
        "{gw:?}"
    );
    let fns: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.kind == "lambda-function")
        .map(|r| (r.name.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(fns, vec![("rest-abcdefghij", "Active")]);
    assert!(rows.iter().all(|r| r.action == Action::NoOp));
}

#[tokio::test]
async fn destroy_removes_the_compute_tier() {
    let moto = Moto::start();
    let s = moto.session(scaled_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    s.destroy(None, &Quiet, opts()).await.expect("destroy");
    let c = &s.clients;
    let cl = c
        .ecs
        .describe_clusters()
        .clusters("supabase-on-aws-test")
        .send()
        .await
        .unwrap();
    assert!(cl.clusters().iter().all(|c| c.status() == Some("INACTIVE")));
    for fam in [
        "supabase-on-aws-test-gateway",
        "supabase-on-aws-test-tenant-manager",
    ] {
        let active = c
            .ecs
            .list_task_definitions()
            .family_prefix(fam)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .send()
            .await
            .unwrap();
        assert!(active.task_definition_arns().is_empty(), "{fam}");
    }
    assert!(c
        .elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .is_empty());
    assert!(c
        .elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .is_empty());
    let path = format!("/supactl/supabase-on-aws/test/{REGION}/");
    assert!(c
        .iam
        .list_roles()
        .path_prefix(&path)
        .send()
        .await
        .unwrap()
        .roles()
        .is_empty());
    assert!(c
        .iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix(&path)
        .send()
        .await
        .unwrap()
        .policies()
        .is_empty());
    assert!(c
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .is_empty());
    assert!(c
        .logs
        .describe_log_groups()
        .log_group_name_prefix("/ecs/")
        .send()
        .await
        .unwrap()
        .log_groups()
        .is_empty());
    assert!(c
        .discovery
        .list_namespaces()
        .send()
        .await
        .unwrap()
        .namespaces()
        .is_empty());
    assert!(c
        .discovery
        .list_services()
        .send()
        .await
        .unwrap()
        .services()
        .is_empty());
    let targets = c
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    assert!(targets.scalable_targets().is_empty());
    // nothing of the compute tier is left for the engine to see
    let left = s.destroy_plan().await.unwrap();
    let ids: Vec<&str> = left.observed.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, vec!["cache-subnet-group"]);
}

#[tokio::test]
async fn out_of_band_changes_to_the_compute_tier_are_drift_and_get_repaired() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let c = &s.clients;
    let prefix = "supabase-on-aws-test";
    // someone widens the gateway's role, changes a health check, the log retention and drops the ECR policy
    c.iam
        .put_role_policy()
        .role_name(format!("{prefix}-{REGION}-gateway"))
        .policy_name("invoke-rest")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"], "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let tgs = c
        .elb
        .describe_target_groups()
        .names(format!("{prefix}-gw"))
        .send()
        .await
        .unwrap();
    c.elb
        .modify_target_group()
        .target_group_arn(tgs.target_groups()[0].target_group_arn().unwrap())
        .health_check_path("/")
        .send()
        .await
        .unwrap();
    c.logs
        .put_retention_policy()
        .log_group_name(format!("/ecs/{prefix}"))
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    c.ecr
        .delete_repository_policy()
        .repository_name(format!("{prefix}/rest-lambda"))
        .send()
        .await
        .unwrap();

    let p = s.plan().await.unwrap();
    let changed: Vec<(String, Action, Vec<String>)> = p
        .plan
        .pending()
        .map(|c| {
            (
                c.id.to_string(),
                c.action,
                c.fields.iter().map(|f| f.field.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                "ecr/rest-lambda".into(),
                Action::Update,
                vec!["repository_policy".into()]
            ),
            (
                "logs/ecs".into(),
                Action::Update,
                vec!["retention_days".into()]
            ),
            (
                "iam/role/gateway".into(),
                Action::Update,
                vec!["policy:invoke-rest".into()]
            ),
            (
                "tg/gateway".into(),
                Action::Update,
                vec!["health_check_path".into()]
            ),
        ],
        "{}",
        p.plan
    );
    s.clients.log.clear();
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("repair");
    assert_eq!(
        s.clients.log.mutating(),
        vec![
            "ECR:SetRepositoryPolicy".to_string(),
            "CloudWatch Logs:PutRetentionPolicy".to_string(),
            "IAM:PutRolePolicy".to_string(),
            "Elastic Load Balancing v2:ModifyTargetGroup".to_string(),
        ]
    );
    assert!(!s.plan().await.unwrap().plan.has_changes());
    let gw = role_policy(&s, "gateway", "invoke-rest").await;
    assert_eq!(
        strings(&statements(&gw)[0]["Action"]),
        vec!["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    );
    assert_eq!(
        strings(&statements(&gw)[0]["Resource"]),
        vec![stacks::kinds::lambda::functions_arn(&s.config, REGION)],
        "narrowed again to the stack's functions"
    );
}

#[tokio::test]
async fn rest_in_the_gateway_drops_the_lambda_permissions() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let s = moto
        .session(config_from("config.test.json", |v| {
            v["rest"]["mode"] = "service".into();
        }))
        .await;
    let p = s.plan().await.unwrap();
    let got: Vec<(String, Action)> = p
        .plan
        .pending()
        .map(|c| (c.id.to_string(), c.action))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ecr/rest-lambda".to_string(), Action::Update),
            ("iam/role/gateway".to_string(), Action::Update),
            ("iam/role/tenant-manager".to_string(), Action::Update),
            ("taskdef/gateway".to_string(), Action::Replace),
            ("taskdef/tenant-manager".to_string(), Action::Replace),
            ("ecs/gateway".to_string(), Action::Update),
            ("ecs/tenant-manager".to_string(), Action::Update),
            ("iam/role/rest-lambda".to_string(), Action::Delete),
            (
                "iam/policy/rest-lambda-boundary".to_string(),
                Action::Delete
            ),
            // no functions: no log group and no security group for them (nor rules naming it)
            ("logs/rest".to_string(), Action::Delete),
            (
                "sgr/rest-lambda/egress/3001/tenant-manager".to_string(),
                Action::Delete
            ),
            (
                "sgr/rest-lambda/egress/5432/worker-db".to_string(),
                Action::Delete
            ),
            (
                "sgr/tenant-manager/3001/rest-lambda".to_string(),
                Action::Delete
            ),
            ("sgr/worker-db/5432/rest-lambda".to_string(), Action::Delete),
            ("sg/rest-lambda".to_string(), Action::Delete),
        ],
        "{}",
        p.plan
    );
    let gw_role = p.plan.get("iam/role/gateway").unwrap();
    assert_eq!(gw_role.fields[0].field, "policy:invoke-rest");
    assert_eq!(gw_role.fields[0].new, None, "the invoke policy goes");
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("switch");
    assert!(!s.plan().await.unwrap().plan.has_changes());
    let c = &s.clients;
    let gw = c
        .iam
        .list_role_policies()
        .role_name(format!("supabase-on-aws-test-{REGION}-gateway"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gw.policy_names(),
        ["storage"],
        "only the storage bucket remains"
    );
    let (_, env, _) = task_definition(&s, "supabase-on-aws-test-tenant-manager").await;
    assert_eq!(env["SUPACTL_REST_MODE"], "service");
    assert!(!env.contains_key("SUPACTL_REST_LAMBDA_IMAGE"));
    let tm = role_policy(&s, "tenant-manager", "control-plane").await;
    assert_eq!(
        statements(&tm).len(),
        1,
        "only the project secrets remain: {tm}"
    );
    assert!(c
        .ecr
        .get_repository_policy()
        .repository_name("supabase-on-aws-test/rest-lambda")
        .send()
        .await
        .is_err());
}
