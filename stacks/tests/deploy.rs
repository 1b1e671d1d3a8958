//! Deploy, no-op redeploy, config changes, drift, interruption and destroy against moto_server.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use common::{config_from, opts, pending, test_config, Moto};
use stacks::plan::Action;
use stacks::Quiet;

fn owner() -> Vec<Filter> {
    vec![Filter::builder()
        .name("tag:supactl:stack")
        .values("supabase-on-aws")
        .build()]
}

fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn deploy_from_empty_creates_every_resource_with_its_settings() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    let plan = s.deploy(None, &Quiet, opts()).await.expect("deploy");
    assert!(plan.count(Action::Create) > 40, "{plan}");
    let c = &s.clients;

    // VPC with DNS support and hostnames, tagged
    let vpcs = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    let t = tags_of(vpc.tags());
    assert_eq!(t["supactl:env"], "test");
    assert_eq!(t["supactl:id"], "vpc");
    assert_eq!(t["Project"], "Supabase-Platform");
    let vpc_id = vpc.vpc_id().unwrap();
    let host = c
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(host.enable_dns_hostnames().unwrap().value(), Some(true));

    // 2 AZs × (public, private), computed CIDRs
    let subnets = c
        .ec2
        .describe_subnets()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<(String, bool)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.cidr_block().unwrap().to_string(),
                s.map_public_ip_on_launch().unwrap(),
            )
        })
        .collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        vec![
            ("10.0.0.0/18".into(), true),
            ("10.0.128.0/18".into(), false),
            ("10.0.192.0/18".into(), false),
            ("10.0.64.0/18".into(), true),
        ]
    );

    // one NAT gateway with an EIP, IGW attached
    let nats = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
    let nat_id = nats.nat_gateways()[0].nat_gateway_id().unwrap().to_string();
    let igws = c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        igws.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(vpc_id)
    );
    let igw_id = igws.internet_gateways()[0]
        .internet_gateway_id()
        .unwrap()
        .to_string();

    // routes: public → IGW, both private tables → the one NAT
    let rts = c
        .ec2
        .describe_route_tables()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(rts.route_tables().len(), 3);
    for rt in rts.route_tables() {
        let id = tags_of(rt.tags())["supactl:id"].clone();
        let default = rt
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .expect("default route");
        if id == "rt/public" {
            assert_eq!(default.gateway_id(), Some(igw_id.as_str()));
            assert_eq!(
                rt.associations()
                    .iter()
                    .filter(|a| a.subnet_id().is_some())
                    .count(),
                2
            );
        } else {
            assert_eq!(default.nat_gateway_id(), Some(nat_id.as_str()));
            assert_eq!(
                rt.associations()
                    .iter()
                    .filter(|a| a.subnet_id().is_some())
                    .count(),
                1
            );
        }
    }

    // security groups and the rule matrix
    let sgs = c
        .ec2
        .describe_security_groups()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap();
    // one per part the stack runs: 2 load balancers, 3 services, the REST functions, 2 clusters, Redis
    assert_eq!(sgs.security_groups().len(), 9);
    let sg = |key: &str| {
        sgs.security_groups()
            .iter()
            .find(|g| tags_of(g.tags())["supactl:id"] == format!("sg/{key}"))
            .unwrap()
            .clone()
    };
    let worker_db = sg("worker-db");
    assert!(
        worker_db.ip_permissions_egress().is_empty(),
        "databases have no egress"
    );
    let sources: Vec<String> = worker_db
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            assert_eq!(p.from_port(), Some(5432));
            p.user_id_group_pairs()
                .iter()
                .map(|g| g.group_id().unwrap().to_string())
        })
        .collect();
    let mut want: Vec<String> = ["gateway", "tenant-manager", "rest-lambda"]
        .iter()
        .map(|k| sg(k).group_id().unwrap().to_string())
        .collect();
    let mut got = sources.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let alb = sg("alb");
    let mut alb_ports: Vec<i32> = alb
        .ip_permissions()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    alb_ports.sort();
    assert_eq!(alb_ports, vec![80, 443]);

    // Aurora clusters: ACU, encryption, managed password, backups, parameter group on the worker
    for (ident, db) in [
        ("supabase-on-aws-test-platform", "supabase"),
        ("supabase-on-aws-test-worker", "postgres"),
    ] {
        let cl = c
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(ident)
            .send()
            .await
            .unwrap();
        let cl = &cl.db_clusters()[0];
        let sc = cl.serverless_v2_scaling_configuration().unwrap();
        assert_eq!(
            (sc.min_capacity(), sc.max_capacity()),
            (Some(0.5), Some(4.0))
        );
        assert_eq!(cl.engine_version(), Some("16.6"));
        assert_eq!(cl.database_name(), Some(db));
        assert_eq!(cl.storage_encrypted(), Some(true));
        assert_eq!(cl.deletion_protection(), Some(false));
        assert_eq!(cl.backup_retention_period(), Some(7));
        assert!(cl
            .master_user_secret()
            .and_then(|m| m.secret_arn())
            .is_some());
        assert_eq!(cl.db_cluster_members().len(), 1, "writer only (readers: 0)");
        assert_eq!(cl.db_subnet_group(), Some("supabase-on-aws-test-db"));
        if ident == "supabase-on-aws-test-worker" {
            assert_eq!(
                cl.db_cluster_parameter_group(),
                Some("supabase-on-aws-test-worker-params-aurora-postgresql16")
            );
        }
    }
    let params = c
        .rds
        .describe_db_cluster_parameters()
        .db_cluster_parameter_group_name("supabase-on-aws-test-worker-params-aurora-postgresql16")
        .source("user")
        .send()
        .await
        .unwrap();
    assert!(params
        .parameters()
        .iter()
        .any(|p| p.parameter_name() == Some("rds.logical_replication")
            && p.parameter_value() == Some("1")));
    let inst = c
        .rds
        .describe_db_instances()
        .db_instance_identifier("supabase-on-aws-test-worker-writer")
        .send()
        .await
        .unwrap();
    assert_eq!(
        inst.db_instances()[0].db_instance_class(),
        Some("db.serverless")
    );

    // Redis: node type/count from config, encryption, AUTH, no failover with 1 node
    let rg = c
        .elasticache
        .describe_replication_groups()
        .replication_group_id("supabase-on-aws-test-redis")
        .send()
        .await
        .unwrap();
    let rg = &rg.replication_groups()[0];
    assert_eq!(rg.cache_node_type(), Some("cache.t3.micro"));
    assert_eq!(rg.member_clusters().len(), 1);
    assert_eq!(rg.transit_encryption_enabled(), Some(true));
    assert_eq!(rg.at_rest_encryption_enabled(), Some(true));
    assert_eq!(rg.auth_token_enabled(), Some(true));
    assert_eq!(
        rg.automatic_failover(),
        Some(&aws_sdk_elasticache::types::AutomaticFailoverStatus::Disabled)
    );

    // platform secrets exist with generated values
    for key in [
        "admin-api-key",
        "encryption-key",
        "service-token",
        "redis-auth-token",
    ] {
        let v = c
            .secrets
            .get_secret_value()
            .secret_id(format!("supabase-on-aws/test/{key}"))
            .send()
            .await
            .unwrap();
        assert!(v.secret_string().unwrap().len() >= 32, "{key}");
    }
}

