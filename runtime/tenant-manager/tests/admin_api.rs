//! The tenant-manager's admin API on its own (no gateway): project secrets, database metadata, the
//! audit log, and the admin key every admin route requires; against a real PostgreSQL cluster
//! (`testkit`).

use http::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::ControlPlane;

/// Projects' `api_url` (no data plane serves it here).
const API_URL: &str = "http://127.0.0.1:1/p/{ref}";

/// Runs `query` on the project's database through the admin API, asserting it succeeded.
async fn sql(cp: &ControlPlane, project_ref: &str, query: &str) {
    let (s, v) = cp
        .admin(
            Method::POST,
            &format!("/admin/v1/projects/{project_ref}/database/query"),
            Some(json!({ "query": query })),
        )
        .await;
    assert!(s.is_success(), "{s}: {v}");
}

#[tokio::test]
async fn secrets_metadata_and_audit() {
    let pf = ControlPlane::start(API_URL).await;
    pf.create_project("Test", "meta").await;
    sql(&pf, "meta", "create type mood as enum ('ok', 'meh');
        create table authors (id bigint generated always as identity primary key, name text not null unique, mood mood);
        create table books (id serial primary key, author_id bigint references authors(id), title text default 'untitled');
        comment on table books is 'all the books';
        alter table books enable row level security;
        create policy readers on books for select to anon using (true);
        create view book_titles as select title from books;
        create materialized view book_count as select count(*) from books;
        create function add(a int, b int) returns int language sql immutable as 'select a + b';
        create function touch() returns trigger language plpgsql as 'begin return new; end';
        create trigger books_touch before insert on books for each row execute function touch();
        alter publication supabase_realtime add table books;").await;

    // Secrets: set, list names only, delete; stored encrypted.
    let (s, _) = pf.admin(Method::POST, "/admin/v1/projects/meta/secrets", Some(json!([{"name": "STRIPE_KEY", "value": "sk_live_very_secret"}, {"name": "OTHER", "value": "x"}]))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/projects/meta/secrets", None)
        .await;
    assert_eq!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["OTHER", "STRIPE_KEY"]
    );
    assert!(!v.to_string().contains("sk_live"));
    let su = pf.connect("postgres").await;
    let (c, conn) = tokio_postgres::connect(
        &pf.db.cluster.url("supactl_platform"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let stored: Vec<u8> = c
        .query_one(
            "select value_enc from supactl.project_secrets where name = 'STRIPE_KEY'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        !String::from_utf8_lossy(&stored).contains("sk_live"),
        "encrypted at rest"
    );
    drop(su);
    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/meta/secrets",
            Some(json!([{"name": "SUPABASE_URL", "value": "x"}])),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = pf
        .admin(
            Method::DELETE,
            "/admin/v1/projects/meta/secrets",
            Some(json!(["OTHER", "NOPE"])),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "all or nothing");
    let (s, _) = pf
        .admin(
            Method::DELETE,
            "/admin/v1/projects/meta/secrets",
            Some(json!(["OTHER"])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Metadata in postgres-meta's shapes.
    let meta = |kind: &'static str| {
        let pf = &pf;
        async move {
            let (s, v) = pf
                .admin(
                    Method::GET,
                    &format!("/admin/v1/projects/meta/database/{kind}?included_schemas=public"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{kind}: {v}");
            v["data"].as_array().unwrap().clone()
        }
    };
    let tables = meta("tables").await;
    let books = tables.iter().find(|t| t["name"] == "books").unwrap();
    assert_eq!(books["schema"], "public");
    assert_eq!(books["rls_enabled"], true);
    assert_eq!(books["comment"], "all the books");
    assert_eq!(books["primary_keys"][0]["name"], "id");
    assert_eq!(books["relationships"][0]["target_table_name"], "authors");
    let title = books["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "title")
        .unwrap();
    assert_eq!(
        (title["data_type"].clone(), title["default_value"].clone()),
        (json!("text"), json!("'untitled'::text"))
    );
    let authors = tables.iter().find(|t| t["name"] == "authors").unwrap();
    let id = &authors["columns"][0];
    assert_eq!(
        (id["is_identity"].clone(), id["identity_generation"].clone()),
        (json!(true), json!("ALWAYS"))
    );
    let mood = authors["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mood")
        .unwrap();
    assert_eq!(mood["enums"], json!(["ok", "meh"]));
    assert_eq!(meta("views").await[0]["name"], "book_titles");
    assert_eq!(meta("materialized-views").await[0]["name"], "book_count");
    let f = meta("functions").await;
    let add = f.iter().find(|f| f["name"] == "add").unwrap();
    assert_eq!(
        (add["behavior"].clone(), add["return_type"].clone()),
        (json!("IMMUTABLE"), json!("integer"))
    );
    assert_eq!(add["args"].as_array().unwrap().len(), 2);
    let t = meta("triggers").await;
    assert_eq!(
        (
            t[0]["name"].clone(),
            t[0]["activation"].clone(),
            t[0]["events"].clone()
        ),
        (json!("books_touch"), json!("BEFORE"), json!(["INSERT"]))
    );
    let pol = meta("policies").await;
    assert_eq!(
        (
            pol[0]["name"].clone(),
            pol[0]["command"].clone(),
            pol[0]["roles"].clone()
        ),
        (json!("readers"), json!("SELECT"), json!(["anon"]))
    );
    assert!(meta("types").await.iter().any(|t| t["name"] == "mood"));
    let pubs = meta("publications").await;
    assert!(pubs
        .iter()
        .any(|p| p["name"] == "supabase_realtime" && p["tables"][0]["name"] == "books"));
    assert!(meta("extensions")
        .await
        .iter()
        .any(|e| e["name"] == "pgcrypto" && e["installed_version"].is_string()));
    assert!(meta("roles")
        .await
        .iter()
        .any(|r| r["name"] == "service_role"
            && r["can_bypass_rls"] == true
            && r["password"] == "********"));
    assert!(meta("schemas").await.iter().any(|s| s["name"] == "public"));
    let (s, _) = pf
        .admin(
            Method::GET,
            "/admin/v1/projects/meta/database/nonsense",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Audit: every mutation above, newest first, with its outcome; reads are not recorded.
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/audit?limit=100", None)
        .await;
    let entries = v["data"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["method"] != "GET"));
    let first = entries.last().unwrap();
    assert_eq!(
        (
            first["method"].clone(),
            first["path"].clone(),
            first["outcome"].clone()
        ),
        (json!("POST"), json!("/admin/v1/projects"), json!("success"))
    );
    assert!(first["actor"].as_str().unwrap().starts_with("admin-key:"));
    assert!(entries
        .iter()
        .any(|e| e["status"] == 400 && e["outcome"] == "failure"));
    assert!(!v.to_string().contains(&pf.admin_key));
}

#[tokio::test]
async fn every_admin_route_needs_the_key() {
    let pf = ControlPlane::start(API_URL).await;
    pf.create_project("Test", "guarded").await;
    let routes: &[(Method, &str)] = &[
        (Method::GET, "/admin/v1/projects"),
        (Method::PATCH, "/admin/v1/projects/guarded"),
        (Method::POST, "/admin/v1/projects/guarded/pause"),
        (Method::POST, "/admin/v1/projects/guarded/restore"),
        (Method::GET, "/admin/v1/projects/guarded/health"),
        (Method::POST, "/admin/v1/projects/guarded/api-keys"),
        (Method::GET, "/admin/v1/projects/guarded/api-keys/x"),
        (Method::DELETE, "/admin/v1/projects/guarded/api-keys/x"),
        (Method::GET, "/admin/v1/projects/guarded/jwt-keys"),
        (Method::POST, "/admin/v1/projects/guarded/jwt-keys/standby"),
        (Method::POST, "/admin/v1/projects/guarded/jwt-keys/rotate"),
        (
            Method::DELETE,
            "/admin/v1/projects/guarded/jwt-keys/previous",
        ),
        (Method::GET, "/admin/v1/projects/guarded/secrets"),
        (Method::POST, "/admin/v1/projects/guarded/secrets"),
        (Method::DELETE, "/admin/v1/projects/guarded/secrets"),
        (Method::GET, "/admin/v1/projects/guarded/database/tables"),
        (Method::POST, "/admin/v1/projects/guarded/auth/users"),
        (Method::DELETE, "/admin/v1/projects/guarded/auth/users/x"),
        (Method::POST, "/admin/v1/projects/guarded/auth/recover"),
        (Method::GET, "/admin/v1/workers"),
        (Method::POST, "/admin/v1/workers"),
        (Method::GET, "/admin/v1/workers/1"),
        (Method::PATCH, "/admin/v1/workers/1"),
        (Method::DELETE, "/admin/v1/workers/1"),
        (Method::POST, "/admin/v1/workers/1/drain"),
        (Method::GET, "/admin/v1/workers/1/projects"),
        (Method::GET, "/admin/v1/placement"),
        (Method::PUT, "/admin/v1/placement"),
        (Method::GET, "/admin/v1/audit"),
    ];
    for (m, path) in routes {
        let (s, v): (StatusCode, Value) = pf
            .call(m.clone(), &format!("{}{path}", pf.admin_url), &[], None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {path}: {v}");
    }
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/projects/guarded", None)
        .await;
    assert_eq!(
        v["data"]["status"], "ACTIVE_HEALTHY",
        "nothing was changed by the refused calls"
    );
}
