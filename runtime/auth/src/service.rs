//! The HTTP face: GoTrue's routes for every project. The gateway names the project in
//! [`PROJECT_HEADER`] and proves the caller's role (and user claims) with a JWT signed by that project's
//! secret, which is verified here again (defence in depth, as in the REST engine).

use crate::db::{Pools, Settings};
use crate::error::{self, AuthError, AuthResult};
use crate::mail::{self, MailKind};
use crate::ratelimit::{email_key, Limiter};
use crate::store::{self, NewUser, TokenColumn};
use crate::token::{self, Amr, Presented, Refresh, SessionInfo};
use crate::validate;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use deadpool_postgres::Object;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use supactl_common::directory::Directory;
use supactl_common::jwt;
use supactl_common::keys::{random_base62, Role};
use supactl_common::wire::ProjectConfig;

/// The header carrying the project ref from the gateway (the REST engine's, shared).
pub const PROJECT_HEADER: &str = "x-supactl-project";
/// The client's address as the gateway saw it (the gateway drops any client-sent value).
pub const CLIENT_IP_HEADER: &str = "x-supactl-client-ip";
/// Characters escaped in URL query and fragment values: all but RFC 3986's unreserved ones.
const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// GoTrue's default bcrypt cost (Go's `bcrypt.DefaultCost`).
pub const BCRYPT_COST: u32 = 10;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The URL clients use for a project, with `{ref}` in it (the tenant-manager's `api_url`
    /// template): the issuer of tokens is `{api_url}/auth/v1`, and links point there.
    pub api_url_template: String,
    /// Connections per project pool.
    pub pool_size: usize,
    /// A project's pool is dropped after this long without requests.
    pub idle_timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            api_url_template: "http://127.0.0.1:54321/p/{ref}".into(),
            pool_size: 10,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

pub struct Auth {
    directory: Arc<Directory>,
    pools: Pools,
    limiter: Limiter,
    config: AuthConfig,
}

impl Auth {
    pub fn new(directory: Arc<Directory>, config: AuthConfig) -> Arc<Auth> {
        Arc::new(Auth {
            pools: Pools::new(config.pool_size, config.idle_timeout),
            limiter: Limiter::new(),
            directory,
            config,
        })
    }

    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    fn api_url(&self, project_ref: &str) -> String {
        self.config.api_url_template.replace("{ref}", project_ref)
    }
}

/// GoTrue's routes (paths below `/auth/v1`).
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/settings", get(settings))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/signup", post(signup))
        .route("/token", post(token_grant))
        .route("/user", get(get_user).put(put_user))
        .route("/logout", post(logout))
        .route("/recover", post(recover))
        .route("/otp", post(otp))
        .route("/magiclink", post(magiclink))
        .route("/verify", get(verify_get).post(verify_post))
        .route("/resend", post(resend))
        .route("/admin/users", get(admin_list).post(admin_create))
        .route(
            "/admin/users/{id}",
            get(admin_get).put(admin_update).delete(admin_delete),
        )
        .route("/admin/generate_link", post(admin_generate_link))
        .fallback(|| async {
            AuthError::new(StatusCode::NOT_FOUND, "not_found", "Not Found").into_response()
        })
        // Inside `render`, which takes the error out of legacy clients' responses.
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::db::forget_lost_connections,
        ))
        .layer(axum::middleware::from_fn(error::render))
        .with_state(auth)
}

// ---------------------------------------------------------------------------------------------
// Request context

/// Who is calling, for which project: read from the gateway's headers and its verified JWT.
pub struct Ctx {
    project: Arc<ProjectConfig>,
    claims: Map<String, Value>,
    /// Read from the claims by the rule every service shares ([`supactl_common::claims::role`]).
    role: Role,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
}

impl FromRequestParts<Arc<Auth>> for Ctx {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, auth: &Arc<Auth>) -> AuthResult<Ctx> {
        let h = &parts.headers;
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let project_ref = text(PROJECT_HEADER)
            .ok_or_else(|| AuthError::bad_request("no_authorization", "No project in request"))?;
        let project = auth
            .directory
            .project(project_ref)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "project directory unavailable");
                AuthError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unexpected_failure",
                    "the platform cannot look up projects right now; retry shortly",
                )
            })?
            .ok_or_else(|| {
                AuthError::new(StatusCode::NOT_FOUND, "not_found", "Project not found")
            })?;
        let token = supactl_common::headers::bearer(h).ok_or_else(|| {
            AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a valid Bearer token",
            )
        })?;
        let claims =
            jwt::verify(token, &project.verification_secrets(), jwt::now()).map_err(|e| {
                AuthError::forbidden(
                    "bad_jwt",
                    format!("invalid JWT: unable to parse or verify signature, {e}"),
                )
            })?;
        let role = supactl_common::claims::role(&claims)
            .map_err(|e| AuthError::forbidden("bad_jwt", format!("invalid JWT: {e}")))?;
        Ok(Ctx {
            project,
            claims,
            role,
            ip: text(CLIENT_IP_HEADER).and_then(|v| v.parse().ok()),
            user_agent: text(header::USER_AGENT.as_str()).map(str::to_string),
        })
    }
}

