//! Who is calling and what every flow shares: the caller read from the gateway's headers and its
//! verified JWT, sessions, rate limits, the JSON body, passwords and one-time codes.

use super::{Auth, BCRYPT_COST, CLIENT_IP_HEADER, PROJECT_HEADER};
use crate::db::Settings;
use crate::error::{AuthError, AuthResult};
use crate::ratelimit::email_key;
use crate::store;
use crate::token::{self, Amr, SessionInfo};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use deadpool_postgres::Object;
use http::request::Parts;
use http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use supactl_common::forwarded::{from_forwarded, Claims, ForwardedError};
use supactl_common::gotrue::bad_jwt_message;
use supactl_common::jwt;
use supactl_common::keys::{random_base62, Role};
use supactl_common::wire::ProjectConfig;

/// Who is calling, for which project: read from the gateway's headers and its verified JWT.
pub(super) struct Ctx {
    pub(super) project: Arc<ProjectConfig>,
    pub(super) claims: Claims,
    /// Read from the claims by the rule every service shares ([`supactl_common::claims::role`]).
    pub(super) role: Role,
    pub(super) ip: Option<IpAddr>,
    pub(super) user_agent: Option<String>,
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
        let forwarded = from_forwarded(&project, h).map_err(|e| match e {
            ForwardedError::NoToken => AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a valid Bearer token",
            ),
            ForwardedError::Invalid(e) => AuthError::forbidden("bad_jwt", bad_jwt_message(&e)),
            e => AuthError::forbidden("bad_jwt", format!("invalid JWT: {e}")),
        })?;
        Ok(Ctx {
            project,
            claims: forwarded.claims,
            role: forwarded.role,
            ip: text(CLIENT_IP_HEADER).and_then(|v| v.parse().ok()),
            user_agent: text(header::USER_AGENT.as_str()).map(str::to_string),
        })
    }
}

impl Ctx {
    pub(super) fn project_ref(&self) -> &str {
        &self.project.project_ref
    }

    pub(super) fn require_admin(&self) -> AuthResult<()> {
        if self.role == Role::ServiceRole {
            Ok(())
        } else {
            Err(AuthError::not_admin())
        }
    }

    /// The signed-in user's id (the `sub` of a user's access token).
    pub(super) fn user_id(&self) -> AuthResult<&str> {
        self.claims
            .subject()
            .ok_or_else(|| AuthError::forbidden("bad_jwt", "invalid claim: missing sub claim"))
    }

    pub(super) fn session_id(&self) -> Option<&str> {
        self.claims.session_id()
    }

    pub(super) fn ip_text(&self) -> Option<String> {
        self.ip.map(|i| i.to_string())
    }

    pub(super) async fn db(&self, auth: &Auth) -> AuthResult<(Object, Settings)> {
        let client = auth.pools.get(self.project_ref(), &self.project.db).await?;
        let settings = Settings::load(&client).await?;
        Ok((client, settings))
    }

    /// Counts the request against the per-IP limit of `action` (and the per-email one when given).
    pub(super) fn limit(
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

    /// Signs the session body for `user` in session `sid` at assurance level `aal`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn session_body(
        &self,
        auth: &Auth,
        settings: &Settings,
        user: &Value,
        sid: &str,
        aal: &str,
        amr: &[Amr],
        refresh_token: &str,
    ) -> Value {
        let issuer = format!("{}/auth/v1", auth.api_url(self.project_ref()));
        let info = SessionInfo {
            session_id: sid,
            aal,
            amr,
            issuer: &issuer,
            issued_at: jwt::now(),
            lifetime_secs: settings.jwt_exp,
        };
        token::session_body(user, &info, refresh_token, token::Signer::of(&self.project))
    }

    /// Starts a session for `user_id` and returns GoTrue's session body.
    pub(super) async fn start_session(
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
        Ok(self.session_body(
            auth,
            settings,
            &user.json,
            &sid,
            "aal1",
            &amr,
            &refresh_token,
        ))
    }
}

pub(super) fn new_refresh_token() -> String {
    random_base62(32)
}

/// A 6-digit one-time code (GoTrue's default OTP length).
pub(super) fn new_otp() -> String {
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
pub(super) fn body<T: DeserializeOwned>(b: &Bytes) -> AuthResult<T> {
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

pub(super) async fn hash_password(password: String) -> AuthResult<String> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(AuthError::internal)?
        .map_err(AuthError::internal)
}

/// Checks a password against a bcrypt hash; with no hash, runs a comparison against a fixed hash so
/// an unknown email takes as long as a wrong password.
pub(super) async fn check_password(password: String, hash: Option<String>) -> bool {
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

pub(super) fn ok_empty() -> Response {
    Json(json!({})).into_response()
}

pub(super) fn metadata(data: Option<Value>) -> AuthResult<Value> {
    match data {
        None | Some(Value::Null) => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(AuthError::validation("data must be a JSON object")),
    }
}

pub(super) fn email_exists() -> AuthError {
    AuthError::unprocessable(
        "email_exists",
        "A user with this email address has already been registered",
    )
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
}
