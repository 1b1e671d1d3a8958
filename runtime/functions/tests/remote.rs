//! The runtime over the real control plane: a tenant-manager on a throwaway PostgreSQL cluster (testkit's
//! `ControlPlane`), the [`RemoteStore`] reading it with the service token, a real [`Supervisor`] running
//! real Deno workers, invoked through [`functions::router`] in-process. Functions are deployed, changed
//! and deleted with the admin API, secrets set with the admin secrets API.
//!
//! One stand-in: the gateway, which authenticates the caller, is not composed with the runtime yet, so
//! each request carries the [`Caller`] it would set.

mod common;

use axum::body::Body;
use axum::Router;
use functions::{Caller, FunctionStore, NetPolicy, RemoteConfig, RemoteStore, StoreError};
use functions::{Supervisor, SupervisorConfig};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::ControlPlane;
use tower::ServiceExt;

const PROJECT: &str = "fnremote";

struct Setup {
    cp: ControlPlane,
    app: Router,
    supervisor: Supervisor,
    _work_dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let cp = ControlPlane::start("http://127.0.0.1:9/p/{ref}").await;
        cp.create_project("remote", PROJECT).await;
        let store = RemoteStore::new(RemoteConfig {
            url: cp.admin_url.clone(),
            service_token: cp.service_token.clone(),
        });
        let work_dir = tempfile::Builder::new()
            .prefix("fn")
            .tempdir_in("/tmp")
            .unwrap();
        let config = SupervisorConfig::new(
            common::deno(),
            work_dir.path().to_path_buf(),
            NetPolicy::platform(None, &[]),
        );
        let supervisor = Supervisor::new(config, Arc::new(store)).unwrap();
        Setup {
            cp,
            app: functions::router(supervisor.clone()),
            supervisor,
            _work_dir: work_dir,
        }
    }

    /// Deploys `source` as `hello` (verify_jwt off); returns the admin API's status.
    async fn deploy(&self, source: &str) -> StatusCode {
        let started = Instant::now();
        let (s, v) = self
            .cp
            .admin(
                Method::POST,
                &format!("/admin/v1/projects/{PROJECT}/functions"),
                Some(json!({"slug": "hello", "body": source, "verify_jwt": false})),
            )
            .await;
        assert!(s.is_success(), "{v}");
        eprintln!(
            "deploy (Deno's check included) answered in {:?}",
            started.elapsed()
        );
        s
    }

    async fn set_secret(&self, name: &str, value: &str) {
        let (s, v) = self
            .cp
            .admin(
                Method::POST,
                &format!("/admin/v1/projects/{PROJECT}/secrets"),
                Some(json!([{"name": name, "value": value}])),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    /// Invokes `hello` as an API-key caller of the project: the status and the body.
    async fn invoke(&self) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/hello/sub?x=1")
            .header("host", "127.0.0.1:9")
            .body(Body::from("ping"))
            .unwrap();
        req.extensions_mut().insert(Caller {
            project_ref: PROJECT.into(),
            jwt_verified: false,
        });
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Invokes until the answer is `want`; fails past `within`. Returns how long it took.
    async fn until(&self, want: (StatusCode, &str), within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (status, body) = self.invoke().await;
            if status == want.0 && body.contains(want.1) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "still {status} {body:?} after {within:?}, expected {want:?}; logs: {:?}",
                self.supervisor.logs(PROJECT, "hello")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn version(v: u32) -> String {
    format!(
        "Deno.serve(async (req) => new Response(\
           `v{v} ${{new URL(req.url).pathname}} ${{await req.text()}} ${{Deno.env.get('GREETING')}}`));\n"
    )
}

#[tokio::test]
async fn functions_deployed_through_the_admin_api_run_and_follow_redeploys_deletes_and_secrets() {
    let s = Setup::start().await;
    let (status, body) = s.invoke().await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // (the sandbox lets a function read the variables it has, and no other name: reading an unset
    // one throws, so the secret exists from the start and changes later)
    s.set_secret("GREETING", "hello").await;

    // (the 404 is cached as briefly as any answer: a new function is served within a second too)
    assert_eq!(s.deploy(&version(1)).await, StatusCode::CREATED);
    s.until((StatusCode::OK, "v1 "), Duration::from_secs(1))
        .await;
    let (status, body) = s.invoke().await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "v1 /hello/sub ping hello")
    );

    // a redeploy is served within a second of its answer
    assert_eq!(s.deploy(&version(2)).await, StatusCode::OK);
    let took = s
        .until((StatusCode::OK, "v2 "), Duration::from_secs(1))
        .await;
    eprintln!("redeploy seen after {took:?}");

    // a secret set with the admin API reaches the function's environment (its workers restart)
    s.set_secret("GREETING", "hi there").await;
    let took = s
        .until(
            (StatusCode::OK, "v2 /hello/sub ping hi there"),
            Duration::from_secs(1),
        )
        .await;
    eprintln!("secret seen after {took:?}");

    // a delete answers 404 within a second
    let (st, _) =
        s.cp.admin(
            Method::DELETE,
            &format!("/admin/v1/projects/{PROJECT}/functions/hello"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.until((StatusCode::NOT_FOUND, ""), Duration::from_secs(1))
        .await;
    let (_, body) = s.invoke().await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("hello"), "{v}");
}

#[tokio::test]
async fn the_store_needs_the_service_token_and_caches_code_by_deployment() {
    let s = Setup::start().await;
    s.deploy("Deno.serve(() => new Response('x'));\n").await;
    let wrong = RemoteStore::new(RemoteConfig {
        url: s.cp.admin_url.clone(),
        service_token: "not-the-token".into(),
    });
    assert!(matches!(
        wrong.function(PROJECT, "hello").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(wrong.environment(PROJECT).await.is_err());

    let store = RemoteStore::new(RemoteConfig {
        url: s.cp.admin_url.clone(),
        service_token: s.cp.service_token.clone(),
    });
    let meta = store.function(PROJECT, "hello").await.unwrap().unwrap();
    assert!(!meta.verify_jwt);
    assert_eq!(store.function(PROJECT, "nosuch").await.unwrap(), None);
    assert_eq!(store.function(PROJECT, "../x").await.unwrap(), None);
    let bundle = store.bundle(PROJECT, "hello", meta.version).await.unwrap();
    assert_eq!(bundle.entrypoint, "index.ts");
    let env = store.environment(PROJECT).await.unwrap();
    assert_eq!(env.api_url, format!("http://127.0.0.1:9/p/{PROJECT}"));
    assert!(env.secret_key.starts_with("sb_secret_"), "{env:?}");

    // once fetched, a deployment's code comes from the cache, even after the function is gone
    s.cp.admin(
        Method::DELETE,
        &format!("/admin/v1/projects/{PROJECT}/functions/hello"),
        None,
    )
    .await;
    assert_eq!(
        store.bundle(PROJECT, "hello", meta.version).await.unwrap(),
        bundle
    );
    let fresh = RemoteStore::new(RemoteConfig {
        url: s.cp.admin_url.clone(),
        service_token: s.cp.service_token.clone(),
    });
    assert!(matches!(
        fresh.bundle(PROJECT, "hello", meta.version).await,
        Err(StoreError::VersionGone)
    ));
}