impl Ctx {
    fn project_ref(&self) -> &str {
        &self.project.project_ref
    }

    fn require_admin(&self) -> AuthResult<()> {
        if self.role == Role::ServiceRole {
            Ok(())
        } else {
            Err(AuthError::not_admin())
        }
    }

    /// The signed-in user's id (the `sub` of a user's access token).
    fn user_id(&self) -> AuthResult<&str> {
        match self.claims.get("sub").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(AuthError::forbidden(
                "bad_jwt",
                "invalid claim: missing sub claim",
            )),
        }
    }

    fn session_id(&self) -> Option<&str> {
        self.claims.get("session_id").and_then(Value::as_str)
    }

    fn ip_text(&self) -> Option<String> {
        self.ip.map(|i| i.to_string())
    }

    async fn db(&self, auth: &Auth) -> AuthResult<(Object, Settings)> {
        let client = auth.pools.get(self.project_ref(), &self.project.db).await?;
        let settings = Settings::load(&client).await?;
        Ok((client, settings))
    }

    /// Counts the request against the per-IP limit of `action` (and the per-email one when given).
    fn limit(
        &self,
        auth: &Auth,
        settings: &Settings,
        action: &str,
        per_ip: u32,
        email: Option<&str>,
    ) -> AuthResult<()> {
        let ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
        let key = format!("{}:{action}:ip:{ip}", self.project_ref());
        if !auth.limiter.allow(&key, per_ip, settings.window) {
            return Err(AuthError::rate_limited());
        }
        if let Some(e) = email {
            let key = format!("{}:{action}:email:{}", self.project_ref(), email_key(e));
            if !auth
                .limiter
                .allow(&key, settings.limit_per_email, settings.window)
            {
                return Err(AuthError::rate_limited());
            }
        }
        Ok(())
    }

    /// Signs the session body for `user`.
    fn session_body(
        &self,
        auth: &Auth,
        settings: &Settings,
        user: &Value,
        sid: &str,
        amr: &[Amr],
        refresh_token: &str,
    ) -> Value {
        let issuer = format!("{}/auth/v1", auth.api_url(self.project_ref()));
        let info = SessionInfo {
            session_id: sid,
            aal: "aal1",
            amr,
            issuer: &issuer,
            issued_at: jwt::now(),
            lifetime_secs: settings.jwt_exp,
        };
        token::session_body(user, &info, refresh_token, self.project.signing_secret())
    }

    /// Starts a session for `user_id` and returns GoTrue's session body.
    async fn start_session(
        &self,
        auth: &Auth,
        settings: &Settings,
        tx: &deadpool_postgres::Transaction<'_>,
        user_id: &str,
        method: &str,
    ) -> AuthResult<Value> {
        let refresh_token = new_refresh_token();
        let ip = self.ip_text();
        let sid = store::create_session(
            tx,
            user_id,
            method,
            &refresh_token,
            ip.as_deref(),
            self.user_agent.as_deref(),
        )
        .await?;
        let user = store::user_by_id(tx, user_id)
            .await?
            .ok_or_else(|| AuthError::internal("user vanished while signing in"))?;
        let amr = [Amr {
            method: method.to_string(),
            timestamp: jwt::now(),
        }];
        Ok(self.session_body(auth, settings, &user.json, &sid, &amr, &refresh_token))
    }
}

fn new_refresh_token() -> String {
    random_base62(32)
}

/// A 6-digit one-time code (GoTrue's default OTP length).
fn new_otp() -> String {
    // Rejection sampling over base62 digits keeps the code uniform.
    let mut out = String::with_capacity(6);
    while out.len() < 6 {
        for c in random_base62(16).chars() {
            if c.is_ascii_digit() && out.len() < 6 {
                out.push(c);
            }
        }
    }
    out
}

/// A JSON body (an empty one is `{}`).
fn body<T: DeserializeOwned>(b: &Bytes) -> AuthResult<T> {
    let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        b
    };
    serde_json::from_slice(b).map_err(|e| {
        AuthError::bad_request(
            "bad_json",
            format!("Could not parse request body as JSON: {e}"),
        )
    })
}

async fn hash_password(password: String) -> AuthResult<String> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(AuthError::internal)?
        .map_err(AuthError::internal)
}

/// Checks a password against a bcrypt hash; with no hash, runs a comparison against a fixed hash so
/// an unknown email takes as long as a wrong password.
async fn check_password(password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (
                DUMMY
                    .get_or_init(|| {
                        bcrypt::hash(random_base62(24), BCRYPT_COST)
                            .expect("bcrypt of a fixed input")
                    })
                    .clone(),
                false,
            ),
        };
        bcrypt::verify(password, &hash).unwrap_or(false) && real
    })
    .await
    .unwrap_or(false)
}

