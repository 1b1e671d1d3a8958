//! Auth's reading of the forwarded token's role goes through the shared rule of
//! `supactl_common::claims`: a correctly signed token whose `role` is not a string, or names a role the
//! platform does not serve, is refused with `bad_jwt` on every route; `role` absent is `authenticated`,
//! which is no admin. The token must also name the project in `ref` (`supactl_common::forwarded`).

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
    let cp = ControlPlane::start("http://gw.test/p/{ref}").await;
    cp.create_project("roles", "auth-roles").await;
    let secret = cp.jwt_secret("auth-roles").await;
    let router = auth::router(auth::Auth::new(
        cp.directory(Duration::from_secs(30)),
        auth::AuthConfig::default(),
    ));
    let call = |path: &'static str, claims: Value| {
        let mut claims = claims.as_object().unwrap().clone();
        // As the gateway mints it: naming the project (unless the case says otherwise).
        claims.entry("ref").or_insert(json!("auth-roles"));
        claims.insert("exp".into(), json!(jwt::now() + 600));
        let token = jwt::sign(&claims, secret.as_bytes());
        let req = Request::get(path)
            .header(auth::PROJECT_HEADER, "auth-roles")
            .header("authorization", format!("Bearer {token}"))
            .header("x-supabase-api-version", "2024-01-01")
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };

    let (s, v) = call("/admin/users", json!({"role": "service_role"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call("/admin/users", json!({"sub": "u"})).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("not_admin")),
        "{v}"
    );
    let (s, v) = call("/health", json!({"role": "anon"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    for role in [
        json!(123),
        json!(["service_role"]),
        json!({"x": 1}),
        json!(null),
        json!("postgres"),
    ] {
        for path in ["/health", "/admin/users"] {
            let (s, v) = call(path, json!({ "role": role })).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path} role {role}: {v}");
            assert_eq!(v["code"], "bad_jwt", "{path} role {role}: {v}");
        }
    }

    // The shared check of what the gateway forwarded: a token of another project, or naming none, is
    // refused even though this project's secret signed it.
    for claims in [
        json!({"role": "service_role", "ref": "other-project"}),
        json!({"role": "service_role", "ref": null}),
    ] {
        let (s, v) = call("/admin/users", claims.clone()).await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::FORBIDDEN, json!("bad_jwt")),
            "{claims}: {v}"
        );
    }
}
