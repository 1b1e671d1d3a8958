//! Invoking functions through the router with real Deno workers: what the function gets, what the client
//! gets back, redeploys, unknown slugs, `verify_jwt`, logs and streamed bodies. The control plane is a test
//! double (see `common`).

mod common;

use common::Platform;
use http::{Method, StatusCode};
use serde_json::{json, Value};

const ECHO: &str = r#"
Deno.serve(async (req: Request) => {
  const url = new URL(req.url);
  const body = req.method === "GET" ? null : await req.json();
  console.log("echo", req.method, url.pathname);
  return Response.json({
    method: req.method,
    origin: url.origin,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    header: req.headers.get("x-custom"),
    invocationHeader: req.headers.get("x-supactl-invocation"),
    body,
  });
});
"#;

#[tokio::test]
async fn json_is_echoed_with_path_query_and_headers() {
    let p = Platform::start().await;
    p.deploy("proj1", "echo", ECHO);
    let (status, headers, body) = p
        .call(
            "proj1",
            Method::POST,
            "/echo/sub/path?a=1&b=two",
            &[
                ("x-custom", "hello"),
                ("content-type", "application/json"),
                ("x-supactl-invocation", "999999"),
            ],
            br#"{"name":"deno","n":[1,2]}"#,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body:?} {:?}",
        p.supervisor.logs("proj1", "echo")
    );
    assert_eq!(headers["content-type"], "application/json");
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        got,
        json!({
            "method": "POST",
            "origin": p.url.trim_end_matches("/functions/v1"),
            "path": "/echo/sub/path",
            "query": {"a": "1", "b": "two"},
            "header": "hello",
            "invocationHeader": got["invocationHeader"],
            "body": {"name": "deno", "n": [1, 2]},
        })
    );
    // the function sees its invocation id, the one on its log records (a client cannot set it)
    let id: u64 = got["invocationHeader"].as_str().unwrap().parse().unwrap();
    let logs = p.supervisor.logs("proj1", "echo");
    assert!(
        logs.iter()
            .any(|r| r.message == "echo POST /echo/sub/path" && r.invocation == Some(id)),
        "{logs:?}"
    );
    // a second invocation reuses the warm worker
    let (status, got) = p.get_json("proj1", "/echo?x=y").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["query"], json!({"x": "y"}));
    assert_eq!(p.supervisor.workers(), 1);
}

#[tokio::test]
async fn the_functions_status_and_headers_reach_the_client_as_they_are() {
    let p = Platform::start().await;
    p.deploy(
        "proj1",
        "teapot",
        r#"Deno.serve(() => new Response("short and stout", {
             status: 418,
             headers: { "x-brewed-by": "deno", "set-cookie": "a=1" },
           }));"#,
    );
    let (status, headers, body) = p.call("proj1", Method::PUT, "/teapot", &[], b"").await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert_eq!(headers["x-brewed-by"], "deno");
    assert_eq!(headers["set-cookie"], "a=1");
    assert_eq!(&body[..], b"short and stout");
}

#[tokio::test]
async fn a_redeploy_is_served_by_the_next_invocation() {
    let p = Platform::start().await;
    p.deploy("proj1", "ver", r#"Deno.serve(() => new Response("v1"));"#);
    let (_, _, body) = p.call("proj1", Method::GET, "/ver", &[], b"").await;
    assert_eq!(&body[..], b"v1");
    p.deploy("proj1", "ver", r#"Deno.serve(() => new Response("v2"));"#);
    let (status, _, body) = p.call("proj1", Method::GET, "/ver", &[], b"").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"v2"[..]));
    // a delete answers 404 at once
    p.store.delete("proj1", "ver");
    let (status, err) = p.get_json("proj1", "/ver").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "function_not_found");
}

#[tokio::test]
async fn std_serve_runs_through_the_local_shim() {
    let p = Platform::start().await;
    p.deploy(
        "proj1",
        "legacy",
        r#"import { serve } from "https://deno.land/std@0.168.0/http/server.ts";
           serve((req: Request) => new Response("legacy " + new URL(req.url).pathname));"#,
    );
    let (status, _, body) = p.call("proj1", Method::GET, "/legacy/x", &[], b"").await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(&body[..], b"legacy /legacy/x");
}

#[tokio::test]
async fn the_functions_import_map_resolves_from_the_bundles_root() {
    let p = Platform::start().await;
    p.deploy("proj1", "placeholder", ECHO); // gives the project its environment
    let file = |name: &str, content: &str| functions::BundleFile {
        name: name.into(),
        content: content.into(),
    };
    let bundle = functions::Bundle {
        entrypoint: "main/index.ts".into(),
        files: vec![
            file(
                "main/index.ts",
                r#"import { greet } from "shared/greet.ts";
                   import { serve } from "std/http/server.ts";
                   serve(() => new Response(greet("map")));"#,
            ),
            file(
                "shared/greet.ts",
                "export const greet = (n: string) => `hello ${n}`;",
            ),
        ],
        import_map: Some(
            r#"{"imports": {"shared/": "./shared/", "std/": "https://deno.land/std@0.177.0/"}}"#
                .into(),
        ),
    };
    p.store.deploy("proj1", "mapped", bundle, false).unwrap();
    let (status, _, body) = p.call("proj1", Method::GET, "/mapped", &[], b"").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body:?} {:?}",
        p.supervisor.logs("proj1", "mapped")
    );
    assert_eq!(&body[..], b"hello map");
}