fn ok_empty() -> Response {
    Json(json!({})).into_response()
}

// ---------------------------------------------------------------------------------------------
// Public endpoints

async fn health(_ctx: Ctx) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    }))
}

async fn settings(State(auth): State<Arc<Auth>>, ctx: Ctx) -> AuthResult<Json<Value>> {
    let (_client, s) = ctx.db(&auth).await?;
    let mut external = Map::new();
    for p in [
        "apple",
        "azure",
        "bitbucket",
        "discord",
        "facebook",
        "figma",
        "fly",
        "github",
        "gitlab",
        "google",
        "keycloak",
        "kakao",
        "linkedin",
        "linkedin_oidc",
        "notion",
        "spotify",
        "slack",
        "slack_oidc",
        "workos",
        "twitch",
        "twitter",
        "phone",
        "zoom",
    ] {
        external.insert(p.into(), Value::Bool(false));
    }
    external.insert("anonymous_users".into(), Value::Bool(s.anonymous_users));
    external.insert("email".into(), Value::Bool(true));
    Ok(Json(json!({
        "external": external,
        "disable_signup": s.disable_signup,
        "mailer_autoconfirm": s.mailer_autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
    })))
}

/// Only asymmetric keys are ever published; projects sign with an HS256 secret, so the set is empty.
async fn jwks(_ctx: Ctx) -> Json<Value> {
    Json(json!({"keys": []}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Credentials {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    refresh_token: Option<String>,
}

fn metadata(data: Option<Value>) -> AuthResult<Value> {
    match data {
        None | Some(Value::Null) => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(AuthError::validation("data must be a JSON object")),
    }
}

async fn signup(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let c: Credentials = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    if s.disable_signup {
        return Err(AuthError::unprocessable(
            "signup_disabled",
            "Signups not allowed for this instance",
        ));
    }
    let has_phone = c.phone.as_deref().is_some_and(|p| !p.is_empty());
    let email = match c.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    if email.is_none() && !has_phone && c.password.is_none() {
        return anonymous_signup(&auth, &ctx, &s, &mut client, metadata(c.data)?).await;
    }
    let Some(email) = email else {
        return Err(if has_phone {
            AuthError::unprocessable("phone_provider_disabled", "Phone signups are disabled")
        } else {
            AuthError::validation("To signup, please provide your email")
        });
    };
    let password = c.password.unwrap_or_default();
    if password.is_empty() {
        return Err(AuthError::unprocessable(
            "validation_failed",
            "Signup requires a valid password",
        ));
    }
    validate::password(&password, s.password_min_length)?;
    ctx.limit(&auth, &s, "signin", s.limit_sign_in, Some(&email))?;
    let data = metadata(c.data)?;
    let hash = hash_password(password).await?;
    let tx = client.transaction().await?;
    let created = store::create_user(
        &tx,
        NewUser {
            email: Some(&email),
            password_hash: Some(&hash),
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: s.mailer_autoconfirm,
            anonymous: false,
            role: "authenticated",
        },
    )
    .await?;
    let Some(user) = created else {
        if s.mailer_autoconfirm {
            return Err(AuthError::unprocessable(
                "user_already_exists",
                "User already registered",
            ));
        }
        // With confirmations on, GoTrue does not reveal which addresses have accounts: an
        // unconfirmed user gets the confirmation again, a confirmed one a look-alike user.
        let existing = store::user_by_email(&tx, &email).await?;
        let answer = match existing {
            Some(u) if !u.confirmed => {
                let redirect = q.get("redirect_to").map(String::as_str);
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::Confirmation,
                    redirect,
                )
                .await?;
                store::user_by_id(&tx, &u.id).await?.map(|u| u.json)
            }
            _ => None,
        };
        let answer = match answer {
            Some(a) => a,
            None => store::lookalike_user(&tx, &email).await?,
        };
        tx.commit().await?;
        return Ok(Json(answer).into_response());
    };
    if s.mailer_autoconfirm {
        let session = ctx
            .start_session(&auth, &s, &tx, &user.id, "password")
            .await?;
        tx.commit().await?;
        return Ok(Json(session).into_response());
    }
    send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &email,
        MailKind::Confirmation,
        q.get("redirect_to").map(String::as_str),
    )
    .await?;
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished after signup"))?;
    tx.commit().await?;
    Ok(Json(user.json).into_response())
}

async fn anonymous_signup(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    data: Value,
) -> AuthResult<Response> {
    if !s.anonymous_users {
        return Err(AuthError::unprocessable(
            "anonymous_provider_disabled",
            "Anonymous sign-ins are disabled",
        ));
    }
    ctx.limit(auth, s, "signin", s.limit_sign_in, None)?;
    let tx = client.transaction().await?;
    let user = store::create_user(
        &tx,
        NewUser {
            email: None,
            password_hash: None,
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: false,
            anonymous: true,
            role: "authenticated",
        },
    )
    .await?
    .ok_or_else(|| AuthError::internal("anonymous user insert conflicted"))?;
    let session = ctx
        .start_session(auth, s, &tx, &user.id, "anonymous")
        .await?;
    tx.commit().await?;
    Ok(Json(session).into_response())
}

async fn token_grant(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let c: Credentials = body(&raw)?;
    match q.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(&auth, &ctx, c).await,
        Some("refresh_token") => refresh_grant(&auth, &ctx, c).await,
        _ => Err(AuthError::bad_request(
            "invalid_credentials",
            "unsupported_grant_type",
        )),
    }
}

