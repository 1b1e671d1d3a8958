//! Email changes against a real project database, as GoTrue makes them. With secure email change
//! (`mailer_secure_email_change_enabled`, GoTrue's default) `PUT /user {email}` stores a token for
//! the current address and one for the new, the first `/verify` of either (`POST` with a token hash or
//! a code, `GET` of the link) answers GoTrue's message and the other completes the change
//! (`email_change_confirm_status` 0 → 1 → 0); without it the new address's token completes it at
//! once. Admin links for either address, and their refusal for the current one with the setting off.
//! No SMTP server is set, so the tests read the stored token hashes (what the mailed links carry) and
//! take codes from `generate_link`.

mod common;

use common::{env, Env};
use http::StatusCode;
use serde_json::{json, Value};
use supactl_common::jwt;

const APP: &str = "http://app.test/after";
const ONE_OF_TWO: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

/// A project whose email changes need confirming, a mail every time asked, and `secure` as set.
async fn change_env(secure: bool) -> Env {
    let env = env().await;
    env.superuser()
        .await
        .batch_execute(&format!(
            "UPDATE auth.supactl_settings SET smtp_max_frequency = 0, uri_allow_list = '{{{APP}}}', \
               mailer_secure_email_change_enabled = {secure}"
        ))
        .await
        .unwrap();
    env
}

/// Signs `email` up (autoconfirmed, then confirmations turned on): the user's forwarded JWT.
async fn user(env: &Env, email: &str) -> String {
    let anon = env.minted("anon", json!({}));
    let creds = json!({"email": email, "password": "change-pass-1"});
    let (s, session) = env.call("POST", "/signup", Some(&anon), true, creds).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    env.superuser()
        .await
        .batch_execute("UPDATE auth.supactl_settings SET mailer_autoconfirm = false")
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap();
    let claims = jwt::verify(token, &env.project.verification_secrets(), jwt::now()).unwrap();
    env.minted(
        "authenticated",
        json!({"sub": claims["sub"], "session_id": claims["session_id"]}),
    )
}

