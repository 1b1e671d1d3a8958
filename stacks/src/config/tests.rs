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
    v["domain"]["baseDomain"] = "supabase.example.com".into();
    v["infraStack"]["certificate"]["arn"] =
        "arn:aws:acm:eu-west-1:123456789012:certificate/0000-1111".into();
    v
}

/// The repository's config file `file` with its placeholders filled in, validated (for other modules' tests).
pub(crate) fn sample_of(file: &str) -> Config {
    check(&filled(file)).unwrap().config
}

/// `config.test.json`, filled in and validated.
pub(crate) fn sample() -> Config {
    sample_of("config.test.json")
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
        vec![
            "domain.baseDomain",
            "infraStack.certificate.arn",
            "project.accountId",
            "project.region",
            "tags.DeploymentDate"
        ]
    );
    // with --region the region placeholder is fine
    let e = parse(
        &template("config.production.json").to_string(),
        Path::new("config.production.json"),
        &LoadOptions {
            region_override: Some("eu-west-1".into()),
            ..Default::default()
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
    assert_eq!(
        c.worker_db.cluster_identifier,
        "supabase-on-aws-test-worker"
    );
    assert_eq!(c.worker_db.family, "aurora-postgresql16");
    assert!(!c.platform_db.deletion_protection);
    assert_eq!(c.platform_db.backup_retention_days, 7);
    assert!(c.worker_db.logical_replication && !c.platform_db.logical_replication);
    // the original's services without an image here are validated, then warned about
    let warned: Vec<String> = test.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warned,
        vec![
            "ecsTaskStack.services.auth: not deployed in this release (auth runs inside the gateway) (fix: nothing to do; the entry is validated and kept for when the service ships)",
            "ecsTaskStack.services.functionDeploy: not deployed in this release (functions deploy through the tenant-manager's admin API and the dashboard) (fix: nothing to do; the entry is validated and kept for when the service ships)",
            "ecsTaskStack.services.postgresMeta: not deployed in this release (the tenant-manager serves its reads at /admin/v1/projects/{ref}/database/*) (fix: nothing to do; the entry is validated and kept for when the service ships)",
            "ecsTaskStack.services.studio: not deployed in this release (the tenant-manager serves the dashboard at the admin URL) (fix: nothing to do; the entry is validated and kept for when the service ships)",
        ]
    );
    let cc = &c.compute;
    // names derived from the stack, so the test and production stacks can share an account
    assert_eq!(cc.cluster_name, "supabase-on-aws-test");
    assert_eq!(
        (cc.public_alb_name.as_str(), cc.admin_alb_name.as_str()),
        ("supabase-on-aws-test-pub", "supabase-on-aws-test-admin")
    );
    assert_eq!(cc.api_url(), "https://api.supabase.example.com");
    assert_eq!(cc.admin_url(), "https://admin.supabase.example.com");
    assert_eq!(cc.secrets_prefix, "postgrest/");
    assert_eq!(cc.log_retention_days, 30);
    assert_eq!(cc.rest.mode, RestMode::Lambda);
    assert_eq!((cc.rest.memory_mb, cc.rest.timeout_seconds), (512, 30));
    let gw = cc.service("gateway").unwrap();
    assert_eq!(
        (gw.config_key, gw.cpu, gw.memory, gw.desired_count),
        ("kong", 512, 1024, 1)
    );
    // no autoscaling unless the range says so (the original forced min 2, max 20)
    assert_eq!((gw.min_count, gw.max_count, gw.autoscaled()), (1, 1, false));
    // the functions service is deployed and sized from the original's entry
    let f = cc.service("functions").unwrap();
    assert_eq!(
        (f.config_key, f.cpu, f.memory, f.desired_count),
        ("functionsService", 512, 1024, 1)
    );
    assert_eq!(cc.services.len(), 3);

    let prod = check(&filled("config.production.json")).unwrap().config;
    assert!(prod.production);
    assert_eq!(
        (
            prod.compute.cluster_name.as_str(),
            prod.compute.public_alb_name.as_str(),
            prod.compute.admin_alb_name.as_str(),
            prod.worker_db.cluster_identifier.as_str()
        ),
        (
            "supabase-on-aws-production",
            "supabase-on-aws-production-pub",
            "supabase-on-aws-production-admin",
            "supabase-on-aws-production-worker"
        )
    );
    assert!(prod.platform_db.deletion_protection && prod.worker_db.deletion_protection);
    assert_eq!(prod.worker_db.backup_retention_days, 30);
    assert_eq!(prod.compute.log_retention_days, 90);
    let gw = prod.compute.service("gateway").unwrap();
    assert_eq!((gw.min_count, gw.desired_count, gw.max_count), (2, 2, 10));
    assert!(gw.autoscaled());
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

#[test]
fn compute_rules_aws_enforces_are_checked_offline() {
    let mut v = filled("config.test.json");
    v["ecsTaskStack"]["services"]["kong"]["memory"] = 1536.into();
    v["ecsTaskStack"]["services"]["tenantManager"]["cpu"] = 300.into();
    v["ecsTaskStack"]["services"]["studio"]["memory"] = 8192.into();
    v["ecsTaskStack"]["services"]["kong"]["minCount"] = 3.into();
    v["infraStack"]["certificate"]["arn"] =
        "arn:aws:acm:us-east-1:123456789012:certificate/abc".into();
    v["rest"] = serde_json::json!({"mode": "lambdas", "memoryMb": 64});
    let e = check(&v).unwrap_err();
    let msgs: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
    let has = |p: &str| msgs.iter().any(|m| m.starts_with(p));
    assert!(has("ecsTaskStack.services.kong.memory: memory 1536 MiB does not go with cpu 512 on Fargate: use 1024 to 4096 in steps of 1024"), "{msgs:#?}");
    assert!(
        has("ecsTaskStack.services.tenantManager.cpu: cpu 300 is not a Fargate size"),
        "{msgs:#?}"
    );
    assert!(
        has("ecsTaskStack.services.studio.memory: memory 8192 MiB does not go with cpu 512"),
        "{msgs:#?}"
    );
    assert!(
        has("ecsTaskStack.services.kong.desiredCount: 1 is outside minCount..maxCount (3..3)"),
        "{msgs:#?}"
    );
    assert!(has("infraStack.certificate.arn: the certificate is in region us-east-1, the load balancers in eu-west-1"), "{msgs:#?}");
    assert!(
        has("rest.mode: \"lambdas\" is not a REST mode"),
        "{msgs:#?}"
    );
    assert!(
        has("rest.memoryMb: 64 MB is outside Lambda's range"),
        "{msgs:#?}"
    );

    let mut v = filled("config.test.json");
    v["infraStack"]["vpc"]["natGateways"] = 0.into();
    assert_eq!(issue_paths(&v), vec!["infraStack.vpc.natGateways"]);

    let mut v = filled("config.test.json");
    v["infraStack"]["vpc"]["maxAzs"] = 1.into();
    v["infraStack"]["vpc"]["natGateways"] = 1.into();
    v["infraStack"]["studioLoadBalancer"]["name"] = "supabase-on-aws-test-pub".into();
    v["domain"]["baseDomain"] = "https://Example.com".into();
    v["infraStack"]["ecr"]["repositories"]["kong"] = serde_json::json!({"uri": "x"});
    v["ecsTaskStack"]["services"]
        .as_object_mut()
        .unwrap()
        .remove("kong");
    assert_eq!(
        issue_paths(&v),
        vec![
            "infraStack.studioLoadBalancer.name",
            "infraStack.vpc.maxAzs",
            "infraStack.ecr.repositories.kong",
            "domain.baseDomain",
            "ecsTaskStack.services.kong",
        ]
    );

    // the autoscaling range, and an unknown service is a warning
    let mut v = filled("config.test.json");
    v["ecsTaskStack"]["services"]["kong"]["minCount"] = 1.into();
    v["ecsTaskStack"]["services"]["kong"]["maxCount"] = 4.into();
    v["ecsTaskStack"]["services"]["realtime"] = serde_json::json!({"cpu": 256, "memory": 512});
    v["rest"] = serde_json::json!({"mode": "service"});
    let l = check(&v).unwrap();
    let gw = l.config.compute.service("gateway").unwrap();
    assert_eq!((gw.min_count, gw.max_count, gw.autoscaled()), (1, 4, true));
    assert_eq!(l.config.compute.rest.mode, RestMode::Service);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.path == "ecsTaskStack.services.realtime"
            && w.message == "unknown service, ignored"));
}