async fn password_grant(auth: &Auth, ctx: &Ctx, c: Credentials) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(auth).await?;
    let password = c.password.unwrap_or_default();
    let Some(email) = c.email.as_deref().filter(|e| !e.is_empty()) else {
        return Err(if c.phone.is_some() {
            AuthError::invalid_credentials()
        } else {
            AuthError::validation("missing email or phone")
        });
    };
    // A malformed address cannot belong to a user: same answer as a wrong password.
    let email = validate::email(email).map_err(|_| AuthError::invalid_credentials())?;
    ctx.limit(auth, &s, "signin", s.limit_sign_in, Some(&email))?;
    let user = {
        let tx = client.transaction().await?;
        store::user_by_email(&tx, &email).await?
    };
    // Release the connection while bcrypt runs.
    drop(client);
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    if !check_password(password, hash).await {
        return Err(AuthError::invalid_credentials());
    }
    let user = user.expect("a password matched, so the user exists");
    if user.banned {
        return Err(AuthError::bad_request("user_banned", "User is banned"));
    }
    if !user.confirmed {
        return Err(AuthError::bad_request(
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let session = ctx
        .start_session(auth, &s, &tx, &user.id, "password")
        .await?;
    tx.commit().await?;
    Ok(Json(session).into_response())
}

async fn refresh_grant(auth: &Auth, ctx: &Ctx, c: Credentials) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(auth).await?;
    let presented = c
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::validation("refresh_token required"))?;
    ctx.limit(auth, &s, "refresh", s.limit_refresh, None)?;
    let not_found = || {
        AuthError::bad_request(
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        )
    };
    let tx = client.transaction().await?;
    let row = store::lock_refresh(&tx, &presented)
        .await?
        .ok_or_else(not_found)?;
    let decision = token::decide(
        Presented {
            revoked: row.revoked,
            parent_of_active: row.parent_of_active,
            age_secs: row.age_secs,
        },
        s.reuse_interval,
    );
    let issued = match decision {
        Refresh::Rotate => {
            let child = new_refresh_token();
            store::rotate(&tx, &row, &child).await?;
            child
        }
        Refresh::ReturnActive => row.active.clone().ok_or_else(not_found)?,
        Refresh::RevokeSession => {
            store::delete_session(&tx, &row.session_id).await?;
            tx.commit().await?;
            tracing::warn!(
                project = ctx.project_ref(),
                session = %row.session_id,
                "refresh token reused outside the reuse interval: session revoked"
            );
            return Err(AuthError::bad_request(
                "refresh_token_already_used",
                "Invalid Refresh Token: Already Used",
            ));
        }
    };
    let user = store::user_by_id(&tx, &row.user_id)
        .await?
        .ok_or_else(not_found)?;
    if user.banned {
        return Err(AuthError::bad_request(
            "user_banned",
            "Invalid Refresh Token: User Banned",
        ));
    }
    let amr = store::amr(&tx, &row.session_id).await?;
    tx.commit().await?;
    Ok(
        Json(ctx.session_body(auth, &s, &user.json, &row.session_id, &amr, &issued))
            .into_response(),
    )
}

