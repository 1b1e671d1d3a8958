//! REST's own check of the forwarded token (defence in depth, as where REST runs behind an HTTP hop or
//! on Lambda): the role comes from the shared rule of `supactl_common::claims`, so a correctly signed
//! token whose `role` is not a string, or names a role the platform does not serve, is refused with
//! PGRST301 instead of running as `authenticated`.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::jwt;
use testkit::ControlPlane;
use tower::ServiceExt;

#[tokio::test]
async fn the_forwarded_role_claim_is_read_by_the_shared_rule() {
    let cp = ControlPlane::start("http://127.0.0.1:9/p/{ref}").await;
    cp.create_project("roles", "rest-roles").await;
    let (s, v) = cp
        .admin(
            http::Method::POST,
            "/admin/v1/projects/rest-roles/database/query",
            Some(json!({"query": "create function whoami() returns text language sql as $$ select current_user::text $$;
                 grant execute on function whoami() to anon, authenticated, service_role;"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = cp.jwt_secret("rest-roles").await;
    let router = rest::router(rest::Rest::new(
        cp.directory(Duration::from_secs(30)),
        rest::RestConfig::default(),
    ));
    let call = |claims: Value| {
        let mut claims = claims.as_object().unwrap().clone();
        claims.insert("ref".into(), json!("rest-roles"));
        claims.insert("exp".into(), json!(jwt::now() + 600));
        let token = jwt::sign(&claims, secret.as_bytes());
        let req = Request::post("/rpc/whoami")
            .header(rest::PROJECT_HEADER, "rest-roles")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };

    for (claims, role) in [
        (json!({"sub": "u"}), "authenticated"),
        (json!({"role": "anon"}), "anon"),
        (json!({"role": "service_role"}), "service_role"),
    ] {
        assert_eq!(
            call(claims.clone()).await,
            (StatusCode::OK, json!(role)),
            "{claims}"
        );
    }
    for role in [
        json!(123),
        json!(["service_role"]),
        json!({"x": 1}),
        json!(null),
        json!("postgres"),
    ] {
        let (s, v) = call(json!({ "role": role })).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "role {role}: {v}");
        assert_eq!(v["code"], "PGRST301", "role {role}: {v}");
    }
}
