//! Invites and the admin API against a real project database: `/invite`, `generate_link` for every
//! type (email changes to the current and the new address included) verified through `/verify`,
//! bans with `ban_duration`, `user_metadata` kept exactly as the admin sent it, unset timestamps left
//! out as GoTrue does, and the reauthentication nonce of a password change.

mod common;

use common::env;
use http::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_links_bans_and_metadata() {
    let env = env().await;
    let admin = env.minted("service_role", json!({}));
    let anon = env.minted("anon", json!({}));
    let call = |method: &'static str, path: String, token: String, body: Value| {
        let env = &env;
        async move { env.call(method, &path, Some(&token), true, body).await }
    };

    // Admin-created: metadata as sent (nulls too), no identity keys added, unset timestamps absent.
    let meta = json!({"plan": "pro", "nested": {"x": null}, "gone": null});
    let (s, u) = call(
        "POST",
        "/admin/users".into(),
        admin.clone(),
        json!({"email": "made@example.com", "password": "made-pass-1", "user_metadata": meta}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["user_metadata"], meta);
    for absent in [
        "email_confirmed_at",
        "invited_at",
        "last_sign_in_at",
        "banned_until",
        "new_email",
        "deleted_at",
        "factors",
    ] {
        assert!(u.get(absent).is_none(), "{absent} in {u}");
    }
    assert!(u["created_at"].is_string() && u["phone"] == "");
    let uid = u["id"].as_str().unwrap().to_string();

    // Ban and unban.
    let (s, u) = call(
        "PUT",
        format!("/admin/users/{uid}"),
        admin.clone(),
        json!({"ban_duration": "24h", "email_confirm": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert!(u["banned_until"].is_string());
    let login = json!({"email": "made@example.com", "password": "made-pass-1"});
    let (s, v) = call(
        "POST",
        "/token?grant_type=password".into(),
        anon.clone(),
        login.clone(),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("user_banned")),
        "{v}"
    );
    let (_, u) = call(
        "PUT",
        format!("/admin/users/{uid}"),
        admin.clone(),
        json!({"ban_duration": "none"}),
    )
    .await;
    assert!(u.get("banned_until").is_none(), "{u}");
    let (s, session) = call(
        "POST",
        "/token?grant_type=password".into(),
        anon.clone(),
        login,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{session}");

    // Invite: a new user with its data and invited_at; the invite link signs in and confirms.
    let (s, inv) = call(
        "POST",
        "/invite".into(),
        admin.clone(),
        json!({"email": "guest@example.com", "data": {"team": "a"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{inv}");
    assert!(inv["invited_at"].is_string() && inv.get("email_confirmed_at").is_none());
    assert_eq!(inv["user_metadata"]["team"], "a");
    let (s, v) = call(
        "POST",
        "/invite".into(),
        anon.clone(),
        json!({"email": "x@example.com"}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("not_admin"))
    );
    let (s, link) = call(
        "POST",
        "/admin/generate_link".into(),
        admin.clone(),
        json!({"type": "invite", "email": "guest@example.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{link}");
    assert_eq!(link["verification_type"], "invite");
    assert!(link["action_link"]
        .as_str()
        .unwrap()
        .contains("type=invite"));
    let (s, v) = call(
        "POST",
        "/verify".into(),
        anon.clone(),
        json!({"type": "invite", "token_hash": link["hashed_token"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["user"]["email_confirmed_at"].is_string());
    let (s, v) = call(
        "POST",
        "/invite".into(),
        admin.clone(),
        json!({"email": "guest@example.com"}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("email_exists"))
    );

    // Email change links, to the new and to the current address.
    for (kind, new) in [
        ("email_change_new", "made2@example.com"),
        ("email_change_current", "made3@example.com"),
    ] {
        let current = if kind == "email_change_new" {
            "made@example.com"
        } else {
            "made2@example.com"
        };
        let (s, link) = call(
            "POST",
            "/admin/generate_link".into(),
            admin.clone(),
            json!({"type": kind, "email": current, "new_email": new}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{link}");
        assert_eq!(
            (&link["new_email"], &link["verification_type"]),
            (&json!(new), &json!(kind))
        );
        // The code is bound to the address it would be mailed to.
        let to = if kind == "email_change_new" {
            new
        } else {
            current
        };
        let (s, v) = call(
            "POST",
            "/verify".into(),
            anon.clone(),
            json!({"type": "email_change", "email": to, "token": link["email_otp"]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        assert_eq!(v["user"]["email"], new);
        assert!(v["user"].get("new_email").is_none());
    }
    let (s, v) = call("POST", "/admin/generate_link".into(), admin.clone(),
        json!({"type": "email_change_new", "email": "nobody@example.com", "new_email": "n@example.com"})).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::NOT_FOUND, &json!("user_not_found"))
    );
    let (s, v) = call(
        "POST",
        "/admin/generate_link".into(),
        admin.clone(),
        json!({"type": "bogus", "email": "made3@example.com"}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_failed"))
    );

    // Reauthentication: a nonce is issued; a password change that needs one refuses a wrong one.
    let claims = supactl_common::jwt::verify(
        session["access_token"].as_str().unwrap(),
        &env.project.verification_secrets(),
        supactl_common::jwt::now(),
    )
    .unwrap();
    let user = env.minted(
        "authenticated",
        json!({"sub": claims["sub"], "session_id": claims["session_id"]}),
    );
    let (s, v) = call("GET", "/reauthenticate".into(), user.clone(), json!(null)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let db = env.superuser().await;
    let stored: String = db
        .query_one(
            "select reauthentication_token from auth.users where id = $1::text::uuid",
            &[&uid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored.len(), 56, "a hash is stored, not the nonce");
    // A nonce is checked where one is required: a session over a day old, with the setting on.
    db.batch_execute(&format!(
        "UPDATE auth.supactl_settings SET security_update_password_require_reauthentication = true;
         UPDATE auth.sessions SET created_at = now() - interval '25 hours' WHERE id = '{}'",
        claims["session_id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    let (s, v) = call(
        "PUT",
        "/user".into(),
        user.clone(),
        json!({"password": "new-pass-22", "nonce": "000000"}),
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
