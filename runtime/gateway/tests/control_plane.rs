//! The control plane end to end: keys, JWT rotation, pause/restore, workers and placement, secrets,
//! metadata and audit — driven through the admin API and observed at the gateway.

mod common;

use common::*;
use http::{Method, StatusCode};
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use supactl_common::jwt;

/// Polls until `f` returns true, failing after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const ITEMS: &str = "create table items (id serial primary key, name text);
insert into items (name) values ('one');
alter table items enable row level security;
create policy read_all on items for select using (true);";

#[tokio::test]
async fn api_keys_create_reveal_revoke() {
    let pf = Platform::start().await;
    let p = pf.create("keys").await;
    pf.sql(&p, ITEMS).await;

    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/keys/api-keys",
            Some(json!({"type": "secret", "name": "backend", "description": "for the worker"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let second = v["data"]["opaque_key"].as_str().unwrap().to_string();
    let id = v["data"]["id"].as_str().unwrap().to_string();
    assert!(second.starts_with("sb_secret_"));
    // Several secret keys work side by side.
    for key in [&p.secret, &second] {
        assert_eq!(
            pf.rest(&p, Method::GET, "items", key, &[], None).await.0,
            StatusCode::OK
        );
    }
    // Listing masks secret keys; reveal shows them.
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/projects/keys/api-keys", None)
        .await;
    let listed = v["data"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed
        .iter()
        .filter(|k| k["type"] == "secret")
        .all(|k| k["opaque_key"].is_null()));
    assert!(!v.to_string().contains(&second));
    let (_, v) = pf
        .admin(
            Method::GET,
            &format!("/admin/v1/projects/keys/api-keys/{id}?reveal=true"),
            None,
        )
        .await;
    assert_eq!(v["data"]["opaque_key"], second.as_str());

    // Bad input names the field.
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/keys/api-keys",
            Some(json!({"type": "root", "name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().starts_with("type"));

    // Revoke: the gateway rejects the key within a second, the other keys keep working.
    let (s, _) = pf
        .admin(
            Method::DELETE,
            &format!("/admin/v1/projects/keys/api-keys/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    eventually(
        Duration::from_millis(1500),
        "revoked key rejected",
        || async {
            pf.rest(&p, Method::GET, "items", &second, &[], None)
                .await
                .0
                == StatusCode::UNAUTHORIZED
        },
    )
    .await;
    assert_eq!(
        pf.rest(&p, Method::GET, "items", &p.secret, &[], None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, _) = pf
        .admin(
            Method::DELETE,
            &format!("/admin/v1/projects/keys/api-keys/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "revoking twice is a conflict");
}

#[tokio::test]
async fn jwt_rotation_with_grace_then_revocation() {
    let pf = Platform::start().await;
    let p = pf.create("rotor").await;
    pf.sql(&p, ITEMS).await;
    let old_secret = pf.jwt_secret(&p).await;
    let token = |secret: &str| {
        let claims = json!({"sub": "33333333-3333-3333-3333-333333333333", "role": "authenticated", "exp": jwt::now() + 600});
        format!(
            "Bearer {}",
            jwt::sign(claims.as_object().unwrap(), secret.as_bytes())
        )
    };
    let old_token = token(&old_secret);
    let ok = |auth: String| {
        let pf = &pf;
        let p = &p;
        async move {
            pf.rest(
                p,
                Method::GET,
                "items",
                &p.anon,
                &[("authorization", &auth)],
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(ok(old_token.clone()).await, StatusCode::OK);

    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/rotor/jwt-keys/standby",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/rotor/jwt-keys/standby",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects/rotor/jwt-keys/rotate",
            Some(json!({"grace_seconds": 600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let states: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["previous", "current"]);
    assert!(
        !v.to_string().contains(&old_secret),
        "secrets are never listed"
    );

    let new_secret = pf.jwt_secret(&p).await;
    assert_ne!(new_secret, old_secret);
    // During the grace period both verify, at the gateway and (re-minted) at REST.
    eventually(Duration::from_millis(1500), "new secret accepted", || {
        let t = token(&new_secret);
        async move { ok(t).await == StatusCode::OK }
    })
    .await;
    assert_eq!(ok(old_token.clone()).await, StatusCode::OK);

    // Revoking the previous secret ends the grace period.
    let (s, _) = pf
        .admin(
            Method::DELETE,
            "/admin/v1/projects/rotor/jwt-keys/previous",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    eventually(
        Duration::from_millis(1500),
        "old token rejected",
        || async { ok(old_token.clone()).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert_eq!(ok(token(&new_secret)).await, StatusCode::OK);
}

#[tokio::test]
async fn pause_restore_rename_list_and_health() {
    let pf = Platform::start().await;
    let p = pf.create("sleepy").await;
    pf.create("other-one").await;
    pf.sql(&p, ITEMS).await;
    let (s, v) = pf
        .admin(Method::GET, "/admin/v1/projects/sleepy/health", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["database"]["healthy"], true);
    assert_eq!(v["data"]["rest"]["healthy"], true);

    let (s, v) = pf
        .admin(Method::POST, "/admin/v1/projects/sleepy/pause", None)
        .await;
    assert_eq!(
        (s, v["data"]["status"].clone()),
        (StatusCode::OK, json!("PAUSED"))
    );
    eventually(
        Duration::from_millis(1500),
        "paused project answers 503",
        || async {
            let (s, v) = pf
                .rest(&p, Method::GET, "items", &p.secret, &[], None)
                .await;
            s == StatusCode::SERVICE_UNAVAILABLE
                && v["code"] == "project_paused"
                && v["message"].as_str().unwrap().contains("sleepy")
        },
    )
    .await;
    // Its login role is disconnected and cannot connect.
    let su = pf.superuser().await;
    let n: i64 = su
        .query_one("select count(*) from pg_stat_activity where datname = 'project_sleepy' and usename = 'authenticator_sleepy'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let (s, _) = pf
        .admin(Method::GET, "/admin/v1/projects/sleepy/health", None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = pf
        .admin(Method::POST, "/admin/v1/projects/sleepy/pause", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v) = pf
        .admin(Method::GET, "/admin/v1/projects?status=PAUSED", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["pagination"]["total"], 1);

    let (s, _) = pf
        .admin(Method::POST, "/admin/v1/projects/sleepy/restore", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    eventually(
        Duration::from_millis(1500),
        "restored project answers",
        || async {
            pf.rest(&p, Method::GET, "items", &p.secret, &[], None)
                .await
                .0
                == StatusCode::OK
        },
    )
    .await;

    let (s, v) = pf
        .admin(
            Method::PATCH,
            "/admin/v1/projects/sleepy",
            Some(json!({"name": "Wide Awake"})),
        )
        .await;
    assert_eq!(
        (s, v["data"]["name"].clone()),
        (StatusCode::OK, json!("Wide Awake"))
    );
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/projects?search=awake", None)
        .await;
    assert_eq!(v["data"][0]["ref"], "sleepy");
    let (_, v) = pf
        .admin(Method::GET, "/admin/v1/projects?limit=1&page=2", None)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["pagination"]["total_pages"], 2);
    let (s, v) = pf
        .admin(Method::GET, "/admin/v1/projects?limit=0", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().starts_with("limit"));
}

#[tokio::test]
async fn workers_placement_drain_and_remove() {
    let pf = Platform::start().await;
    let second = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url: tokio_postgres::Config = second.url("postgres").parse().unwrap();
    let password = String::from_utf8(url.get_password().unwrap().to_vec()).unwrap();

    // Bad credentials are refused at registration.
    let (s, v) = pf
        .admin(Method::POST, "/admin/v1/workers", Some(json!({"identifier": "worker-2", "host": "127.0.0.1", "port": second.cluster.port(), "admin_password": "wrong"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        !v.to_string().contains("wrong"),
        "the password is not echoed"
    );
    let (s, v) = pf
        .admin(Method::POST, "/admin/v1/workers", Some(json!({"identifier": "worker-2", "host": "127.0.0.1", "port": second.cluster.port(), "admin_password": password, "region": "eu"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let w2 = v["data"]["id"].as_i64().unwrap();
    assert!(
        !v.to_string().contains(&password),
        "worker passwords are never returned"
    );

    // Explicit placement and region affinity land on the second server, whose database is really there.
    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "on-w2", "worker": "worker-2"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "in-eu", "region": "eu"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = pf
        .admin(
            Method::GET,
            &format!("/admin/v1/workers/{w2}/projects"),
            None,
        )
        .await;
    let refs: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec!["on-w2", "in-eu"]);
    let (c, conn) = tokio_postgres::connect(&second.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n: i64 = c
        .query_one(
            "select count(*) from pg_database where datname in ('project_on_w2', 'project_in_eu')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // REST works for a project on the second server.
    let (_, v) = pf
        .admin(
            Method::GET,
            "/admin/v1/projects/on-w2/api-keys?reveal=true",
            None,
        )
        .await;
    let key = v["data"][1]["opaque_key"].as_str().unwrap().to_string();
    let proj = Project {
        project_ref: "on-w2".into(),
        api_url: format!("{}/p/on-w2", pf.gateway_url),
        anon: String::new(),
        secret: key,
    };
    pf.sql(&proj, ITEMS).await;
    assert_eq!(
        pf.rest(
            &proj,
            Method::GET,
            "items?select=name",
            &proj.secret,
            &[],
            None
        )
        .await
        .1,
        json!([{"name": "one"}])
    );

    // Least-used (default) now prefers the local worker (0 projects) over w2 (2).
    let (_, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "least"})),
        )
        .await;
    let (_, v) = pf.admin(Method::GET, "/admin/v1/workers", None).await;
    let counts: Vec<(String, i64)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["identifier"].as_str().unwrap().to_string(),
                w["current_databases"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![("local".to_string(), 1), ("worker-2".to_string(), 2)]
    );

    // Round-robin alternates (state in the platform database).
    let (s, _) = pf
        .admin(
            Method::PUT,
            "/admin/v1/placement",
            Some(json!({"strategy": "round-robin"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut placed = Vec::new();
    for r in ["rr-a", "rr-b"] {
        pf.admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": r})),
        )
        .await;
        let (_, v) = pf
            .admin(
                Method::GET,
                &format!("/admin/v1/workers/{w2}/projects"),
                None,
            )
            .await;
        placed.push(v["data"].as_array().unwrap().iter().any(|p| p["ref"] == r));
    }
    assert_ne!(
        placed[0], placed[1],
        "round-robin alternates between the two workers"
    );

    // Draining: no new projects, even when asked for explicitly; removal refused while it holds projects.
    let (s, v) = pf
        .admin(Method::POST, &format!("/admin/v1/workers/{w2}/drain"), None)
        .await;
    assert_eq!(
        (s, v["data"]["status"].clone()),
        (StatusCode::OK, json!("draining"))
    );
    for _ in 0..2 {
        let (_, v) = pf
            .admin(
                Method::POST,
                "/admin/v1/projects",
                Some(json!({"name": "x"})),
            )
            .await;
        let r = v["data"]["ref"].as_str().unwrap().to_string();
        let (_, v) = pf
            .admin(
                Method::GET,
                &format!("/admin/v1/workers/{w2}/projects"),
                None,
            )
            .await;
        assert!(!v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["ref"] == r.as_str()));
    }
    let (s, _) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "worker": "worker-2"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = pf
        .admin(Method::DELETE, &format!("/admin/v1/workers/{w2}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (_, v) = pf
        .admin(
            Method::GET,
            &format!("/admin/v1/workers/{w2}/projects"),
            None,
        )
        .await;
    for p in v["data"].as_array().unwrap() {
        let (s, _) = pf
            .admin(
                Method::DELETE,
                &format!("/admin/v1/projects/{}", p["ref"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let (s, _) = pf
        .admin(Method::DELETE, &format!("/admin/v1/workers/{w2}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn secrets_metadata_and_audit() {
    let pf = Platform::start().await;
    let p = pf.create("meta").await;
    pf.sql(&p, "create type mood as enum ('ok', 'meh');
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
    let su = pf.superuser().await;
    let (c, conn) =
        tokio_postgres::connect(&pf.db.cluster.url("supactl_platform"), tokio_postgres::NoTls)
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
    let pf = Platform::start().await;
    pf.create("guarded").await;
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
