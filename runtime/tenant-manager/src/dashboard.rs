//! The dashboard (supactl Studio): its page and files at the admin listener's root (embedded by the
//! `studio` crate), and its sessions.
//!
//! Signing in with the admin key opens a session: a random token in an HttpOnly, SameSite=Strict cookie
//! (the key itself never reaches the browser's storage), stored only as its SHA-256, ending after
//! [`IDLE`] without use, at [`LIFETIME`] in any case, at sign-out, or when the admin key changes. The pages
//! then call the admin API itself; [`authorize`] lets a session in where the admin key would be, only with
//! the session's CSRF token in `X-CSRF-Token` (a value a page of another site can neither read nor send).

use crate::audit;
use crate::auth::secret_eq;
use crate::error::ApiError;
use crate::TenantManager;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::error::HttpError;

const COOKIE: &str = "supactl_session";
/// A session not used for this long ends.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, used or not.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The sign-in body: an admin key and its JSON wrapping, nothing more.
const MAX_SIGN_IN_BODY: usize = 4096;

pub(crate) fn routes() -> Router<Arc<TenantManager>> {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/assets/{file}", get(file))
        .route(
            "/dashboard/v1/session",
            get(current).post(sign_in).delete(sign_out),
        )
}

/// Why a request that carried a session cookie is refused.
enum Refusal {
    Expired,
    Csrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Expired => HttpError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "the dashboard session has ended (signed out, idle, or the admin key changed): sign in again",
            ),
            Refusal::Csrf => HttpError::new(
                StatusCode::FORBIDDEN,
                "csrf_mismatch",
                "a request with the dashboard's session cookie must carry the session's X-CSRF-Token",
            ),
        }
        .into_response()
    }
}

/// The session cookie's token, if the request has one (bounded: the listener bounds header sizes).
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';').take(64))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn csrf_token(token: &str) -> String {
    hex::encode(Sha256::digest(format!("supactl-csrf\0{token}").as_bytes()))
}

/// The admin key's fingerprint, as the audit log writes it.
fn key_fingerprint(key: &str) -> String {
    format!(
        "admin-key:{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..12]
    )
}

