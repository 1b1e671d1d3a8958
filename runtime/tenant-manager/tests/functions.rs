//! Edge Functions in the control plane, against a real PostgreSQL cluster and the real Deno (the pinned
//! one `scripts/setup.sh deno` installs, found as the tenant-manager finds it): deploys validated and
//! checked (a syntax error names its file and line), versions numbered and the last ten kept, PATCH of
//! code and settings, delete, the internal endpoints for the runtime (service token only), an
//! environment revision that follows secrets and keys, audit, and cascade on project delete.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use tenant_manager::{Config, TenantManager, WorkerSpec};
use tokio::net::TcpListener;

const ADMIN_KEY: &str = "test-admin-key-0123456789";
const SERVICE_TOKEN: &str = "test-service-token-0123456789";

/// Installs the pinned Deno where the tenant-manager looks for it (`$HOME/.cache/supactl/deno`, or
/// `$SUPACTL_DENO_DIR`; `$SUPACTL_DENO` when set wins), once per test binary.
fn ensure_deno() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        if std::env::var_os("SUPACTL_DENO").is_some() {
            return;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup.sh");
        let out = std::process::Command::new(script)
            .arg("deno")
            .output()
            .expect("run scripts/setup.sh deno");
        assert!(
            out.status.success(),
            "scripts/setup.sh deno failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

struct Platform {
    url: String,
    _cluster: TestCluster,
}

impl Platform {
    async fn start() -> Platform {
        ensure_deno();
        let cluster = tokio::task::spawn_blocking(TestCluster::start)
            .await
            .unwrap();
        let db_url = cluster.url("postgres");
        let tm = TenantManager::start(Config {
            database_url: db_url.clone(),
            admin_key: ADMIN_KEY.into(),
            service_token: SERVICE_TOKEN.into(),
            encryption_key: "test-encryption-key".into(),
            api_url_template: "http://127.0.0.1:9/p/{ref}".into(),
            local_worker: Some(WorkerSpec::from_url("local", &db_url).unwrap()),
            redis_url: None,
            project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
            capacity: tenant_manager::Capacity::default(),
        })
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(supactl_common::server::serve(
            listener,
            tenant_manager::router(tm),
            supactl_common::server::ServerConfig::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        Platform {
            url,
            _cluster: cluster,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let (status, bytes) = HttpClient::new(Duration::from_secs(60))
            .send(b.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, v)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, Some(ADMIN_KEY), body).await
    }

    async fn internal(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(SERVICE_TOKEN), None)
            .await
    }

    async fn create_project(&self, project_ref: &str) -> Value {
        let (s, v) = self
            .admin(
                Method::POST,
                "/admin/v1/projects",
                Some(json!({"name": project_ref, "ref": project_ref})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["data"].clone()
    }

    async fn deploy(&self, project_ref: &str, body: Value) -> (StatusCode, Value) {
        self.admin(
            Method::POST,
            &format!("/admin/v1/projects/{project_ref}/functions"),
            Some(body),
        )
        .await
    }
}

const HELLO: &str = "Deno.serve(() => new Response('hello'));\n";

#[tokio::test]
async fn deploys_are_validated_and_checked_before_anything_is_stored() {
    let p = Platform::start().await;
    p.create_project("fnproj").await;
    let path = "/admin/v1/projects/fnproj/functions";

    // validation, before anything is stored
    for (body, says) in [
        (json!({"slug": "2bad", "body": HELLO}), "slug"),
        (json!({"slug": "a.b", "body": HELLO}), "slug"),
        (json!({"slug": "x".repeat(129), "body": HELLO}), "slug"),
        (json!({"body": HELLO}), "slug"),
        (json!({"slug": "hello"}), "body"),
        (
            json!({"slug": "hello", "body": HELLO, "files": [{"name": "index.ts", "content": HELLO}]}),
            "either",
        ),
        (
            json!({"slug": "hello", "files": [{"name": "../x.ts", "content": HELLO}], "entrypoint": "../x.ts"}),
            "relative path",
        ),
        (
            json!({"slug": "hello", "files": [{"name": "main.ts", "content": HELLO}]}),
            "entrypoint",
        ),
        (json!({"slug": "hello", "body": HELLO, "extra": 1}), "extra"),
    ] {
        let (s, v) = p.deploy("fnproj", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert!(
            v["message"].as_str().unwrap().contains(says),
            "{body} → {v}"
        );
    }
    let (s, _) = p
        .deploy("nosuchproj", json!({"slug": "hello", "body": HELLO}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // a deploy may be larger than other admin requests, up to a full bundle
    let big = format!("{HELLO}// {}\n", "x".repeat(9 * 1024 * 1024));
    let (s, v) = p
        .deploy("fnproj", json!({"slug": "big", "body": big}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let too_big = "x".repeat(21 * 1024 * 1024);
    let (s, v) = p
        .deploy("fnproj", json!({"slug": "big", "body": too_big}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("at most"), "{v}");
    let beyond_any_bundle = "x".repeat(50 * 1024 * 1024);
    let (s, _) = p
        .deploy("fnproj", json!({"slug": "big", "body": beyond_any_bundle}))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = p.admin(Method::DELETE, &format!("{path}/big"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // a syntax error is refused with its file and line
    let broken = json!({"slug": "hello", "files": [
        {"name": "index.ts", "content": "import { a } from './lib/a.ts';\nDeno.serve(() => new Response(a));\n"},
        {"name": "lib/a.ts", "content": "// helper\nexport const a = 'x';\nexport const = 2;\n"},
    ]});
    let (s, v) = p.deploy("fnproj", broken).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("lib/a.ts:3"), "{message}");
    let (_, v) = p.admin(Method::GET, path, None).await;
    assert_eq!(v["data"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn versions_are_numbered_the_last_ten_kept_and_deletes_final() {
    let p = Platform::start().await;
    p.create_project("fnproj").await;
    let path = "/admin/v1/projects/fnproj/functions";

    // created, then new versions
    let (s, v) = p
        .deploy("fnproj", json!({"slug": "hello", "body": HELLO}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let f = &v["data"];
    assert_eq!(
        (
            f["slug"].as_str(),
            f["version"].as_i64(),
            f["verify_jwt"].as_bool()
        ),
        (Some("hello"), Some(1), Some(true))
    );
    assert_eq!(f["status"], "ACTIVE");
    assert_eq!(f["entrypoint"], "index.ts");
    assert!(f["created_at"].is_string() && f["updated_at"].is_string());
    let (_, meta1) = p
        .internal("/internal/v1/projects/fnproj/functions/hello")
        .await;
    let first_deployment = meta1["data"]["version"].as_u64().unwrap();
    for n in 2..=12 {
        let (s, v) = p
            .deploy(
                "fnproj",
                json!({"slug": "hello", "body": format!("// v{n}\n{HELLO}"), "verify_jwt": false}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["data"]["version"], n);
        assert_eq!(v["data"]["verify_jwt"], false);
    }
    let (s, v) = p.admin(Method::GET, &format!("{path}/hello"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let kept: Vec<i64> = v["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(kept, (3..=12).rev().collect::<Vec<_>>());
    // the runtime sees the current deployment; a dropped one is gone
    let (s, meta) = p
        .internal("/internal/v1/projects/fnproj/functions/hello")
        .await;
    assert_eq!(s, StatusCode::OK, "{meta}");
    let current = meta["data"]["version"].as_u64().unwrap();
    assert!(current > first_deployment);
    assert_eq!(meta["data"]["verify_jwt"], false);
    let (s, b) = p
        .internal(&format!(
            "/internal/v1/projects/fnproj/functions/hello/versions/{current}"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["data"]["entrypoint"], "index.ts");
    assert_eq!(b["data"]["files"][0]["content"], format!("// v12\n{HELLO}"));
    let (s, _) = p
        .internal(&format!(
            "/internal/v1/projects/fnproj/functions/hello/versions/{first_deployment}"
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // list, delete
    p.deploy("fnproj", json!({"slug": "another", "body": HELLO}))
        .await;
    let (_, v) = p.admin(Method::GET, path, None).await;
    let slugs: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["another", "hello"]);
    let (s, _) = p
        .admin(Method::DELETE, &format!("{path}/hello"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for (s, _) in [
        p.admin(Method::GET, &format!("{path}/hello"), None).await,
        p.admin(Method::DELETE, &format!("{path}/hello"), None)
            .await,
        p.internal("/internal/v1/projects/fnproj/functions/hello")
            .await,
    ] {
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // created again: version 1, under a deployment id no former worker has
    let (s, v) = p
        .deploy("fnproj", json!({"slug": "hello", "body": HELLO}))
        .await;
    assert_eq!(
        (s, v["data"]["version"].as_i64()),
        (StatusCode::CREATED, Some(1))
    );
    let (_, meta) = p
        .internal("/internal/v1/projects/fnproj/functions/hello")
        .await;
    assert!(meta["data"]["version"].as_u64().unwrap() > current);

    // deploys and deletes are audited
    let (_, v) = p
        .admin(Method::GET, "/admin/v1/audit?limit=1000", None)
        .await;
    let audited = |method: &str, path: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["method"] == method && e["path"] == path)
    };
    assert!(audited("POST", "/admin/v1/projects/fnproj/functions"));
    assert!(audited(
        "DELETE",
        "/admin/v1/projects/fnproj/functions/hello"
    ));
}

#[tokio::test]
async fn the_runtime_reads_functions_and_environments_with_the_service_token_only() {
    let p = Platform::start().await;
    let project = p.create_project("envproj").await;
    let (s, _) = p
        .deploy("envproj", json!({"slug": "hello", "body": HELLO}))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // the admin API needs the admin key; the internal endpoints the service token (not the admin key,
    // not the project's own token)
    let project_token = supactl_common::tokens::project_token(SERVICE_TOKEN, "envproj");
    for bearer in [None, Some("wrong")] {
        let (s, _) = p
            .call(
                Method::POST,
                "/admin/v1/projects/envproj/functions",
                bearer,
                Some(json!({"slug": "x", "body": HELLO})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = p
            .call(
                Method::GET,
                "/admin/v1/projects/envproj/functions",
                bearer,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for path in [
        "/internal/v1/projects/envproj/functions/hello",
        "/internal/v1/projects/envproj/function-env",
    ] {
        for bearer in [None, Some(ADMIN_KEY), Some(project_token.as_str())] {
            let (s, _) = p.call(Method::GET, path, bearer, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} with {bearer:?}");
        }
    }

    // the environment: standard variables and secrets
    let (s, _) = p
        .admin(
            Method::POST,
            "/admin/v1/projects/envproj/secrets",
            Some(json!([{"name": "API_TOKEN", "value": "tok-1"}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, env) = p
        .internal("/internal/v1/projects/envproj/function-env")
        .await;
    assert_eq!(s, StatusCode::OK, "{env}");
    let env = &env["data"];
    assert_eq!(env["api_url"], "http://127.0.0.1:9/p/envproj");
    assert_eq!(env["secrets"], json!([["API_TOKEN", "tok-1"]]));
    let keys = project["api_keys"].as_array().unwrap();
    let key_of =
        |kind: &str| keys.iter().find(|k| k["type"] == kind).unwrap()["opaque_key"].clone();
    assert_eq!(env["publishable_key"], key_of("publishable"));
    assert_eq!(env["secret_key"], key_of("secret"));
    let db_url = env["db_url"].as_str().unwrap();
    assert!(db_url.starts_with("postgresql://"), "{db_url}");
    assert!(
        db_url.contains("/project_envproj?sslmode=disable"),
        "{db_url}"
    );
    let (s, _) = p
        .internal("/internal/v1/projects/nosuch/function-env")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // the revision follows secrets and keys
    let revision = || async {
        let (s, v) = p
            .internal("/internal/v1/projects/envproj/functions/hello")
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["env_revision"].as_u64().unwrap()
    };
    let r0 = revision().await;
    assert_eq!(r0, revision().await, "stable while nothing changes");
    p.admin(
        Method::POST,
        "/admin/v1/projects/envproj/secrets",
        Some(json!([{"name": "API_TOKEN", "value": "tok-2"}])),
    )
    .await;
    let r1 = revision().await;
    assert_ne!(r0, r1, "a secret changed");
    let (s, _) = p
        .admin(
            Method::DELETE,
            "/admin/v1/projects/envproj/secrets",
            Some(json!(["API_TOKEN"])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r2 = revision().await;
    assert!(r2 != r1 && r2 != r0, "a secret deleted");
    let (s, _) = p
        .admin(
            Method::POST,
            "/admin/v1/projects/envproj/api-keys",
            Some(json!({"type": "secret", "name": "second"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(r2, revision().await, "a key added");

    // a project's delete takes its functions with it
    let (s, _) = p
        .admin(Method::DELETE, "/admin/v1/projects/envproj", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = p
        .internal("/internal/v1/projects/envproj/functions/hello")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_changes_code_or_settings() {
    let p = Platform::start().await;
    p.create_project("fnproj").await;
    let path = "/admin/v1/projects/fnproj/functions";
    let (s, _) = p
        .deploy(
            "fnproj",
            json!({"slug": "hello", "body": HELLO, "verify_jwt": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // PATCH: settings alone keep the version; code or entrypoint make a new one
    let patch = |body: Value| {
        p.admin(
            Method::PATCH,
            "/admin/v1/projects/fnproj/functions/hello",
            Some(body),
        )
    };
    let (s, v) = patch(json!({"verify_jwt": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["data"]["version"].as_i64(),
            v["data"]["verify_jwt"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let (s, v) = patch(json!({"files": [
        {"name": "main.ts", "content": "import './util.ts';\nDeno.serve(() => new Response('main'));\n"},
        {"name": "util.ts", "content": "export {};\n"},
    ], "entrypoint": "main.ts", "import_map": {"imports": {"lodash": "npm:lodash@4"}}}))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["version"], 2);
    assert_eq!(v["data"]["entrypoint"], "main.ts");
    assert_eq!(v["data"]["import_map"], true);
    let (s, v) = patch(json!({"entrypoint": "util.ts"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["version"], 3);
    let (_, meta) = p
        .internal("/internal/v1/projects/fnproj/functions/hello")
        .await;
    let (_, b) = p
        .internal(&format!(
            "/internal/v1/projects/fnproj/functions/hello/versions/{}",
            meta["data"]["version"]
        ))
        .await;
    assert_eq!(b["data"]["entrypoint"], "util.ts");
    assert_eq!(
        b["data"]["files"].as_array().unwrap().len(),
        2,
        "files kept"
    );
    assert_eq!(
        b["data"]["import_map"],
        r#"{"imports":{"lodash":"npm:lodash@4"}}"#
    );
    let (s, v) = patch(json!({"body": "export const = ;"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = patch(json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = patch(json!({"slug": "renamed", "verify_jwt": false})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = p
        .admin(
            Method::PATCH,
            &format!("{path}/nosuch"),
            Some(json!({"verify_jwt": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
