//! The request id and the access log: every request gets an id (the client's `X-Request-Id` when it is a
//! short token, else a new one) that goes to the service behind the gateway (REST exposes it to SQL in the
//! `request.headers` GUC) and back in the response, and one log line (target `supactl::access`) with the
//! id, project, route class, method, status and latency. Never a key, a token or a query string: paths
//! and queries can carry keys (`apikey=` for Realtime), so only the route class is logged.

use crate::service::Service;
use http::{HeaderMap, HeaderValue};
use rand::RngCore;
use std::time::Instant;

pub const REQUEST_ID: &str = "x-request-id";

/// What the access line says about one request, filled in as the request is served.
pub struct AccessLog {
    pub id: HeaderValue,
    pub project: Option<String>,
    /// The service the request is addressed to (its route class; its error shape).
    pub service: Option<Service>,
    started: Instant,
}

impl AccessLog {
    /// Takes the client's request id when it is 1–128 characters of `[A-Za-z0-9._:-]`, else makes one.
    pub fn begin(headers: &HeaderMap) -> AccessLog {
        let given = headers.get(REQUEST_ID).filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
        });
        let id = given.cloned().unwrap_or_else(|| {
            let mut raw = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut raw);
            HeaderValue::from_str(&hex::encode(raw)).expect("hex is header-safe")
        });
        AccessLog {
            id,
            project: None,
            service: None,
            started: Instant::now(),
        }
    }

    fn route(&self) -> &'static str {
        self.service.map_or("none", Service::class)
    }

    /// Writes the access line and counts the request in the process's metrics.
    pub fn end(&self, method: &http::Method, status: http::StatusCode) {
        supactl_common::metrics::metrics().request(
            self.project.as_deref(),
            self.route(),
            status.as_u16(),
            self.started.elapsed().as_secs_f64(),
        );
        tracing::info!(
            target: "supactl::access",
            request_id = self.id.to_str().unwrap_or(""),
            project = self.project.as_deref().unwrap_or("-"),
            route = self.route(),
            method = method.as_str(),
            status = status.as_u16(),
            latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_only_when_it_is_a_short_token() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123.x:y"));
        assert_eq!(AccessLog::begin(&h).id, "abc-123.x:y");
        for bad in ["a b", "<script>", ""] {
            h.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = AccessLog::begin(&h).id;
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32);
        }
        h.insert(REQUEST_ID, HeaderValue::from_str(&"a".repeat(129)).unwrap());
        assert_eq!(AccessLog::begin(&h).id.len(), 32);
        assert_ne!(
            AccessLog::begin(&HeaderMap::new()).id,
            AccessLog::begin(&HeaderMap::new()).id
        );
    }
}
