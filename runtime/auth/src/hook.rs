//! A project's auth hooks, as Supabase Auth's HTTP hooks: the platform's admin API stores one per name
//! (only `send_sms` today) in `auth.supactl_hooks` — an `http(s)` endpoint and its Standard Webhooks
//! secrets (`v1,whsec_<base64>`, several separated by `|` while rotating), sealed with the project's
//! data key ([`crate::sealed`]) and never answered — and the service calls it with a JSON payload
//! signed as Standard Webhooks do: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64
//! of HMAC-SHA256 over "id.timestamp.body" keyed with the secret's decoded bytes>`.
//!
//! A call is bounded: a 2 s connect timeout, a 5 s deadline for all its attempts, a 200 KiB answer, no
//! redirect followed. A connection that fails is tried again (3 attempts, as GoTrue), so is a 429/503
//! with `retry-after`. Failures carry GoTrue's codes: `hook_timeout`, `hook_timeout_after_retry`,
//! `hook_payload_over_size_limit`, `hook_payload_invalid_content_type`, the hook's own
//! `{"error": {"http_code", "message"}}`, or a 500 naming what the hook answered. The payload (which
//! holds one-time codes) is never logged.

use crate::error::{AuthError, AuthResult};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use hmac::{Hmac, Mac};
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;
use supactl_common::https::HttpsConnector;
use supactl_common::wire::ProjectConfig;
use tokio::time::{timeout_at, Instant};

/// The hooks a project can set (GoTrue's `send_sms`).
pub const NAMES: [&str; 1] = ["send_sms"];
/// Deadline of one hook call, every attempt included (GoTrue's HTTP hook timeout).
pub const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read (GoTrue's payload limit).
pub const MAX_RESPONSE: usize = 200 * 1024;
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(500);

/// A hook of a project, its secrets opened and decoded.
pub struct Hook {
    pub name: String,
    pub enabled: bool,
    pub uri: String,
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("uri", &supactl_common::redact::Redacted)
            .field("keys", &supactl_common::redact::Many(self.keys.len()))
            .finish()
    }
}

/// The admin API's body for one hook (`PUT …/auth/hooks/{name}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookUpdate {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub uri: String,
    /// Kept as stored when left out.
    pub secret: Option<String>,
}

fn yes() -> bool {
    true
}

fn aad(name: &str) -> String {
    format!("auth.supactl_hooks.secret:{name}")
}

/// The signing keys of Standard Webhooks secrets `v1,whsec_<base64>` (several joined by `|`).
pub fn parse_secrets(secrets: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let bad = "secret must be v1,whsec_<base64 of 16 to 512 bytes> (several separated by |)";
    secrets
        .split('|')
        .map(|s| {
            let b64 = s.trim().strip_prefix("v1,whsec_").ok_or(bad)?;
            let key = B64.decode(b64).map_err(|_| bad)?;
            if (16..=512).contains(&key.len()) {
                Ok(key)
            } else {
                Err(bad)
            }
        })
        .collect()
}

/// `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each key, joined by a space.
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An endpoint is an `https` URL, or `http` on loopback (tests, a receiver beside the platform).
fn validate(name: &str, u: &HookUpdate) -> AuthResult<()> {
    if !NAMES.contains(&name) {
        return Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown hook {name:?} (hooks: {})", NAMES.join(", ")),
        ));
    }
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| u.uri.starts_with(p));
    let parsed = u.uri.parse::<http::Uri>().ok();
    if u.uri.len() > 2048
        || !(u.uri.starts_with("https://") || loopback)
        || parsed.is_none_or(|p| p.host().is_none())
    {
        return Err(AuthError::validation(
            "uri must be an https URL (http only on loopback)",
        ));
    }
    if let Some(s) = &u.secret {
        parse_secrets(s).map_err(AuthError::validation)?;
    }
    Ok(())
}

const HOOK_JSON: &str = "jsonb_build_object('hook', hook, 'enabled', enabled, 'uri', uri, \
    'secret_set', true, 'created_at', created_at, 'updated_at', updated_at)";

/// Creates or replaces hook `name`; its JSON, without the secret. A new hook needs a secret.
pub async fn upsert(
    client: &impl GenericClient,
    project: &ProjectConfig,
    name: &str,
    u: HookUpdate,
) -> AuthResult<Value> {
    validate(name, &u)?;
    let sealed = match &u.secret {
        Some(s) => Some(crate::sealed::seal(project, &aad(name), s.trim())?),
        None => None,
    };
    let sql = format!(
        "INSERT INTO auth.supactl_hooks AS h (hook, enabled, uri, secret) \
         SELECT * FROM (SELECT $1::text, $2::bool, $3::text, \
           coalesce($4::text, (SELECT secret FROM auth.supactl_hooks WHERE hook = $1::text)) AS secret) n \
         WHERE n.secret IS NOT NULL \
         ON CONFLICT (hook) DO UPDATE SET enabled = EXCLUDED.enabled, uri = EXCLUDED.uri, \
           secret = EXCLUDED.secret, updated_at = now() \
         RETURNING {HOOK_JSON}"
    );
    let row = client
        .query_opt(&sql, &[&name, &u.enabled, &u.uri, &sealed])
        .await?;
    row.map(|r| r.get(0))
        .ok_or_else(|| AuthError::validation("a new hook needs its secret"))
}