/// The signed-in user, after checking that the token's session still exists.
async fn current_user(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &Ctx,
) -> AuthResult<store::User> {
    let id = ctx.user_id()?;
    if let Some(sid) = ctx.session_id() {
        if !store::session_exists(tx, sid).await? {
            return Err(AuthError::forbidden(
                "session_not_found",
                "Session from session_id claim in JWT does not exist",
            ));
        }
    }
    store::user_by_id(tx, id).await?.ok_or_else(|| {
        AuthError::forbidden(
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })
}

async fn get_user(State(auth): State<Arc<Auth>>, ctx: Ctx) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    Ok(Json(user.json))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserUpdate {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
}

async fn put_user(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.user_id()?;
    let u: UserUpdate = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    if u.phone.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(AuthError::unprocessable(
            "phone_provider_disabled",
            "Phone signups are disabled",
        ));
    }
    let email = match u.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    let tx = client.transaction().await?;
    let user = current_user(&tx, &ctx).await?;
    if let Some(password) = u.password.filter(|p| !p.is_empty()) {
        validate::password(&password, s.password_min_length)?;
        if check_password(password.clone(), user.password_hash.clone()).await {
            return Err(AuthError::unprocessable(
                "same_password",
                "New password should be different from the old password.",
            ));
        }
        let hash = hash_password(password).await?;
        store::set_password(&tx, &user.id, &hash).await?;
    }
    if let Some(data) = &u.data {
        store::merge_metadata(&tx, &user.id, false, data).await?;
    }
    if let Some(email) = email.filter(|e| Some(e) != user.email.as_ref()) {
        let anonymous = user.json["is_anonymous"].as_bool().unwrap_or(false);
        if s.mailer_autoconfirm || anonymous {
            if !store::set_email(&tx, &user.id, &email).await? {
                return Err(email_exists());
            }
        } else {
            if store::user_by_email(&tx, &email).await?.is_some() {
                return Err(email_exists());
            }
            store::set_email_change(&tx, &user.id, &email).await?;
            send_token(
                &auth,
                &ctx,
                &s,
                &tx,
                &user,
                &email,
                MailKind::EmailChange,
                q.get("redirect_to").map(String::as_str),
            )
            .await?;
        }
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished during update"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

fn email_exists() -> AuthError {
    AuthError::unprocessable(
        "email_exists",
        "A user with this email address has already been registered",
    )
}

async fn logout(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let user_id = ctx.user_id()?;
    let scope = q.get("scope").map(String::as_str).unwrap_or("global");
    if !matches!(scope, "global" | "local" | "others") {
        return Err(AuthError::validation(format!(
            "Unsupported logout scope {scope:?}"
        )));
    }
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    store::logout(&tx, user_id, ctx.session_id().unwrap_or(""), scope).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// One-time tokens: recover, otp, magiclink, verify

/// Creates a one-time token for `user`, stores its hash and mails the link and code to `to`.
#[allow(clippy::too_many_arguments)]
async fn send_token(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    tx: &deadpool_postgres::Transaction<'_>,
    user: &store::User,
    to: &str,
    kind: MailKind,
    redirect_to: Option<&str>,
) -> AuthResult<(String, String)> {
    let (column, link_type) = match kind {
        MailKind::Confirmation => (TokenColumn::Confirmation, "signup"),
        MailKind::MagicLink => (TokenColumn::Recovery, "magiclink"),
        MailKind::Recovery => (TokenColumn::Recovery, "recovery"),
        MailKind::EmailChange => (TokenColumn::EmailChange, "email_change"),
    };
    if let Some(age) = store::sent_age(tx, &user.id, column).await? {
        if age < s.max_frequency as f64 {
            let wait = (s.max_frequency as f64 - age).ceil() as i64;
            return Err(AuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over_email_send_rate_limit",
                format!("For security purposes, you can only request this after {wait} seconds."),
            ));
        }
    }
    let otp = new_otp();
    let hash = validate::token_hash(to, &otp);
    store::set_token(tx, &user.id, column, &hash, to).await?;
    let redirect = s.redirect(redirect_to);
    let link = format!(
        "{}/auth/v1/verify?token={hash}&type={link_type}&redirect_to={}",
        auth.api_url(ctx.project_ref()),
        percent_encoding::utf8_percent_encode(&redirect, URL_VALUE)
    );
    mail::deliver(ctx.project_ref(), s, to, kind, &link, &otp).await?;
    Ok((link, otp))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OtpRequest {
    email: Option<String>,
    phone: Option<String>,
    data: Option<Value>,
    create_user: Option<bool>,
}

async fn recover(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: OtpRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(&auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    // Unknown addresses get the same answer: no account enumeration.
    if let Some(user) = store::user_by_email(&tx, &email).await? {
        send_token(
            &auth,
            &ctx,
            &s,
            &tx,
            &user,
            &email,
            MailKind::Recovery,
            q.get("redirect_to").map(String::as_str),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(ok_empty())
}

async fn otp(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: OtpRequest = body(&raw)?;
    passwordless(&auth, &ctx, r, q.get("redirect_to").map(String::as_str)).await
}

async fn magiclink(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let mut r: OtpRequest = body(&raw)?;
    r.create_user = Some(true);
    passwordless(&auth, &ctx, r, q.get("redirect_to").map(String::as_str)).await
}

/// Email OTP / magic link: a new user gets a confirmation token, an existing one a magic-link token
/// (GoTrue keeps magic links in the recovery token column); both codes sign in through /verify.
async fn passwordless(
    auth: &Auth,
    ctx: &Ctx,
    r: OtpRequest,
    redirect_to: Option<&str>,
) -> AuthResult<Response> {
    if r.phone.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(AuthError::unprocessable(
            "phone_provider_disabled",
            "Phone signups are disabled",
        ));
    }
    let (mut client, s) = ctx.db(auth).await?;
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    let (user, kind) = match store::user_by_email(&tx, &email).await? {
        Some(u) if u.confirmed => (u, MailKind::MagicLink),
        Some(u) => (u, MailKind::Confirmation),
        None => {
            if !r.create_user.unwrap_or(true) {
                return Err(AuthError::unprocessable(
                    "otp_disabled",
                    "Signups not allowed for otp",
                ));
            }
            if s.disable_signup {
                return Err(AuthError::unprocessable(
                    "signup_disabled",
                    "Signups not allowed for this instance",
                ));
            }
            let user = store::create_user(
                &tx,
                NewUser {
                    email: Some(&email),
                    password_hash: None,
                    user_metadata: metadata(r.data)?,
                    app_metadata: json!({}),
                    confirmed: false,
                    anonymous: false,
                    role: "authenticated",
                },
            )
            .await?
            .ok_or_else(|| AuthError::internal("otp signup raced another signup"))?;
            (user, MailKind::Confirmation)
        }
    };
    send_token(auth, ctx, &s, &tx, &user, &email, kind, redirect_to).await?;
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResendRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
}

/// `POST /resend`: the signup confirmation or the email-change message again (for a pending one).
async fn resend(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Response> {
    let r: ResendRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let email = validate::email(r.email.as_deref().unwrap_or(""))?;
    ctx.limit(&auth, &s, "otp", s.limit_otp, Some(&email))?;
    let tx = client.transaction().await?;
    let redirect = q.get("redirect_to").map(String::as_str);
    match r.kind.as_deref() {
        Some("signup") => {
            if let Some(u) = store::user_by_email(&tx, &email).await? {
                if u.confirmed {
                    return Err(AuthError::unprocessable(
                        "email_address_not_authorized",
                        "Email address already confirmed",
                    ));
                }
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::Confirmation,
                    redirect,
                )
                .await?;
            }
        }
        Some("email_change") => {
            if let Some(u) = store::user_by_email_change(&tx, &email).await? {
                send_token(
                    &auth,
                    &ctx,
                    &s,
                    &tx,
                    &u,
                    &email,
                    MailKind::EmailChange,
                    redirect,
                )
                .await?;
            }
        }
        Some("sms" | "phone_change") => {
            return Err(AuthError::unprocessable(
                "phone_provider_disabled",
                "Phone signups are disabled",
            ))
        }
        _ => {
            return Err(AuthError::validation(
                "Missing one of these types: signup, email_change, sms, phone_change",
            ))
        }
    }
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VerifyRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    redirect_to: Option<String>,
}

fn otp_expired() -> AuthError {
    AuthError::forbidden("otp_expired", "Token has expired or is invalid")
}

/// Checks a one-time token and signs the user in; returns the session and the verified type.
async fn verify(
    auth: &Auth,
    ctx: &Ctx,
    s: &Settings,
    client: &mut Object,
    v: VerifyRequest,
) -> AuthResult<Value> {
    ctx.limit(auth, s, "verify", s.limit_verify, None)?;
    let kind = v.kind.as_deref().unwrap_or("");
    let columns: &[TokenColumn] = match kind {
        "signup" | "invite" => &[TokenColumn::Confirmation],
        "magiclink" | "recovery" => &[TokenColumn::Recovery],
        "email_change" => &[TokenColumn::EmailChange],
        "email" => &[TokenColumn::Confirmation, TokenColumn::Recovery],
        "sms" | "phone_change" => {
            return Err(AuthError::unprocessable(
                "phone_provider_disabled",
                "Phone signups are disabled",
            ))
        }
        _ => return Err(AuthError::validation("Verify requires a verification type")),
    };
    let tx = client.transaction().await?;
    let mut found = None;
    match (
        v.token_hash.as_deref().filter(|h| !h.is_empty()),
        v.token.as_deref().filter(|t| !t.is_empty()),
        v.email.as_deref(),
    ) {
        (None, Some(code), Some(email)) => {
            // A code typed by the user: compare its hash with the stored one in constant time.
            let email = validate::email(email)?;
            let hash = validate::token_hash(&email, code.trim());
            let user = match store::user_by_email(&tx, &email).await? {
                Some(u) => Some(u),
                // Email-change codes go to (and are bound to) the new address.
                None if kind == "email_change" => store::user_by_email_change(&tx, &email).await?,
                None => None,
            };
            if let Some(mut user) = user {
                for col in columns {
                    let (stored, age) = store::token_of(&tx, &user.id, *col).await?;
                    if !stored.is_empty() && validate::same(&stored, &hash) {
                        user.sent_at_age = age;
                        found = Some((user, *col));
                        break;
                    }
                }
            }
        }
        (Some(hash), _, _) | (None, Some(hash), None) => {
            // A link's token is the hash itself: look it up by its index.
            let hash = hash.to_lowercase();
            for col in columns {
                if let Some(u) = store::user_by_token(&tx, *col, &hash).await? {
                    found = Some((u, *col));
                    break;
                }
            }
        }
        _ => {
            return Err(AuthError::validation(
                "Verify requires a token or a token hash",
            ))
        }
    }
    let (user, col) = found.ok_or_else(otp_expired)?;
    let age = user.sent_at_age.unwrap_or(f64::INFINITY);
    if age > s.otp_exp as f64 || user.banned {
        return Err(otp_expired());
    }
    store::clear_token(&tx, &user.id, col).await?;
    match col {
        TokenColumn::EmailChange => {
            let new_email = user.json["new_email"].as_str().unwrap_or("").to_string();
            if new_email.is_empty() || !store::set_email(&tx, &user.id, &new_email).await? {
                return Err(email_exists());
            }
            store::confirm_email(&tx, &user.id).await?;
        }
        _ => store::confirm_email(&tx, &user.id).await?,
    }
    let session = ctx.start_session(auth, s, &tx, &user.id, "otp").await?;
    tx.commit().await?;
    Ok(session)
}

async fn verify_post(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    let v: VerifyRequest = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    Ok(Json(verify(&auth, &ctx, &s, &mut client, v).await?))
}

/// The link in emails: verifies, then redirects with the session (or the error) in the fragment.
async fn verify_get(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let (mut client, s) = ctx.db(&auth).await?;
    let redirect = s.redirect(q.get("redirect_to").map(String::as_str));
    let kind = q.get("type").cloned().unwrap_or_default();
    let v = VerifyRequest {
        kind: Some(kind.clone()),
        token: q.get("token").cloned(),
        ..VerifyRequest::default()
    };
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, URL_VALUE).to_string();
    let fragment = match verify(&auth, &ctx, &s, &mut client, v).await {
        Ok(session) => format!(
            "access_token={}&expires_at={}&expires_in={}&refresh_token={}&token_type=bearer&type={}",
            enc(session["access_token"].as_str().unwrap_or("")),
            session["expires_at"],
            session["expires_in"],
            enc(session["refresh_token"].as_str().unwrap_or("")),
            enc(&kind),
        ),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => return Err(e),
        Err(e) => format!(
            "error=access_denied&error_code={}&error_description={}",
            e.code,
            enc(if e.code == "otp_expired" {
                "Email link is invalid or has expired"
            } else {
                &e.msg
            })
        ),
    };
    let location = format!("{redirect}#{fragment}");
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(AuthError::internal)?,
    );
    Ok(res)
}

// ---------------------------------------------------------------------------------------------
// Admin (service_role only)

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminUser {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    email_confirm: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    role: Option<String>,
    ban_duration: Option<String>,
    should_soft_delete: Option<bool>,
}

/// GoTrue's ban durations: Go durations such as `24h`, `1h30m`, `90s`; `none` lifts the ban.
fn parse_duration(s: &str) -> AuthResult<Option<f64>> {
    if s == "none" {
        return Ok(None);
    }
    let bad = || AuthError::validation("invalid format for ban duration");
    let (mut total, mut num) = (0f64, String::new());
    let mut chars = s.chars().peekable();
    let mut seen = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        num.clear();
        seen = true;
    }
    if !num.is_empty() || !seen {
        return Err(bad());
    }
    Ok(Some(total))
}

async fn admin_list(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    ctx.require_admin()?;
    let num =
        |k: &str, default: i64| -> AuthResult<i64> {
            match q.get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AuthError::validation(format!("Bad Pagination Parameters: {k}"))
                }),
            }
        };
    let (page, per_page) = (num("page", 1)?, num("per_page", 50)?.min(1000));
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let (users, total) = store::list_users(&tx, page, per_page).await?;
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut res = Json(json!({"users": users, "aud": "authenticated"})).into_response();
    let h = res.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    h.insert(
        header::LINK,
        HeaderValue::from_str(&links.join(", ")).map_err(AuthError::internal)?,
    );
    Ok(res)
}