#[test]
fn push_needs_only_the_account_and_region() {
    let mut v = template("config.test.json");
    v["project"]["region"] = "eu-west-1".into();
    v["project"]["accountId"] = "123456789012".into();
    let opts = LoadOptions {
        images_only: true,
        ..Default::default()
    };
    let l = parse(&v.to_string(), Path::new("c.json"), &opts).unwrap();
    let warned: Vec<&str> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("placeholder"))
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(
        warned,
        vec![
            "domain.baseDomain",
            "infraStack.certificate.arn",
            "tags.DeploymentDate"
        ]
    );
    v["project"]["accountId"] = "<your-aws-account-id>".into();
    let e = parse(&v.to_string(), Path::new("c.json"), &opts).unwrap_err();
    assert_eq!(e.issues()[0].path, "project.accountId");
}

#[test]
fn capacity_limits_follow_the_engine_version() {
    let msgs = |v: &serde_json::Value| -> Vec<String> {
        match check(v) {
            Ok(_) => Vec::new(),
            Err(e) => e.issues().iter().map(|i| i.to_string()).collect(),
        }
    };
    // 256 ACU: 16.2 and later; 16.1 stops at 128
    let mut v = filled("config.test.json");
    v["rds"]["engineVersion"] = "16.1".into();
    v["rds"]["serverlessV2MaxCapacity"] = 256.into();
    v["workerRds"]["engineVersion"] = "16.2".into();
    v["workerRds"]["serverlessV2MaxCapacity"] = 256.into();
    let m = msgs(&v);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].starts_with(
            "rds.serverlessV2MaxCapacity: 256 ACU is above Aurora PostgreSQL 16.1's maximum of 128"
        ),
        "{m:?}"
    );
    assert!(m[0].contains("16.2"), "the fix names the version: {m:?}");
    // 0 ACU (automatic pause): 16.3 and later, any 17
    let mut v = filled("config.test.json");
    v["rds"]["engineVersion"] = "16.2".into();
    v["rds"]["serverlessV2MinCapacity"] = 0.into();
    v["workerRds"]["engineVersion"] = "17.4".into();
    v["workerRds"]["serverlessV2MinCapacity"] = 0.into();
    let m = msgs(&v);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].starts_with(
            "rds.serverlessV2MinCapacity: 0 ACU (automatic pause) needs a newer Aurora PostgreSQL than 16.2"
        ),
        "{m:?}"
    );
    let mut v = filled("config.test.json");
    v["rds"]["serverlessV2MinCapacity"] = 0.into();
    let loaded = check(&v).expect("16.6 pauses at 0 ACU");
    assert_eq!(loaded.config.platform_db.min_acu, 0.0);
    // older majors have their own cut-offs
    let mut v = filled("config.test.json");
    v["rds"]["engineVersion"] = "13.14".into();
    v["rds"]["serverlessV2MinCapacity"] = 0.into();
    v["rds"]["serverlessV2MaxCapacity"] = 200.into();
    assert_eq!(issue_paths(&v), vec!["rds.serverlessV2MinCapacity"]);
}

