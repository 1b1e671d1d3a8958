//! `supactl functions` as a user runs it, against a real control plane (testkit's tenant-manager on a
//! throwaway PostgreSQL cluster) and the real Deno the tenant-manager checks code with: deploy from a file
//! and from a directory (with an import map, without JWT verification), list, show, delete, `--output
//! json`, and the errors a user meets (a syntax error with its file and line, a bad slug, no code given,
//! a function that is gone).

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use testkit::ControlPlane;

/// Installs the pinned Deno where the tenant-manager looks for it (unless `$SUPACTL_DENO` names one).
fn ensure_deno() {
    if std::env::var_os("SUPACTL_DENO").is_some() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/setup.sh");
    let out = Command::new(script).arg("deno").output().unwrap();
    assert!(
        out.status.success(),
        "scripts/setup.sh deno failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `supactl functions …` against the control plane: exit code, stdout, stderr.
async fn supactl(cp: &ControlPlane, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_supactl"));
    cmd.arg("functions").args(args).args([
        "--admin-url",
        &cp.admin_url,
        "--admin-key",
        &cp.admin_key,
    ]);
    // the control plane serves from this test's runtime while the CLI runs
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_are_deployed_listed_shown_and_deleted_from_the_cli() {
    ensure_deno();
    let cp = ControlPlane::start("http://127.0.0.1:9/p/{ref}").await;
    cp.create_project("cli", "fncli").await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    write(
        src,
        "hello.ts",
        "Deno.serve(() => new Response('hello'));\n",
    );
    write(
        src,
        "dir/index.ts",
        "import { greet } from './lib/greet.ts';\nDeno.serve(() => new Response(greet()));\n",
    );
    write(
        src,
        "dir/lib/greet.ts",
        "export const greet = () => 'hi';\n",
    );
    write(
        src,
        "map.json",
        r#"{"imports": {"lodash": "npm:lodash@4"}}"#,
    );
    write(
        src,
        "broken/index.ts",
        "Deno.serve(() => {\n  return new Response(;\n});\n",
    );
    let path = |p: &str| src.join(p).display().to_string();

    let (code, out, err) = supactl(
        &cp,
        &["deploy", "fncli", "hello", "--file", &path("hello.ts")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "deployed function hello version 1 (verify_jwt true)"
    );

    let (code, out, err) = supactl(
        &cp,
        &[
            "deploy",
            "fncli",
            "hello",
            "--dir",
            &path("dir"),
            "--no-verify-jwt",
            "--import-map",
            &path("map.json"),
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let f: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["version"], 2);
    assert_eq!(f["verify_jwt"], false);
    assert_eq!(f["entrypoint"], "index.ts");
    assert_eq!(f["import_map"], true);

    let (code, out, _) = supactl(&cp, &["list", "fncli"]).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SLUG"), "{out}");
    assert!(
        lines[1].starts_with("hello") && lines[1].contains("false"),
        "{out}"
    );

    let (code, out, _) = supactl(&cp, &["show", "fncli", "hello", "--output", "json"]).await;
    assert_eq!(code, 0);
    let f: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["versions"].as_array().unwrap().len(), 2, "{f}");
    let (code, out, _) = supactl(&cp, &["show", "fncli", "hello"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("version:    2") && out.contains("versions:"),
        "{out}"
    );

    // what a user gets wrong
    let (code, _, err) = supactl(
        &cp,
        &["deploy", "fncli", "broken", "--dir", &path("broken")],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("index.ts:2"), "{err}");
    let (code, _, err) = supactl(
        &cp,
        &["deploy", "fncli", "2bad", "--file", &path("hello.ts")],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("slug"), "{err}");
    let (code, _, err) = supactl(&cp, &["deploy", "fncli", "hello"]).await;
    assert_eq!(code, 2, "no code given is a usage error: {err}");

    let (code, out, err) = supactl(&cp, &["delete", "fncli", "hello"]).await;
    assert_eq!((code, out.trim()), (0, "deleted function hello"), "{err}");
    let (code, _, err) = supactl(&cp, &["show", "fncli", "hello"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

/// `supactl serve functions` as its ECS task runs it: the container health check (`supactl healthcheck`
/// on the internal port) passes, the invocation port does not serve the internal routes, and the logs
/// endpoint and the metrics port (`--metrics-port`) want the service token.
#[test]
fn serve_functions_answers_health_and_guards_logs_on_its_internal_port() {
    ensure_deno();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, internal, metrics) = (free(), free(), free());
    let mut child = Command::new(env!("CARGO_BIN_EXE_supactl"))
        .args(["serve", "functions"])
        .env("SUPACTL_PORT", port.to_string())
        .env("SUPACTL_FUNCTIONS_INTERNAL_PORT", internal.to_string())
        .env("SUPACTL_METRICS_PORT", metrics.to_string())
        .env("SUPACTL_TENANT_MANAGER_URL", "http://127.0.0.1:9")
        .env("SUPACTL_SERVICE_TOKEN", "test-service-token")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{internal}/health");
    let healthcheck = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_supactl"))
            .args(["healthcheck", url])
            .output()
            .unwrap()
            .status
            .code()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while healthcheck(&health) != Some(0) {
        assert!(std::time::Instant::now() < deadline, "no health answer");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // the invocation port has no /health: that path is a function's slug there
    assert_eq!(
        healthcheck(&format!("http://127.0.0.1:{port}/health")),
        Some(1)
    );
    // logs need the service token (the runtime answers 200 with it, empty: nothing ran)
    let logs = format!("http://127.0.0.1:{internal}/internal/v1/functions/abcdefghij/hello/logs");
    let curl = |url: &str, token: &str| {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    assert_eq!(curl(&logs, "wrong").0, "401");
    assert_eq!(curl(&logs, "test-service-token").0, "200");
    // its own metrics, on their own port
    let metrics = format!("http://127.0.0.1:{metrics}/metrics");
    assert_eq!(curl(&metrics, "wrong").0, "401");
    let (code, text) = curl(&metrics, "test-service-token");
    assert_eq!(code, "200");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.contains("process_cpu_seconds "), "{text}");
    assert!(text.contains("supactl_db_connections_open "), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}
