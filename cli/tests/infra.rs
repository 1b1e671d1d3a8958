//! The `supactl` infrastructure commands as a user runs them: exit codes, JSON output, confirmation, against
//! moto_server on loopback (harness shared with the stacks crate's tests).

#[path = "../../stacks/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output, Stdio};

fn supactl(args: &[&str], endpoint: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_supactl"));
    c.args(args)
        .current_dir(common::workspace_root())
        .stdin(Stdio::null())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("SUPACTL_ENDPOINT_URL");
    if let Some(e) = endpoint {
        c.args(["--endpoint-url", e]);
    }
    c.output().expect("run supactl")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn validate_reports_placeholders_with_paths_and_exits_2() {
    let o = supactl(&["validate", "--env", "test", "--offline"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("project.accountId: placeholder <your-aws-account-id> is not filled in"),
        "{err}"
    );
    assert!(err.contains("tags.DeploymentDate"), "{err}");
}

#[test]
fn plan_deploy_status_destroy_through_the_cli() {
    let moto = common::Moto::start();
    let ep = moto.endpoint();
    let dir = std::env::temp_dir().join(format!("supactl-cli-{}", moto.port));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.test.json");
    let template =
        std::fs::read_to_string(common::workspace_root().join("config.test.json")).unwrap();
    // what a user has done first: an ACM certificate for the domain, `supactl push --env test`
    let cert = common::seed_blocking(&moto);
    std::fs::write(&cfg, common::fill_placeholders(&template, &cert)).unwrap();
    let cfg = cfg.to_str().unwrap();

    let o = supactl(
        &[
            "plan",
            "--config",
            cfg,
            "--output",
            "json",
            "--detailed-exitcode",
        ],
        Some(&ep),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "changes pending: {err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("plan json");
    // the network and data tier (the S3 endpoint included) and the compute tier (the REST log group and
    // the functions service included; the ECR repositories already made by the push): 88 before the
    // functions service, which adds its repository (pushed, so a no-op), its group and 7 rules, its role,
    // Cloud Map service, task definition and ECS service; then the storage bucket
    assert_eq!(plan["changes"].as_array().unwrap().len(), 102);
    // the estimated monthly cost beside the changes
    let lines = plan["cost"]["lines"].as_array().unwrap();
    assert!(lines
        .iter()
        .any(|l| l["id"] == "ecs/gateway" && l["monthly"].as_f64() > Some(0.0)));
    assert!(
        plan["cost"]["total_monthly"].as_f64() > Some(0.0),
        "{}",
        plan["cost"]
    );

    let o = supactl(
        &["validate", "--config", cfg, "--offline", "--output", "json"],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("validate json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"], cfg);
    assert!(v["warnings"].is_array(), "{v}");

    // machine-readable mode never prompts, even where a terminal could
    let o = supactl(&["deploy", "--config", cfg, "--output", "json"], Some(&ep));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert!(text(&o).0.is_empty(), "{}", text(&o).0);

    let o = supactl(&["deploy", "--config", cfg], Some(&ep));
    assert_eq!(
        o.status.code(),
        Some(2),
        "no terminal, no --yes: {}",
        text(&o).1
    );
    assert!(text(&o).1.contains("pass --yes"));

    let o = supactl(
        &["deploy", "--config", cfg, "--yes", "--api-stats"],
        Some(&ep),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("Apply complete."), "{out}");
    assert!(
        err.contains("✓ db-cluster db/worker: created supabase-on-aws-test-worker"),
        "{err}"
    );

    let o = supactl(
        &[
            "plan",
            "--config",
            cfg,
            "--detailed-exitcode",
            "--api-stats",
        ],
        Some(&ep),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("No changes. 102 resources are up to date."),
        "{out}"
    );
    assert!(
        out.contains("Estimated monthly cost (USD, us-east-1 prices of"),
        "{out}"
    );
    assert!(err.contains("(0 mutating)"), "{err}");
    let o = supactl(&["deploy", "--config", cfg, "--output", "json"], Some(&ep));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "nothing to approve: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("deploy json");
    assert_eq!(v["outcome"], "no_changes");
    assert_eq!(v["plan"]["changes"].as_array().unwrap().len(), 102);

    // the deployed stack's logs: none written yet; a service it does not have is named with the choices
    let o = supactl(
        &[
            "logs",
            "--config",
            cfg,
            "--service",
            "gateway",
            "--since",
            "1h",
        ],
        Some(&ep),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let o = supactl(&["logs", "--config", cfg, "--service", "kong"], Some(&ep));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains(
            "--service kong: no such service in this stack (it has gateway, tenant-manager"
        ),
        "{}",
        text(&o).1
    );
    let o = supactl(
        &["logs", "--config", cfg, "--since", "10 minutes"],
        Some(&ep),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--since 10 minutes: not a duration"));

    let o = supactl(&["status", "--config", cfg, "--output", "json"], Some(&ep));
    let rows: serde_json::Value = serde_json::from_str(&text(&o).0).expect("status json");
    let vpc = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "vpc")
        .unwrap();
    assert_eq!(vpc["state"], "available");
    assert_eq!(vpc["action"], "no-op");

    let gateway = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "ecs/gateway")
        .unwrap();
    assert!(
        gateway["detail"]
            .as_str()
            .unwrap()
            .starts_with("running 1/1"),
        "{gateway}"
    );

    let o = supactl(&["outputs", "--config", cfg, "--output", "json"], Some(&ep));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let outputs: serde_json::Value = serde_json::from_str(&out).expect("outputs json");
    assert_eq!(outputs["api_url"], "https://api.supabase.example.com");
    assert_eq!(outputs["dns_records"][0]["name"], "*.supabase.example.com");
    assert!(outputs["public_load_balancer_dns"]
        .as_str()
        .unwrap()
        .starts_with("supabase-on-aws-test-pub"));
    let o = supactl(&["outputs", "--config", cfg], Some(&ep));
    assert!(
        text(&o).0.contains("DNS records to create:"),
        "{}",
        text(&o).0
    );

    // an image tag nobody pushed: a preflight error naming the repository and the fix, exit 2
    let o = supactl(&["plan", "--config", cfg, "--image-tag", "nope"], Some(&ep));
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("has no image tagged nope") && err.contains("supactl push --env test"),
        "{err}"
    );

    // moto gaps (ElastiCache deletes never finish, DeleteCacheSubnetGroup unimplemented): hidden quirks flag
    let o = supactl(
        &[
            "destroy",
            "--config",
            cfg,
            "--yes",
            "--emulator-quirks",
            "--output",
            "json",
        ],
        Some(&ep),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("destroy json");
    assert_eq!(v["outcome"], "destroyed", "{v}");
    assert!(
        v["plan"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "vpc" && c["action"] == "delete"),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn healthcheck_exits_0_on_a_2xx_answer_and_1_otherwise() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, s) in listener.incoming().enumerate() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let status = if i == 0 {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    let url = format!("http://127.0.0.1:{port}/health");
    assert_eq!(supactl(&["healthcheck", &url], None).status.code(), Some(0));
    let o = supactl(&["healthcheck", &url], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("answered 503"), "{}", text(&o).1);
}