#[test]
fn tags_are_checked_against_aws_character_set() {
    let mut v = filled("config.test.json");
    v["tags"]["Owner"] = "team<platform>".into();
    v["tags"]["Cost center"] = "ünïcode and spaces: ok/=+-@_.".into();
    v["tags"]["Bad,Key"] = "x".into();
    v["tags"]["Long"] = "é".repeat(256).into();
    let e = check(&v).unwrap_err();
    let msgs: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("tags.Bad,Key: ',' is not allowed in an AWS tag"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with("tags.Owner: '<' is not allowed in an AWS tag"),
        "{msgs:?}"
    );
}

#[test]
fn derived_load_balancer_names_must_fit() {
    let mut v = filled("config.production.json");
    v["project"]["name"] = "a-long-platform-name".into();
    assert_eq!(
        issue_paths(&v),
        vec![
            "infraStack.loadBalancer.name",
            "infraStack.studioLoadBalancer.name"
        ]
    );
    // named explicitly, they are fine
    v["infraStack"]["loadBalancer"]["name"] = "platform-pub".into();
    v["infraStack"]["studioLoadBalancer"]["name"] = "platform-admin".into();
    let c = check(&v).unwrap().config;
    assert_eq!(c.compute.cluster_name, "a-long-platform-name-production");
}

#[test]
fn storage_takes_a_kms_key_of_the_region_and_a_day_count() {
    let c = check(&filled("config.test.json")).unwrap().config;
    assert_eq!(
        (
            c.compute.storage.kms_key_arn,
            c.compute.storage.abort_incomplete_upload_days
        ),
        (None, 7)
    );
    let mut v = filled("config.test.json");
    let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    v["storage"]["kmsKeyArn"] = key.into();
    v["storage"]["abortIncompleteUploadDays"] = 2.into();
    let c = check(&v).unwrap().config;
    assert_eq!(c.compute.storage.kms_key_arn.as_deref(), Some(key));
    assert_eq!(c.compute.storage.abort_incomplete_upload_days, 2);
    // another region's key, an alias, no days
    v["storage"]["kmsKeyArn"] = key.replace("eu-west-1", "us-east-1").into();
    v["storage"]["abortIncompleteUploadDays"] = 0.into();
    assert_eq!(
        issue_paths(&v),
        vec!["storage.kmsKeyArn", "storage.abortIncompleteUploadDays"]
    );
    v["storage"]["kmsKeyArn"] = "arn:aws:kms:eu-west-1:123456789012:alias/storage".into();
    v["storage"]["abortIncompleteUploadDays"] = 7.into();
    assert_eq!(issue_paths(&v), vec!["storage.kmsKeyArn"]);
}
