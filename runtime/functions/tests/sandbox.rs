//! The sandbox with real Deno workers: a function sees its project's secrets and nothing else of the
//! machine's environment, cannot read another project's files, secrets or worker, cannot reach the
//! platform's private endpoints, and can import from npm through the registry. The control plane is a test
//! double (see `common`).

mod common;

use common::Platform;
use functions::NetPolicy;
use http::StatusCode;
use serde_json::{json, Value};

/// Reports what it can see: env variables named in `?env=`, the file in `?read=`, a connection to the Unix
/// socket in `?sock=`, fetches of the URLs in `?fetch=`, and where its own module lives.
const PROBE: &str = r#"
// `err` names the error; `denied` says whether the sandbox refused (directly, or as the cause of a fetch's
// TypeError when the check ran on the resolved address)
async function attempt(f: () => Promise<unknown>) {
  try { return { ok: await f() }; } catch (e) {
    const denied = (e as Error).name === "NotCapable" || String((e as Error).cause).includes("Requires net access");
    return denied ? { err: (e as Error).name, denied } : { err: (e as Error).name };
  }
}
Deno.serve(async (req: Request) => {
  const q = new URL(req.url).searchParams;
  const out: Record<string, unknown> = { module: new URL(import.meta.url).pathname };
  for (const name of q.getAll("env")) out["env:" + name] = await attempt(async () => Deno.env.get(name) ?? null);
  for (const path of q.getAll("read")) out["read:" + path] = await attempt(() => Deno.readTextFile(path));
  for (const path of q.getAll("sock")) {
    out["sock:" + path] = await attempt(async () => { (await Deno.connect({ transport: "unix", path })).close(); return "connected"; });
  }
  for (const url of q.getAll("fetch")) {
    out["fetch:" + url] = await attempt(async () => (await fetch(url, { signal: AbortSignal.timeout(5000) })).status);
  }
  return Response.json(out);
});
"#;