/// Hook `name` without its secret (None: not set).
pub async fn get(client: &impl GenericClient, name: &str) -> AuthResult<Option<Value>> {
    let sql = format!("SELECT {HOOK_JSON} FROM auth.supactl_hooks WHERE hook = $1");
    Ok(client.query_opt(&sql, &[&name]).await?.map(|r| r.get(0)))
}

/// Deletes hook `name`; whether it existed.
pub async fn delete(client: &impl GenericClient, name: &str) -> AuthResult<bool> {
    Ok(client
        .execute("DELETE FROM auth.supactl_hooks WHERE hook = $1", &[&name])
        .await?
        > 0)
}

/// Hook `name` of the project with its keys opened (None: not set).
pub async fn load(
    client: &impl GenericClient,
    project: &ProjectConfig,
    name: &str,
) -> AuthResult<Option<Hook>> {
    let row = client
        .query_opt(
            "SELECT enabled, uri, secret FROM auth.supactl_hooks WHERE hook = $1",
            &[&name],
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let secrets = crate::sealed::open(project, &aad(name), r.get(2))?;
    let keys = parse_secrets(&secrets).map_err(AuthError::internal)?;
    Ok(Some(Hook {
        name: name.to_string(),
        enabled: r.get(0),
        uri: r.get(1),
        keys,
    }))
}

/// The HTTP client hooks are called with (one per auth service; connections pooled).
#[derive(Clone)]
pub struct Dispatcher {
    client: Client<HttpsConnector, Full<Bytes>>,
}

impl Default for Dispatcher {
    fn default() -> Dispatcher {
        let https = supactl_common::https::connector(CONNECT_TIMEOUT)
            .expect("aws-lc-rs supports the default TLS versions");
        Dispatcher {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
        }
    }
}

/// A failure the hook caused, answered as GoTrue's 500 with `msg`; the detail goes to the log.
fn failed(hook: &Hook, msg: String, detail: &str) -> AuthError {
    tracing::warn!(hook = %hook.name, %detail, "auth hook failed: {msg}");
    AuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", msg)
}

fn timed_out() -> AuthError {
    AuthError::unprocessable(
        "hook_timeout",
        format!(
            "Failed to reach hook within maximum time of {:.6} seconds",
            TIMEOUT.as_secs_f64()
        ),
    )
}

impl Dispatcher {
    /// POSTs `payload` to `hook`, signed; Ok when the hook accepted it.
    pub async fn call(&self, hook: &Hook, payload: &Value) -> AuthResult<()> {
        let body = Bytes::from(serde_json::to_vec(payload).map_err(AuthError::internal)?);
        let deadline = Instant::now() + TIMEOUT;
        for attempt in 1..=ATTEMPTS {
            let req = self.request(hook, body.clone())?;
            let res = match timeout_at(deadline, self.client.request(req)).await {
                Err(_) => return Err(timed_out()),
                Ok(Ok(res)) => res,
                Ok(Err(e)) => {
                    tracing::warn!(hook = %hook.name, attempt, error = %e, "auth hook unreachable");
                    if attempt == ATTEMPTS {
                        return Err(AuthError::unprocessable(
                            "hook_timeout_after_retry",
                            "Failed to reach hook after maximum retries",
                        ));
                    }
                    if timeout_at(deadline, tokio::time::sleep(BACKOFF))
                        .await
                        .is_err()
                    {
                        return Err(timed_out());
                    }
                    continue;
                }
            };
            match res.status() {
                StatusCode::NO_CONTENT => return Ok(()),
                StatusCode::OK | StatusCode::ACCEPTED => {
                    return accepted(hook, res, deadline).await;
                }
                s @ (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
                    if res.headers().contains_key(header::RETRY_AFTER) && attempt < ATTEMPTS =>
                {
                    tracing::warn!(hook = %hook.name, attempt, status = %s, "auth hook asked to retry");
                    if timeout_at(deadline, tokio::time::sleep(BACKOFF))
                        .await
                        .is_err()
                    {
                        return Err(timed_out());
                    }
                }
                s @ (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => {
                    return Err(failed(
                        hook,
                        "Service currently unavailable due to hook".into(),
                        s.as_str(),
                    ))
                }
                StatusCode::BAD_REQUEST => {
                    return Err(failed(hook, "Invalid payload sent to hook".into(), "400"))
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(failed(
                        hook,
                        "Hook requires authorization token".into(),
                        "401",
                    ))
                }
                s => {
                    return Err(failed(
                        hook,
                        format!("Unexpected status code returned from hook: {}", s.as_u16()),
                        s.as_str(),
                    ))
                }
            }
        }
        Err(failed(
            hook,
            "Service currently unavailable due to hook".into(),
            "retries exhausted",
        ))
    }

    fn request(&self, hook: &Hook, body: Bytes) -> AuthResult<Request<Full<Bytes>>> {
        let id = message_id();
        let ts = supactl_common::jwt::now();
        let sig = signature(&hook.keys, &id, ts, &body);
        let uri: http::Uri = hook
            .uri
            .parse()
            .map_err(|_| AuthError::internal(format!("hook {} has a bad uri", hook.name)))?;
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "supactl-auth")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                HeaderValue::from_str(&sig).map_err(AuthError::internal)?,
            )
            .body(Full::new(body))
            .map_err(AuthError::internal)
    }
}

/// A 200/202: JSON (GoTrue refuses another content type), within the size limit, and not the hook's
/// own `{"error": {"http_code", "message"}}`.
async fn accepted(
    hook: &Hook,
    res: http::Response<hyper::body::Incoming>,
    deadline: Instant,
) -> AuthResult<()> {
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ctype.split(';').next().unwrap_or("").trim();
    if media.is_empty() {
        return Err(AuthError::bad_request(
            "hook_payload_invalid_content_type",
            "Invalid Content-Type: Missing Content-Type header",
        ));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(AuthError::bad_request(
            "hook_payload_invalid_content_type",
            format!("Invalid JSON response. Received content-type: {ctype}"),
        ));
    }
    let body = match timeout_at(
        deadline,
        Limited::new(res.into_body(), MAX_RESPONSE).collect(),
    )
    .await
    {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(AuthError::unprocessable(
                "hook_payload_over_size_limit",
                format!("Payload size exceeded size limit of {MAX_RESPONSE} bytes"),
            ))
        }
        Ok(Err(e)) => {
            return Err(failed(
                hook,
                "Error reading hook response".into(),
                &e.to_string(),
            ))
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    let answer: Value = serde_json::from_slice(&body).map_err(|e| {
        failed(
            hook,
            "Error unmarshaling JSON output.".into(),
            &e.to_string(),
        )
    })?;
    hook_error(&answer).map_or(Ok(()), Err)
}

/// The hook's own error: its `message` (up to 500 characters) with its `http_code` (500 when absent
/// or not an error status).
fn hook_error(answer: &Value) -> Option<AuthError> {
    let e = answer.get("error")?;
    let msg: String = e.get("message")?.as_str()?.chars().take(500).collect();
    if msg.is_empty() {
        return None;
    }
    let status = e
        .get("http_code")
        .and_then(Value::as_u64)
        .and_then(|c| StatusCode::from_u16(c as u16).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
        "unexpected_failure"
    } else {
        "unknown"
    };
    tracing::warn!(status = %status, "auth hook answered an error");
    Some(AuthError::new(status, code, msg))
}

/// A fresh `webhook-id` (a random UUID, as GoTrue sends).
fn message_id() -> String {
    supactl_common::ident::uuid_v4()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_parse_and_sign() {
        // Standard Webhooks' published test vector (whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw).
        let keys = parse_secrets("v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&keys, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = parse_secrets(
            "v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .unwrap();
        assert_eq!(signature(&two, "i", 1, b"").split(' ').count(), 2);
        for bad in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "v1,whsec_!!",
            "v1,whsec_AAAA",
            "",
        ] {
            assert!(parse_secrets(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_and_names_are_checked() {
        let u = |uri: &str| HookUpdate {
            enabled: true,
            uri: uri.into(),
            secret: None,
        };
        assert!(validate("send_sms", &u("https://sms.example.com/hook")).is_ok());
        assert!(validate("send_sms", &u("http://127.0.0.1:9000/hook")).is_ok());
        assert!(validate("send_sms", &u("http://sms.example.com/hook")).is_err());
        assert!(validate("send_sms", &u("pg-functions://postgres/public/f")).is_err());
        assert_eq!(
            validate("send_email", &u("https://x.example.com"))
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn hook_errors_keep_their_status() {
        let e = hook_error(&json!({"error": {"http_code": 429, "message": "slow down"}})).unwrap();
        assert_eq!(
            (e.status.as_u16(), e.code, e.msg.as_str()),
            (429, "unknown", "slow down")
        );
        let e = hook_error(&json!({"error": {"message": "boom"}})).unwrap();
        assert_eq!((e.status.as_u16(), e.code), (500, "unexpected_failure"));
        assert!(hook_error(&json!({})).is_none());
        assert!(hook_error(&json!({"error": {"http_code": 400, "message": ""}})).is_none());
        let id = message_id();
        assert_eq!((id.len(), &id[14..15]), (36, "4"));
    }

    #[test]
    fn debug_hides_secrets_and_uri() {
        let h = Hook {
            name: "send_sms".into(),
            enabled: true,
            uri: "https://sms.example.com/?token=abc".into(),
            keys: vec![b"0123456789abcdef".to_vec()],
        };
        let text = format!("{h:?}");
        assert!(
            !text.contains("abc") && !text.contains("0123456789"),
            "{text}"
        );
    }
}
