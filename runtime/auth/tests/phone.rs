//! Phone sign-in and phone MFA factors against a real project database, with codes sent through the
//! project's Send SMS hook to a real HTTP receiver on 127.0.0.1 that checks the Standard Webhooks
//! signature on its own ([`sms_hook`]): the hook set through the platform's admin API (secret sealed,
//! never answered), sign-up → verify, OTP sign-in, resend limits, bad numbers, the password grant by
//! number, phone change, the admin API with `phone`/`phone_confirm`, the hook down / slow / refusing
//! the signature / erroring → GoTrue's errors, phone factors (enroll, challenge, verify → `aal2`
//! with `mfa/phone`), and no code ever in the service's logs.

mod common;
#[path = "common/sms_hook.rs"]
mod sms_hook;

use common::{env, Env, REF};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sms_hook::{Mode, Receiver};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use supactl_common::jwt;

/// Everything the service logs (every level), to check that no code shows up in it.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("PHONE_TEST_LOGS").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// Asserts that none of the codes the receiver got appears in the logs.
fn assert_codes_not_logged(rx: &Receiver) {
    let logs = logs();
    assert!(!logs.is_empty(), "the service's logs are captured");
    for p in rx.payloads() {
        let otp = p["sms"]["otp"].as_str().unwrap();
        assert!(!logs.contains(otp), "code {otp} appears in the logs");
    }
}

async fn settings(env: &Env, sql: &str) {
    env.superuser()
        .await
        .batch_execute(&format!("UPDATE auth.supactl_settings SET {sql}"))
        .await
        .unwrap();
}

async fn set_hook(env: &Env, body: Value) -> (StatusCode, Value) {
    let path = format!("/admin/v1/projects/{REF}/auth/hooks/send_sms");
    env.cp.admin(Method::PUT, &path, Some(body)).await
}

