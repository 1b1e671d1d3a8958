//! Reauthentication for password changes against a real project database, as GoTrue's
//! `SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`: with
//! `security_update_password_require_reauthentication` on, `PUT /user {password}` from a session older
//! than 24 hours (or a token without a session) needs the nonce of `/reauthenticate` (400
//! `reauthentication_needed` without it, 422 `reauthentication_not_valid` for a wrong or spent one); a
//! younger session does not, and with the setting off a nonce is neither needed nor checked.
//! No SMTP server is set, so the test stores a nonce's hash as `/reauthenticate` would.

mod common;

use common::{env, Env};
use http::StatusCode;
use serde_json::{json, Value};
use supactl_common::jwt;

const EMAIL: &str = "reauth@example.com";

/// The forwarded JWT of the user's session, and the session's id.
async fn signed_up(env: &Env) -> (String, String) {
    let anon = env.minted("anon", json!({}));
    let creds = json!({"email": EMAIL, "password": "first-pass-1"});
    let (s, session) = env.call("POST", "/signup", Some(&anon), true, creds).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let token = session["access_token"].as_str().unwrap();
    let claims = jwt::verify(token, &env.project.verification_secrets(), jwt::now()).unwrap();
    let user = env.minted(
        "authenticated",
        json!({"sub": claims["sub"], "session_id": claims["session_id"]}),
    );
    (user, claims["session_id"].as_str().unwrap().to_string())
}

async fn sql(env: &Env, statement: &str) {
    env.superuser()
        .await
        .batch_execute(statement)
        .await
        .unwrap();
}

async fn put_password(env: &Env, user: &str, body: Value) -> (StatusCode, Value) {
    env.call("PUT", "/user", Some(user), true, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changes_need_a_nonce_after_a_day() {
    let env = env().await;
    let (user, session_id) = signed_up(&env).await;
    let age = |hours: i32| {
        format!(
            "UPDATE auth.sessions SET created_at = now() - interval '{hours} hours' \
             WHERE id = '{session_id}'"
        )
    };

    // Off (the default): no nonce needed, and a wrong one is ignored, even from an old session.
    sql(&env, &age(25)).await;
    let (s, v) = put_password(
        &env,
        &user,
        json!({"password": "second-pass-2", "nonce": "000000"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // On: a session younger than a day still needs none.
    sql(
        &env,
        "UPDATE auth.supactl_settings SET security_update_password_require_reauthentication = true",
    )
    .await;
    sql(&env, &age(23)).await;
    let (s, v) = put_password(&env, &user, json!({"password": "third-pass-3"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // An older one does: without a nonce, with a wrong one, and from a token without a session.
    sql(&env, &age(25)).await;
    let (s, v) = put_password(&env, &user, json!({"password": "fourth-pass-4"})).await;
    assert_eq!(
        (s, &v["code"], &v["message"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("reauthentication_needed"),
            &json!("Password update requires reauthentication")
        ),
        "{v}"
    );
    let (s, v) = put_password(
        &env,
        &user,
        json!({"password": "fourth-pass-4", "nonce": "000000"}),
    )
    .await;
    assert_eq!(
        (s, &v["code"], &v["message"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("reauthentication_not_valid"),
            &json!("Nonce has expired or is invalid")
        ),
        "{v}"
    );
    let claims = jwt::verify(&user, &env.project.verification_secrets(), jwt::now()).unwrap();
    let sessionless = env.minted("authenticated", json!({"sub": claims["sub"]}));
    let (s, v) = put_password(&env, &sessionless, json!({"password": "fourth-pass-4"})).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("reauthentication_needed"))
    );

    // The nonce `/reauthenticate` sent (its hash stored, as sent) lets the change through, once.
    let (s, v) = env
        .call("GET", "/reauthenticate", Some(&user), true, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let hash = auth::validate::token_hash(EMAIL, "123456");
    sql(
        &env,
        &format!("UPDATE auth.users SET reauthentication_token = '{hash}' WHERE email = '{EMAIL}'"),
    )
    .await;
    let (s, v) = put_password(
        &env,
        &user,
        json!({"password": "fourth-pass-4", "nonce": "123456"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let anon = env.minted("anon", json!({}));
    let login = json!({"email": EMAIL, "password": "fourth-pass-4"});
    let (s, v) = env
        .call(
            "POST",
            "/token?grant_type=password",
            Some(&anon),
            true,
            login,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = put_password(
        &env,
        &user,
        json!({"password": "fifth-pass-5", "nonce": "123456"}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("reauthentication_not_valid")
        ),
        "{v}"
    );
}
