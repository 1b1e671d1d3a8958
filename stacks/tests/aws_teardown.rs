//! Where the emulator accepts what AWS would not, against moto_server: destroy with the tenant-manager's REST
//! functions present (their VPC network interfaces keep the network busy on AWS), a redeploy after a
//! production destroy (the secrets wait out a recovery window under their names), and two stacks of one
//! account and region side by side (the shipped test and production configs).

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_lambda::types::{
    FunctionCode, FunctionUrlAuthType, LogFormat, LoggingConfig, PackageType, VpcConfig,
};
use common::{config_from, opts, Moto, REGION};
use stacks::apply::Progress;
use stacks::model::Kind;
use stacks::plan::{Action, Change};
use stacks::{Error, Quiet, Session};

/// The tenant-manager's settings as its task definition hands them over (`SUPACTL_REST_LAMBDA_*`).
async fn tenant_manager_env(s: &Session) -> BTreeMap<String, String> {
    let family = format!("{}-tenant-manager", s.config.prefix());
    let r = s
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(family)
        .send()
        .await
        .unwrap();
    r.task_definition().unwrap().container_definitions()[0]
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap().to_string(),
                kv.value().unwrap().to_string(),
            )
        })
        .collect()
}

/// Creates a project's REST function as the tenant-manager does (`rest_lambda.rs`): named with the stack's
/// prefix, in the private subnets with the REST security group, logging to the stack's group, tagged with
/// `SUPACTL_REST_LAMBDA_TAGS`, behind an `AWS_IAM` Function URL.
async fn create_rest_function(
    s: &Session,
    env: &BTreeMap<String, String>,
    project_ref: &str,
) -> String {
    let name = format!("{}{project_ref}", env["SUPACTL_REST_LAMBDA_NAME_PREFIX"]);
    let mut req = s
        .clients
        .lambda
        .create_function()
        .function_name(&name)
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(&env["SUPACTL_REST_LAMBDA_IMAGE"])
                .build(),
        )
        .role(&env["SUPACTL_REST_LAMBDA_ROLE_ARN"])
        .vpc_config(
            VpcConfig::builder()
                .set_subnet_ids(Some(
                    env["SUPACTL_REST_LAMBDA_SUBNETS"]
                        .split(',')
                        .map(String::from)
                        .collect(),
                ))
                .security_group_ids(&env["SUPACTL_REST_LAMBDA_SECURITY_GROUPS"])
                .build(),
        )
        .logging_config(
            LoggingConfig::builder()
                .log_format(LogFormat::Text)
                .log_group(&env["SUPACTL_REST_LAMBDA_LOG_GROUP"])
                .build(),
        )
        .tags("supactl:project", project_ref)
        .tags("supactl:component", "rest");
    for pair in env["SUPACTL_REST_LAMBDA_TAGS"].split(',') {
        let (k, v) = pair.split_once('=').unwrap();
        req = req.tags(k, v);
    }
    req.send().await.unwrap();
    s.clients
        .lambda
        .create_function_url_config()
        .function_name(&name)
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .unwrap();
    name
}

