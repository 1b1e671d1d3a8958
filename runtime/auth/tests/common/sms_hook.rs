//! A Send SMS hook receiver on 127.0.0.1 (a real HTTP server, as a project's hook would be): it checks
//! each call's Standard Webhooks signature itself (HMAC-SHA256 over `id.timestamp.body` with the
//! secret's decoded bytes, computed here, not with the service's code) and keeps the payloads, whose
//! `sms.otp` is the code a user would receive. Its answer can be switched to fail in GoTrue's ways.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 `{}` (application/json).
    Accept,
    /// Answers after this long.
    Slow(Duration),
    /// 200 with the hook's own error object.
    HookError(u16, &'static str),
    /// 200 with a text/plain body.
    NotJson,
    /// 200 with 300 KiB of JSON.
    Huge,
}

pub struct Receiver {
    pub addr: SocketAddr,
    /// The secret as a project stores it (`v1,whsec_<base64>`).
    pub secret: String,
    state: Arc<Shared>,
}

struct Shared {
    key: Vec<u8>,
    mode: Mutex<Mode>,
    payloads: Mutex<Vec<Value>>,
    bad_signatures: Mutex<u32>,
}

/// A secret of 32 bytes built from `seed`.
pub fn secret(seed: u8) -> (String, Vec<u8>) {
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect();
    (format!("v1,whsec_{}", B64.encode(&key)), key)
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (secret, key) = secret(11);
        let state = Arc::new(Shared {
            key,
            mode: Mutex::new(Mode::Accept),
            payloads: Mutex::new(Vec::new()),
            bad_signatures: Mutex::new(0),
        });
        let app = axum::Router::new()
            .route("/sms", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            addr,
            secret,
            state,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn payloads(&self) -> Vec<Value> {
        self.state.payloads.lock().unwrap().clone()
    }

    pub fn bad_signatures(&self) -> u32 {
        *self.state.bad_signatures.lock().unwrap()
    }

    /// The code most recently sent to `phone`.
    pub fn last_otp(&self, phone: &str) -> String {
        self.payloads()
            .iter()
            .rev()
            .find(|p| p["sms"]["phone"] == phone)
            .and_then(|p| p["sms"]["otp"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no code was sent to {phone}"))
    }
}

/// Standard Webhooks' check, written out: the timestamp within 5 minutes and one `v1,` signature
/// equal to ours.
fn signed(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts) = (h("webhook-id"), h("webhook-timestamp"));
    let Ok(t) = ts.parse::<i64>() else {
        return false;
    };
    if (supactl_common::jwt::now() - t).abs() > 300 || id.is_empty() {
        return false;
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    h("webhook-signature").split(' ').any(|s| s == expected)
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !signed(&s.key, &headers, &body)
        || headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json")
    {
        *s.bad_signatures.lock().unwrap() += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"http_code": 401, "message": "bad signature"}})),
        )
            .into_response();
    }
    let payload: Value = serde_json::from_slice(&body).unwrap();
    s.payloads.lock().unwrap().push(payload);
    let mode = s.mode.lock().unwrap().clone();
    match mode {
        Mode::Accept => axum::Json(json!({})).into_response(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            axum::Json(json!({})).into_response()
        }
        Mode::HookError(code, msg) => {
            axum::Json(json!({"error": {"http_code": code, "message": msg}})).into_response()
        }
        Mode::NotJson => "sent".into_response(),
        Mode::Huge => axum::Json(json!({"padding": "x".repeat(300 * 1024)})).into_response(),
    }
}
