//! The dashboard's page and sessions against a real PostgreSQL cluster, through the tenant-manager's own
//! router: the page and its files with their security headers, sign-in with the admin key (a wrong key is
//! refused and audited), the session cookie's flags, the admin API reached with the session only together
//! with its CSRF token, resume after a reload, sign-out ending the session, and the SQL endpoint's
//! described shape (column types, NULLs, the error's position), a project's auth users created, sent a
//! recovery email and deleted through its own auth service (refusals in GoTrue's codes, audited), and the
//! types a column can have.

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

/// Runs SQL in the project through the admin API (the dashboard's described shape); the rows.
async fn rows_of(app: &Router, h: &[(&str, &str)], r: &str, sql: &str) -> Value {
    let res = send(
        app,
        Method::POST,
        &format!("/admin/v1/projects/{r}/database/query"),
        h,
        Some(json!({"query": sql, "describe": true})),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{sql}: {:?}", res.body);
    res.body["data"]["rows"].clone()
}

#[tokio::test]
async fn auth_users_are_created_recovered_and_deleted_by_the_projects_auth_service() {
    let (_cluster, app) = start().await;
    let (cookie, csrf) = sign_in(&app).await;
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let p = send(
        &app,
        Method::POST,
        "/admin/v1/projects",
        &h,
        Some(json!({"name": "users"})),
    )
    .await;
    let r = p.body["data"]["ref"].as_str().unwrap().to_string();
    let users = format!("/admin/v1/projects/{r}/auth/users");
    let password = "dashboard-password-0123";
    let new_user = json!({"email": "Ada@Example.com", "password": password, "email_confirm": true});

    // The session alone (no CSRF token) and no credentials at all are refused.
    let no_csrf = send(
        &app,
        Method::POST,
        &users,
        &[("cookie", &cookie)],
        Some(new_user.clone()),
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.body["code"], "csrf_mismatch");
    let anonymous = send(&app, Method::POST, &users, &[], Some(new_user.clone())).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // GoTrue's admin create: the address normalised, confirmed at once, the password hashed.
    let created = send(&app, Method::POST, &users, &h, Some(new_user.clone())).await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let user = &created.body["data"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["role"], "authenticated");
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    let id = user["id"].as_str().unwrap().to_string();
    let stored = rows_of(
        &app,
        &h,
        &r,
        "select left(encrypted_password, 4), encrypted_password = 'dashboard-password-0123' from auth.users",
    )
    .await;
    assert_eq!(stored, json!([["$2b$", false]]));

    // GoTrue's refusals, in the admin API's shape with GoTrue's codes.
    let again = send(&app, Method::POST, &users, &h, Some(new_user.clone())).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.body["code"], "email_exists");
    let weak = send(
        &app,
        Method::POST,
        &users,
        &h,
        Some(json!({"email": "b@example.com", "password": "short"})),
    )
    .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.body["code"], "weak_password");

    // Recovery: a token is stored and its mail sent (no mailer here: logged); a repeat within the
    // project's send interval is refused as GoTrue refuses it.
    let recover = format!("/admin/v1/projects/{r}/auth/recover");
    let sent = send(
        &app,
        Method::POST,
        &recover,
        &h,
        Some(json!({"email": "ada@example.com"})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    let token = rows_of(
        &app,
        &h,
        &r,
        "select recovery_sent_at is not null, recovery_token <> '' from auth.users",
    )
    .await;
    assert_eq!(token, json!([[true, true]]));
    let repeat = send(
        &app,
        Method::POST,
        &recover,
        &h,
        Some(json!({"email": "ada@example.com"})),
    )
    .await;
    assert_eq!(repeat.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(repeat.body["code"], "over_email_send_rate_limit");

    // Delete; a second time the user is not found.
    let one = format!("{users}/{id}");
    let deleted = send(&app, Method::DELETE, &one, &h, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    assert_eq!(
        rows_of(&app, &h, &r, "select count(*) from auth.users").await,
        json!([[0]])
    );
    let gone = send(&app, Method::DELETE, &one, &h, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["code"], "user_not_found");

    // Audited like every admin mutation (which session, what, the outcome), and no password in the log.
    let audit = send(
        &app,
        Method::GET,
        "/admin/v1/audit?limit=50",
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        None,
    )
    .await;
    let rows = audit.body["data"].as_array().unwrap();
    let seen = |path: &str, method: &str, outcome: &str| {
        rows.iter().any(|row| {
            row["path"] == path
                && row["method"] == method
                && row["outcome"] == outcome
                && row["actor"]
                    .as_str()
                    .unwrap()
                    .starts_with("dashboard:admin-key:")
        })
    };
    assert!(seen(&users, "POST", "success"), "{rows:?}");
    assert!(seen(&users, "POST", "failure"), "{rows:?}");
    assert!(seen(&recover, "POST", "success"), "{rows:?}");
    assert!(seen(&one, "DELETE", "success"), "{rows:?}");
    assert!(!String::from_utf8_lossy(&audit.raw).contains(password));

    // A paused project's auth is not reached (its pool was dropped with the change).
    let paused = send(
        &app,
        Method::POST,
        &format!("/admin/v1/projects/{r}/pause"),
        &h,
        None,
    )
    .await;
    assert_eq!(paused.status, StatusCode::OK, "{:?}", paused.body);
    let refused = send(&app, Method::POST, &users, &h, Some(new_user)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
}

#[tokio::test]
async fn types_say_which_can_be_a_column() {
    let (_cluster, app) = start().await;
    let auth = format!("Bearer {ADMIN_KEY}");
    let h = [("authorization", auth.as_str())];
    let p = send(
        &app,
        Method::POST,
        "/admin/v1/projects",
        &h,
        Some(json!({"name": "types"})),
    )
    .await;
    let r = p.body["data"]["ref"].as_str().unwrap().to_string();
    rows_of(
        &app,
        &h,
        &r,
        "create type mood as enum ('happy', 'sad'); create domain positive as int check (value > 0)",
    )
    .await;
    let types = send(
        &app,
        Method::GET,
        &format!("/admin/v1/projects/{r}/database/types?include_system_schemas=true&included_schemas=pg_catalog,public"),
        &h,
        None,
    )
    .await;
    assert_eq!(types.status, StatusCode::OK, "{:?}", types.body);
    let list = types.body["data"].as_array().unwrap();
    let kind = |schema: &str, format: &str| {
        list.iter()
            .find(|t| t["schema"] == schema && t["format"] == format)
            .map(|t| (t["type"].clone(), t["category"].clone()))
    };
    assert_eq!(kind("public", "mood"), Some((json!("enum"), json!("E"))));
    assert_eq!(kind("public", "positive").unwrap().0, "domain");
    assert_eq!(
        kind("pg_catalog", "bigint"),
        Some((json!("base"), json!("N")))
    );
    assert_eq!(kind("pg_catalog", "void").unwrap().0, "pseudo");
    assert_eq!(
        list.iter().find(|t| t["name"] == "mood").unwrap()["enums"],
        json!(["happy", "sad"])
    );
    // Array types are not listed on their own (as in postgres-meta).
    assert!(kind("pg_catalog", "bigint[]").is_none());
}
