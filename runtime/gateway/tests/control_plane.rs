//! The control plane end to end: keys, JWT rotation, pause/restore, workers and placement — driven
//! through the admin API and observed at the gateway (the admin API on its own is tested in
//! tenant-manager's `tests/admin_api.rs`).

mod common;

use common::*;
use http::{Method, StatusCode};
use pgcluster::TestCluster;
use serde_json::json;
use std::time::Duration;
use supactl_common::jwt;

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
