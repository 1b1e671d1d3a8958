//! Asymmetric signing keys end to end: an ES256 standby key is published in the project's JWKS, a
//! rotation makes it sign users' access tokens (with its `kid`), which reach RLS through the gateway
//! and auth's own routes, while HS256 tokens keep verifying; rotating to RS256 keeps the ES256 key
//! verifying through its grace period, and revoking the previous key ends it. Private keys are never
//! listed.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const NOTES: &str = "create table notes (id serial primary key, owner uuid not null, body text);
alter table notes enable row level security;
create policy own on notes for select using (owner = auth.uid());
grant select on notes to authenticated;";

fn header(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(h).unwrap()).unwrap()
}

struct Env {
    pf: Platform,
    p: Project,
}

impl Env {
    async fn auth(
        &self,
        method: Method,
        path: &str,
        key: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut h = vec![("apikey", key), ("content-type", "application/json")];
        if let Some(a) = &auth {
            h.push(("authorization", a.as_str()));
        }
        let url = format!("{}/auth/v1{path}", self.p.api_url);
        self.pf.call(method, &url, &h, body).await
    }

    async fn sign_in(&self) -> String {
        let (s, v) = self
            .auth(
                Method::POST,
                "/token?grant_type=password",
                &self.p.anon,
                None,
                Some(json!({"email": "kid@example.com", "password": "secret-password"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    }

    /// Signs in until the access token is signed with `alg` (the directory's cache catches up).
    async fn signed_with(&self, alg: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let token = self.sign_in().await;
            if header(&token)["alg"] == alg {
                return token;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {alg} access token"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn jwks(&self) -> Vec<Value> {
        let url = format!("{}/auth/v1/.well-known/jwks.json", self.p.api_url);
        let (s, v) = self.pf.call(Method::GET, &url, &[], None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["keys"].as_array().unwrap().clone()
    }

    async fn notes(&self, token: &str) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        self.pf
            .rest(
                &self.p,
                Method::GET,
                "notes?select=body",
                &self.p.anon,
                &[("authorization", &auth)],
                None,
            )
            .await
    }

    async fn jwt_keys(
        &self,
        method: Method,
        what: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let path = format!("/admin/v1/projects/{}/jwt-keys{what}", self.p.project_ref);
        self.pf.admin(method, &path, body).await
    }
}

#[tokio::test]
async fn es256_then_rs256_user_tokens_with_grace_and_jwks() {
    let pf = Platform::start_with_auth().await;
    let p = pf.create("kids").await;
    let env = Env { pf, p };
    let (s, v) = env.pf.sql(&env.p, NOTES).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(env.jwks().await.is_empty(), "no asymmetric key yet");
    let (s, user) = env
        .auth(
            Method::POST,
            "/admin/users",
            &env.p.secret,
            None,
            Some(json!({"email": "kid@example.com", "password": "secret-password", "email_confirm": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{user}");
    let uid = user["id"].as_str().unwrap();
    env.pf
        .sql(&env.p, &format!("insert into notes (owner, body) values ('{uid}', 'mine'), (gen_random_uuid(), 'theirs')"))
        .await;
    let hs = env.sign_in().await;
    assert_eq!(header(&hs)["alg"], "HS256");

    // A standby ES256 key: listed with its public JWK only, published before it signs.
    let (s, v) = env
        .jwt_keys(
            Method::POST,
            "/standby",
            Some(json!({"algorithm": "ES256"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let es_kid = v["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["data"]["algorithm"], "ES256");
    let jwk = &v["data"]["public_jwk"];
    assert_eq!((&jwk["kty"], &jwk["kid"]), (&json!("EC"), &json!(es_kid)));
    assert!(jwk.get("d").is_none(), "no private part: {jwk}");
    eventually(
        Duration::from_secs(3),
        "standby key in the JWKS",
        || async { env.jwks().await.iter().any(|k| k["kid"] == es_kid.as_str()) },
    )
    .await;
    assert_eq!(
        env.sign_in().await.split('.').next(),
        hs.split('.').next(),
        "still HS256"
    );

    // Rotation: the ES256 key signs; the HS256 secret stays current (minting, HS256 tokens).
    let (s, v) = env.jwt_keys(Method::POST, "/rotate", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let states: Vec<(String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["algorithm"].as_str().unwrap().into(),
                k["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("HS256".to_string(), "current".to_string()),
            ("ES256".into(), "current".into())
        ]
    );
    let es = env.signed_with("ES256").await;
    assert_eq!(header(&es)["kid"], es_kid.as_str());
    assert_eq!(
        env.notes(&es).await,
        (StatusCode::OK, json!([{"body": "mine"}]))
    );
    let (s, v) = env
        .auth(Method::GET, "/user", &env.p.anon, Some(&es), None)
        .await;
    assert_eq!((s, &v["id"]), (StatusCode::OK, &json!(uid)), "{v}");
    assert_eq!(
        env.notes(&hs).await.0,
        StatusCode::OK,
        "HS256 tokens keep verifying"
    );

    // Rotating to RS256 (generated, no standby): ES256 verifies through its grace period.
    let (s, v) = env
        .jwt_keys(
            Method::POST,
            "/rotate",
            Some(json!({"algorithm": "RS256", "grace_seconds": 600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("PRIVATE"), "{v}");
    let rs = env.signed_with("RS256").await;
    assert_eq!(
        env.notes(&rs).await,
        (StatusCode::OK, json!([{"body": "mine"}]))
    );
    assert_eq!(
        env.notes(&es).await.0,
        StatusCode::OK,
        "ES256 within its grace"
    );
    let kinds: Vec<Value> = env.jwks().await.iter().map(|k| k["kty"].clone()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&json!("RSA")) && kinds.contains(&json!("EC")));

    // Revoking the previous key ends the grace period everywhere.
    let (s, _) = env.jwt_keys(Method::DELETE, "/previous", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    eventually(Duration::from_secs(3), "ES256 token refused", || async {
        env.notes(&es).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    let (s, v) = env
        .auth(Method::GET, "/user", &env.p.anon, Some(&es), None)
        .await;
    assert_eq!(
        (s, &v["error_code"]),
        (StatusCode::FORBIDDEN, &json!("bad_jwt")),
        "{v}"
    );
    assert_eq!(env.jwks().await.len(), 1);
    assert_eq!(env.notes(&rs).await.0, StatusCode::OK);
    assert_eq!(env.notes(&hs).await.0, StatusCode::OK);
}
