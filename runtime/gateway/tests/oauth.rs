//! Sign-in with an OpenID provider through the gateway, against a real one: the npm package
//! `oidc-provider` on loopback (`tests/oidc/provider.mjs`, installed by `scripts/setup.sh
//! oidc-provider`), with one client whose redirect URI is the project's `/auth/v1/callback`. A small
//! browser (redirects followed, a cookie jar) drives the PKCE and implicit flows from
//! `/auth/v1/authorize` to the app's `redirect_to`; the `id_token` grant uses an ID token the test gets
//! from the provider itself; refusals: a wrong code verifier, a replayed code, a replayed or altered
//! state, a foreign `redirect_to`, a disabled provider, a wrong nonce.

mod common;
mod oidc;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use oidc::{challenge, enc, query_param, Browser, Env, APP, CLIENT_ID, CLIENT_SECRET, EMAIL};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn pkce_and_implicit_sign_ins_with_a_real_oidc_provider() {
    let env = Env::start("oauth-flows").await;

    // The admin API never answers the secret, and it is not stored in clear.
    let (s, v) = env
        .pf
        .admin(
            Method::GET,
            &format!("/admin/v1/projects/{}/auth/providers", env.p.project_ref),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"][0]["provider"], "corp");
    assert_eq!(v["data"][0]["client_secret_set"], true);
    assert!(!v.to_string().contains(CLIENT_SECRET), "{v}");
    let stored: String = env
        .pf
        .cp
        .project_db(&env.p.project_ref)
        .await
        .query_one(
            "SELECT client_secret FROM auth.supactl_oauth_providers",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains(CLIENT_SECRET));

    // PKCE: the app gets a code, exchanges it with its verifier.
    let verifier = "pkce-verifier-0123456789-0123456789-0123456789-abc";
    let mut browser = Browser::new();
    let back = browser
        .follow_until(
            &env.authorize_url(&format!("{APP}/done"), Some(&challenge(verifier))),
            &[APP],
        )
        .await;
    assert!(back.starts_with(&format!("{APP}/done?code=")), "{back}");
    let code = query_param(&back, "code").unwrap();
    let (s, wrong) = env
        .token(
            "pkce",
            json!({"auth_code": code, "code_verifier": "x".repeat(50)}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{wrong}");
    assert_eq!(wrong["error_code"], "bad_code_verifier", "{wrong}");
    let (s, session) = env
        .token(
            "pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let user = &session["user"];
    assert_eq!(user["email"], EMAIL);
    assert_eq!(user["app_metadata"]["provider"], "corp");
    assert_eq!(user["identities"][0]["provider"], "corp");
    assert_eq!(user["identities"][0]["id"], "oidc-user-1");
    assert_eq!(user["user_metadata"]["full_name"], "Oidc User");
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert!(session["provider_token"].is_string());
    let user_id = user["id"].as_str().unwrap().to_string();
    let (s, me) = env.user(session["access_token"].as_str().unwrap()).await;
    assert_eq!((s, &me["id"]), (StatusCode::OK, &json!(user_id)), "{me}");
    // The code is used once.
    let (s, again) = env
        .token(
            "pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(again["error_code"], "flow_state_not_found");

    // A code not exchanged within 5 minutes has expired.
    let back = browser
        .follow_until(
            &env.authorize_url(&format!("{APP}/done"), Some(&challenge(verifier))),
            &[APP],
        )
        .await;
    let late = query_param(&back, "code").unwrap();
    env.pf
        .cp
        .project_db(&env.p.project_ref)
        .await
        .execute(
            "UPDATE auth.flow_state SET auth_code_issued_at = now() - interval '301 seconds' WHERE auth_code = $1",
            &[&late],
        )
        .await
        .unwrap();
    let (s, v) = env
        .token(
            "pkce",
            json!({"auth_code": late, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("flow_state_expired")
        ),
        "{v}"
    );

    // Implicit: tokens in the fragment; the same person is the same user.
    let back = browser
        .follow_until(&env.authorize_url(&format!("{APP}/done"), None), &[APP])
        .await;
    assert!(back.starts_with(&format!("{APP}/done#")), "{back}");
    assert_eq!(query_param(&back, "token_type").as_deref(), Some("bearer"));
    assert!(query_param(&back, "refresh_token").is_some(), "{back}");
    assert!(query_param(&back, "expires_in").is_some(), "{back}");
    let access = query_param(&back, "access_token").unwrap();
    let (s, me) = env.user(&access).await;
    assert_eq!((s, &me["id"]), (StatusCode::OK, &json!(user_id)), "{me}");
    assert_eq!(me["identities"].as_array().unwrap().len(), 1);

    // A redirect_to outside the allow list ends at the site URL.
    let back = browser
        .follow_until(
            &env.authorize_url("https://evil.example/steal", None),
            &[APP, "https://evil.example"],
        )
        .await;
    assert!(back.starts_with(&format!("{APP}#access_token=")), "{back}");
}

#[tokio::test]
async fn states_are_used_once_and_cannot_be_altered() {
    let env = Env::start("oauth-state").await;
    let callback = format!("{}/auth/v1/callback", env.p.api_url);
    let mut browser = Browser::new();
    let at_callback = browser
        .follow_until(&env.authorize_url(&format!("{APP}/x"), None), &[&callback])
        .await;
    let state = query_param(&at_callback, "state").unwrap();

    let mut altered = state.clone().into_bytes();
    let i = altered.len() / 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered_url = at_callback.replace(&state, &String::from_utf8(altered).unwrap());
    assert_ne!(altered_url, at_callback);
    let a = browser.get(&altered_url).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("bad_oauth_state"), "{}", a.body);

    let first = browser.get(&at_callback).await;
    let first = first.location.unwrap();
    assert!(
        first.starts_with(&format!("{APP}/x#access_token=")),
        "{first}"
    );
    let replay = browser.get(&at_callback).await.location.unwrap();
    assert!(replay.starts_with(&format!("{APP}/x#error=")), "{replay}");
    assert_eq!(
        query_param(&replay, "error_code").as_deref(),
        Some("flow_state_not_found")
    );

    // A disabled provider is refused before the browser leaves.
    let (s, v) = env
        .set_provider(
            json!({"enabled": false, "client_id": CLIENT_ID, "issuer": env.provider.issuer}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = browser.get(&env.authorize_url(APP, None)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("provider_disabled"), "{}", a.body);
}

#[tokio::test]
async fn the_id_token_grant_verifies_the_providers_token() {
    let env = Env::start("oauth-idtoken").await;
    let callback = format!("{}/auth/v1/callback", env.p.api_url);
    // The app's own sign-in at the provider (as a mobile SDK would), with a hashed nonce.
    let (nonce, verifier) = (
        "raw-nonce-123",
        "app-verifier-0123456789-0123456789-0123456789",
    );
    let hashed = hex::encode(Sha256::digest(nonce.as_bytes()));
    let discovery: Value = {
        let (s, v) = env
            .pf
            .call(
                Method::GET,
                &format!("{}/.well-known/openid-configuration", env.provider.issuer),
                &[],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        v
    };
    let authorize = format!(
        "{}?client_id={CLIENT_ID}&redirect_uri={}&response_type=code&scope=openid%20email%20profile&state=s&nonce={hashed}&code_challenge={}&code_challenge_method=S256",
        discovery["authorization_endpoint"].as_str().unwrap(),
        enc(&callback),
        challenge(verifier)
    );
    let back = Browser::new().follow_until(&authorize, &[&callback]).await;
    let code = query_param(&back, "code").unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}",
        enc(&code),
        enc(&callback)
    );
    let a = Browser::new()
        .send(
            Method::POST,
            discovery["token_endpoint"].as_str().unwrap(),
            &[
                ("authorization", basic.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Bytes::from(form),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let tokens: Value = serde_json::from_str(&a.body).unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let (s, v) = env
        .token(
            "id_token",
            json!({"provider": "corp", "id_token": id_token, "nonce": "wrong"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        (&v["error_code"], &v["msg"]),
        (&json!("validation_failed"), &json!("Nonces mismatch"))
    );
    let (s, v) = env
        .token(
            "id_token",
            json!({"provider": "corp", "id_token": id_token}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a token with a nonce needs one: {v}"
    );
    assert_eq!(v["error_code"], "validation_failed", "{v}");
    let mut forged = id_token.to_string();
    forged.push('A');
    let (s, v) = env
        .token(
            "id_token",
            json!({"provider": "corp", "id_token": forged, "nonce": nonce}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["msg"].as_str().unwrap().starts_with("Bad ID token"),
        "{v}"
    );
    let (s, v) = env
        .token(
            "id_token",
            json!({"provider": "nobody", "id_token": id_token, "nonce": nonce}),
        )
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_failed")),
        "{v}"
    );

    let (s, session) = env
        .token(
            "id_token",
            json!({"provider": "corp", "id_token": id_token, "nonce": nonce}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["email"], EMAIL);
    assert_eq!(session["user"]["identities"][0]["provider"], "corp");
    let (s, me) = env.user(session["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{me}");
}
