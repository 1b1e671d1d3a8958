use super::*;

fn template(file: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn filled(file: &str) -> serde_json::Value {
    let mut v = template(file);
    v["project"]["region"] = "eu-west-1".into();
    v["project"]["accountId"] = "123456789012".into();
    v["tags"]["DeploymentDate"] = "2026-11-26".into();
    v
}

fn check(v: &serde_json::Value) -> Result<Loaded, ConfigError> {
    parse(
        &v.to_string(),
        Path::new("config.json"),
        &LoadOptions::default(),
    )
}

fn issue_paths(v: &serde_json::Value) -> Vec<String> {
    match check(v) {
        Ok(l) => panic!("expected errors, got {:?}", l.config),
        Err(e) => e.issues().iter().map(|i| i.path.clone()).collect(),
    }
}

#[test]
fn templates_report_unfilled_placeholders_with_paths() {
    let paths = issue_paths(&template("config.test.json"));
    assert_eq!(
        paths,
        vec!["project.accountId", "project.region", "tags.DeploymentDate"]
    );
    // with --region the region placeholder is fine
    let e = parse(
        &template("config.production.json").to_string(),
        Path::new("config.production.json"),
        &LoadOptions {
            region_override: Some("eu-west-1".into()),
        },
    )
    .unwrap_err();
    assert!(!e.issues().iter().any(|i| i.path == "project.region"));
    assert!(
        e.to_string().contains("replace <your-aws-account-id>"),
        "{e}"
    );
}

#[test]
fn filled_templates_validate_with_environment_defaults() {
    let test = check(&filled("config.test.json")).unwrap();
    let c = &test.config;
    assert!(!c.production);
    assert_eq!((c.vpc.max_azs, c.vpc.nat_gateways), (2, 1));
    assert_eq!(
        c.platform_db.cluster_identifier,
        "supabase-on-aws-test-platform"
    );
    assert_eq!(c.worker_db.cluster_identifier, "supabase-worker-cluster");
    assert_eq!(c.worker_db.family, "aurora-postgresql16");
    assert!(!c.platform_db.deletion_protection);
    assert_eq!(c.platform_db.backup_retention_days, 7);
    assert!(c.worker_db.logical_replication && !c.platform_db.logical_replication);
    // placeholders of other tiers are warnings, not errors
    let warned: Vec<&str> = test.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        warned,
        vec!["domain.baseDomain", "infraStack.certificate.arn"]
    );

    let prod = check(&filled("config.production.json")).unwrap().config;
    assert!(prod.production);
    assert!(prod.platform_db.deletion_protection && prod.worker_db.deletion_protection);
    assert_eq!(prod.worker_db.backup_retention_days, 30);
    assert_eq!(
        (
            prod.redis.nodes,
            prod.redis.multi_az,
            prod.redis.automatic_failover()
        ),
        (2, true, true)
    );
}

#[test]
fn unknown_keys_are_warned_with_their_path() {
    let mut v = filled("config.test.json");
    v["rds"]["maxCapacity"] = 3.into();
    v["infraStack"]["vpc"]["natGatways"] = 1.into();
    let l = check(&v).unwrap();
    let unknown: Vec<&str> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("unknown key"))
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(
        unknown,
        vec!["infraStack.vpc.natGatways", "rds.maxCapacity"]
    );
}

#[test]
fn wrong_types_name_the_field() {
    let mut v = filled("config.test.json");
    v["redis"]["numCacheClusters"] = "two".into();
    let e = check(&v).unwrap_err();
    assert_eq!(e.issues()[0].path, "redis.numCacheClusters");
}

#[test]
fn capacity_rules_aws_enforces_but_the_emulator_does_not() {
    let mut v = filled("config.test.json");
    v["rds"]["serverlessV2MinCapacity"] = 0.75.into();
    v["rds"]["serverlessV2MaxCapacity"] = 300.into();
    v["workerRds"]["serverlessV2MinCapacity"] = 8.into();
    v["workerRds"]["serverlessV2MaxCapacity"] = 4.into();
    v["workerRds"]["readers"] = (-1).into();
    let e = check(&v).unwrap_err();
    let msgs: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
    assert!(
        msgs.iter().any(
            |m| m.starts_with("rds.serverlessV2MinCapacity: 0.75 ACU is not a multiple of 0.5")
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("rds.serverlessV2MaxCapacity: 300 ACU is outside")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "workerRds.serverlessV2MaxCapacity: must be ≥ serverlessV2MinCapacity (got 4 < 8)"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("workerRds.readers: -1 readers is out of range")),
        "{msgs:?}"
    );
}

#[test]
fn network_and_redis_rules() {
    let mut v = filled("config.test.json");
    v["infraStack"]["vpc"]["natGateways"] = 3.into();
    v["redis"]["nodeType"] = "cache.t2.micro".into();
    v["redis"]["multiAz"] = true.into();
    assert_eq!(
        issue_paths(&v),
        vec![
            "infraStack.vpc.natGateways",
            "redis.nodeType",
            "redis.multiAz"
        ]
    );

    let mut v = filled("config.test.json");
    v["redis"]["nodeType"] = "cache.t4g.large".into();
    v["redis"]["numCacheClusters"] = 7.into();
    assert_eq!(
        issue_paths(&v),
        vec!["redis.nodeType", "redis.numCacheClusters"]
    );

    let mut v = filled("config.test.json");
    v["infraStack"]["vpc"]["maxAzs"] = 0.into();
    v["infraStack"]["vpc"]["natGateways"] = 0.into();
    assert_eq!(issue_paths(&v), vec!["infraStack.vpc.maxAzs"]);
}

#[test]
fn names_account_and_tags() {
    let mut v = filled("config.test.json");
    v["project"]["name"] = "Supabase_On_AWS".into();
    v["project"]["accountId"] = "12345".into();
    v["tags"]["supactl:id"] = "x".into();
    v["rds"]["engine"] = "mysql".into();
    assert_eq!(
        issue_paths(&v),
        vec![
            "project.name",
            "project.accountId",
            "rds.engine",
            "tags.supactl:id"
        ]
    );
}

#[test]
fn invalid_json_reports_line_and_column() {
    let e = parse(
        "{\n  \"project\": ,\n}",
        Path::new("c.json"),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::Json { line: 2, .. }), "{e}");
}

#[test]
fn subnet_blocks_are_computed_from_the_vpc_block() {
    let b = Ipv4Cidr::parse("10.0.0.0/16").unwrap();
    assert_eq!(b.subnet(19, 5).to_string(), "10.0.160.0/19");
    assert!(Ipv4Cidr::parse("10.0.0.1/16").is_none());
}
