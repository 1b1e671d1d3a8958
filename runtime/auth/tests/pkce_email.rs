//! PKCE for the email flows against a real project database, as GoTrue runs it: `/signup`,
//! `/magiclink`, `/otp`, `/recover` and `PUT /user {email}` with a `code_challenge` record a flow state
//! and store (and mail) a `pkce_` token; `GET /verify` of it redirects with `?code=…`, which
//! `POST /token?grant_type=pkce` turns into a session once (the flow's method in `amr`); wrong
//! verifiers, replays, expired codes, a link whose flow state is gone and bad challenges get GoTrue's
//! errors; `POST /verify {token_hash}` of a PKCE token signs in directly (the server-side pattern); an
//! email change takes the links to both addresses.
//! No SMTP server is set, so the tests read the stored token — the value the mailed link carries.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use common::{env, Env};
use http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use supactl_common::jwt;

const APP: &str = "http://app.test/auth/callback";

/// A verifier and its S256 challenge, computed here.
fn pair(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-verifier-{}", "x".repeat(43));
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn with_challenge(mut body: Value, challenge: &str, method: &str) -> Value {
    body["code_challenge"] = json!(challenge);
    body["code_challenge_method"] = json!(method);
    body
}

/// The stored token of `column` for the user with `email` (what the mailed link carries).
async fn stored(env: &Env, column: &str, email: &str) -> String {
    env.superuser()
        .await
        .query_one(
            &format!("SELECT coalesce({column}, '') FROM auth.users WHERE email = $1 OR email_change = $1"),
            &[&email],
        )
        .await
        .unwrap()
        .get(0)
}

/// Opens the link of `token` and answers the auth code from the redirect (asserting its shape).
async fn code_of(env: &Env, token: &str, kind: &str) -> String {
    let (s, location) = env
        .open(&format!(
            "/verify?token={token}&type={kind}&redirect_to={APP}"
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{location}");
    let code = location
        .strip_prefix(&format!("{APP}?code="))
        .unwrap_or_else(|| panic!("{kind}: no code in {location}"));
    assert!(
        !code.contains('#') && !code.contains("access_token"),
        "{location}"
    );
    code.to_string()
}

async fn exchange(env: &Env, code: &str, verifier: &str) -> (StatusCode, Value) {
    let anon = env.minted("anon", json!({}));
    let body = json!({"auth_code": code, "code_verifier": verifier});
    env.call("POST", "/token?grant_type=pkce", Some(&anon), true, body)
        .await
}

/// The `amr` method of a session's access token (verified with the project's secrets).
fn amr_of(env: &Env, session: &Value) -> Value {
    let token = session["access_token"].as_str().unwrap();
    let claims = jwt::verify(token, &env.project.verification_secrets(), jwt::now()).unwrap();
    claims["amr"][0]["method"].clone()
}

async fn pkce_env() -> Env {
    let env = env().await;
    env.superuser()
        .await
        .batch_execute(
            "UPDATE auth.supactl_settings SET smtp_max_frequency = 0, mailer_autoconfirm = false, \
               uri_allow_list = '{http://app.test/**}'",
        )
        .await
        .unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_magic_link_recovery_and_email_change_with_pkce() {
    let env = pkce_env().await;
    let anon = env.minted("anon", json!({}));
    let call = |path: String, body: Value| {
        let (env, anon) = (&env, anon.clone());
        async move { env.call("POST", &path, Some(&anon), true, body).await }
    };
    let email = "pkce@example.com";

    // Sign-up: a flow state bound to the new user, a `pkce_` token.
    let (verifier, challenge) = pair("signup");
    let creds = json!({"email": email, "password": "pkce-pass-1"});
    let (s, user) = call(
        format!("/signup?redirect_to={APP}"),
        with_challenge(creds, &challenge, "s256"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{user}");
    assert!(user.get("email_confirmed_at").is_none(), "{user}");
    let token = stored(&env, "confirmation_token", email).await;
    assert!(
        token.starts_with("pkce_") && token.len() == 5 + 56,
        "{token}"
    );
    let flow = env
        .superuser()
        .await
        .query_one(
            "SELECT user_id::text, authentication_method, provider_type, code_challenge, \
               code_challenge_method::text, auth_code_issued_at IS NULL FROM auth.flow_state",
            &[],
        )
        .await
        .unwrap();
    let row: (String, String, String, String, String, bool) = (
        flow.get(0),
        flow.get(1),
        flow.get(2),
        flow.get(3),
        flow.get(4),
        flow.get(5),
    );
    assert_eq!(
        row,
        (
            user["id"].as_str().unwrap().to_string(),
            "email/signup".into(),
            "email".into(),
            challenge.clone(),
            "s256".into(),
            true
        )
    );

    // The link redirects with a code (no session in a fragment); the code needs the right verifier,
    // works once.
    let code = code_of(&env, &token, "signup").await;
    let (s, v) = exchange(&env, &code, "not-the-verifier").await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("bad_code_verifier")),
        "{v}"
    );
    let (s, session) = exchange(&env, &code, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["email"], email);
    assert!(session["user"]["email_confirmed_at"].is_string());
    assert_eq!(amr_of(&env, &session), "email/signup");
    assert!(session["refresh_token"].is_string());
    let (s, v) = exchange(&env, &code, &verifier).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::NOT_FOUND, &json!("flow_state_not_found")),
        "{v}"
    );
    // The link is spent: the error comes in the query and in the fragment.
    let (s, location) = env
        .open(&format!(
            "/verify?token={token}&type=signup&redirect_to={APP}"
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!(
            "{APP}?error=access_denied&error_code=otp_expired&"
        )) && location.contains("#error=access_denied&error_code=otp_expired&"),
        "{location}"
    );

    // Magic link (plain method): `magiclink` in amr.
    let (verifier, _) = pair("magic");
    let (s, v) = call(
        format!("/magiclink?redirect_to={APP}"),
        with_challenge(json!({"email": email}), &verifier, "plain"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = stored(&env, "recovery_token", email).await;
    assert!(token.starts_with("pkce_"), "{token}");
    let code = code_of(&env, &token, "magiclink").await;
    let (s, session) = exchange(&env, &code, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(amr_of(&env, &session), "magiclink");

    // Recovery: `recovery` in amr; a code left past its 5 minutes has expired.
    let (verifier, challenge) = pair("recover");
    let (s, v) = call(
        format!("/recover?redirect_to={APP}"),
        with_challenge(json!({"email": email}), &challenge, "S256"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = stored(&env, "recovery_token", email).await;
    let code = code_of(&env, &token, "recovery").await;
    let (s, session) = exchange(&env, &code, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(amr_of(&env, &session), "recovery");
    let (verifier, challenge) = pair("late");
    call(
        "/recover".into(),
        with_challenge(json!({"email": email}), &challenge, "s256"),
    )
    .await;
    let code = code_of(
        &env,
        &stored(&env, "recovery_token", email).await,
        "recovery",
    )
    .await;
    env.superuser()
        .await
        .execute(
            "UPDATE auth.flow_state SET auth_code_issued_at = now() - interval '301 seconds' \
             WHERE auth_code = $1",
            &[&code],
        )
        .await
        .unwrap();
    let (s, v) = exchange(&env, &code, &verifier).await;
    assert_eq!(
        (s, &v["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("flow_state_expired")
        ),
        "{v}"
    );

    // Email change (secure, GoTrue's default): the link to the current address is the first of two
    // confirmations, answered with GoTrue's message in the query and the fragment; the link to the
    // new address then ends in a session with the new email.
    let claims = jwt::verify(
        session["access_token"].as_str().unwrap(),
        &env.project.verification_secrets(),
        jwt::now(),
    )
    .unwrap();
    let user_token = env.minted(
        "authenticated",
        json!({"sub": claims["sub"], "session_id": claims["session_id"]}),
    );
    let (verifier, challenge) = pair("change");
    let new = "pkce-new@example.com";
    let (s, u) = env
        .call(
            "PUT",
            &format!("/user?redirect_to={APP}"),
            Some(&user_token),
            true,
            with_challenge(json!({"email": new}), &challenge, "s256"),
        )
        .await;
    assert_eq!((s, &u["new_email"]), (StatusCode::OK, &json!(new)), "{u}");
    let current = stored(&env, "email_change_token_current", new).await;
    assert!(current.starts_with("pkce_"), "{current}");
    let (s, location) = env
        .open(&format!(
            "/verify?token={current}&type=email_change&redirect_to={APP}"
        ))
        .await;
    let message = "message=Confirmation%20link%20accepted.%20Please%20proceed%20to%20confirm%20link%20sent%20to%20the%20other%20email";
    assert_eq!(
        (s, location),
        (StatusCode::SEE_OTHER, format!("{APP}?{message}#{message}"))
    );
    let token = stored(&env, "email_change_token_new", new).await;
    assert!(token.starts_with("pkce_"), "{token}");
    let code = code_of(&env, &token, "email_change").await;
    let (s, session) = exchange(&env, &code, &verifier).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["email"], new);
    assert_eq!(amr_of(&env, &session), "email_change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_hashes_missing_flow_states_and_bad_challenges() {
    let env = pkce_env().await;
    let anon = env.minted("anon", json!({}));
    let call = |path: &'static str, body: Value| {
        let (env, anon) = (&env, anon.clone());
        async move { env.call("POST", path, Some(&anon), true, body).await }
    };
    let (_, challenge) = pair("hash");

    // The server-side pattern: `POST /verify {token_hash}` of a PKCE token signs in at once.
    let email = "hash@example.com";
    let (s, v) = call(
        "/otp",
        with_challenge(json!({"email": email}), &challenge, "s256"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = stored(&env, "confirmation_token", email).await;
    assert!(
        token.starts_with("pkce_"),
        "a new user of /otp confirms: {token}"
    );
    let method: String = env
        .superuser()
        .await
        .query_one("SELECT authentication_method FROM auth.flow_state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(method, "email/signup");
    let (s, session) = call("/verify", json!({"type": "email", "token_hash": token})).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["email"], email);
    assert_eq!(amr_of(&env, &session), "otp");

    // A PKCE link whose flow state is gone spends nothing and says so in the redirect.
    let other = "lost@example.com";
    let creds = json!({"email": other, "password": "pkce-pass-1"});
    let (s, _) = call("/signup", with_challenge(creds, &challenge, "s256")).await;
    assert_eq!(s, StatusCode::OK);
    let token = stored(&env, "confirmation_token", other).await;
    env.superuser()
        .await
        .execute("DELETE FROM auth.flow_state", &[])
        .await
        .unwrap();
    let (s, location) = env
        .open(&format!(
            "/verify?token={token}&type=signup&redirect_to={APP}"
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!(
            "{APP}?error=invalid_request&error_code=flow_state_not_found&"
        )),
        "{location}"
    );
    assert_eq!(
        stored(&env, "confirmation_token", other).await,
        token,
        "not spent"
    );
    let (s, session) = call("/verify", json!({"type": "signup", "token_hash": token})).await;
    assert_eq!(s, StatusCode::OK, "the token still verifies: {session}");

    // An implicit token keeps its fragment session.
    let (s, _) = call("/magiclink", json!({"email": other})).await;
    assert_eq!(s, StatusCode::OK);
    let token = stored(&env, "recovery_token", other).await;
    assert!(!token.starts_with("pkce_"));
    let (_, location) = env
        .open(&format!(
            "/verify?token={token}&type=magiclink&redirect_to={APP}"
        ))
        .await;
    assert!(
        location.starts_with(&format!("{APP}#access_token=")),
        "{location}"
    );

    // GoTrue's checks of the challenge.
    let base = json!({"email": "bad@example.com", "password": "pkce-pass-1"});
    let cases = [
        (
            json!({"code_challenge": challenge}),
            "PKCE flow requires code_challenge_method and code_challenge",
        ),
        (
            json!({"code_challenge_method": "s256"}),
            "PKCE flow requires code_challenge_method and code_challenge",
        ),
        (
            json!({"code_challenge": "short", "code_challenge_method": "s256"}),
            "code challenge has to be between 43 and 128 characters",
        ),
        (
            json!({"code_challenge": challenge, "code_challenge_method": "md5"}),
            "code challenge method md5 not supported",
        ),
    ];
    for (extra, msg) in cases {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        for path in ["/signup", "/otp", "/magiclink", "/recover"] {
            let (s, v) = call(path, body.clone()).await;
            assert_eq!(
                (s, &v["code"], &v["message"]),
                (
                    StatusCode::BAD_REQUEST,
                    &json!("validation_failed"),
                    &json!(msg)
                ),
                "{path}: {v}"
            );
        }
    }
    let users: i64 = env
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM auth.users WHERE email = 'bad@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "a refused request creates nothing");
    let (s, v) = call("/token?grant_type=pkce", json!({"auth_code": "x"})).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_failed")),
        "{v}"
    );
}
