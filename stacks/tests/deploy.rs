//! Deploy, no-op redeploy, config changes, drift, interruption and destroy against moto_server.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use common::{config_from, opts, test_config, Moto};
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
    let vpcs = c.ec2.describe_vpcs().set_filters(Some(owner())).send().await.unwrap();
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
    let subnets = c.ec2.describe_subnets().set_filters(Some(owner())).send().await.unwrap();
    let mut cidrs: Vec<(String, bool)> = subnets
        .subnets()
        .iter()
        .map(|s| (s.cidr_block().unwrap().to_string(), s.map_public_ip_on_launch().unwrap()))
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
    let nats = c.ec2.describe_nat_gateways().set_filter(Some(owner())).send().await.unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
    let nat_id = nats.nat_gateways()[0].nat_gateway_id().unwrap().to_string();
    let igws = c.ec2.describe_internet_gateways().set_filters(Some(owner())).send().await.unwrap();
    assert_eq!(igws.internet_gateways()[0].attachments()[0].vpc_id(), Some(vpc_id));
    let igw_id = igws.internet_gateways()[0].internet_gateway_id().unwrap().to_string();

    // routes: public → IGW, both private tables → the one NAT
    let rts = c.ec2.describe_route_tables().set_filters(Some(owner())).send().await.unwrap();
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
            assert_eq!(rt.associations().iter().filter(|a| a.subnet_id().is_some()).count(), 2);
        } else {
            assert_eq!(default.nat_gateway_id(), Some(nat_id.as_str()));
            assert_eq!(rt.associations().iter().filter(|a| a.subnet_id().is_some()).count(), 1);
        }
    }

    // security groups and the rule matrix
    let sgs = c.ec2.describe_security_groups().set_filters(Some(owner())).send().await.unwrap();
    assert_eq!(sgs.security_groups().len(), 10);
    let sg = |key: &str| {
        sgs.security_groups()
            .iter()
            .find(|g| tags_of(g.tags())["supactl:id"] == format!("sg/{key}"))
            .unwrap()
            .clone()
    };
    let worker_db = sg("worker-db");
    assert!(worker_db.ip_permissions_egress().is_empty(), "databases have no egress");
    let sources: Vec<String> = worker_db
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            assert_eq!(p.from_port(), Some(5432));
            p.user_id_group_pairs().iter().map(|g| g.group_id().unwrap().to_string())
        })
        .collect();
    let mut want: Vec<String> = ["tenant-manager", "rest-lambda", "rest", "auth"]
        .iter()
        .map(|k| sg(k).group_id().unwrap().to_string())
        .collect();
    let mut got = sources.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let alb = sg("alb");
    let mut alb_ports: Vec<i32> = alb.ip_permissions().iter().filter_map(|p| p.from_port()).collect();
    alb_ports.sort();
    assert_eq!(alb_ports, vec![80, 443]);

    // Aurora clusters: ACU, encryption, managed password, backups, parameter group on the worker
    for (ident, db) in [
        ("supabase-on-aws-test-platform", "supabase"),
        ("supabase-worker-cluster", "postgres"),
    ] {
        let cl = c.rds.describe_db_clusters().db_cluster_identifier(ident).send().await.unwrap();
        let cl = &cl.db_clusters()[0];
        let sc = cl.serverless_v2_scaling_configuration().unwrap();
        assert_eq!((sc.min_capacity(), sc.max_capacity()), (Some(0.5), Some(4.0)));
        assert_eq!(cl.engine_version(), Some("16.6"));
        assert_eq!(cl.database_name(), Some(db));
        assert_eq!(cl.storage_encrypted(), Some(true));
        assert_eq!(cl.deletion_protection(), Some(false));
        assert_eq!(cl.backup_retention_period(), Some(7));
        assert!(cl.master_user_secret().and_then(|m| m.secret_arn()).is_some());
        assert_eq!(cl.db_cluster_members().len(), 1, "writer only (readers: 0)");
        assert_eq!(cl.db_subnet_group(), Some("supabase-on-aws-test-db"));
        if ident == "supabase-worker-cluster" {
            assert_eq!(cl.db_cluster_parameter_group(), Some("supabase-worker-cluster-params"));
        }
    }
    let params = c
        .rds
        .describe_db_cluster_parameters()
        .db_cluster_parameter_group_name("supabase-worker-cluster-params")
        .source("user")
        .send()
        .await
        .unwrap();
    assert!(params
        .parameters()
        .iter()
        .any(|p| p.parameter_name() == Some("rds.logical_replication") && p.parameter_value() == Some("1")));
    let inst = c
        .rds
        .describe_db_instances()
        .db_instance_identifier("supabase-worker-cluster-writer")
        .send()
        .await
        .unwrap();
    assert_eq!(inst.db_instances()[0].db_instance_class(), Some("db.serverless"));

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
    assert_eq!(rg.automatic_failover(), Some(&aws_sdk_elasticache::types::AutomaticFailoverStatus::Disabled));

    // platform secrets exist with generated values
    for key in ["admin-api-key", "encryption-key", "service-token", "redis-auth-token"] {
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
    for key in ["admin-api-key", "encryption-key", "service-token", "redis-auth-token"] {
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
    assert!(!s.clients.log.mutating().is_empty(), "the first deploy must have written");
    let before = secret_values(&s).await;

    s.clients.log.clear();
    let p = s.plan().await.unwrap();
    assert!(!p.plan.has_changes(), "{}", p.plan);
    let plan = s.deploy(None, &Quiet, opts()).await.expect("second deploy");
    assert!(!plan.has_changes(), "{plan}");
    assert_eq!(s.clients.log.mutating(), Vec::<String>::new());
    assert!(!s.clients.log.calls().is_empty(), "the deploy did observe");
    assert_eq!(secret_values(&s).await, before, "secrets are generated once");
}