async fn admin_create(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    if a.phone.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(AuthError::unprocessable(
            "phone_provider_disabled",
            "Phone signups are disabled",
        ));
    }
    let email = validate::email(a.email.as_deref().unwrap_or(""))?;
    let hash = match a.password.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate::password(&p, s.password_min_length)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let tx = client.transaction().await?;
    let user = store::create_user(
        &tx,
        NewUser {
            email: Some(&email),
            password_hash: hash.as_deref(),
            user_metadata: Value::Object(a.user_metadata.unwrap_or_default()),
            app_metadata: Value::Object(a.app_metadata.unwrap_or_default()),
            confirmed: a.email_confirm.unwrap_or(false),
            anonymous: false,
            role: a.role.as_deref().unwrap_or("authenticated"),
        },
    )
    .await?
    .ok_or_else(email_exists)?;
    if let Some(d) = a.ban_duration.as_deref() {
        store::set_ban(&tx, &user.id, parse_duration(d)?).await?;
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("created user vanished"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

async fn admin_get(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    Ok(Json(user.json))
}

async fn admin_update(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let (mut client, s) = ctx.db(&auth).await?;
    let email = match a.email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(validate::email(e)?),
        None => None,
    };
    let hash = match a.password.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate::password(&p, s.password_min_length)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let tx = client.transaction().await?;
    let user = store::user_by_id(&tx, &id)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    if let Some(email) = email.filter(|e| Some(e) != user.email.as_ref()) {
        if !store::set_email(&tx, &user.id, &email).await? {
            return Err(email_exists());
        }
    }
    if let Some(hash) = hash {
        store::set_password(&tx, &user.id, &hash).await?;
    }
    if a.email_confirm == Some(true) {
        store::confirm_email(&tx, &user.id).await?;
    }
    if let Some(m) = &a.user_metadata {
        store::merge_metadata(&tx, &user.id, false, m).await?;
    }
    if let Some(m) = &a.app_metadata {
        store::merge_metadata(&tx, &user.id, true, m).await?;
    }
    if let Some(r) = a.role.as_deref().filter(|r| !r.is_empty()) {
        store::set_role(&tx, &user.id, r).await?;
    }
    if let Some(d) = a.ban_duration.as_deref() {
        store::set_ban(&tx, &user.id, parse_duration(d)?).await?;
    }
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("updated user vanished"))?;
    tx.commit().await?;
    Ok(Json(user.json))
}