async fn function_names(s: &Session) -> Vec<String> {
    let mut out: Vec<String> = s
        .clients
        .lambda
        .list_functions()
        .send()
        .await
        .unwrap()
        .functions()
        .iter()
        .map(|f| f.function_name().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Records the order of the changes and the progress notes.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn start(&self, c: &Change) {
        self.started.lock().unwrap().push(c.id.to_string());
    }
    fn finish(&self, _: &Change, _: Result<&str, &Error>) {}
}

#[tokio::test]
async fn destroy_with_rest_functions_present_deletes_them_first_and_leaves_nothing() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let env = tenant_manager_env(&s).await;
    let one = create_rest_function(&s, &env, "abcdefghijklmnopqrst").await;
    let two = create_rest_function(&s, &env, "a-forty-character-project-ref-0123456789").await;
    assert!(two.len() <= 64, "{two}");
    // another stack's function in the region, and one without any tags: not ours
    let role = env["SUPACTL_REST_LAMBDA_ROLE_ARN"].clone();
    for (name, tags) in [
        ("rest-0000000f-other", Some("someone-else")),
        ("untagged-function", None),
    ] {
        let mut req = s
            .clients
            .lambda
            .create_function()
            .function_name(name)
            .package_type(PackageType::Image)
            .code(
                FunctionCode::builder()
                    .image_uri(&env["SUPACTL_REST_LAMBDA_IMAGE"])
                    .build(),
            )
            .role(&role);
        if let Some(stack) = tags {
            req = req.tags("supactl:stack", stack).tags("supactl:env", "test");
        }
        req.send().await.unwrap();
    }
    // an interface Lambda has detached but not yet deleted, in a private subnet with the REST group
    let subnet = env["SUPACTL_REST_LAMBDA_SUBNETS"]
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let eni = s
        .clients
        .ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .groups(&env["SUPACTL_REST_LAMBDA_SECURITY_GROUPS"])
        .description(format!("AWS Lambda VPC ENI-{one}"))
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();

    // status reads ownership with ListTags: ours only
    let rows = s.status().await.unwrap();
    let mut fns: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "lambda-function")
        .map(|r| r.name.as_str())
        .collect();
    fns.sort();
    let mut ours = vec![one.as_str(), two.as_str()];
    ours.sort();
    assert_eq!(fns, ours);

    // the destroy plan: the functions after the ECS services, the wait for Lambda's interfaces before the
    // security groups and subnets
    let p = s.destroy_plan().await.unwrap();
    let pos = |id: &str| {
        p.plan
            .changes
            .iter()
            .position(|c| c.id.as_str() == id && c.action == Action::Delete)
            .unwrap_or_else(|| panic!("{id} not deleted in\n{}", p.plan))
    };
    let f1 = pos(&format!("function/{one}"));
    assert!(pos("ecs/tenant-manager") < f1, "{}", p.plan);
    assert!(f1 < pos("lambda/network-interfaces"));
    assert!(pos("lambda/network-interfaces") < pos("sg/rest-lambda"));
    assert!(pos("lambda/network-interfaces") < pos("subnet/private/0"));
    assert_eq!(
        p.plan.get(&format!("function/{two}")).unwrap().kind,
        Kind::LambdaFunction
    );

    let rec = Recorder::default();
    s.destroy(Some(&p.plan), &rec, opts())
        .await
        .expect("destroy");
    assert!(rec
        .started
        .lock()
        .unwrap()
        .contains(&format!("function/{one}")));

    // ours are gone with their URLs; the others are left alone
    assert_eq!(
        function_names(&s).await,
        vec!["rest-0000000f-other", "untagged-function"]
    );
    let url = s
        .clients
        .lambda
        .get_function_url_config()
        .function_name(&one)
        .send()
        .await;
    assert!(url.is_err(), "the URL went with the function");
    // the detached interface was deleted, and the network with it
    let left = s
        .clients
        .ec2
        .describe_network_interfaces()
        .network_interface_ids(&eni)
        .send()
        .await;
    assert!(
        left.map(|r| r.network_interfaces().is_empty())
            .unwrap_or(true),
        "{eni} is left"
    );
    // the REST log group (with retention) went too
    let groups = s
        .clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/")
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty(), "{:?}", groups.log_groups());
    // nothing the engine sees is left but what moto cannot delete
    let left = s.destroy_plan().await.unwrap();
    let ids: Vec<&str> = left.observed.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, vec!["cache-subnet-group"]);
}

/// The test config as a production environment (recovery window on secret deletes), without deletion
/// protection so that the destroy needs no `--force`.
fn production_like() -> stacks::Config {
    config_from("config.test.json", |v| {
        v["project"]["environment"] = "production".into();
        v["rds"]["deletionProtection"] = false.into();
        v["workerRds"]["deletionProtection"] = false.into();
    })
}

