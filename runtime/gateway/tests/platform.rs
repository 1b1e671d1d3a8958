//! End-to-end tests of the platform in one process: a throwaway PostgreSQL cluster, the tenant-manager
//! and the gateway (with REST in-process) on real loopback sockets, driven over HTTP.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use supactl_common::jwt;

const TODOS: &str = "create table todos (id serial primary key, title text not null, done boolean not null default false);
alter table todos enable row level security;
create policy anon_read_open on todos for select to anon using (not done);";

#[tokio::test]
async fn project_lifecycle_and_rest_through_the_gateway() {
    let pf = Platform::start().await;
    let p = pf.create("alpha").await;
    assert_eq!(p.api_url, format!("{}/p/alpha", pf.gateway_url));
    assert!(p.anon.starts_with("sb_publishable_") && p.secret.starts_with("sb_secret_"));

    let (s, v) = pf.admin(Method::GET, "/admin/v1/projects", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["ref"], "alpha");
    assert_eq!(v["data"][0]["status"], "ACTIVE_HEALTHY");
    let (s, v) = pf
        .admin(Method::GET, "/admin/v1/projects/alpha/api-keys", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        pf.admin(Method::GET, "/admin/v1/projects/nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // DDL returns no rows; several statements return the last one's rows with JSON types.
    let (s, v) = pf.sql(&p, TODOS).await;
    assert_eq!((s, v["data"].clone()), (StatusCode::OK, json!([])));
    let (s, v) = pf.sql(&p, "insert into todos (title) values ('a'), ('b'); select id, title, done from todos order by id").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"],
        json!([{"id": 1, "title": "a", "done": false}, {"id": 2, "title": "b", "done": false}])
    );
    let (s, v) = pf.sql(&p, "select * from missing_table").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "42P01");

    // Service role: full access.
    let (s, v) = pf
        .rest(
            &p,
            Method::POST,
            "todos",
            &p.secret,
            &[("prefer", "return=representation")],
            Some(json!([{"title": "c", "done": false}, {"title": "d", "done": true}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (s, v) = pf
        .rest(
            &p,
            Method::GET,
            "todos?select=id,title&order=id.desc&limit=2",
            &p.secret,
            &[],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!([{"id": 4, "title": "d"}, {"id": 3, "title": "c"}]));
    let (s, _) = pf
        .rest(
            &p,
            Method::PATCH,
            "todos?id=eq.1",
            &p.secret,
            &[],
            Some(json!({"done": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = pf
        .rest(
            &p,
            Method::POST,
            "todos?on_conflict=id",
            &p.secret,
            &[(
                "prefer",
                "resolution=merge-duplicates,return=representation",
            )],
            Some(json!({"id": 2, "title": "B"})),
        )
        .await;
    // the row existed, so nothing was inserted: 200, as PostgREST answers since 12
    assert_eq!((s, v[0]["title"].clone()), (StatusCode::OK, json!("B")));
    let (s, v) = pf
        .rest(
            &p,
            Method::DELETE,
            "todos?title=eq.c",
            &p.secret,
            &[("prefer", "return=representation")],
            None,
        )
        .await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 1));

    // Anon: row-level security filters reads and refuses writes.
    let (s, v) = pf
        .rest(
            &p,
            Method::GET,
            "todos?select=title&order=id",
            &p.anon,
            &[],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!([{"title": "B"}]),
        "only the open row is visible to anon"
    );
    let (s, v) = pf
        .rest(
            &p,
            Method::POST,
            "todos",
            &p.anon,
            &[],
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["code"], "42501");

    // PostgREST-shaped errors.
    let (s, v) = pf
        .rest(&p, Method::GET, "todos?nope=eq.1", &p.secret, &[], None)
        .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("42703"))
    );
    let (s, v) = pf
        .rest(&p, Method::GET, "todos?id=bogus.1", &p.secret, &[], None)
        .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("PGRST100"))
    );
    let (s, _) = pf
        .rest(
            &p,
            Method::POST,
            "todos",
            &p.secret,
            &[],
            Some(json!({"id": 2, "title": "dup"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Delete: the database and role go, and the keys stop working within 2 s (TTL only, no hook here).
    let (s, _) = pf
        .admin(Method::DELETE, "/admin/v1/projects/alpha", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (s, _) = pf
            .rest(&p, Method::GET, "todos", &p.secret, &[], None)
            .await;
        if s == StatusCode::UNAUTHORIZED || s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deleted project still served: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let su = pf.superuser().await;
    let dbs = su
        .query(
            "select 1 from pg_database where datname = 'project_alpha'",
            &[],
        )
        .await
        .unwrap();
    let roles = su
        .query(
            "select 1 from pg_roles where rolname = 'authenticator_alpha'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        dbs.is_empty() && roles.is_empty(),
        "database and login role are dropped"
    );
}

#[tokio::test]
async fn gateway_authenticates_keys_and_user_tokens() {
    let pf = Platform::start().await;
    let a = pf.create("proj-a").await;
    let b = pf.create("proj-b").await;
    pf.sql(&b, TODOS).await;
    pf.sql(&b, "insert into todos (title) values ('b-data')")
        .await;

    let url = format!("{}/rest/v1/todos", b.api_url);
    // No key, a random string, and a well-formed key nobody has.
    for headers in [
        vec![],
        vec![("apikey", "random")],
        vec![("apikey", "sb_secret_00000000000000000000000000000000")],
    ] {
        let (s, v) = pf.call(Method::GET, &url, &headers, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{headers:?}: {v}");
        assert!(v["message"].is_string() && v["code"].is_string());
    }
    // Bearer sb_ key alone is accepted; a Bearer key that differs from apikey is not.
    let bearer = format!("Bearer {}", b.anon);
    assert_eq!(
        pf.call(Method::GET, &url, &[("authorization", &bearer)], None)
            .await
            .0,
        StatusCode::OK
    );
    let other = format!("Bearer {}", b.secret);
    assert_eq!(
        pf.call(
            Method::GET,
            &url,
            &[("apikey", &b.anon), ("authorization", &other)],
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    // Project A's keys on project B: rejected, B untouched.
    for key in [&a.secret, &a.anon] {
        let (s, _) = pf.rest(&b, Method::GET, "todos", key, &[], None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = pf
            .rest(&b, Method::DELETE, "todos?id=gt.0", key, &[], None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (_, v) = pf
        .rest(&b, Method::GET, "todos?select=title", &b.secret, &[], None)
        .await;
    assert_eq!(v, json!([{"title": "b-data"}]));

    // A user JWT signed with the project's secret runs as `authenticated` with its claims.
    pf.sql(&b, "create table notes (owner uuid not null default auth.uid(), body text);
                alter table notes enable row level security;
                create policy own on notes for all to authenticated using (owner = auth.uid()) with check (owner = auth.uid());").await;
    let secret = pf.jwt_secret(&b).await;
    let token = |sub: &str, exp: i64| {
        let claims =
            json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": exp});
        jwt::sign(claims.as_object().unwrap(), secret.as_bytes())
    };
    let (u1, u2) = (
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
    );
    let later = jwt::now() + 600;
    for (user, body) in [(u1, "mine"), (u2, "theirs")] {
        let auth = format!("Bearer {}", token(user, later));
        let (s, v) = pf
            .rest(
                &b,
                Method::POST,
                "notes",
                &b.anon,
                &[
                    ("authorization", &auth),
                    ("prefer", "return=representation"),
                ],
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v[0]["owner"], user, "owner defaults to auth.uid()");
    }
    let auth = format!("Bearer {}", token(u1, later));
    let (_, v) = pf
        .rest(
            &b,
            Method::GET,
            "notes?select=body",
            &b.anon,
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(v, json!([{"body": "mine"}]));
    let (_, v) = pf.rest(&b, Method::GET, "notes", &b.anon, &[], None).await;
    assert_eq!(v, json!([]), "anon sees no notes");

    // Expired, wrongly signed, alg=none and other-project tokens are refused.
    let expired = format!("Bearer {}", token(u1, jwt::now() - 10));
    let forged = format!(
        "Bearer {}",
        jwt::sign(
            json!({"sub": u1, "role": "authenticated"})
                .as_object()
                .unwrap(),
            b"not-the-secret"
        )
    );
    let none = {
        use base64::Engine;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "Bearer {}.{}.",
            e(r#"{"alg":"none","typ":"JWT"}"#),
            e(r#"{"role":"service_role"}"#)
        )
    };
    let a_secret = pf.jwt_secret(&a).await;
    let other_project = format!(
        "Bearer {}",
        jwt::sign(
            json!({"sub": u1, "role": "authenticated"})
                .as_object()
                .unwrap(),
            a_secret.as_bytes()
        )
    );
    for auth in [expired, forged, none, other_project] {
        let (s, v) = pf
            .rest(
                &b,
                Method::GET,
                "notes",
                &b.anon,
                &[("authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
}

#[tokio::test]
async fn admin_api_guards_and_validation() {
    let pf = Platform::start().await;
    pf.create("gamma").await;
    let routes = [
        (Method::GET, "/admin/v1/projects"),
        (Method::POST, "/admin/v1/projects"),
        (Method::GET, "/admin/v1/projects/gamma"),
        (Method::DELETE, "/admin/v1/projects/gamma"),
        (Method::GET, "/admin/v1/projects/gamma/api-keys"),
        (Method::POST, "/admin/v1/projects/gamma/database/query"),
    ];
    for (m, path) in &routes {
        for headers in [vec![], vec![("authorization", "Bearer wrong")]] {
            let (s, v) = pf
                .call(
                    m.clone(),
                    &format!("{}{path}", pf.admin_url),
                    &headers,
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {path}");
            assert_eq!(v["code"], "unauthorized");
        }
    }
    // The admin key is not a service token, and the gateway does not route to the control plane.
    let auth = format!("Bearer {}", pf.admin_key);
    let (s, _) = pf
        .call(
            Method::GET,
            &format!("{}/internal/v1/projects/gamma/config", pf.admin_url),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = pf
        .call(
            Method::GET,
            &format!(
                "{}/p/gamma/internal/v1/projects/gamma/config",
                pf.gateway_url
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"ref": "abc"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("name"), "{v}");
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "Bad_Ref"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().starts_with("ref"), "{v}");
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "gamma"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict"))
    );
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "   "})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn failed_provisioning_leaves_nothing_behind() {
    let pf = Platform::start().await;
    let su = pf.superuser().await;
    // Someone else's database already uses the name the project would get.
    su.batch_execute("create database project_clash")
        .await
        .unwrap();
    let (s, v) = pf
        .admin(
            Method::POST,
            "/admin/v1/projects",
            Some(json!({"name": "x", "ref": "clash"})),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(
        !v.to_string().contains("postgres://"),
        "no internals in the answer"
    );
    assert_eq!(
        pf.admin(Method::GET, "/admin/v1/projects/clash", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let roles = su
        .query(
            "select 1 from pg_roles where rolname = 'authenticator_clash'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        roles.is_empty(),
        "the login role created before the failure is dropped"
    );
    let dbs = su
        .query(
            "select 1 from pg_database where datname = 'project_clash'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        dbs.len(),
        1,
        "the pre-existing database is not ours to drop"
    );
    // The ref is free again once the clash is gone.
    su.batch_execute("drop database project_clash")
        .await
        .unwrap();
    pf.create("clash").await;
}
