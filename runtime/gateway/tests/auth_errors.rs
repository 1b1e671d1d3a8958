//! The gateway's own errors on `/auth/v1` are in GoTrue's shape (each service owns its error shape): a
//! user token that does not verify is GoTrue's 403 `bad_jwt` with its message, legacy or modern as the
//! request's `X-Supabase-Api-Version` asks, while REST keeps PostgREST's 401 `invalid_jwt`.

mod common;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use supactl_common::jwt;

#[tokio::test]
async fn bad_tokens_on_auth_routes_get_gotrues_answer() {
    let pf = common::Platform::start_with_auth().await;
    let p = pf.create("autherr").await;
    let secret = pf.jwt_secret(&p).await;
    let url = format!("{}/auth/v1/user", p.api_url);
    let get = |token: String, modern: bool| {
        let (pf, url, anon) = (&pf, &url, &p.anon);
        async move {
            let auth = format!("Bearer {token}");
            let mut h = vec![("apikey", anon.as_str()), ("authorization", auth.as_str())];
            if modern {
                h.push(("x-supabase-api-version", "2024-01-01"));
            }
            pf.call(Method::GET, url, &h, None).await
        }
    };
    let sign =
        |claims: Value, secret: &str| jwt::sign(claims.as_object().unwrap(), secret.as_bytes());
    let exp = jwt::now() + 600;

    let forged = sign(json!({"sub": "u", "exp": exp}), "not-the-project-secret");
    let (s, v) = get(forged.clone(), false).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v,
        json!({"code": 403, "error_code": "bad_jwt",
               "msg": "invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid"})
    );
    let (s, v) = get(forged, true).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("bad_jwt")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().starts_with("invalid JWT"));

    let expired = sign(json!({"sub": "u", "exp": jwt::now() - 5}), &secret);
    let (s, v) = get(expired, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["msg"],
        "invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired"
    );
    let (s, v) = get("not.a-token".into(), false).await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::FORBIDDEN, &json!("bad_jwt"))
    );

    // The gateway's other refusals on auth routes take the same shape.
    let (s, v) = pf.call(Method::GET, &url, &[], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(
        (&v["code"], &v["error_code"]),
        (&json!(401), &json!("no_api_key"))
    );

    // REST keeps PostgREST's shape for the same token.
    let forged = sign(json!({"sub": "u", "exp": exp}), "not-the-project-secret");
    let (s, v) = pf
        .rest(
            &p,
            Method::GET,
            "x",
            &p.anon,
            &[("authorization", &format!("Bearer {forged}"))],
            None,
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_jwt")),
        "{v}"
    );
}
