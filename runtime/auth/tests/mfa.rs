//! TOTP factors against a real project database: enroll (secret, otpauth URI, QR code; the secret
//! sealed at rest), challenge, verify with a code computed here (aal1 → aal2, `totp` in `amr`, new
//! tokens), wrong and expired codes, the user's `factors`, unenroll needing aal2, and the admin's list
//! and delete.

mod common;

use common::env;
use http::StatusCode;
use serde_json::{json, Value};
use supactl_common::jwt;

fn claims_of(env: &common::Env, session: &Value) -> serde_json::Map<String, Value> {
    jwt::verify(
        session["access_token"].as_str().unwrap(),
        &env.project.verification_secrets(),
        jwt::now(),
    )
    .unwrap()
}

/// The token the gateway forwards for a user's access token.
fn forwarded(env: &common::Env, session: &Value) -> String {
    let c = claims_of(env, session);
    env.minted(
        "authenticated",
        json!({"sub": c["sub"], "session_id": c["session_id"], "aal": c["aal"]}),
    )
}

async fn challenge(env: &common::Env, user: &str, fid: &str) -> String {
    let (s, c) = env
        .call(
            "POST",
            &format!("/factors/{fid}/challenge"),
            Some(user),
            true,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(c["expires_at"].as_i64().unwrap() > jwt::now());
    c["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enroll_challenge_verify_unenroll() {
    let env = env().await;
    let anon = env.minted("anon", json!({}));
    let (s, session) = env
        .call(
            "POST",
            "/signup",
            Some(&anon),
            true,
            json!({"email": "mfa@example.com", "password": "mfa-pass-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(claims_of(&env, &session)["aal"], "aal1");
    let user = forwarded(&env, &session);

    // Enroll: GoTrue's answer; the stored secret is not the secret.
    let (s, f) = env
        .call(
            "POST",
            "/factors",
            Some(&user),
            true,
            json!({"factor_type": "totp", "friendly_name": "phone app", "issuer": "Acme"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let (fid, secret) = (
        f["id"].as_str().unwrap(),
        f["totp"]["secret"].as_str().unwrap(),
    );
    assert_eq!(f["type"], "totp");
    assert!(f["totp"]["qr_code"].as_str().unwrap().contains("<svg"));
    assert_eq!(
        f["totp"]["uri"],
        format!("otpauth://totp/Acme:mfa%40example.com?algorithm=SHA1&digits=6&issuer=Acme&period=30&secret={secret}")
    );
    let db = env.superuser().await;
    let stored: String = db
        .query_one(
            "select secret from auth.mfa_factors where id = $1::text::uuid",
            &[&fid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains(secret), "sealed at rest");
    let (s, v) = env
        .call(
            "POST",
            "/factors",
            Some(&user),
            true,
            json!({"factor_type": "totp", "friendly_name": "phone app"}),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("mfa_factor_name_conflict")
        )
    );

    // The user lists it, unverified.
    let (_, me) = env
        .call("GET", "/user", Some(&user), true, json!(null))
        .await;
    assert_eq!(me["factors"][0]["status"], "unverified", "{me}");
    assert_eq!(me["factors"][0]["friendly_name"], "phone app");

    // A wrong code fails; the right one raises the session to aal2 with new tokens.
    let key = auth::totp::from_base32(secret).unwrap();
    let cid = challenge(&env, &user, fid).await;
    let wrong = if auth::totp::code(&key, jwt::now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (s, v) = env
        .call(
            "POST",
            &format!("/factors/{fid}/verify"),
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": wrong}),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("mfa_verification_failed")
        ),
        "{v}"
    );
    let code = auth::totp::code(&key, jwt::now());
    let (s, aal2) = env
        .call(
            "POST",
            &format!("/factors/{fid}/verify"),
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{aal2}");
    let c = claims_of(&env, &aal2);
    assert_eq!(c["aal"], "aal2");
    let methods: Vec<&str> = c["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["method"].as_str().unwrap())
        .collect();
    // most recent first, as GoTrue orders them
    assert_eq!(methods, ["totp", "password"]);
    assert_ne!(aal2["refresh_token"], session["refresh_token"]);
    assert_eq!(aal2["user"]["factors"][0]["status"], "verified");
    // A challenge is used once.
    let (s, v) = env
        .call(
            "POST",
            &format!("/factors/{fid}/verify"),
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": code}),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("mfa_challenge_expired")
        )
    );

    // A refresh keeps aal2; an aal1 session of the same user cannot remove the verified factor.
    let (s, refreshed) = env
        .call(
            "POST",
            "/token?grant_type=refresh_token",
            Some(&anon),
            true,
            json!({"refresh_token": aal2["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{refreshed}");
    assert_eq!(claims_of(&env, &refreshed)["aal"], "aal2");
    let (_, other) = env
        .call(
            "POST",
            "/token?grant_type=password",
            Some(&anon),
            true,
            json!({"email": "mfa@example.com", "password": "mfa-pass-1"}),
        )
        .await;
    let aal1 = forwarded(&env, &other);
    let (s, v) = env
        .call(
            "DELETE",
            &format!("/factors/{fid}"),
            Some(&aal1),
            true,
            json!(null),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("insufficient_aal")),
        "{v}"
    );

    // The admin lists and deletes factors; another user's factor is not found.
    let admin = env.minted("service_role", json!({}));
    let uid = c["sub"].as_str().unwrap();
    let (s, list) = env
        .call(
            "GET",
            &format!("/admin/users/{uid}/factors"),
            Some(&admin),
            true,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, v) = env
        .call(
            "GET",
            &format!("/admin/users/{uid}/factors"),
            Some(&aal1),
            true,
            json!(null),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("not_admin"))
    );

    // Unenroll at aal2: the factor goes, the user has no `factors` key, sessions fall back to aal1.
    let user2 = forwarded(&env, &aal2);
    let (s, v) = env
        .call(
            "DELETE",
            &format!("/factors/{fid}"),
            Some(&user2),
            true,
            json!(null),
        )
        .await;
    assert_eq!((s, &v["id"]), (StatusCode::OK, &json!(fid)), "{v}");
    let (_, me) = env
        .call("GET", "/user", Some(&user2), true, json!(null))
        .await;
    assert!(me.get("factors").is_none(), "{me}");
    let (s, v) = env
        .call(
            "POST",
            &format!("/factors/{fid}/challenge"),
            Some(&user2),
            true,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::NOT_FOUND, &json!("mfa_factor_not_found"))
    );

    // Admin delete of a fresh factor.
    let (_, f2) = env
        .call(
            "POST",
            "/factors",
            Some(&user2),
            true,
            json!({"factor_type": "totp"}),
        )
        .await;
    let f2 = f2["id"].as_str().unwrap();
    let (s, v) = env
        .call(
            "DELETE",
            &format!("/admin/users/{uid}/factors/{f2}"),
            Some(&admin),
            true,
            json!(null),
        )
        .await;
    assert_eq!((s, &v["id"]), (StatusCode::OK, &json!(f2)), "{v}");
}
