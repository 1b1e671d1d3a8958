//! A project's own database role is confined to its project: it connects to its own database only, holds
//! a bounded number of sessions, cannot read the cluster-wide catalogs that name other projects and their
//! sessions, and what it writes into the shared API roles' settings is inert and cleared. Per-project limits
//! are set through the admin API and reach the data plane in the project's config.

mod common;

use common::{Platform, Project};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// The project's own connection settings, as the data plane receives them.
async fn db_config(p: &Platform, project_ref: &str) -> Value {
    let auth = format!("Bearer {}", p.service_token);
    let (s, v) = p
        .call(
            Method::GET,
            &format!("{}/internal/v1/projects/{project_ref}/config", p.admin_url),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"].clone()
}

/// Connects as the project's login role to `dbname`.
async fn connect_as(
    cfg: &Value,
    dbname: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let db = &cfg["db"];
    let mut c = tokio_postgres::Config::new();
    c.host(db["host"].as_str().unwrap())
        .port(db["port"].as_u64().unwrap() as u16)
        .user(db["user"].as_str().unwrap())
        .password(db["password"].as_str().unwrap())
        .dbname(dbname);
    let (client, conn) = c.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Runs SQL through the admin API, asserting success.
async fn sql_ok(p: &Platform, project: &Project, query: &str) {
    let (s, v) = p.sql(project, query).await;
    assert_eq!(s, StatusCode::OK, "{query}: {v}");
}

async fn conn_limit(admin: &tokio_postgres::Client, user: &str) -> i32 {
    admin
        .query_one(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}

/// Rows of role settings the shared `anon` role has, in any database.
async fn anon_settings(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
             WHERE r.rolname = 'anon'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.as_db_error().map(|d| d.code())
}

#[tokio::test]
async fn a_project_role_reaches_only_its_own_database() {
    let p = Platform::start().await;
    let a = p.create("confine-a").await;
    p.create("confine-b").await;
    let cfg = db_config(&p, &a.project_ref).await;
    let own = cfg["db"]["dbname"].as_str().unwrap().to_string();
    let c = connect_as(&cfg, &own).await.expect("its own database");
    c.batch_execute("CREATE TEMP TABLE t (x int)")
        .await
        .unwrap();
    for other in [
        "postgres",
        "template1",
        "supactl_platform",
        "supactl_template",
        "project_confine_b",
    ] {
        let e = connect_as(&cfg, other)
            .await
            .err()
            .unwrap_or_else(|| panic!("the project's role connected to {other}"));
        assert!(
            matches!(
                code(&e),
                Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE
                    || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            ),
            "{other}: {e}"
        );
    }
}

#[tokio::test]
async fn project_roles_cannot_list_other_projects_or_sessions() {
    let p = Platform::start().await;
    let a = p.create("catalog-a").await;
    p.create("catalog-b").await;
    let cfg = db_config(&p, &a.project_ref).await;
    let c = connect_as(&cfg, cfg["db"]["dbname"].as_str().unwrap())
        .await
        .unwrap();
    for role in ["", "anon", "authenticated", "service_role"] {
        if !role.is_empty() {
            c.batch_execute(&format!("SET ROLE {role}")).await.unwrap();
        }
        for q in [
            "SELECT count(*) FROM pg_database",
            "SELECT count(*) FROM pg_stat_activity",
            "SELECT count(*) FROM pg_stat_get_activity(NULL)",
            "SELECT count(*) FROM pg_roles",
            "SELECT count(*) FROM pg_user",
            "SELECT count(*) FROM pg_db_role_setting",
            "SELECT count(*) FROM pg_stat_database",
            "SELECT pg_stat_get_backend_dbid(1)",
        ] {
            let e = c
                .query_one(q, &[])
                .await
                .err()
                .unwrap_or_else(|| panic!("{q} as {role:?} was allowed"));
            assert_eq!(
                code(&e),
                Some(&SqlState::INSUFFICIENT_PRIVILEGE),
                "{q} as {role:?}: {e}"
            );
        }
        c.batch_execute("RESET ROLE").await.unwrap();
    }
    // The REST engine's schema cache, which reads the role's own `pgrst.*` settings, still works.
    sql_ok(&p, &a, "CREATE TABLE public.items (id int primary key); INSERT INTO public.items VALUES (1), (2), (3);")
        .await;
    let admin = p.project_db(&a.project_ref).await;
    admin
        .batch_execute(&format!(
            "ALTER ROLE {} SET pgrst.db_max_rows = '2'",
            cfg["db"]["user"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let (s, rows) = rest_get(&p, &a, "/rest/v1/items?select=id").await;
    assert_eq!(s, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 2, "db_max_rows applies");
}

async fn rest_get(p: &Platform, a: &Project, path: &str) -> (StatusCode, Value) {
    p.call(
        Method::GET,
        &format!("{}{path}", a.api_url),
        &[("apikey", &a.secret)],
        None,
    )
    .await
}

#[tokio::test]
async fn connection_limit_default_and_per_project() {
    let p = Platform::start().await;
    let a = p.create("connlimit").await;
    let cfg = db_config(&p, &a.project_ref).await;
    let user = cfg["db"]["user"].as_str().unwrap().to_string();
    let admin = p.connect("postgres").await;
    let path = format!("/admin/v1/projects/{}", a.project_ref);
    let (_, v) = p.admin(Method::GET, &path, None).await;
    let default = v["data"]["limits"]["connection_limit"].as_i64().unwrap() as i32;
    assert!(default > 2, "{v}");
    assert_eq!(conn_limit(&admin, &user).await, default);

    let (s, v) = p
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"limits": {"connection_limit": 2, "anon_statement_timeout_ms": 1500}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["limits"]["connection_limit"], 2);
    assert_eq!(v["data"]["limits"]["anon_statement_timeout_ms"], 1500);
    assert_eq!(
        v["data"]["limits"]["authenticated_statement_timeout_ms"],
        8000
    );
    assert_eq!(conn_limit(&admin, &user).await, 2);
    // The data plane gets the timeouts with the project's config.
    let cfg = db_config(&p, &a.project_ref).await;
    assert_eq!(cfg["limits"]["anon_statement_timeout_ms"], 1500);
    assert_eq!(cfg["limits"]["service_role_statement_timeout_ms"], 8000);

    let dbname = cfg["db"]["dbname"].as_str().unwrap().to_string();
    let _one = connect_as(&cfg, &dbname).await.unwrap();
    let _two = connect_as(&cfg, &dbname).await.unwrap();
    let Err(e) = connect_as(&cfg, &dbname).await else {
        panic!("a third session was allowed");
    };
    assert_eq!(code(&e), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");

    // Back to the default; bad values are refused by name and change nothing.
    let (s, v) = p
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"limits": {"connection_limit": null}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"]["limits"]["overridden"],
        json!(["anon_statement_timeout_ms"])
    );
    for bad in [
        json!({"limits": {"connection_limit": 0}}),
        json!({"limits": {"statement_timeout": 5}}),
        json!({}),
    ] {
        let (s, v) = p.admin(Method::PATCH, &path, Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    assert_eq!(conn_limit(&admin, &user).await, default);
}

/// What a project writes into the shared roles' settings (PostgreSQL lets `anon` change its own) never
/// applies to anyone (the roles cannot log in, and `SET ROLE` does not apply role settings), and the
/// tenant-manager clears it when it next prepares the worker.
#[tokio::test]
async fn shared_role_settings_written_by_a_project_are_inert_and_cleared() {
    let p = Platform::start().await;
    let a = p.create("shared-a").await;
    let b = p.create("shared-b").await;
    sql_ok(&p, &a,
        "CREATE FUNCTION public.tamper() RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           EXECUTE 'ALTER ROLE anon SET search_path = nowhere';
           EXECUTE 'ALTER ROLE anon SET statement_timeout = 0';
           EXECUTE format('ALTER ROLE anon IN DATABASE %I SET search_path = nowhere', 'project_shared_b');
         END $$;",
    )
    .await;
    let (s, v) = p
        .call(
            Method::POST,
            &format!("{}/rest/v1/rpc/tamper", a.api_url),
            &[("apikey", &a.anon), ("content-type", "application/json")],
            Some(json!({})),
        )
        .await;
    assert!(
        s.is_success(),
        "PostgreSQL lets anon set its own defaults: {s} {v}"
    );
    let admin = p.connect("postgres").await;
    assert_eq!(anon_settings(&admin).await, 2, "the tampering was recorded");

    // Project B's anon requests are unaffected (search_path and timeout come from the request).
    sql_ok(
        &p,
        &b,
        "CREATE TABLE public.notes (id int primary key); INSERT INTO public.notes VALUES (1);",
    )
    .await;
    let (s, v) = p
        .call(
            Method::GET,
            &format!("{}/rest/v1/notes?select=id", b.api_url),
            &[("apikey", &b.anon)],
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([{"id": 1}])));
    // B's own anon timeout (set through the admin API) still applies, though A set anon's to none.
    sql_ok(
        &p,
        &b,
        "CREATE FUNCTION public.slow() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(2)';",
    )
    .await;
    let (s, v) = p
        .admin(
            Method::PATCH,
            &format!("/admin/v1/projects/{}", b.project_ref),
            Some(json!({"limits": {"anon_statement_timeout_ms": 1000}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let slow = |key: String| {
        let url = format!("{}/rest/v1/rpc/slow", b.api_url);
        let p = &p;
        async move { p.call(Method::GET, &url, &[("apikey", &key)], None).await }
    };
    // The gateway's directory caches configs for up to 1 s; retry until the new limit is seen.
    let mut answer = slow(b.anon.clone()).await;
    for _ in 0..10 {
        if answer.0 != StatusCode::OK {
            break;
        }
        answer = slow(b.anon.clone()).await;
    }
    assert_eq!(answer.0, StatusCode::INTERNAL_SERVER_ERROR, "{}", answer.1);
    assert_eq!(answer.1["code"], "57014", "{}", answer.1);
    let (s, v) = slow(b.secret.clone()).await;
    assert_eq!(s, StatusCode::OK, "service_role keeps its 8 s: {v}");

    // A tenant-manager preparing the worker (every start, every worker registration) clears them.
    p.start_tenant_manager_again().await;
    assert_eq!(anon_settings(&admin).await, 0);
}

/// A project database created before the catalogs were confined is brought up to date when the
/// tenant-manager starts; until then REST still loads its schema (the settings come from the catalogs).
#[tokio::test]
async fn older_project_databases_are_confined_at_start() {
    let p = Platform::start().await;
    let a = p.create("older-db").await;
    sql_ok(
        &p,
        &a,
        "CREATE TABLE public.items (id int primary key); INSERT INTO public.items VALUES (7);",
    )
    .await;
    // Make it look like a database made by an earlier release.
    let db = p.project_db(&a.project_ref).await;
    db.batch_execute(
        "DROP FUNCTION extensions.pgrst_settings();
         REVOKE USAGE ON SCHEMA extensions FROM PUBLIC;
         GRANT SELECT ON pg_catalog.pg_database, pg_catalog.pg_roles, pg_catalog.pg_db_role_setting TO PUBLIC;
         COMMENT ON DATABASE project_older_db IS NULL;",
    )
    .await
    .unwrap();
    let (s, v) = rest_get(&p, &a, "/rest/v1/items?select=id").await;
    assert_eq!((s, v), (StatusCode::OK, json!([{"id": 7}])));

    p.start_tenant_manager_again().await;
    let cfg = db_config(&p, &a.project_ref).await;
    let c = connect_as(&cfg, "project_older_db").await.unwrap();
    let e = c
        .query_one("SELECT count(*) FROM pg_database", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM extensions.pgrst_settings()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}