async fn admin_delete(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Path(id): Path<String>,
    raw: Bytes,
) -> AuthResult<Response> {
    ctx.require_admin()?;
    let a: AdminUser = body(&raw)?;
    let mut client = auth.pools.get(ctx.project_ref(), &ctx.project.db).await?;
    let tx = client.transaction().await?;
    if store::user_by_id(&tx, &id).await?.is_none() {
        return Err(AuthError::user_not_found());
    }
    store::delete_user(&tx, &id, a.should_soft_delete.unwrap_or(false)).await?;
    tx.commit().await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GenerateLink {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
}

/// `POST /admin/generate_link`: the link and code of a signup, magic-link or recovery email,
/// returned to the (service-role) caller instead of being mailed, as GoTrue does.
async fn admin_generate_link(
    State(auth): State<Arc<Auth>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> AuthResult<Json<Value>> {
    ctx.require_admin()?;
    let g: GenerateLink = body(&raw)?;
    let (mut client, mut s) = ctx.db(&auth).await?;
    // The caller delivers the message: no mail, no send-frequency limit.
    s.smtp = None;
    s.max_frequency = 0;
    let email = validate::email(g.email.as_deref().unwrap_or(""))?;
    let kind = g.kind.unwrap_or_default();
    let redirect_to = g.redirect_to.or_else(|| q.get("redirect_to").cloned());
    let tx = client.transaction().await?;
    let existing = store::user_by_email(&tx, &email).await?;
    let (user, mail_kind) =
        match (kind.as_str(), existing) {
            ("signup", Some(_)) => {
                return Err(AuthError::unprocessable(
                    "email_exists",
                    "A user with this email address has already been registered",
                ))
            }
            ("signup", None) => {
                let password = g.password.unwrap_or_default();
                validate::password(&password, s.password_min_length)?;
                let hash = hash_password(password).await?;
                let user = store::create_user(
                    &tx,
                    NewUser {
                        email: Some(&email),
                        password_hash: Some(&hash),
                        user_metadata: metadata(g.data)?,
                        app_metadata: json!({}),
                        confirmed: false,
                        anonymous: false,
                        role: "authenticated",
                    },
                )
                .await?
                .ok_or_else(email_exists)?;
                (user, MailKind::Confirmation)
            }
            ("magiclink", Some(u)) => (u, MailKind::MagicLink),
            ("recovery", Some(u)) => (u, MailKind::Recovery),
            ("magiclink" | "recovery", None) => return Err(AuthError::user_not_found()),
            _ => return Err(AuthError::validation(
                "Invalid email action link type requested (supported: signup, magiclink, recovery)",
            )),
        };
    let (link, otp) = send_token(
        &auth,
        &ctx,
        &s,
        &tx,
        &user,
        &email,
        mail_kind,
        redirect_to.as_deref(),
    )
    .await?;
    let user = store::user_by_id(&tx, &user.id)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished"))?;
    tx.commit().await?;
    let mut out = user.json;
    out["action_link"] = json!(link);
    out["email_otp"] = json!(otp);
    out["hashed_token"] = json!(validate::token_hash(&email, &otp));
    out["redirect_to"] = json!(s.redirect(redirect_to.as_deref()));
    out["verification_type"] = json!(kind);
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_is_six_digits() {
        for _ in 0..50 {
            let o = new_otp();
            assert_eq!(o.len(), 6);
            assert!(o.chars().all(|c| c.is_ascii_digit()));
        }
        assert_ne!(new_refresh_token(), new_refresh_token());
    }

    #[test]
    fn ban_durations() {
        assert_eq!(parse_duration("24h").unwrap(), Some(86400.0));
        assert_eq!(parse_duration("1h30m").unwrap(), Some(5400.0));
        assert_eq!(parse_duration("90s").unwrap(), Some(90.0));
        assert_eq!(parse_duration("none").unwrap(), None);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("").is_err());
    }
}
