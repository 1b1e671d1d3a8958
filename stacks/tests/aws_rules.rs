//! What real AWS does that the emulator does not do by itself, reproduced against moto_server: Aurora's own
//! minor upgrades, a major upgrade's parameter group swap, instances made public by hand, the S3 gateway
//! endpoint, a fresh account's service-linked roles, the images' architecture and the REST image's region.

mod common;

use common::{config_from, opts, pending, test_config, Moto, ACCOUNT};
use stacks::plan::Action;
use stacks::Quiet;

const PLATFORM: &str = "supabase-on-aws-test-platform";
const WORKER: &str = "supabase-on-aws-test-worker";

async fn engine_version(s: &stacks::Session, cluster: &str) -> String {
    s.clients
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .unwrap()
        .db_clusters()[0]
        .engine_version()
        .unwrap()
        .to_string()
}

async fn private_route_tables(s: &stacks::Session) -> Vec<String> {
    let mut ids: Vec<String> = s
        .clients
        .ec2
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:supactl:stack")
                .values("supabase-on-aws")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .route_tables()
        .iter()
        .filter(|rt| {
            rt.tags().iter().any(|t| {
                t.key() == Some("supactl:id") && t.value().unwrap().starts_with("rt/private/")
            })
        })
        .map(|rt| rt.route_table_id().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn s3_endpoints(s: &stacks::Session) -> Vec<aws_sdk_ec2::types::VpcEndpoint> {
    s.clients
        .ec2
        .describe_vpc_endpoints()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:supactl:id")
                .values("vpce/s3")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc_endpoints()
        .iter()
        .filter(|e| e.state().map(|s| s.as_str().to_ascii_lowercase()) != Some("deleted".into()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_deployed_stack_matches_what_aws_needs_and_repairs_what_it_changes_by_itself() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let c = &s.clients;

    // a fresh account gets the service-linked roles the first writes act through
    let roles = c
        .iam
        .list_roles()
        .path_prefix("/aws-service-role/")
        .send()
        .await
        .unwrap();
    let mut paths: Vec<&str> = roles.roles().iter().map(|r| r.path()).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/aws-service-role/ecs.amazonaws.com/",
            "/aws-service-role/ecs.application-autoscaling.amazonaws.com/",
            "/aws-service-role/elasticache.amazonaws.com/",
            "/aws-service-role/rds.amazonaws.com/",
        ]
    );

    // instances are private, explicitly
    let instances = c.rds.describe_db_instances().send().await.unwrap();
    assert!(!instances.db_instances().is_empty());
    assert!(instances
        .db_instances()
        .iter()
        .all(|i| i.publicly_accessible() == Some(false)));

    // the images are x86_64: the task definitions say so, and the tenant-manager tells Lambda the same
    for family in ["gateway", "tenant-manager"] {
        let td = c
            .ecs
            .describe_task_definition()
            .task_definition(format!("supabase-on-aws-test-{family}"))
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        let rp = td.runtime_platform().expect("runtimePlatform");
        assert_eq!(rp.cpu_architecture().map(|a| a.as_str()), Some("X86_64"));
        assert_eq!(
            rp.operating_system_family().map(|f| f.as_str()),
            Some("LINUX")
        );
        let env = td.container_definitions()[0].environment();
        let arch = env
            .iter()
            .find(|kv| kv.name() == Some("SUPACTL_REST_LAMBDA_ARCHITECTURE"))
            .and_then(|kv| kv.value());
        match family {
            "tenant-manager" => assert_eq!(arch, Some("x86_64")),
            _ => assert_eq!(arch, None),
        }
    }

    // the S3 gateway endpoint is on every private route table
    let eps = s3_endpoints(&s).await;
    assert_eq!(eps.len(), 1, "{eps:?}");
    assert_eq!(eps[0].service_name(), Some("com.amazonaws.us-east-1.s3"));
    assert_eq!(
        eps[0].vpc_endpoint_type().map(|t| t.as_str()),
        Some("Gateway")
    );
    let mut attached: Vec<String> = eps[0].route_table_ids().to_vec();
    attached.sort();
    let private = private_route_tables(&s).await;
    assert_eq!(private.len(), 2);
    assert_eq!(attached, private);
    let endpoint = eps[0].vpc_endpoint_id().unwrap().to_string();

    // Aurora upgrades a minor version by itself; someone makes an instance public and detaches the endpoint
    c.rds
        .modify_db_cluster()
        .db_cluster_identifier(PLATFORM)
        .engine_version("16.8")
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    c.rds
        .modify_db_instance()
        .db_instance_identifier(format!("{PLATFORM}-writer"))
        .publicly_accessible(true)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    c.ec2
        .modify_vpc_endpoint()
        .vpc_endpoint_id(&endpoint)
        .remove_route_table_ids(&private[1])
        .send()
        .await
        .unwrap();

    let p = s.plan().await.unwrap();
    let changes = pending(&p.plan);
    assert_eq!(
        changes
            .iter()
            .map(|(id, a, _)| (id.as_str(), *a))
            .collect::<Vec<_>>(),
        vec![
            ("vpce/s3", Action::Update),
            ("db/platform/writer", Action::Update),
        ],
        "a newer minor is no change; the public instance and the endpoint are drift:\n{}",
        p.plan
    );
    assert_eq!(
        changes[1].2,
        vec!["publicly_accessible: true -> false".to_string()]
    );
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("repair");
    assert!(!s.plan().await.unwrap().plan.has_changes());
    assert_eq!(
        engine_version(&s, PLATFORM).await,
        "16.8",
        "never downgraded"
    );
    let mut attached: Vec<String> = s3_endpoints(&s).await[0].route_table_ids().to_vec();
    attached.sort();
    assert_eq!(attached, private);
    let writer = c
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("{PLATFORM}-writer"))
        .send()
        .await
        .unwrap();
    assert_eq!(writer.db_instances()[0].publicly_accessible(), Some(false));

    // a configured minor above the live one is an upgrade
    let cfg = config_from("config.test.json", |v| {
        v["rds"]["engineVersion"] = "16.9".into();
    });
    let s2 = moto.session(cfg).await;
    let p = s2.plan().await.unwrap();
    assert_eq!(
        pending(&p.plan),
        vec![(
            "db/platform".to_string(),
            Action::Update,
            vec!["engine_version: 16.8 -> 16.9".to_string()]
        )],
        "{}",
        p.plan
    );

    // destroy removes the endpoint with the rest of the network
    s.destroy(None, &Quiet, opts()).await.expect("destroy");
    assert!(s3_endpoints(&s).await.is_empty());
}

#[tokio::test]
async fn a_major_upgrade_creates_the_new_parameter_group_first_and_deletes_the_old_one_last() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let group = |fam: &str| format!("{WORKER}-params-aurora-postgresql{fam}");
    let cluster_group = |s: &stacks::Session| {
        let c = s.clients.clone();
        async move {
            c.rds
                .describe_db_clusters()
                .db_cluster_identifier(WORKER)
                .send()
                .await
                .unwrap()
                .db_clusters()[0]
                .db_cluster_parameter_group()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(cluster_group(&s).await, group("16"));

    let cfg = config_from("config.test.json", |v| {
        v["workerRds"]["engineVersion"] = "17.4".into();
    });
    let s17 = moto.session(cfg).await;
    let p = s17.plan().await.unwrap();
    let changes = pending(&p.plan);
    let order: Vec<(&str, Action)> = changes.iter().map(|(id, a, _)| (id.as_str(), *a)).collect();
    assert_eq!(
        order,
        vec![
            ("db-params/worker/aurora-postgresql17", Action::Create),
            ("db/worker", Action::Update),
            ("db-params/worker/aurora-postgresql16", Action::Delete),
        ],
        "{}",
        p.plan
    );
    let mut fields = changes[1].2.clone();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "engine_version: 16.6 -> 17.4".to_string(),
            format!("parameter_group: {} -> (known after apply)", group("16")),
        ]
    );

    s17.clients.log.clear();
    s17.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("upgrade");
    // the cluster switches groups in the call that upgrades it; the old group goes only after
    let calls: Vec<String> = s17
        .clients
        .log
        .mutating()
        .into_iter()
        .filter(|c| c.starts_with("RDS:") || c.starts_with("rds:"))
        .collect();
    let at = |op: &str| {
        calls
            .iter()
            .position(|c| c.ends_with(op))
            .unwrap_or_else(|| panic!("no {op} in {calls:?}"))
    };
    assert!(
        at(":CreateDBClusterParameterGroup") < at(":ModifyDBCluster"),
        "{calls:?}"
    );
    assert!(
        at(":ModifyDBCluster") < at(":DeleteDBClusterParameterGroup"),
        "{calls:?}"
    );
    assert_eq!(cluster_group(&s17).await, group("17"));
    assert_eq!(engine_version(&s17, WORKER).await, "17.4");
    let left: Vec<String> = s17
        .clients
        .rds
        .describe_db_cluster_parameter_groups()
        .send()
        .await
        .unwrap()
        .db_cluster_parameter_groups()
        .iter()
        .filter_map(|g| g.db_cluster_parameter_group_name())
        .filter(|n| n.starts_with(WORKER))
        .map(str::to_string)
        .collect();
    assert_eq!(left, vec![group("17")]);
    assert!(!s17.plan().await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn a_rest_image_outside_the_stack_regions_ecr_is_refused_before_any_write() {
    let moto = Moto::start();
    for (uri, what) in [
        (
            format!(
                "{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/rest@sha256:{}",
                "ab".repeat(32)
            ),
            "an ECR repository of eu-west-1",
        ),
        (
            "ghcr.io/acme/rest-lambda@sha256:0000".to_string(),
            "not an ECR repository",
        ),
    ] {
        let cfg = config_from("config.test.json", |v| {
            v["infraStack"]["ecr"]["repositories"]["rest-lambda"]["uri"] = uri.clone().into();
        });
        let s = moto.session_without_images(cfg).await;
        let e = s.plan().await.err().expect("refused");
        let text = e.to_string();
        assert!(
            text.contains("infraStack.ecr.repositories.rest-lambda.uri")
                && text.contains(what)
                && text.contains("only from Amazon ECR in the function's region (us-east-1)")
                && text.contains("push the image to ECR in us-east-1"),
            "{text}"
        );
        assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
    }
}