async fn secret_values(s: &stacks::Session) -> Vec<String> {
    let mut out = Vec::new();
    for key in [
        "admin-api-key",
        "encryption-key",
        "service-token",
        "redis-auth-token",
    ] {
        let v = s
            .clients
            .secrets
            .get_secret_value()
            .secret_id(format!("supabase-on-aws/test/{key}"))
            .send()
            .await
            .unwrap();
        out.push(v.secret_string().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn second_deploy_makes_zero_mutating_calls_and_keeps_secrets() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("first deploy");
    assert!(
        !s.clients.log.mutating().is_empty(),
        "the first deploy must have written"
    );
    let before = secret_values(&s).await;

    s.clients.log.clear();
    let p = s.plan().await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    let plan = s.deploy(None, &Quiet, opts()).await.expect("second deploy");
    assert!(!plan.has_changes(), "{plan}");
    assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
    assert!(!s.clients.log.calls().is_empty(), "the deploy did observe");
    assert_eq!(
        secret_values(&s).await,
        before,
        "secrets are generated once"
    );
}

#[tokio::test]
async fn config_change_plans_exactly_that_change_and_deploy_applies_it() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let nat_a = s
        .plan()
        .await
        .unwrap()
        .observed
        .iter()
        .find(|o| o.id.as_str() == "nat/0")
        .unwrap()
        .physical
        .clone();

    let changed = config_from("config.test.json", |v| {
        v["rds"]["serverlessV2MaxCapacity"] = 8.into();
        v["workerRds"]["readers"] = 1.into();
        v["infraStack"]["vpc"]["natGateways"] = 2.into();
    });
    let s = moto.session(changed).await;
    let p = s.plan().await.unwrap();
    let got = pending(&p.plan);
    let want = vec![
        ("eip/nat/1".to_string(), Action::Create, vec![]),
        ("nat/1".to_string(), Action::Create, vec![]),
        (
            "rt/private/1".to_string(),
            Action::Update,
            vec![format!("route:0.0.0.0/0: {nat_a} -> (known after apply)")],
        ),
        (
            "db/platform".to_string(),
            Action::Update,
            vec!["max_capacity: 4 -> 8".to_string()],
        ),
        ("db/worker/reader/1".to_string(), Action::Create, vec![]),
    ];
    assert_eq!(got, want, "{}", p.plan);

    s.clients.log.clear();
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("deploy change");
    let writes = s.clients.log.mutating();
    // only the changed fields are sent: one ModifyDBCluster, no other cluster or network rewrite
    assert_eq!(
        writes
            .iter()
            .filter(|c| c.ends_with(":ModifyDBCluster"))
            .count(),
        1,
        "{writes:?}"
    );
    assert!(
        !writes
            .iter()
            .any(|c| c.contains("CreateVpc") || c.contains("CreateSecurityGroup")),
        "{writes:?}"
    );

    let c = &s.clients;
    let cl = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier("supabase-on-aws-test-platform")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cl.db_clusters()[0]
            .serverless_v2_scaling_configuration()
            .unwrap()
            .max_capacity(),
        Some(8.0)
    );
    let worker = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier("supabase-on-aws-test-worker")
        .send()
        .await
        .unwrap();
    assert_eq!(
        worker.db_clusters()[0].db_cluster_members().len(),
        2,
        "writer + 1 reader"
    );
    let nats = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(owner()))
        .send()
        .await
        .unwrap();
    let live: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
        .collect();
    assert_eq!(live.len(), 2);
    let after = s.plan().await.unwrap();
    assert!(!after.plan.has_changes(), "{}", after.plan);

    // and back: the reader, the NAT gateway and its EIP are deleted, the route moves back
    let s = moto.session(test_config()).await;
    let p = s.plan().await.unwrap();
    let actions: Vec<(String, Action)> = p
        .plan
        .pending()
        .map(|c| (c.id.to_string(), c.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rt/private/1".to_string(), Action::Update),
            ("db/platform".to_string(), Action::Update),
            ("db/worker/reader/1".to_string(), Action::Delete),
            ("nat/1".to_string(), Action::Delete),
            ("eip/nat/1".to_string(), Action::Delete),
        ],
        "{}",
        p.plan
    );
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("deploy back");
    assert!(!s.plan().await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn out_of_band_change_is_reported_as_drift_and_repaired() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    let c = &s.clients;
    // someone edits the cluster and the VPC by hand
    c.rds
        .modify_db_cluster()
        .db_cluster_identifier("supabase-on-aws-test-worker")
        .serverless_v2_scaling_configuration(
            aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                .min_capacity(0.5)
                .max_capacity(6.0)
                .build(),
        )
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let vpc = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    c.ec2
        .modify_vpc_attribute()
        .vpc_id(&vpc)
        .enable_dns_hostnames(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let p = s.plan().await.unwrap();
    assert_eq!(
        pending(&p.plan),
        vec![
            (
                "vpc".to_string(),
                Action::Update,
                vec!["enable_dns_hostnames: false -> true".to_string()]
            ),
            (
                "db/worker".to_string(),
                Action::Update,
                vec!["max_capacity: 6 -> 4".to_string()]
            ),
        ],
        "{}",
        p.plan
    );
    s.deploy(Some(&p.plan), &Quiet, opts())
        .await
        .expect("repair");
    assert!(!s.plan().await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn deploy_refuses_when_the_plan_changed_after_it_was_shown() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    let shown = s.plan().await.unwrap().plan;
    // meanwhile someone deploys
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    s.clients.log.clear();
    let err = s.deploy(Some(&shown), &Quiet, opts()).await.unwrap_err();
    assert!(matches!(err, stacks::Error::PlanChanged), "{err}");
    assert!(s.clients.log.mutating().is_empty());
}

#[tokio::test]
async fn destroy_leaves_nothing_tagged_and_tolerates_gone_resources() {
    let moto = Moto::start();
    let s = moto.session(test_config()).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    s.destroy(None, &Quiet, opts()).await.expect("destroy");
    let c = &s.clients;

    assert!(c
        .ec2
        .describe_vpcs()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .vpcs()
        .is_empty());
    assert!(c
        .ec2
        .describe_subnets()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .subnets()
        .is_empty());
    assert!(c
        .ec2
        .describe_security_groups()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .security_groups()
        .is_empty());
    assert!(c
        .ec2
        .describe_route_tables()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .route_tables()
        .is_empty());
    assert!(c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .internet_gateways()
        .is_empty());
    assert!(c
        .ec2
        .describe_addresses()
        .set_filters(Some(owner()))
        .send()
        .await
        .unwrap()
        .addresses()
        .is_empty());
    let nats = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(owner()))
        .send()
        .await
        .unwrap();
    assert!(nats
        .nat_gateways()
        .iter()
        .all(|n| n.state().map(|s| s.as_str()) == Some("deleted")));
    assert!(c
        .rds
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .is_empty());
    assert!(c
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .is_empty());
    assert!(c
        .rds
        .describe_db_subnet_groups()
        .send()
        .await
        .unwrap()
        .db_subnet_groups()
        .iter()
        .all(|g| g.db_subnet_group_name() != Some("supabase-on-aws-test-db")));
    let secrets = c.secrets.list_secrets().send().await.unwrap();
    assert!(
        secrets
            .secret_list()
            .iter()
            .all(|s| !s.name().unwrap().starts_with("supabase-on-aws/")),
        "{:?}",
        secrets.secret_list()
    );
    // moto gap: DeleteReplicationGroup leaves the group `deleting` for ever (AWS removes it)
    let rg = c
        .elasticache
        .describe_replication_groups()
        .send()
        .await
        .unwrap();
    assert!(rg
        .replication_groups()
        .iter()
        .all(|g| g.status() == Some("deleting")));

    // what the engine still sees: only the cache subnet group, which moto cannot delete (NotImplemented)
    let left = s.destroy_plan().await.unwrap();
    let ids: Vec<&str> = left.observed.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, vec!["cache-subnet-group"]);
    // a second destroy is fine
    s.destroy(None, &Quiet, opts())
        .await
        .expect("destroy again");
}

