//! The dashboard's page and sessions against a real PostgreSQL cluster, through the tenant-manager's own
//! router: the page and its files with their security headers, sign-in with the admin key (a wrong key is
//! refused and audited), the session cookie's flags, the admin API reached with the session only together
//! with its CSRF token, resume after a reload, sign-out ending the session, and the SQL endpoint's
//! described shape (column types, NULLs, the error's position).

use axum::body::Body;
use axum::Router;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use tenant_manager::{Config, TenantManager, WorkerSpec};
use tower::ServiceExt;

const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A throwaway cluster (kept alive by the caller) and the tenant-manager's router over it.
async fn start() -> (TestCluster, Router) {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let app = router(&cluster).await;
    (cluster, app)
}

async fn router(cluster: &TestCluster) -> Router {
    let db_url = cluster.url("postgres");
    let tm = TenantManager::start(Config {
        database_url: db_url.clone(),
        admin_key: ADMIN_KEY.into(),
        service_token: "test-service-token-0123456789".into(),
        encryption_key: "test-encryption-key".into(),
        api_url_template: "http://127.0.0.1:9/p/{ref}".into(),
        local_worker: Some(WorkerSpec::from_url("local", &db_url).unwrap()),
        redis_url: None,
        project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
        capacity: tenant_manager::Capacity::default(),
    })
    .await
    .unwrap();
    tenant_manager::router(tm)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Body::from(body.map(|v| v.to_string()).unwrap_or_default()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let raw = body.collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

/// Signs in; the cookie header to send back and the CSRF token.
async fn sign_in(app: &Router) -> (String, String) {
    let r = send(
        app,
        Method::POST,
        "/dashboard/v1/session",
        &[],
        Some(json!({"admin_key": ADMIN_KEY})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains(ADMIN_KEY));
    let pair = cookie.split(';').next().unwrap().to_string();
    (pair, r.body["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let (_cluster, app) = start().await;
    let page = send(&app, Method::GET, "/", &[], None).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let html = String::from_utf8(page.raw).unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(script.starts_with("/assets/"), "{html}");
    let js = send(
        &app,
        Method::GET,
        &script,
        &[("accept-encoding", "gzip, br")],
        None,
    )
    .await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.headers[header::CONTENT_ENCODING], "gzip");
    assert!(js.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let missing = send(&app, Method::GET, "/assets/nope.js", &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_reaches_the_admin_api_only_with_its_csrf_token() {
    let (_cluster, app) = start().await;

    let wrong = send(
        &app,
        Method::POST,
        "/dashboard/v1/session",
        &[],
        Some(json!({"admin_key": "nope"})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["code"], "invalid_admin_key");
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let (cookie, csrf) = sign_in(&app).await;
    let (other_cookie, other_csrf) = sign_in(&app).await;
    assert_ne!(csrf, other_csrf);
    let list = send(
        &app,
        Method::GET,
        "/admin/v1/projects",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    for bad in [None, Some(other_csrf.as_str()), Some("")] {
        let mut h = vec![("cookie", cookie.as_str())];
        if let Some(t) = bad {
            h.push(("x-csrf-token", t));
        }
        let r = send(
            &app,
            Method::POST,
            "/admin/v1/projects",
            &h,
            Some(json!({"name": "csrf"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}: {:?}", r.body);
        assert_eq!(r.body["code"], "csrf_mismatch");
    }
    let created = send(
        &app,
        Method::POST,
        "/admin/v1/projects",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(json!({"name": "from the dashboard"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    // A reload resumes with the same CSRF token; the audit log names the dashboard session.
    let resumed = send(
        &app,
        Method::GET,
        "/dashboard/v1/session",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(resumed.body["csrf_token"], csrf.as_str());
    let audit = send(
        &app,
        Method::GET,
        "/admin/v1/audit?limit=20",
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        None,
    )
    .await;
    let rows = audit.body["data"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["path"] == "/admin/v1/projects"
            && r["actor"]
                .as_str()
                .unwrap()
                .starts_with("dashboard:admin-key:")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["path"] == "/dashboard/v1/session" && r["outcome"] == "unauthorized"),
        "{rows:?}"
    );

    // Signing out ends this session (everywhere: it is gone from the platform database), not the other.
    let out = send(
        &app,
        Method::DELETE,
        "/dashboard/v1/session",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = send(
        &app,
        Method::GET,
        "/admin/v1/projects",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.body["code"], "session_expired");
    let still = send(
        &app,
        Method::GET,
        "/admin/v1/projects",
        &[("cookie", &other_cookie), ("x-csrf-token", &other_csrf)],
        None,
    )
    .await;
    assert_eq!(still.status, StatusCode::OK);
    let none = send(&app, Method::GET, "/dashboard/v1/session", &[], None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_sql_endpoint_describes_columns_and_marks_errors() {
    let (_cluster, app) = start().await;
    let (cookie, csrf) = sign_in(&app).await;
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let p = send(
        &app,
        Method::POST,
        "/admin/v1/projects",
        &h,
        Some(json!({"name": "sql"})),
    )
    .await;
    let r = p.body["data"]["ref"].as_str().unwrap().to_string();
    let path = format!("/admin/v1/projects/{r}/database/query");
    let q = |sql: &str| json!({"query": sql, "describe": true});

    let ok = send(&app, Method::POST, &path, &h, Some(q("create table t (id int8 primary key, note text); insert into t values (1, null), (2, 'two'); select id, note, now() > '2000-01-01' as recent from t order by id"))).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let d = &ok.body["data"];
    assert_eq!(
        d["columns"],
        json!([{"name": "id", "type": "int8"}, {"name": "note", "type": "text"}, {"name": "recent", "type": "bool"}])
    );
    assert_eq!(d["rows"], json!([[1, null, true], [2, "two", true]]));

    let empty = send(
        &app,
        Method::POST,
        &path,
        &h,
        Some(q("select id from t where false")),
    )
    .await;
    assert_eq!(
        empty.body["data"]["columns"],
        json!([{"name": "id", "type": "int8"}])
    );
    assert_eq!(empty.body["data"]["rows"], json!([]));
    let ddl = send(
        &app,
        Method::POST,
        &path,
        &h,
        Some(q("select 1; delete from t where id = 1")),
    )
    .await;
    assert_eq!(
        ddl.body["data"],
        json!({"columns": [], "rows": [], "affected": 1})
    );

    let bad = send(
        &app,
        Method::POST,
        &path,
        &h,
        Some(q("select 1;\nselect nope from t")),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["code"], "42703");
    assert_eq!(bad.body["position"], 18, "{:?}", bad.body);
}