/// The user's address, pending address, confirmation status and email-change tokens.
async fn state(env: &Env, id_of: &str) -> (String, String, i16, String, String) {
    let r = env
        .superuser()
        .await
        .query_one(
            "SELECT email, coalesce(email_change, ''), email_change_confirm_status, \
               coalesce(email_change_token_current, ''), coalesce(email_change_token_new, '') \
             FROM auth.users WHERE email = $1 OR email_change = $1",
            &[&id_of],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

async fn verify(env: &Env, body: Value) -> (StatusCode, Value) {
    let anon = env.minted("anon", json!({}));
    env.call("POST", "/verify", Some(&anon), true, body).await
}

async fn change(env: &Env, user: &str, to: &str) {
    let (s, u) = env
        .call("PUT", "/user", Some(user), true, json!({"email": to}))
        .await;
    assert_eq!((s, &u["new_email"]), (StatusCode::OK, &json!(to)), "{u}");
}

async fn link(env: &Env, kind: &str, email: &str, new_email: &str) -> (StatusCode, Value) {
    let admin = env.minted("service_role", json!({}));
    let body = json!({"type": kind, "email": email, "new_email": new_email});
    env.call("POST", "/admin/generate_link", Some(&admin), true, body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_change_needs_both_addresses() {
    let env = change_env(true).await;
    let (old, new) = ("old@example.com", "new@example.com");
    let user = user(&env, old).await;

    // Both addresses get a token; the new one's link is the first confirmation: GoTrue's message,
    // the address unchanged, status 1, that token spent.
    change(&env, &user, new).await;
    let (email, pending, status, current, new_token) = state(&env, new).await;
    assert_eq!((email.as_str(), pending.as_str(), status), (old, new, 0));
    assert!(current.len() == 56 && new_token.len() == 56 && current != new_token);
    let (s, v) = verify(
        &env,
        json!({"type": "email_change", "token_hash": new_token}),
    )
    .await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"msg": ONE_OF_TWO, "code": "200"}))
    );
    assert_eq!(
        state(&env, new).await,
        (old.into(), new.into(), 1, current.clone(), String::new())
    );
    let (s, v) = verify(
        &env,
        json!({"type": "email_change", "token_hash": new_token}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("otp_expired"))
    );

    // The current address's link completes it: a session with the new address, status back to 0.
    let (s, location) = env
        .open(&format!(
            "/verify?token={current}&type=email_change&redirect_to={APP}"
        ))
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!("{APP}#access_token=")),
        "{location}"
    );
    assert!(location.ends_with("&type=email_change"), "{location}");
    assert_eq!(
        state(&env, new).await,
        (new.into(), String::new(), 0, String::new(), String::new())
    );

    // Again the other way round, by links: the current address's link first redirects with the
    // message (the fragment only, an implicit link), then the new one's signs in.
    let third = "third@example.com";
    change(&env, &user, third).await;
    let (_, _, _, current, new_token) = state(&env, third).await;
    let (s, location) = env
        .open(&format!(
            "/verify?token={current}&type=email_change&redirect_to={APP}"
        ))
        .await;
    let message = "message=Confirmation%20link%20accepted.%20Please%20proceed%20to%20confirm%20link%20sent%20to%20the%20other%20email";
    assert_eq!(
        (s, location),
        (StatusCode::SEE_OTHER, format!("{APP}#{message}"))
    );
    let (s, v) = verify(
        &env,
        json!({"type": "email_change", "token_hash": new_token}),
    )
    .await;
    assert_eq!(
        (s, &v["user"]["email"]),
        (StatusCode::OK, &json!(third)),
        "{v}"
    );
    assert!(v["user"].get("new_email").is_none(), "{v}");

    // Codes (from admin links for both addresses) are bound to the address they went to.
    let fourth = "fourth@example.com";
    let (s, to_current) = link(&env, "email_change_current", third, fourth).await;
    assert_eq!(s, StatusCode::OK, "{to_current}");
    let (s, to_new) = link(&env, "email_change_new", third, fourth).await;
    assert_eq!(s, StatusCode::OK, "{to_new}");
    let wrong = json!({"type": "email_change", "email": fourth, "token": to_current["email_otp"]});
    let (s, v) = verify(&env, wrong).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("otp_expired"))
    );
    let first = json!({"type": "email_change", "email": third, "token": to_current["email_otp"]});
    let (s, v) = verify(&env, first).await;
    assert_eq!((s, &v["msg"]), (StatusCode::OK, &json!(ONE_OF_TWO)), "{v}");
    let second = json!({"type": "email_change", "email": fourth, "token": to_new["email_otp"]});
    let (s, v) = verify(&env, second).await;
    assert_eq!(
        (s, &v["user"]["email"]),
        (StatusCode::OK, &json!(fourth)),
        "{v}"
    );

    // A link for one address alone (its other token never issued) completes the change.
    let fifth = "fifth@example.com";
    let (_, only) = link(&env, "email_change_new", fourth, fifth).await;
    let (s, v) = verify(
        &env,
        json!({"type": "email_change", "token_hash": only["hashed_token"]}),
    )
    .await;
    assert_eq!(
        (s, &v["user"]["email"]),
        (StatusCode::OK, &json!(fifth)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_secure_change_the_new_address_suffices() {
    let env = change_env(false).await;
    let (old, new) = ("plain@example.com", "plain-new@example.com");
    let user = user(&env, old).await;

    // One token, to the new address; its link completes the change at once.
    change(&env, &user, new).await;
    let (email, _, status, current, new_token) = state(&env, new).await;
    assert_eq!((email.as_str(), status, current.as_str()), (old, 0, ""));
    let (s, v) = verify(
        &env,
        json!({"type": "email_change", "token_hash": new_token}),
    )
    .await;
    assert_eq!(
        (s, &v["user"]["email"]),
        (StatusCode::OK, &json!(new)),
        "{v}"
    );
    assert_eq!(state(&env, new).await.2, 0);

    // A code to the new address does too; a link for the current address is refused (GoTrue).
    let third = "plain-third@example.com";
    let (s, v) = link(&env, "email_change_current", new, third).await;
    assert_eq!(
        (s, &v["code"], &v["message"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("validation_failed"),
            &json!("Enable secure email change to generate link for current email")
        ),
        "{v}"
    );
    let (s, to_new) = link(&env, "email_change_new", new, third).await;
    assert_eq!(s, StatusCode::OK, "{to_new}");
    let code = json!({"type": "email_change", "email": third, "token": to_new["email_otp"]});
    let (s, v) = verify(&env, code).await;
    assert_eq!(
        (s, &v["user"]["email"]),
        (StatusCode::OK, &json!(third)),
        "{v}"
    );

    // A current-address token left from when the setting was on does not confirm a later change.
    env.superuser()
        .await
        .batch_execute("UPDATE auth.supactl_settings SET mailer_secure_email_change_enabled = true")
        .await
        .unwrap();
    let fourth = "plain-fourth@example.com";
    change(&env, &user, fourth).await;
    let (_, _, _, stale, _) = state(&env, fourth).await;
    env.superuser()
        .await
        .batch_execute(
            "UPDATE auth.supactl_settings SET mailer_secure_email_change_enabled = false",
        )
        .await
        .unwrap();
    let fifth = "plain-fifth@example.com";
    change(&env, &user, fifth).await;
    let (s, v) = verify(&env, json!({"type": "email_change", "token_hash": stale})).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("otp_expired")),
        "{v}"
    );
}