async fn values(s: &Session) -> Vec<String> {
    let mut out = Vec::new();
    for spec in stacks::kinds::secrets::SECRETS {
        let v = s
            .clients
            .secrets
            .get_secret_value()
            .secret_id(stacks::kinds::secrets::secret_name(&s.config, spec.key))
            .send()
            .await
            .unwrap();
        out.push(v.secret_string().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn a_deploy_after_a_production_destroy_restores_the_secrets() {
    let moto = Moto::start();
    let s = moto.session_without_images(production_like()).await;
    assert!(s.config.production);
    let secrets = [Kind::Secret];
    let p = s.plan_kinds(&secrets).await.unwrap();
    assert_eq!(p.plan.count(Action::Create), 4);
    s.apply(&p, &Quiet, opts()).await.unwrap();
    let before = values(&s).await;

    // destroy's delete of the secrets: a 7-day recovery window in production
    let p = s.plan_kinds(&secrets).await.unwrap();
    let plan = stacks::plan::diff(&s.config.name, "production", REGION, &[], &p.observed);
    assert_eq!(plan.count(Action::Delete), 4);
    let gone = stacks::ops::Planned {
        plan,
        desired: Vec::new(),
        observed: p.observed,
    };
    s.apply(&gone, &Quiet, opts()).await.unwrap();
    // what made a redeploy fail: ListSecrets hides them and the names stay taken
    let name = stacks::kinds::secrets::secret_name(&s.config, "encryption-key");
    let listed = s.clients.secrets.list_secrets().send().await.unwrap();
    assert!(listed.secret_list().iter().all(|x| x.name() != Some(&name)));
    let again = s
        .clients
        .secrets
        .create_secret()
        .name(&name)
        .secret_string("x")
        .send()
        .await;
    assert!(again.is_err(), "the name is taken during the window");
    // destroy sees nothing more to delete
    let d = s.destroy_plan().await.unwrap();
    assert!(d.observed.iter().all(|o| o.kind != Kind::Secret));

    // the deploy restores ours, shown in the plan, with their values
    let p = s.plan_kinds(&secrets).await.unwrap();
    let changes: Vec<(&str, Action)> = p
        .plan
        .pending()
        .map(|c| (c.id.as_str(), c.action))
        .collect();
    assert_eq!(changes.len(), 4, "{}", p.plan);
    assert!(changes.iter().all(|(_, a)| *a == Action::Update));
    let c = p.plan.get("secret/encryption-key").unwrap();
    assert_eq!(c.fields[0].field, "scheduled_deletion");
    assert_eq!(
        (c.fields[0].old.as_deref(), c.fields[0].new.as_deref()),
        (Some("true"), Some("false"))
    );
    s.apply(&p, &Quiet, opts()).await.unwrap();
    assert_eq!(values(&s).await, before, "the same values, not new ones");
    s.clients.log.clear();
    let p = s.plan_kinds(&secrets).await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    let writes = s.clients.log.mutating();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn the_test_and_production_configs_deploy_side_by_side_in_one_account() {
    let moto = Moto::start();
    let test = moto.session(common::test_config()).await;
    let prod = moto
        .session(config_from("config.production.json", |_| {}))
        .await;
    test.deploy(None, &Quiet, opts())
        .await
        .expect("deploy test");
    prod.deploy(None, &Quiet, opts())
        .await
        .expect("deploy production beside test");
    // each sees only its own: nothing of the other's to delete or replace, nothing of its own missing
    let p = test.plan().await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    let p = prod.plan().await.unwrap();
    for a in [Action::Create, Action::Delete, Action::Replace] {
        assert_eq!(p.plan.count(a), 0, "{}", p.plan);
    }
    // (moto reports a 2-node replication group's num_cache_clusters as 1: that update is the emulator's)
    let updated: Vec<&str> = p.plan.pending().map(|c| c.id.as_str()).collect();
    assert!(updated.iter().all(|id| *id == "redis"), "{}", p.plan);
    let (t, p) = (&test.config, &prod.config);
    assert_ne!(t.compute.cluster_name, p.compute.cluster_name);
    assert_ne!(t.compute.public_alb_name, p.compute.public_alb_name);
    assert_ne!(
        t.worker_db.cluster_identifier,
        p.worker_db.cluster_identifier
    );
    assert_ne!(
        stacks::kinds::lambda::function_prefix(t),
        stacks::kinds::lambda::function_prefix(p)
    );
    let lbs = test
        .clients
        .elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap();
    assert_eq!(lbs.load_balancers().len(), 4);
    // the production gateway may not invoke the test stack's functions
    let fns = |s: &Session| stacks::kinds::lambda::functions_arn(&s.config, REGION);
    assert!(!fns(&test).starts_with(fns(&prod).trim_end_matches('*')));
    assert!(!fns(&prod).starts_with(fns(&test).trim_end_matches('*')));
}