#[tokio::test]
async fn a_default_export_with_fetch_is_served() {
    let p = Platform::start().await;
    p.deploy(
        "proj1",
        "modern",
        r#"export default { fetch: (req: Request) => new Response("fetch " + req.method) };"#,
    );
    let (status, _, body) = p.call("proj1", Method::DELETE, "/modern", &[], b"").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"fetch DELETE"[..]));
}

#[tokio::test]
async fn unknown_slugs_and_other_projects_functions_are_404_json() {
    let p = Platform::start().await;
    p.deploy("proj1", "mine", ECHO);
    for (project, path) in [("proj1", "/nope"), ("proj2", "/mine"), ("proj1", "/a.b")] {
        let (status, err) = p.get_json(project, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{project}{path}");
        assert_eq!(err["code"], "function_not_found", "{project}{path}");
    }
}

#[tokio::test]
async fn verify_jwt_refuses_a_caller_without_a_valid_jwt() {
    let p = Platform::start().await;
    p.deploy_files("proj1", "guarded", &[("index.ts", ECHO)], true);
    p.deploy("proj1", "open", ECHO);
    let req = |path: &str| {
        http::Request::get(format!("{}{path}", p.url))
            .header("x-test-project", "proj1")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let res = p.client().request(req("/guarded")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = p.client().request(req("/open")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = p.get_json("proj1", "/guarded").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn console_output_is_kept_per_invocation() {
    let p = Platform::start().await;
    p.deploy(
        "proj1",
        "chatty",
        r#"console.log("loading");
           Deno.serve((req: Request) => {
             console.log("handling", new URL(req.url).search);
             console.error({ problem: true });
             return new Response("ok", { status: 201 });
           });"#,
    );
    for q in ["?n=1", "?n=2"] {
        let (status, _, _) = p
            .call("proj1", Method::GET, &format!("/chatty{q}"), &[], b"")
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let logs = p.supervisor.logs("proj1", "chatty");
    let line = |m: &str| {
        logs.iter()
            .find(|r| r.message == m)
            .unwrap_or_else(|| panic!("{m} in {logs:?}"))
    };
    assert_eq!(line("loading").invocation, None);
    let first = line("handling ?n=1");
    let second = line("handling ?n=2");
    assert!(first.invocation.is_some() && first.invocation != second.invocation);
    assert_eq!(first.level, "log");
    let errors: Vec<_> = logs.iter().filter(|r| r.level == "error").collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].message, "{ problem: true }");
    let outcome = logs
        .iter()
        .find(|r| r.level == "invocation" && r.invocation == first.invocation)
        .expect("an outcome record");
    assert_eq!(outcome.status, Some(201));
    assert!(p.supervisor.logs("proj1", "other").is_empty());
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let p = Platform::start().await;
    // The response's second chunk waits for a second invocation: a proxy that buffered the response would
    // never deliver the first one, and the test would hang instead of passing.
    p.deploy(
        "proj1",
        "stream",
        r#"let release: () => void;
           const released = new Promise<void>((r) => (release = r));
           Deno.serve(async (req: Request) => {
             const path = new URL(req.url).pathname;
             if (path.endsWith("/release")) { release(); return new Response("released"); }
             if (path.endsWith("/upload")) {
               let n = 0;
               for await (const chunk of req.body!) n += chunk.length;
               return Response.json({ received: n });
             }
             const body = new ReadableStream({
               async start(c) {
                 c.enqueue(new TextEncoder().encode("first;"));
                 await released;
                 c.enqueue(new TextEncoder().encode("second"));
                 c.close();
               },
             });
             return new Response(body);
           });"#,
    );
    let req = http::Request::get(format!("{}/stream/wait", p.url))
        .header("x-test-project", "proj1")
        .header("x-test-jwt", "valid")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = p.client().request(req).await.unwrap();
    let mut body = res.into_body();
    use http_body_util::BodyExt;
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first;");
    let (_, _, released) = p
        .call("proj1", Method::GET, "/stream/release", &[], b"")
        .await;
    assert_eq!(&released[..], b"released");
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second");

    let big = vec![b'x'; 8 * 1024 * 1024];
    let (status, got) = {
        let (s, _, b) = p
            .call("proj1", Method::POST, "/stream/upload", &[], &big)
            .await;
        (s, serde_json::from_slice::<Value>(&b).unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["received"], big.len());
}

#[tokio::test]
async fn a_new_supervisor_clears_what_a_previous_one_left_in_its_work_dir() {
    let dir = tempfile::Builder::new()
        .prefix("fn")
        .tempdir_in("/tmp")
        .unwrap();
    let stale = dir.path().join("workers/w-0123456789abcdef/bundle");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::create_dir_all(dir.path().join("deno")).unwrap();
    let config = functions::SupervisorConfig::new(
        common::deno(),
        dir.path().to_path_buf(),
        functions::NetPolicy::platform(None, &[]),
    );
    let store = std::sync::Arc::new(functions::memory::MemoryStore::new());
    let _supervisor = functions::Supervisor::new(config, store).unwrap();
    assert!(!dir.path().join("workers").exists());
    assert!(
        dir.path().join("deno").exists(),
        "Deno's module cache stays"
    );
}