#[tokio::test]
async fn destroy_refuses_while_deletion_protection_is_on_unless_forced() {
    let moto = Moto::start();
    let cfg = config_from("config.test.json", |v| {
        v["rds"]["deletionProtection"] = true.into();
    });
    let s = moto.session(cfg).await;
    s.deploy(None, &Quiet, opts()).await.expect("deploy");
    s.clients.log.clear();
    let err = s.destroy(None, &Quiet, opts()).await.unwrap_err();
    match &err {
        stacks::Error::DeletionProtected { names } => {
            assert_eq!(names, &vec!["supabase-on-aws-test-platform".to_string()])
        }
        other => panic!("{other}"),
    }
    assert!(
        s.clients.log.mutating().is_empty(),
        "refused before touching anything"
    );
    let mut forced = opts();
    forced.force = true;
    s.destroy(None, &Quiet, forced)
        .await
        .expect("forced destroy");
    assert!(s
        .clients
        .rds
        .describe_db_clusters()
        .send()
        .await
        .unwrap()
        .db_clusters()
        .is_empty());
}

#[tokio::test]
async fn interrupted_deploy_converges_without_duplicates() {
    let moto = Moto::start();
    let s = std::sync::Arc::new(moto.session(test_config()).await);
    // kill the deploy (drop its future, as a crash would) once it has made some writes
    let s2 = s.clone();
    let task = tokio::spawn(async move { s2.deploy(None, &Quiet, opts()).await });
    while s.clients.log.mutating().len() < 25 {
        assert!(
            !task.is_finished(),
            "deploy finished before it could be interrupted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    task.abort();
    let _ = task.await;
    let partial = s.plan().await.unwrap();
    assert!(
        partial.plan.has_changes(),
        "the interrupted deploy left work to do"
    );
    assert!(!partial.observed.is_empty(), "and some resources behind");

    s.deploy(None, &Quiet, opts()).await.expect("resume");
    let done = s.plan().await.unwrap();
    assert!(!done.plan.has_changes(), "{}", done.plan);
    let c = &s.clients;
    assert_eq!(
        c.ec2
            .describe_vpcs()
            .set_filters(Some(owner()))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    assert_eq!(
        c.ec2
            .describe_subnets()
            .set_filters(Some(owner()))
            .send()
            .await
            .unwrap()
            .subnets()
            .len(),
        4
    );
    assert_eq!(
        c.ec2
            .describe_security_groups()
            .set_filters(Some(owner()))
            .send()
            .await
            .unwrap()
            .security_groups()
            .len(),
        9
    );
    assert_eq!(
        c.ec2
            .describe_route_tables()
            .set_filters(Some(owner()))
            .send()
            .await
            .unwrap()
            .route_tables()
            .len(),
        3
    );
    let mut ids: Vec<&str> = done.observed.iter().map(|o| o.id.as_str()).collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "no logical id twice");
}
