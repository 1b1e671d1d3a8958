//! Identity linking and Apple's `form_post` callback through the gateway, against the real
//! `oidc-provider` on loopback (helpers in `oidc/`): `GET /auth/v1/user/identities/authorize` for a
//! signed-in user, the callback linking the provider identity to them (implicit and PKCE), an identity
//! someone already holds refused, `DELETE /user/identities/{id}` (never the last one, never another
//! user's, the email following GoTrue's rule), the project's switch off by default, an anonymous user
//! made permanent (and one left anonymous by an address its provider does not vouch for), and the
//! callback taking the form the provider posts.

mod common;
mod oidc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use oidc::{challenge, enc, html_form, query_param, Browser, Env, APP, CLIENT_ID, CLIENT_SECRET};
use oidc::{start_provider_with, Answer, EMAIL};
use serde_json::{json, Value};

const LINKING_ON: &str = "UPDATE auth.supactl_settings SET security_manual_linking_enabled = true";

/// `GET /user/identities/authorize` for `provider` as the user of `token`, answered as JSON.
async fn link_url(env: &Env, token: &str, redirect_to: &str, extra: &str) -> (StatusCode, Value) {
    let path = format!(
        "/user/identities/authorize?provider=corp&redirect_to={}&skip_http_redirect=true{extra}",
        enc(redirect_to)
    );
    env.as_user(Method::GET, &path, token, None).await
}

fn providers(user: &Value) -> Vec<String> {
    user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap().to_string())
        .collect()
}

