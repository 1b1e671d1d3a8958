//! The auth router in-process (`oneshot`) against a real project database: a throwaway PostgreSQL
//! cluster, the tenant-manager provisioning the project from the template and serving its config.
//! The gateway's role is played by signing the forwarded JWT with the project's secret, as it does.

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use pgcluster::TestCluster;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::http_client::HttpClient;
use supactl_common::jwt;
use supactl_common::wire::ProjectConfig;
use tokio::net::TcpListener;
use tower::ServiceExt;

const REF: &str = "auth-flows";

struct Env {
    _cluster: TestCluster,
    router: Router,
    project: Arc<ProjectConfig>,
}

async fn env() -> Env {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", listener.local_addr().unwrap());
    let db_url = cluster.url("postgres");
    let tm = tenant_manager::TenantManager::start(tenant_manager::Config {
        database_url: db_url.clone(),
        admin_key: "test-admin-key-0123456789".into(),
        service_token: "test-service-token-0123456789".into(),
        encryption_key: "test-encryption-key".into(),
        api_url_template: "http://gw.test/p/{ref}".into(),
        local_worker: Some(tenant_manager::WorkerSpec::from_url("local", &db_url).unwrap()),
        redis_url: None,
        capacity: tenant_manager::Capacity::default(),
    })
    .await
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, tenant_manager::router(tm)).await });
    let req = http::Request::post(format!("{admin_url}/admin/v1/projects"))
        .header("authorization", "Bearer test-admin-key-0123456789")
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(
            json!({"name": "flows", "ref": REF}).to_string(),
        )))
        .unwrap();
    let (status, body) = HttpClient::new(Duration::from_secs(60))
        .send(req)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    let directory = Arc::new(Directory::new(DirectoryConfig {
        url: admin_url,
        service_token: "test-service-token-0123456789".into(),
        ttl: Duration::from_secs(30),
        stale_for: DirectoryConfig::DEFAULT_STALE_FOR,
    }));
    let project = directory.project(REF).await.unwrap().unwrap();
    let auth = auth::Auth::new(
        directory,
        auth::AuthConfig {
            api_url_template: "http://gw.test/p/{ref}".into(),
            ..auth::AuthConfig::default()
        },
    );
    Env {
        _cluster: cluster,
        router: auth::router(auth),
        project,
    }
}

impl Env {
    /// The JWT the gateway would forward for `role` (plus user claims).
    fn minted(&self, role: &str, extra: Value) -> String {
        let mut claims = Map::new();
        claims.insert("role".into(), json!(role));
        claims.insert("exp".into(), json!(jwt::now() + 300));
        if let Value::Object(m) = extra {
            claims.extend(m);
        }
        jwt::sign(&claims, self.project.signing_secret())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        modern: bool,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(auth::PROJECT_HEADER, REF)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if modern {
            req = req.header("x-supabase-api-version", "2024-01-01");
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_flows_against_a_real_project_database() {
    let env = env().await;
    let anon = env.minted("anon", json!({}));

    // Signup signs in (autoconfirm), the access token verifies with the project's secret.
    let creds = json!({"email": "Flow@Example.com", "password": "flow-pass-1"});
    let (status, session) = env
        .call("POST", "/signup", Some(&anon), true, creds.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let claims = jwt::verify(
        session["access_token"].as_str().unwrap(),
        &env.project.verification_secrets(),
        jwt::now(),
    )
    .unwrap();
    assert_eq!(claims["email"], "flow@example.com");
    assert_eq!(claims["iss"], format!("http://gw.test/p/{REF}/auth/v1"));

    // Legacy clients get GoTrue's legacy error shape.
    let (status, err) = env
        .call("POST", "/signup", Some(&anon), false, creds.clone())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err,
        json!({"code": 422, "error_code": "user_already_exists", "msg": "User already registered"})
    );

    // Concurrent refreshes of one token (several tabs): they serialise on the session, the first
    // rotates and the others get the same new token back; nobody is logged out.
    let rt = session["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (env_router, anon, rt) = (env.router.clone(), anon.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/token?grant_type=refresh_token")
                .header(auth::PROJECT_HEADER, REF)
                .header("authorization", format!("Bearer {anon}"))
                .body(Body::from(json!({"refresh_token": rt}).to_string()))
                .unwrap();
            let res = env_router.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            body["refresh_token"].as_str().unwrap().to_string()
        }));
    }
    let mut issued = Vec::new();
    for t in tasks {
        issued.push(t.await.unwrap());
    }
    issued.dedup();
    assert_eq!(issued.len(), 1, "one rotation for concurrent refreshes");
    assert_ne!(issued[0], rt);

    // The user's own endpoints need the user's claims; admin endpoints need service_role.
    let user_token = env.minted(
        "authenticated",
        json!({"sub": claims["sub"], "session_id": claims["session_id"]}),
    );
    let (status, user) = env
        .call("GET", "/user", Some(&user_token), true, json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["email"], "flow@example.com");
    let (status, err) = env
        .call("GET", "/user", Some(&anon), true, json!(null))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_jwt"))
    );
    let (status, err) = env
        .call("GET", "/admin/users", Some(&user_token), true, json!(null))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_admin"))
    );
    let service = env.minted("service_role", json!({}));
    let (status, list) = env
        .call("GET", "/admin/users", Some(&service), true, json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["users"].as_array().unwrap().len(), 1);

    // Only the gateway's JWT for this project is accepted.
    let forged = jwt::sign(
        json!({"role": "service_role"}).as_object().unwrap(),
        b"not-the-secret",
    );
    let (status, err) = env
        .call("GET", "/admin/users", Some(&forged), true, json!(null))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_jwt"))
    );
    let (status, _) = env.call("GET", "/health", None, true, json!(null)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Global logout ends every session: the rotated token no longer refreshes.
    let (status, _) = env
        .call("POST", "/logout", Some(&user_token), true, json!(null))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = env
        .call(
            "POST",
            "/token?grant_type=refresh_token",
            Some(&anon),
            true,
            json!({"refresh_token": issued[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "refresh_token_not_found");
}
