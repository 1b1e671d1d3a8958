//! Sign-in with an OpenID provider through the gateway, against a real one: the npm package
//! `oidc-provider` on loopback (`tests/oidc/provider.mjs`, installed by `scripts/setup.sh
//! oidc-provider`), with one client whose redirect URI is the project's `/auth/v1/callback`. A small
//! browser (redirects followed, a cookie jar) drives the PKCE and implicit flows from
//! `/auth/v1/authorize` to the app's `redirect_to`; the `id_token` grant uses an ID token the test gets
//! from the provider itself; refusals: a wrong code verifier, a replayed code, a replayed or altered
//! state, a foreign `redirect_to`, a disabled provider, a wrong nonce.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use common::{Platform, Project};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const APP: &str = "http://app.test";
const CLIENT_ID: &str = "supactl-app";
const CLIENT_SECRET: &str = "client-secret-0123456789-abcdef";
const EMAIL: &str = "oidc.user@example.com";

/// The provider's directory of npm packages (installed once per test binary).
fn oidc_dir() -> String {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup.sh");
        let out = std::process::Command::new(script)
            .arg("oidc-provider")
            .output()
            .expect("run scripts/setup.sh oidc-provider");
        assert!(
            out.status.success(),
            "scripts/setup.sh oidc-provider failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// `oidc-provider` serving on loopback; killed when dropped.
struct OidcProvider {
    issuer: String,
    _child: Child,
}

async fn start_provider(redirect_uri: &str) -> OidcProvider {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc/provider.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .env("OIDC_PROVIDER_DIR", oidc_dir())
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URI", redirect_uri)
        .env("USER_EMAIL", EMAIL)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("oidc-provider starts within 30 s")
        .unwrap()
        .expect("oidc-provider prints its issuer");
    let issuer = line
        .strip_prefix("issuer ")
        .expect("issuer line")
        .to_string();
    OidcProvider {
        issuer,
        _child: child,
    }
}

/// A browser enough for redirects: follows `Location`, keeps cookies per host (paths ignored).
struct Browser {
    client: Client<HttpConnector, Full<Bytes>>,
    cookies: HashMap<String, HashMap<String, String>>,
}

/// An answer: status, `Location`, body.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string()
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            cookies: HashMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Answer {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Answer {
        let host = host_of(url);
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(jar) = self.cookies.get(&host).filter(|j| !j.is_empty()) {
            let c: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        let res = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        for c in res.headers().get_all(header::SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                let jar = self.cookies.entry(host.clone()).or_default();
                if v.is_empty() {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_string(), v.to_string());
                }
            }
        }
        let status = res.status();
        let location = res.headers().get(header::LOCATION).map(|l| {
            let l = l.to_str().unwrap();
            if l.starts_with('/') {
                format!("{}{l}", &url[..url.find(&host).unwrap() + host.len()])
            } else {
                l.to_string()
            }
        });
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Follows redirects from `url` until one points at a URL starting with one of `stops`
    /// (returned, not fetched).
    async fn follow_until(&mut self, url: &str, stops: &[&str]) -> String {
        let mut url = url.to_string();
        for _ in 0..10 {
            let a = self.get(&url).await;
            let next = a.location.unwrap_or_else(|| {
                panic!("{url} answered {} without a redirect: {}", a.status, a.body)
            });
            assert!(a.status.is_redirection(), "{url}: {}", a.status);
            if stops.iter().any(|s| next.starts_with(s)) {
                return next;
            }
            url = next;
        }
        panic!("more than 10 redirects from {url}");
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let params = url.split_once(['?', '#'])?.1;
    params.split(['&', '#']).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn challenge(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

struct Env {
    pf: Platform,
    p: Project,
    provider: OidcProvider,
}

impl Env {
    async fn start(project_ref: &str) -> Env {
        let pf = Platform::start_with_auth().await;
        let p = pf.create(project_ref).await;
        let db = pf.cp.project_db(&p.project_ref).await;
        db.batch_execute(&format!(
            "UPDATE auth.supactl_settings SET site_url = '{APP}', uri_allow_list = '{{{APP}/**}}'"
        ))
        .await
        .unwrap();
        let provider = start_provider(&format!("{}/auth/v1/callback", p.api_url)).await;
        let env = Env { pf, p, provider };
        let (s, v) = env
            .set_provider(
                json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "issuer": env.provider.issuer}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        env
    }

    async fn set_provider(&self, body: Value) -> (StatusCode, Value) {
        self.pf
            .admin(
                Method::PUT,
                &format!(
                    "/admin/v1/projects/{}/auth/providers/corp",
                    self.p.project_ref
                ),
                Some(body),
            )
            .await
    }

    fn authorize_url(&self, redirect_to: &str, challenge: Option<&str>) -> String {
        let mut url = format!(
            "{}/auth/v1/authorize?provider=corp&redirect_to={}",
            self.p.api_url,
            enc(redirect_to)
        );
        if let Some(c) = challenge {
            url.push_str(&format!("&code_challenge={c}&code_challenge_method=s256"));
        }
        url
    }

    /// `POST /auth/v1/token?grant_type=…` with the publishable key.
    async fn token(&self, grant: &str, body: Value) -> (StatusCode, Value) {
        self.pf
            .call(
                Method::POST,
                &format!("{}/auth/v1/token?grant_type={grant}", self.p.api_url),
                &[
                    ("apikey", self.p.anon.as_str()),
                    ("content-type", "application/json"),
                ],
                Some(body),
            )
            .await
    }

    async fn user(&self, access_token: &str) -> (StatusCode, Value) {
        let bearer = format!("Bearer {access_token}");
        self.pf
            .call(
                Method::GET,
                &format!("{}/auth/v1/user", self.p.api_url),
                &[
                    ("apikey", self.p.anon.as_str()),
                    ("authorization", bearer.as_str()),
                ],
                None,
            )
            .await
    }
}

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