fn identity_id(user: &Value, provider: &str) -> String {
    let found = user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == provider);
    found.unwrap()["identity_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn identities_are_linked_and_unlinked_as_gotrue_does() {
    let env = Env::start("oauth-link").await;
    let (ann, ann_user) = env.password_user("ann@example.com").await;
    let (bob, bob_user) = env.password_user("bob@example.com").await;
    let ann_email_identity = identity_id(&ann_user, "email");

    // Off by default, as GOTRUE_SECURITY_MANUAL_LINKING_ENABLED.
    let (s, v) = link_url(&env, &ann, APP, "").await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::NOT_FOUND, &json!("manual_linking_disabled")),
        "{v}"
    );
    let path = format!("/user/identities/{ann_email_identity}");
    let (s, v) = env.as_user(Method::DELETE, &path, &ann, None).await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::NOT_FOUND, &json!("manual_linking_disabled")),
        "{v}"
    );
    env.sql(LINKING_ON).await;
    // A user's token is required: the publishable key alone names nobody.
    let (s, v) = link_url(&env, &env.p.anon, APP, "").await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::FORBIDDEN, &json!("bad_jwt")),
        "{v}"
    );

    // Implicit flow: the session comes back for the same user, now holding both identities.
    let (s, v) = link_url(&env, &ann, &format!("{APP}/linked"), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(&env.provider.issuer), "{url}");
    let mut browser = Browser::new();
    let back = browser.follow_until(url, &[APP]).await;
    assert!(
        back.starts_with(&format!("{APP}/linked#access_token=")),
        "{back}"
    );
    let (s, me) = env.user(&query_param(&back, "access_token").unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["id"], ann_user["id"]);
    assert_eq!(me["email"], "ann@example.com", "a user's own email stays");
    assert_eq!(providers(&me), ["email", "corp"]);
    assert_eq!(me["app_metadata"]["providers"], json!(["email", "corp"]));
    let corp = me["identities"][1].clone();
    for field in [
        "identity_id",
        "id",
        "user_id",
        "identity_data",
        "provider",
        "last_sign_in_at",
        "created_at",
        "updated_at",
        "email",
    ] {
        assert!(!corp[field].is_null(), "identity without {field}: {corp}");
    }
    assert_eq!(
        (&corp["id"], &corp["user_id"], &corp["email"]),
        (&json!("oidc-user-1"), &ann_user["id"], &json!(EMAIL))
    );
    assert_eq!(corp["identity_data"]["email"], EMAIL);

    // Linked again by its holder, or by someone else (PKCE, the plain redirect): refused.
    let (_, v) = link_url(&env, &ann, APP, "").await;
    let again = browser
        .follow_until(v["url"].as_str().unwrap(), &[APP])
        .await;
    assert_eq!(
        query_param(&again, "error_code").as_deref(),
        Some("identity_already_exists"),
        "{again}"
    );
    assert_eq!(
        query_param(&again, "error_description").as_deref(),
        Some("Identity is already linked")
    );
    let verifier = "link-verifier-0123456789-0123456789-0123456789";
    let authorize = format!(
        "{}/auth/v1/user/identities/authorize?provider=corp&redirect_to={}&code_challenge={}&code_challenge_method=s256",
        env.p.api_url,
        enc(&format!("{APP}/bob")),
        challenge(verifier)
    );
    let bearer = format!("Bearer {bob}");
    let a = browser
        .send(
            Method::GET,
            &authorize,
            &[
                ("apikey", env.p.anon.as_str()),
                ("authorization", bearer.as_str()),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    let back = browser.follow_until(&a.location.unwrap(), &[APP]).await;
    assert!(
        back.starts_with(&format!("{APP}/bob?error=")),
        "PKCE errors come in the query: {back}"
    );
    assert_eq!(
        query_param(&back, "error_code").as_deref(),
        Some("identity_already_exists")
    );
    assert_eq!(
        query_param(&back, "error_description").as_deref(),
        Some("Identity is already linked to another user")
    );
    let (_, bob_now) = env.user(&bob).await;
    assert_eq!(providers(&bob_now), ["email"]);

    // Unlinking: only the caller's own identities, never the last one.
    let bobs = identity_id(&bob_user, "email");
    let (s, v) = env
        .as_user(
            Method::DELETE,
            &format!("/user/identities/{bobs}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("identity_not_found")
        ),
        "{v}"
    );
    let (s, v) = env
        .as_user(Method::DELETE, "/user/identities/not-a-uuid", &ann, None)
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::NOT_FOUND, &json!("validation_failed")),
        "{v}"
    );
    let (s, v) = env
        .as_user(
            Method::DELETE,
            &format!("/user/identities/{bobs}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("single_identity_not_deletable")
        ),
        "{v}"
    );

    // The identity that gave the email goes: the email becomes the remaining identity's (verified),
    // unless another user has that address.
    let (_, holder) = env.password_user(EMAIL).await;
    let (s, v) = env.as_user(Method::DELETE, &path, &ann, None).await;
    assert_eq!(
        (s, &v["error_code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("email_conflict_identity_not_deletable")
        ),
        "{v}"
    );
    let (_, me) = env.user(&ann).await;
    assert_eq!(providers(&me), ["email", "corp"], "nothing changed");
    let admin = format!("Bearer {}", env.p.secret);
    let (s, v) = env
        .pf
        .call(
            Method::DELETE,
            &format!(
                "{}/auth/v1/admin/users/{}",
                env.p.api_url,
                holder["id"].as_str().unwrap()
            ),
            &[
                ("apikey", env.p.secret.as_str()),
                ("authorization", admin.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = env.as_user(Method::DELETE, &path, &ann, None).await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({})), "{v}");
    let (_, me) = env.user(&ann).await;
    assert_eq!(providers(&me), ["corp"]);
    assert_eq!(me["email"], EMAIL, "{me}");
    assert!(me["email_confirmed_at"].is_string(), "{me}");
    assert_eq!(me["app_metadata"]["providers"], json!(["corp"]));
    assert_eq!(me["app_metadata"]["provider"], "corp");
    let corp_id = identity_id(&me, "corp");
    let (s, v) = env
        .as_user(
            Method::DELETE,
            &format!("/user/identities/{corp_id}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("single_identity_not_deletable")
        ),
        "{v}"
    );
    assert_eq!(
        v["msg"],
        "User must have at least 1 identity after unlinking"
    );
}

/// The payload of a JWT (not verified: the test reads what the client would).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

/// An anonymous sign-in: its session.
async fn anonymous(env: &Env) -> Value {
    let (s, anon) = env
        .pf
        .call(
            Method::POST,
            &format!("{}/auth/v1/signup", env.p.api_url),
            &[
                ("apikey", env.p.anon.as_str()),
                ("content-type", "application/json"),
            ],
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{anon}");
    assert_eq!(anon["user"]["is_anonymous"], true);
    anon
}

#[tokio::test]
async fn an_anonymous_user_linking_an_identity_becomes_permanent() {
    let env = Env::start("oauth-link-anon").await;
    env.sql(&format!("{LINKING_ON}, anonymous_users_enabled = true"))
        .await;
    let anon = anonymous(&env).await;
    let token = anon["access_token"].as_str().unwrap();

    // PKCE: the code is exchanged for a session of the same user, now permanent.
    let verifier = "anon-verifier-0123456789-0123456789-0123456789";
    let extra = format!(
        "&code_challenge={}&code_challenge_method=s256",
        challenge(verifier)
    );
    let (s, v) = link_url(&env, token, &format!("{APP}/done"), &extra).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let back = Browser::new()
        .follow_until(v["url"].as_str().unwrap(), &[APP])
        .await;
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let (s, session) = env
        .token(
            "pkce",
            json!({"auth_code": code, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let user = &session["user"];
    assert_eq!(user["id"], anon["user"]["id"]);
    assert_eq!(user["is_anonymous"], false, "{user}");
    assert_eq!(
        user["email"], EMAIL,
        "the identity's verified address becomes the user's"
    );
    assert!(user["email_confirmed_at"].is_string(), "{user}");
    assert_eq!(providers(user), ["corp"]);
    assert_eq!(user["app_metadata"]["provider"], "corp");
    assert_eq!(
        claims(session["access_token"].as_str().unwrap())["is_anonymous"],
        false
    );
    let (_, me) = env.user(token).await;
    assert_eq!(me["is_anonymous"], false, "{me}");

    // A provider that does not vouch for the address: the identity is linked and the address becomes
    // the user's, unconfirmed, a confirmation is mailed and the answer is `email_not_confirmed`; the
    // user stays anonymous.
    let loose = start_provider_with(
        &format!("{}/auth/v1/callback", env.p.api_url),
        &[
            ("USER_SUB", "loose-user"),
            ("USER_EMAIL", "loose@example.com"),
            ("USER_EMAIL_VERIFIED", "false"),
        ],
    )
    .await;
    let body =
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": loose.issuer});
    let (s, v) = env.set_named_provider("loose", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let other = anonymous(&env).await;
    let token = other["access_token"].as_str().unwrap();
    let path = format!(
        "/user/identities/authorize?provider=loose&redirect_to={}&skip_http_redirect=true",
        enc(APP)
    );
    let (s, v) = env.as_user(Method::GET, &path, token, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let back = Browser::new()
        .follow_until(v["url"].as_str().unwrap(), &[APP])
        .await;
    assert_eq!(
        query_param(&back, "error_code").as_deref(),
        Some("email_not_confirmed"),
        "{back}"
    );
    assert_eq!(
        query_param(&back, "error_description").as_deref(),
        Some("Unverified email with loose. A confirmation email has been sent to your loose email")
    );
    let (_, me) = env.user(token).await;
    assert_eq!(providers(&me), ["loose"]);
    assert_eq!(me["email"], "loose@example.com");
    assert!(me["email_confirmed_at"].is_null(), "{me}");
    assert!(me["confirmation_sent_at"].is_string(), "{me}");
    assert_eq!(me["is_anonymous"], true);
}

/// Follows redirects from `url` until a page answers (not a redirect).
async fn follow_to_page(browser: &mut Browser, mut url: String) -> (Vec<String>, Answer) {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let a = browser.get(&url).await;
        seen.push(url.clone());
        match a.location.clone() {
            Some(next) if a.status.is_redirection() => url = next,
            _ => return (seen, a),
        }
    }
    panic!("more than 10 redirects from {url}");
}

#[tokio::test]
async fn the_callback_takes_the_form_a_provider_posts() {
    let env = Env::start("oauth-form").await;
    // A provider named `apple` is asked for `response_mode=form_post`, as GoTrue asks Apple; here it
    // is the local `oidc-provider` under that name, which then posts the answer as a form.
    let (s, v) = env
        .set_named_provider("apple", json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": env.provider.issuer}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut browser = Browser::new();
    let url = env.authorize_url_for("apple", &format!("{APP}/form"), None);
    let (seen, page) = follow_to_page(&mut browser, url).await;
    assert!(seen[1].contains("response_mode=form_post"), "{seen:?}");
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (action, fields) = html_form(&page.body);
    let callback = format!("{}/auth/v1/callback", env.p.api_url);
    assert_eq!(action, callback);
    assert!(
        fields.contains_key("code") && fields.contains_key("state"),
        "{fields:?}"
    );
    let form: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let form = Bytes::from(form.join("&"));
    let post = |body: Bytes| {
        let mut b = Browser::new();
        let callback = callback.clone();
        async move {
            b.send(
                Method::POST,
                &callback,
                &[("content-type", "application/x-www-form-urlencoded")],
                body,
            )
            .await
        }
    };

    // No API key, as a browser posts it; the session comes back in the fragment.
    let a = post(form.clone()).await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    let back = a.location.unwrap();
    assert!(
        back.starts_with(&format!("{APP}/form#access_token=")),
        "{back}"
    );
    let (s, me) = env.user(&query_param(&back, "access_token").unwrap()).await;
    assert_eq!((s, &me["email"]), (StatusCode::OK, &json!(EMAIL)), "{me}");
    assert_eq!(providers(&me), ["apple"]);
    // The state is used once.
    let again = post(form).await.location.unwrap();
    assert_eq!(
        query_param(&again, "error_code").as_deref(),
        Some("flow_state_not_found"),
        "{again}"
    );

    // Bounded: past the service's 16 KiB, and past the gateway's 64 KiB for keyless routes.
    for size in [20 * 1024, 100 * 1024] {
        let a = post(Bytes::from(format!("state={}", "x".repeat(size)))).await;
        assert_eq!(
            a.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{size}: {}",
            a.body
        );
        assert!(a.body.contains("payload_too_large"), "{}", a.body);
    }
}