/// Lets a request with a live session and its CSRF token in; returns the audit log's actor.
pub(crate) async fn authorize(
    tm: &TenantManager,
    token: &str,
    headers: &HeaderMap,
) -> Result<String, Response> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !secret_eq(sent, &csrf_token(token)) {
        return Err(Refusal::Csrf.into_response());
    }
    match touch(tm, token).await {
        Ok(Some(_)) => Ok(format!(
            "dashboard:{}",
            key_fingerprint(&tm.config.admin_key)
        )),
        Ok(None) => Err(Refusal::Expired.into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// Extends a live session's idle time; its new end, or None when there is no such live session.
async fn touch(tm: &TenantManager, token: &str) -> Result<Option<String>, ApiError> {
    let c = tm.store.client().await?;
    let row = c
        .query_opt(
            "UPDATE supactl.dashboard_sessions
                SET idle_until = least(now() + make_interval(secs => $2), ends_at)
              WHERE token_hash = $1 AND admin_key = $3 AND idle_until > now()
          RETURNING to_json(idle_until) #>> '{}'",
            &[
                &token_hash(token),
                &IDLE.as_secs_f64(),
                &key_fingerprint(&tm.config.admin_key),
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    admin_key: String,
}

/// `POST /dashboard/v1/session {"admin_key"}`: the cookie, and the CSRF token for the pages' calls.
async fn sign_in(State(tm): State<Arc<TenantManager>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_SIGN_IN_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::BadRequest("body: at most 4096 bytes".into()).into_response();
        }
    };
    let given: SignIn = match crate::handler::body(&bytes) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let probe = Request::from_parts(parts, Body::empty());
    if !secret_eq(&given.admin_key, &tm.config.admin_key) {
        audit::unauthorized(&tm, &probe).await;
        return HttpError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_key",
            "that is not the platform's admin key",
        )
        .into_response();
    }
    match open(&tm).await {
        Ok((token, expires_at)) => {
            audit::sign_in(&tm, &probe, key_fingerprint(&tm.config.admin_key)).await;
            let mut res = Json(json!({"csrf_token": csrf_token(&token), "expires_at": expires_at}))
                .into_response();
            set_cookie(&mut res, &probe, &token, LIFETIME.as_secs());
            res
        }
        Err(e) => e.into_response(),
    }
}

/// Stores a new session (and drops a bounded batch of ended ones); its token and idle end.
async fn open(tm: &TenantManager) -> Result<(String, String), ApiError> {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let c = tm.store.client().await?;
    c.execute(
        "DELETE FROM supactl.dashboard_sessions WHERE token_hash IN
           (SELECT token_hash FROM supactl.dashboard_sessions WHERE idle_until < now() LIMIT 100)",
        &[],
    )
    .await?;
    let row = c
        .query_one(
            "INSERT INTO supactl.dashboard_sessions (token_hash, admin_key, idle_until, ends_at)
             VALUES ($1, $2, now() + make_interval(secs => $3), now() + make_interval(secs => $4))
             RETURNING to_json(idle_until) #>> '{}'",
            &[
                &token_hash(&token),
                &key_fingerprint(&tm.config.admin_key),
                &IDLE.as_secs_f64(),
                &LIFETIME.as_secs_f64(),
            ],
        )
        .await?;
    Ok((token, row.get(0)))
}

/// `GET /dashboard/v1/session`: resumes the session after a reload (the CSRF token again), or 401.
async fn current(State(tm): State<Arc<TenantManager>>, headers: HeaderMap) -> Response {
    let Some(token) = session_token(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    match touch(&tm, &token).await {
        Ok(Some(expires_at)) => {
            Json(json!({"csrf_token": csrf_token(&token), "expires_at": expires_at}))
                .into_response()
        }
        Ok(None) => Refusal::Expired.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /dashboard/v1/session` (with the CSRF token): ends the session here and for every replica.
async fn sign_out(State(tm): State<Arc<TenantManager>>, req: Request) -> Response {
    let Some(token) = session_token(req.headers()) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if let Err(refused) = authorize(&tm, &token, req.headers()).await {
        return refused;
    }
    let ended = async {
        let c = tm.store.client().await?;
        c.execute(
            "DELETE FROM supactl.dashboard_sessions WHERE token_hash = $1",
            &[&token_hash(&token)],
        )
        .await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = ended.await {
        return e.into_response();
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut res, &req, "", 0);
    res
}

/// The session cookie: HttpOnly, SameSite=Strict, `Secure` when the client reached a TLS listener (the
/// load balancer says so in `X-Forwarded-Proto`).
fn set_cookie(res: &mut Response, req: &Request, token: &str, max_age: u64) {
    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a hex token makes a valid header"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn page(State(tm): State<Arc<TenantManager>>, headers: HeaderMap) -> Response {
    let mut res = serve(studio::index(), &headers);
    let csp = content_security_policy(&tm.config.api_url_template);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'self'")),
    );
    res
}

async fn file(
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    match studio::asset(&format!("/assets/{file}")) {
        Some(a) => serve(a, &headers),
        None => ApiError::NotFound("no such file".into()).into_response(),
    }
}

/// An embedded file, gzipped when the client takes it; hashed names are cached for a year.
fn serve(asset: &'static studio::Asset, headers: &HeaderMap) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut res = if gzip { asset.gzip } else { asset.body }.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable() {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Scripts and styles from this origin only; the pages call this origin and, to invoke Edge Functions,
/// the projects' API origin (from the api_url template: `{ref}` as the first host label becomes `*`).
fn content_security_policy(api_url_template: &str) -> String {
    let api = api_origin(api_url_template).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {api}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

fn api_origin(template: &str) -> Option<String> {
    let (scheme, rest) = template.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = match authority.strip_prefix("{ref}.") {
        Some(tail) => format!("*.{tail}"),
        None if authority.contains('{') => return Some(format!("{scheme}:")),
        None => authority.to_string(),
    };
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; supactl_session=abc; b=2"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("supactl_session="));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 64);
    }

    #[test]
    fn api_origins_for_the_policy() {
        assert_eq!(
            api_origin("http://127.0.0.1:54321/p/{ref}").as_deref(),
            Some("http://127.0.0.1:54321")
        );
        assert_eq!(
            api_origin("https://{ref}.api.example.com").as_deref(),
            Some("https://*.api.example.com")
        );
        assert_eq!(
            api_origin("https://x{ref}.example.com").as_deref(),
            Some("https:")
        );
    }
}