/// A project with phone sign-in on and its hook pointing at a fresh receiver.
async fn phone_env() -> (Env, Receiver) {
    capture_logs();
    let env = env().await;
    let rx = Receiver::start().await;
    let (s, v) = set_hook(&env, json!({"uri": rx.uri(), "secret": rx.secret})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    settings(&env, "phone_enabled = true, sms_max_frequency = 0").await;
    (env, rx)
}

fn claims_of(env: &Env, session: &Value) -> serde_json::Map<String, Value> {
    jwt::verify(
        session["access_token"].as_str().unwrap(),
        &env.project.verification_secrets(),
        jwt::now(),
    )
    .unwrap()
}

/// The token the gateway forwards for a user's access token.
fn forwarded(env: &Env, session: &Value) -> String {
    let c = claims_of(env, session);
    env.minted(
        "authenticated",
        json!({"sub": c["sub"], "session_id": c["session_id"], "aal": c["aal"]}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_signup_verify_otp_resend_change_and_admin() {
    let (env, rx) = phone_env().await;
    let anon = env.minted("anon", json!({}));

    // The hook as the admin API shows it: no secret, and the stored one is sealed.
    let path = format!("/admin/v1/projects/{REF}/auth/hooks/send_sms");
    let (s, hook) = env.cp.admin(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hook["data"]["uri"], rx.uri());
    assert_eq!(hook["data"]["secret_set"], true);
    assert!(!hook.to_string().contains("whsec_"), "{hook}");
    let stored: String = env
        .superuser()
        .await
        .query_one("SELECT secret FROM auth.supactl_hooks", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains("whsec_"));
    let (s, e) = set_hook(
        &env,
        json!({"uri": "http://sms.example.com/x", "secret": rx.secret}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = set_hook(&env, json!({"uri": rx.uri(), "secret": "whsec_abc"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, st) = env
        .call("GET", "/settings", Some(&anon), true, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&st["external"]["phone"], &st["phone_autoconfirm"]),
        (&json!(true), &json!(false))
    );

    // A bad number is GoTrue's validation error.
    let bad = json!({"phone": "+0 555", "password": "phone-pass-1"});
    let (s, e) = env.call("POST", "/signup", Some(&anon), true, bad).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_failed"))
    );
    assert_eq!(e["message"], "Invalid phone number format (E.164 required)");

    // Sign-up: a code goes to the hook, signed; the user waits unconfirmed.
    let creds = json!({"phone": "+1 555 010 0001", "password": "phone-pass-1", "data": {"a": 1}});
    let (s, u) = env.call("POST", "/signup", Some(&anon), true, creds).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(
        (&u["phone"], u.get("phone_confirmed_at")),
        (&json!("15550100001"), None)
    );
    assert_eq!(u["identities"][0]["provider"], "phone");
    let sent = rx.payloads();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["user"]["id"], u["id"]);
    assert_eq!(sent[0]["metadata"]["name"], "send-sms");
    let otp = rx.last_otp("15550100001");
    assert_eq!(otp.len(), 6);
    // Only the code's hash is stored.
    let db = env.superuser().await;
    let token: String = db
        .query_one(
            "SELECT confirmation_token FROM auth.users WHERE phone = '15550100001'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(token.len() == 56 && !token.contains(&otp));

    // The password grant waits for the confirmation.
    let login = json!({"phone": "15550100001", "password": "phone-pass-1"});
    let (s, e) = env
        .call(
            "POST",
            "/token?grant_type=password",
            Some(&anon),
            true,
            login.clone(),
        )
        .await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::BAD_REQUEST, &json!("phone_not_confirmed"))
    );

    // A wrong code, then the right one (once).
    let verify = |token: &str| json!({"type": "sms", "phone": "+15550100001", "token": token});
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let (s, e) = env
        .call("POST", "/verify", Some(&anon), true, verify(wrong))
        .await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::FORBIDDEN, &json!("otp_expired"))
    );
    let (s, session) = env
        .call("POST", "/verify", Some(&anon), true, verify(&otp))
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert!(session["user"]["phone_confirmed_at"].is_string());
    assert_eq!(
        session["user"]["identities"][0]["identity_data"]["phone_verified"],
        true
    );
    assert_eq!(claims_of(&env, &session)["amr"][0]["method"], "otp");
    let (s, _) = env
        .call("POST", "/verify", Some(&anon), true, verify(&otp))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a code is spent by its use");

    let (s, session) = env
        .call(
            "POST",
            "/token?grant_type=password",
            Some(&anon),
            true,
            login,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(claims_of(&env, &session)["phone"], "15550100001");

    // OTP sign-in of the confirmed user; `create_user: false` refuses an unknown number.
    let (s, e) = env
        .call(
            "POST",
            "/otp",
            Some(&anon),
            true,
            json!({"phone": "15550100001", "channel": "sms"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let otp2 = rx.last_otp("15550100001");
    let (s, session) = env
        .call("POST", "/verify", Some(&anon), true, verify(&otp2))
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let unknown = json!({"phone": "15550100999", "create_user": false});
    let (s, e) = env.call("POST", "/otp", Some(&anon), true, unknown).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("otp_disabled"))
    );

    // OTP sign-up of a new number, then resend: within the send interval it is refused.
    settings(&env, "sms_max_frequency = 60").await;
    let (s, _) = env
        .call(
            "POST",
            "/otp",
            Some(&anon),
            true,
            json!({"phone": "15550100002"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let resend = json!({"type": "sms", "phone": "15550100002"});
    let (s, e) = env
        .call("POST", "/resend", Some(&anon), true, resend.clone())
        .await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::TOO_MANY_REQUESTS,
            &json!("over_sms_send_rate_limit")
        )
    );
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("For security purposes"));
    settings(&env, "sms_max_frequency = 0").await;
    let before = rx.payloads().len();
    let (s, _) = env.call("POST", "/resend", Some(&anon), true, resend).await;
    assert_eq!((s, rx.payloads().len()), (StatusCode::OK, before + 1));
    // A confirmed number gets nothing more.
    let confirmed = json!({"type": "sms", "phone": "15550100001"});
    let (s, _) = env
        .call("POST", "/resend", Some(&anon), true, confirmed)
        .await;
    assert_eq!((s, rx.payloads().len()), (StatusCode::OK, before + 1));

    // Phone change: the code goes to the new number; verifying it moves the number.
    let user = forwarded(&env, &session);
    let (s, u) = env
        .call(
            "PUT",
            "/user",
            Some(&user),
            true,
            json!({"phone": "+1 555 010 0003"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(
        (&u["phone"], &u["new_phone"]),
        (&json!("15550100001"), &json!("15550100003"))
    );
    let code = rx.last_otp("15550100003");
    let change = json!({"type": "phone_change", "phone": "15550100003", "token": code});
    let (s, session) = env.call("POST", "/verify", Some(&anon), true, change).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["phone"], "15550100003");
    assert!(session["user"].get("new_phone").is_none());
    let (s, e) = env
        .call(
            "PUT",
            "/user",
            Some(&user),
            true,
            json!({"phone": "15550100002"}),
        )
        .await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("phone_exists"))
    );

    // A user with only a number gets the reauthentication nonce by SMS.
    let (s, e) = env
        .call("GET", "/reauthenticate", Some(&user), true, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let nonce = rx.last_otp("15550100003");
    let wrong = if nonce == "000000" {
        "111111"
    } else {
        "000000"
    };
    let change = |nonce: &str| json!({"password": "phone-pass-2", "nonce": nonce});
    // Checked where one is required: with the setting on, from a token without a session.
    settings(
        &env,
        "security_update_password_require_reauthentication = true",
    )
    .await;
    let sub = claims_of(&env, &session)["sub"].clone();
    let user = env.minted("authenticated", json!({ "sub": sub }));
    let (s, e) = env
        .call("PUT", "/user", Some(&user), true, change(wrong))
        .await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("reauthentication_not_valid")
        )
    );
    let (s, e) = env
        .call("PUT", "/user", Some(&user), true, change(&nonce))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    settings(
        &env,
        "security_update_password_require_reauthentication = false",
    )
    .await;
    let login = json!({"phone": "15550100003", "password": "phone-pass-2"});
    let (s, _) = env
        .call(
            "POST",
            "/token?grant_type=password",
            Some(&anon),
            true,
            login,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // The project's hourly budget.
    settings(&env, "rate_limit_sms_sent = 0").await;
    let (s, e) = env
        .call(
            "POST",
            "/otp",
            Some(&anon),
            true,
            json!({"phone": "15550100003"}),
        )
        .await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::TOO_MANY_REQUESTS,
            &json!("over_sms_send_rate_limit")
        )
    );
    assert_eq!(e["message"], "SMS rate limit exceeded");

    // The admin API: a phone-only user, confirmed; a taken number.
    let service = env.minted("service_role", json!({}));
    let body =
        json!({"phone": "+44 7700 900123", "phone_confirm": true, "password": "admin-pass-1"});
    let (s, u) = env
        .call("POST", "/admin/users", Some(&service), true, body)
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(
        (&u["phone"], &u["email"]),
        (&json!("447700900123"), &json!(""))
    );
    assert!(u["phone_confirmed_at"].is_string());
    assert_eq!(u["app_metadata"]["providers"], json!(["phone"]));
    let (s, e) = env
        .call(
            "POST",
            "/admin/users",
            Some(&service),
            true,
            json!({"phone": "447700900123"}),
        )
        .await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("phone_exists"))
    );
    let both = json!({"email": "both@example.com", "phone": "15550100007", "email_confirm": true});
    let (s, u) = env
        .call("POST", "/admin/users", Some(&service), true, both)
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["app_metadata"]["providers"], json!(["email", "phone"]));
    let id = u["id"].as_str().unwrap();
    let (s, u) = env
        .call(
            "PUT",
            &format!("/admin/users/{id}"),
            Some(&service),
            true,
            json!({"phone": "15550100008", "phone_confirm": true}),
        )
        .await;
    assert_eq!((s, &u["phone"]), (StatusCode::OK, &json!("15550100008")));
    assert!(u["phone_confirmed_at"].is_string());

    assert_eq!(
        rx.bad_signatures(),
        0,
        "every call was signed with the project's secret"
    );
    assert_codes_not_logged(&rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_failures_answer_gotrue_errors() {
    let (env, rx) = phone_env().await;
    let anon = env.minted("anon", json!({}));
    let otp = |n: &str| json!({"phone": n});
    let call = |body: Value| {
        let (env, anon) = (&env, anon.clone());
        async move { env.call("POST", "/otp", Some(&anon), true, body).await }
    };

    // The hook's own error keeps its status and message.
    rx.set_mode(Mode::HookError(429, "carrier busy"));
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["message"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("carrier busy"))
    );
    // Not JSON: GoTrue's content-type error.
    rx.set_mode(Mode::NotJson);
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("hook_payload_invalid_content_type")
        )
    );
    // Too much: the size limit.
    rx.set_mode(Mode::Huge);
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("hook_payload_over_size_limit")
        )
    );
    // Too slow: the deadline.
    rx.set_mode(Mode::Slow(Duration::from_secs(8)));
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("hook_timeout"))
    );
    rx.set_mode(Mode::Accept);
    // A failed send stores no code and no user: the number can sign up again.
    let n: i64 = env
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM auth.users WHERE phone = '15550200001'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);

    // A project whose secret is not the receiver's: the receiver refuses it (401).
    let (other, _) = sms_hook::secret(99);
    let (s, _) = set_hook(&env, json!({"uri": rx.uri(), "secret": other})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!("unexpected_failure")
        )
    );
    assert_eq!(e["message"], "Hook requires authorization token");
    assert_eq!(rx.bad_signatures(), 1);

    // The hook down: retried, then GoTrue's error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/sms", closed.local_addr().unwrap());
    drop(closed);
    let (s, _) = set_hook(&env, json!({"uri": down})).await;
    assert_eq!(s, StatusCode::OK, "the secret is kept when left out");
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("hook_timeout_after_retry")
        )
    );

    // No hook, or phones off.
    let path = format!("/admin/v1/projects/{REF}/auth/hooks/send_sms");
    let (s, _) = env.cp.admin(Method::DELETE, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["message"]),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!("Unable to get SMS provider")
        )
    );
    settings(&env, "phone_enabled = false").await;
    let (s, e) = call(otp("15550200001")).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::BAD_REQUEST, &json!("phone_provider_disabled"))
    );

    assert!(logs().contains("auth hook"), "hook failures are logged");
    assert_codes_not_logged(&rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_factor_enroll_challenge_verify() {
    let (env, rx) = phone_env().await;
    let anon = env.minted("anon", json!({}));
    let creds = json!({"email": "mfa-phone@example.com", "password": "mfa-pass-1"});
    let (s, session) = env.call("POST", "/signup", Some(&anon), true, creds).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let user = forwarded(&env, &session);
    let enroll = json!({"factor_type": "phone", "phone": "+1 555 030 0001"});

    let (s, e) = env
        .call("POST", "/factors", Some(&user), true, enroll.clone())
        .await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("mfa_phone_enroll_not_enabled")
        )
    );
    settings(&env, "mfa_phone_enabled = true, sms_max_frequency = 60").await;
    let bad = json!({"factor_type": "phone", "phone": "+0 12"});
    let (s, e) = env.call("POST", "/factors", Some(&user), true, bad).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation_failed"))
    );

    let (s, f) = env
        .call("POST", "/factors", Some(&user), true, enroll)
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(
        (&f["type"], &f["phone"]),
        (&json!("phone"), &json!("+1 555 030 0001"))
    );
    let fid = f["id"].as_str().unwrap();

    let path = format!("/factors/{fid}/challenge");
    let (s, c) = env
        .call("POST", &path, Some(&user), true, json!({"channel": "sms"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["type"], "phone");
    let cid = c["id"].as_str().unwrap();
    let sent = rx.payloads();
    let last = sent.last().unwrap();
    assert_eq!(
        (&last["sms"]["sms_type"], &last["sms"]["phone"]),
        (&json!("mfa"), &json!("15550300001"))
    );
    let code = rx.last_otp("15550300001");
    let (s, e) = env.call("POST", &path, Some(&user), true, json!({})).await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::TOO_MANY_REQUESTS,
            &json!("over_sms_send_rate_limit")
        )
    );

    let verify = format!("/factors/{fid}/verify");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, e) = env
        .call(
            "POST",
            &verify,
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": wrong}),
        )
        .await;
    assert_eq!(
        (s, &e["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("mfa_verification_failed")
        )
    );
    let (s, aal2) = env
        .call(
            "POST",
            &verify,
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{aal2}");
    let claims = claims_of(&env, &aal2);
    assert_eq!(claims["aal"], "aal2");
    let methods: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["method"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"mfa/phone"), "{methods:?}");
    assert_eq!(aal2["user"]["factors"][0]["status"], "verified");
    assert_eq!(aal2["user"]["factors"][0]["phone"], "15550300001");
    // The challenge is spent.
    let (s, _) = env
        .call(
            "POST",
            &verify,
            Some(&user),
            true,
            json!({"challenge_id": cid, "code": code}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The admin sees and deletes it.
    let service = env.minted("service_role", json!({}));
    let uid = claims["sub"].as_str().unwrap();
    let (s, list) = env
        .call(
            "GET",
            &format!("/admin/users/{uid}/factors"),
            Some(&service),
            true,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, &list[0]["factor_type"]),
        (StatusCode::OK, &json!("phone"))
    );
    let (s, _) = env
        .call(
            "DELETE",
            &format!("/admin/users/{uid}/factors/{fid}"),
            Some(&service),
            true,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    assert_codes_not_logged(&rx);
}
