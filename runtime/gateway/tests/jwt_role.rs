//! The role of a correctly signed user token, through the real gateway: `role` absent means
//! `authenticated`, a known role name is that role, and anything else (not a string, or a role the
//! platform does not serve) is refused with 401 `invalid_jwt`, never read as `authenticated`.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use supactl_common::jwt;

#[tokio::test]
async fn the_role_claim_is_read_by_the_shared_rule() {
    let pf = Platform::start().await;
    let p = pf.create("roles").await;
    let (s, v) = pf
        .sql(
            &p,
            "create function whoami() returns text language sql as $$ select current_user::text $$;
             grant execute on function whoami() to anon, authenticated, service_role;",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = pf.jwt_secret(&p).await;
    let call = |claims: Value| {
        let token = jwt::sign(claims.as_object().unwrap(), secret.as_bytes());
        let auth = format!("Bearer {token}");
        let pf = &pf;
        let p = &p;
        async move {
            pf.rest(
                p,
                Method::POST,
                "rpc/whoami",
                &p.anon,
                &[("authorization", &auth)],
                Some(json!({})),
            )
            .await
        }
    };
    let exp = jwt::now() + 600;

    for (claims, role) in [
        (json!({"sub": "u", "exp": exp}), "authenticated"),
        (
            json!({"sub": "u", "role": "authenticated", "exp": exp}),
            "authenticated",
        ),
        (json!({"role": "anon", "exp": exp}), "anon"),
        (json!({"role": "service_role", "exp": exp}), "service_role"),
    ] {
        let (s, v) = call(claims.clone()).await;
        assert_eq!((s, v.clone()), (StatusCode::OK, json!(role)), "{claims}");
    }

    for role in [
        json!(123),
        json!(["service_role"]),
        json!({"x": 1}),
        json!(null),
        json!("postgres"),
        json!("supabase_admin"),
    ] {
        let (s, v) = call(json!({"sub": "u", "role": role, "exp": exp})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "role {role}: {v}");
        assert_eq!(v["code"], "invalid_jwt", "role {role}: {v}");
    }
}