fn query(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn a_function_sees_its_projects_secrets_and_standard_variables_only() {
    // the supervisor's own environment must not leak into workers
    assert!(std::env::var("PATH").is_ok());
    let p = Platform::start().await;
    p.deploy("proj1", "probe", PROBE);
    p.set_secret("proj1", "API_TOKEN", "tok-proj1");
    let q = query(&[
        ("env", "API_TOKEN"),
        ("env", "SUPABASE_URL"),
        ("env", "SUPABASE_SECRET_KEY"),
        ("env", "SUPABASE_ANON_KEY"),
        ("env", "PATH"),
        ("env", "DENO_DIR"),
    ]);
    let (status, got) = p.get_json("proj1", &format!("/probe?{q}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["env:API_TOKEN"], json!({"ok": "tok-proj1"}));
    assert_eq!(
        got["env:SUPABASE_URL"],
        json!({"ok": "http://127.0.0.1:9/proj1"})
    );
    assert_eq!(
        got["env:SUPABASE_SECRET_KEY"],
        json!({"ok": "sb_secret_proj1"})
    );
    assert_eq!(
        got["env:SUPABASE_ANON_KEY"],
        json!({"ok": "sb_publishable_proj1"})
    );
    assert_eq!(
        got["env:PATH"],
        json!({"ok": null}),
        "unset, as on Supabase"
    );
    assert_eq!(
        got["env:DENO_DIR"],
        json!({"ok": null}),
        "unset, as on Supabase"
    );

    // a changed secret reaches the next invocation
    p.set_secret("proj1", "API_TOKEN", "tok-rotated");
    let (_, got) = p.get_json("proj1", &format!("/probe?{q}")).await;
    assert_eq!(got["env:API_TOKEN"], json!({"ok": "tok-rotated"}));
}

#[tokio::test]
async fn two_projects_cannot_read_each_others_env_files_or_workers() {
    let p = Platform::start().await;
    p.deploy("proj1", "probe", PROBE);
    p.deploy("proj2", "probe", PROBE);
    p.set_secret("proj1", "ONLY_ONE", "secret-of-proj1");
    p.set_secret("proj2", "ONLY_TWO", "secret-of-proj2");
    let (_, two) = p.get_json("proj2", "/probe?env=ONLY_TWO").await;
    assert_eq!(two["env:ONLY_TWO"], json!({"ok": "secret-of-proj2"}));
    let module = two["module"].as_str().unwrap().to_string();
    // <worker dir>/bundle/index.ts → <worker dir>/sock
    let sock = module.replace("/bundle/index.ts", "/sock");
    let (_, own) = p.get_json("proj1", "/probe").await;
    let own_module = own["module"].as_str().unwrap().to_string();

    let q = query(&[
        ("env", "ONLY_TWO"),
        ("read", &module),
        ("read", &own_module),
        ("sock", &sock),
        ("read", "/etc/passwd"),
    ]);
    let (status, one) = p.get_json("proj1", &format!("/probe?{q}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["env:ONLY_TWO"],
        json!({"ok": null}),
        "another project's secret reads as unset"
    );
    assert_eq!(
        one[format!("read:{module}")],
        json!({"err": "NotCapable", "denied": true})
    );
    assert_eq!(
        one[format!("sock:{sock}")],
        json!({"err": "NotCapable", "denied": true})
    );
    assert_eq!(
        one["read:/etc/passwd"],
        json!({"err": "NotCapable", "denied": true})
    );
    // its own bundle stays readable
    assert!(one[format!("read:{own_module}")]["ok"]
        .as_str()
        .is_some_and(|s| s.contains("Deno.serve")));
}

#[tokio::test]
async fn private_endpoints_are_refused_and_the_gateway_is_not() {
    // stand-ins on loopback: the gateway (which functions call back through SUPABASE_URL) and a private
    // service (the tenant-manager)
    let gateway = axum_ok().await;
    let private = axum_ok().await;
    let private_entry = private.to_string();
    let p = Platform::with(|c| c.net = NetPolicy::platform(Some(gateway), &[private_entry])).await;
    p.deploy("proj1", "probe", PROBE);
    let urls = [
        format!("http://{gateway}/"),
        format!("http://{private}/"),
        format!("http://localhost:{}/", private.port()),
        format!("http://127.0.0.2:{}/", gateway.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]:80/".to_string(),
    ];
    let q = query(
        &urls
            .iter()
            .map(|u| ("fetch", u.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, got) = p.get_json("proj1", &format!("/probe?{q}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        got[format!("fetch:{}", urls[0])],
        json!({"ok": 200}),
        "{got}"
    );
    for u in &urls[1..] {
        let r = &got[format!("fetch:{u}")];
        assert_eq!(r["denied"], true, "{u}: {r}");
    }
    let (_, all_loopback) = {
        let p = Platform::start().await;
        p.deploy("proj1", "probe", PROBE);
        p.get_json(
            "proj1",
            &format!("/probe?{}", query(&[("fetch", &urls[0])])),
        )
        .await
    };
    assert_eq!(
        all_loopback[format!("fetch:{}", urls[0])],
        json!({"err": "NotCapable", "denied": true})
    );
}

#[tokio::test]
async fn npm_imports_come_from_the_registry() {
    let p = Platform::start().await;
    p.deploy(
        "proj1",
        "npm",
        r#"import isOdd from "npm:is-odd@3.0.1";
           Deno.serve(() => Response.json({ three: isOdd(3), four: isOdd(4) }));"#,
    );
    let (status, got): (StatusCode, Value) = p.get_json("proj1", "/npm").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{got} {:?}",
        p.supervisor.logs("proj1", "npm")
    );
    assert_eq!(got, json!({"three": true, "four": false}));
}

/// A loopback HTTP server answering 200 to everything.
async fn axum_ok() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
