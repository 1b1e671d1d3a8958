//! What the OAuth tests share: a real OpenID provider (the npm package `oidc-provider` on loopback,
//! `tests/oidc/provider.mjs`, installed by `scripts/setup.sh oidc-provider`) with one client whose
//! redirect URI is the project's `/auth/v1/callback` and one user, a small browser (redirects followed,
//! a cookie jar, forms the provider posts) and a platform with auth and that provider configured.
#![allow(dead_code)]

use crate::common::{Platform, Project};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
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

pub const APP: &str = "http://app.test";
pub const CLIENT_ID: &str = "supactl-app";
pub const CLIENT_SECRET: &str = "client-secret-0123456789-abcdef";
pub const EMAIL: &str = "oidc.user@example.com";

/// The provider's directory of npm packages (installed once per test binary).
pub fn oidc_dir() -> String {
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
pub struct OidcProvider {
    pub issuer: String,
    _child: Child,
}

pub async fn start_provider(redirect_uri: &str) -> OidcProvider {
    start_provider_with(redirect_uri, &[]).await
}

/// The provider with its user changed by `user` (`USER_SUB`, `USER_EMAIL`, `USER_EMAIL_VERIFIED`).
pub async fn start_provider_with(redirect_uri: &str, user: &[(&str, &str)]) -> OidcProvider {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc/provider.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .env("OIDC_PROVIDER_DIR", oidc_dir())
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URI", redirect_uri)
        .env("USER_EMAIL", EMAIL)
        .envs(user.iter().copied())
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
pub struct Browser {
    client: Client<HttpConnector, Full<Bytes>>,
    cookies: HashMap<String, HashMap<String, String>>,
}

/// An answer: status, `Location`, body.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

pub fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string()
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            cookies: HashMap::new(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    pub async fn send(
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
    pub async fn follow_until(&mut self, url: &str, stops: &[&str]) -> String {
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

pub fn query_param(url: &str, name: &str) -> Option<String> {
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

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn challenge(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

pub struct Env {
    pub pf: Platform,
    pub p: Project,
    pub provider: OidcProvider,
}

impl Env {
    pub async fn start(project_ref: &str) -> Env {
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

    /// Sets the provider `corp` (the local `oidc-provider`).
    pub async fn set_provider(&self, body: Value) -> (StatusCode, Value) {
        self.set_named_provider("corp", body).await
    }

    pub async fn set_named_provider(&self, name: &str, body: Value) -> (StatusCode, Value) {
        self.pf
            .admin(
                Method::PUT,
                &format!(
                    "/admin/v1/projects/{}/auth/providers/{name}",
                    self.p.project_ref
                ),
                Some(body),
            )
            .await
    }

    /// Runs SQL on the project's database as its superuser.
    pub async fn sql(&self, sql: &str) {
        let db = self.pf.cp.project_db(&self.p.project_ref).await;
        db.batch_execute(sql).await.unwrap();
    }

    pub fn authorize_url(&self, redirect_to: &str, challenge: Option<&str>) -> String {
        self.authorize_url_for("corp", redirect_to, challenge)
    }

    pub fn authorize_url_for(
        &self,
        provider: &str,
        redirect_to: &str,
        challenge: Option<&str>,
    ) -> String {
        let mut url = format!(
            "{}/auth/v1/authorize?provider={provider}&redirect_to={}",
            self.p.api_url,
            enc(redirect_to)
        );
        if let Some(c) = challenge {
            url.push_str(&format!("&code_challenge={c}&code_challenge_method=s256"));
        }
        url
    }

    /// `POST /auth/v1/token?grant_type=…` with the publishable key.
    pub async fn token(&self, grant: &str, body: Value) -> (StatusCode, Value) {
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

    pub async fn user(&self, access_token: &str) -> (StatusCode, Value) {
        self.as_user(Method::GET, "/user", access_token, None).await
    }

    /// A call to `/auth/v1{path}` with the publishable key and a user's access token.
    pub async fn as_user(
        &self,
        method: Method,
        path: &str,
        access_token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bearer = format!("Bearer {access_token}");
        self.pf
            .call(
                method,
                &format!("{}/auth/v1{path}", self.p.api_url),
                &[
                    ("apikey", self.p.anon.as_str()),
                    ("authorization", bearer.as_str()),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await
    }

    /// A user signed up with email and password: (access token, user).
    pub async fn password_user(&self, email: &str) -> (String, Value) {
        let (s, v) = self
            .pf
            .call(
                Method::POST,
                &format!("{}/auth/v1/signup", self.p.api_url),
                &[
                    ("apikey", self.p.anon.as_str()),
                    ("content-type", "application/json"),
                ],
                Some(json!({"email": email, "password": "correct-horse-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v["access_token"].as_str().unwrap().to_string(),
            v["user"].clone(),
        )
    }
}

/// The fields of the HTML form an answer carries (`oidc-provider`'s `form_post` page): its action and
/// its hidden inputs.
pub fn html_form(body: &str) -> (String, HashMap<String, String>) {
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let len = tag[start..].find('"')?;
        Some(
            tag[start..start + len]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    let form = body.split("<form").nth(1).expect("a form in the page");
    let action = attr(form.split('>').next().unwrap(), "action").expect("the form's action");
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next()?;
            Some((attr(tag, "name")?, attr(tag, "value")?))
        })
        .collect();
    (action, fields)
}
