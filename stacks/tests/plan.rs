//! Plans and preflight against moto_server (nothing is deployed here).

mod common;

use common::{config_from, Moto};
use stacks::plan::Action;
use stacks::{Error, Kind};

#[tokio::test]
async fn production_config_plans_three_azs_two_nats_readers_two_redis_nodes_and_protection() {
    let moto = Moto::start();
    let s = moto
        .session(config_from("config.production.json", |_| {}))
        .await;
    let p = s.plan().await.expect("plan");
    let plan = &p.plan;
    // everything is new but the image repositories (`supactl push` made them)
    let ecr: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ecr,
        vec![
            "ecr/gateway",
            "ecr/tenant-manager",
            "ecr/functions",
            "ecr/rest-lambda"
        ]
    );
    assert_eq!(
        plan.count(Action::Create),
        plan.changes.len() - 4,
        "everything else is new: {plan}"
    );
    let count = |k: Kind| plan.changes.iter().filter(|c| c.kind == k).count();
    // production: autoscaling on the gateway and tenant-manager (functions: 2 tasks, no range), 90 days of logs
    assert_eq!(count(Kind::ScalableTarget), 2);
    assert_eq!(count(Kind::ScalingPolicy), 2);
    assert_eq!(count(Kind::EcsService), 3);
    assert_eq!(count(Kind::Listener), 4);
    assert_eq!(count(Kind::Subnet), 6, "public + private in 3 AZs");
    let azs: std::collections::BTreeSet<_> = p
        .desired
        .iter()
        .filter_map(|d| d.props.get("availability_zone"))
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(azs.len(), 3);
    assert_eq!(count(Kind::NatGateway), 2);
    assert_eq!(count(Kind::ElasticIp), 2);
    assert_eq!(count(Kind::RouteTable), 4, "public + one private per AZ");
    let ids: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::DbInstance)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            "db/platform/writer",
            "db/platform/reader/1",
            "db/worker/writer",
            "db/worker/reader/1"
        ]
    );
    let field = |id: &str, f: &str| {
        plan.get(id)
            .and_then(|c| c.fields.iter().find(|x| x.field == f))
            .and_then(|x| x.new.clone())
            .unwrap_or_else(|| panic!("{id}.{f} not in plan"))
    };
    for db in ["db/platform", "db/worker"] {
        assert_eq!(field(db, "deletion_protection"), "true");
        assert_eq!(field(db, "backup_retention_days"), "30");
        assert_eq!(field(db, "min_capacity"), "1");
        assert_eq!(field(db, "max_capacity"), "16");
    }
    assert_eq!(field("redis", "num_cache_clusters"), "2");
    assert_eq!(field("redis", "node_type"), "cache.r6g.large");
    assert_eq!(field("redis", "multi_az"), "true");
    assert_eq!(field("logs/ecs", "retention_days"), "90");
    assert_eq!(field("scaling/gateway", "min"), "2");
    assert_eq!(field("scaling/gateway", "max"), "10");
    assert_eq!(field("taskdef/gateway", "cpu"), "2048");
    assert!(
        plan.get("ecs/gateway")
            .unwrap()
            .fields
            .iter()
            .all(|f| f.field != "desired_count"),
        "with autoscaling on, the running count is not reset by a deploy"
    );
    assert_eq!(field("redis", "automatic_failover"), "true");
    // the third AZ's private table shares the first NAT gateway
    assert_eq!(
        field("rt/private/2", "route:0.0.0.0/0"),
        "(known after apply)"
    );
    let text = plan.to_string();
    assert!(text.contains("+ nat-gateway nat/1"), "{text}");
    let json = serde_json::to_value(plan).unwrap();
    assert_eq!(json["changes"][0]["action"], "create");
    assert!(
        s.clients.log.mutating().is_empty(),
        "planning writes nothing"
    );
}

#[tokio::test]
async fn preflight_checks_the_account_and_the_regions_azs() {
    let moto = Moto::start();
    // (nothing can be pushed to an account the credentials do not belong to)
    let s = moto
        .session_without_images(config_from("config.test.json", |v| {
            v["project"]["accountId"] = "111111111111".into();
        }))
        .await;
    match s.plan().await.err() {
        Some(Error::Preflight(issues)) => {
            assert_eq!(issues.len(), 1);
            assert_eq!(issues[0].path, "project.accountId");
            assert!(issues[0].message.contains("123456789012"), "{}", issues[0]);
        }
        other => panic!(
            "expected a preflight error, got {:?}",
            other.map(|e| e.to_string())
        ),
    }

    // a region with fewer AZs than maxAzs (moto's us-west-1 has fewer than 6)
    let mut aws = moto.aws();
    aws.region = Some("us-west-1".into());
    let cfg = config_from("config.test.json", |v| {
        v["infraStack"]["vpc"]["maxAzs"] = 6.into();
    });
    let s = stacks::Session::connect(cfg, &aws).await.unwrap();
    let n = s.availability_zones().await.unwrap().len();
    assert!(n < 6, "us-west-1 has {n} AZs in moto");
    match s.preflight().await.err() {
        Some(Error::Preflight(issues)) => {
            assert_eq!(issues[0].path, "infraStack.vpc.maxAzs");
            assert_eq!(issues[0].fix, format!("set maxAzs to at most {n}"));
        }
        other => panic!(
            "expected a preflight error, got {:?}",
            other.map(|e| e.to_string())
        ),
    }
    assert_eq!(Error::Preflight(vec![]).exit_code(), 2);
}

#[tokio::test]
async fn a_resource_under_our_name_but_not_ours_is_an_error_not_adopted() {
    let moto = Moto::start();
    let s = moto.session(common::test_config()).await;
    // someone else's cluster with the worker's identifier
    s.clients
        .rds
        .create_db_cluster()
        .db_cluster_identifier("supabase-on-aws-test-worker")
        .engine("aurora-postgresql")
        .master_username("postgres")
        .manage_master_user_password(true)
        .send()
        .await
        .unwrap();
    let err = s.plan().await.err().expect("conflict");
    assert!(
        matches!(
            err,
            Error::NotOwned {
                kind: Kind::DbCluster,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("supabase-on-aws-test-worker exists but is owned by nobody known to supactl"),
        "{err}"
    );
}
