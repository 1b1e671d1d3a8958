//! Where a service runs: in the gateway's process (its router, called directly) or behind an HTTP
//! address of its own (an ECS service reached over Cloud Map). Bodies are streamed both ways to an HTTP
//! upstream; the gateway bounds how long it waits for the response head, the service bounds the rest.

use crate::h1;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use http::{StatusCode, Uri};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::error::HttpError;
use supactl_common::headers::{hop_by_hop, remove_where};
use supactl_common::server::RequestDeadline;
use tower::ServiceExt;

#[derive(Clone)]
pub enum Upstream {
    InProcess(Router),
    Http(Box<HttpUpstream>),
}

impl Upstream {
    pub(crate) async fn call(&self, req: Request) -> Result<Response, HttpError> {
        match self {
            Upstream::InProcess(router) => Ok(router
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {})),
            Upstream::Http(http) => http.call(req).await,
        }
    }
}

/// A service at `http://host:port` (plain HTTP inside the VPC, as between every service).
#[derive(Clone)]
pub struct HttpUpstream {
    base: Uri,
    pool: Arc<h1::Pool>,
    /// Longest wait for the response head (the service's own limits bound the body).
    head_timeout: Duration,
}

impl HttpUpstream {
    /// `base` is `http://host:port`, with no path; requests keep their path and query below it.
    pub fn new(base: &str, head_timeout: Duration) -> Result<HttpUpstream, String> {
        let base: Uri = base
            .parse()
            .map_err(|e| format!("not a URL ({base}): {e}"))?;
        if base.scheme_str() != Some("http") || base.authority().is_none() {
            return Err(format!("expected http://host:port, got {base}"));
        }
        if !matches!(base.path(), "" | "/") {
            return Err(format!("expected no path, got {base}"));
        }
        let authority = base.authority().expect("checked above");
        let pool = h1::Pool::new(authority, Duration::from_secs(5), Duration::from_secs(60));
        Ok(HttpUpstream {
            base,
            pool,
            head_timeout,
        })
    }

    async fn call(&self, req: Request) -> Result<Response, HttpError> {
        let (mut parts, body) = req.into_parts();
        // the head wait below bounds the request instead of the listener's deadline (a function may
        // take longer than a plain request), and the service bounds its own body
        if let Some(d) = parts.extensions.get::<RequestDeadline>() {
            d.lift();
        }
        parts.uri = h1::origin_form(&parts.uri);
        let sent = self.pool.send(Request::from_parts(parts, body));
        let res = match tokio::time::timeout(self.head_timeout, sent).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                tracing::warn!(upstream = %self.base, error = %e, "upstream unreachable");
                return Err(HttpError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unavailable",
                    "the service is not reachable right now; retry shortly",
                ));
            }
            Err(_) => {
                return Err(HttpError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the service did not answer in time",
                ))
            }
        };
        let (mut parts, body) = res.into_parts();
        remove_where(&mut parts.headers, hop_by_hop);
        Ok(Response::from_parts(parts, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_base_urls() {
        let t = Duration::from_secs(1);
        assert!(HttpUpstream::new("http://functions.internal:8081", t).is_ok());
        assert!(HttpUpstream::new("http://127.0.0.1:8081/", t).is_ok());
        assert!(HttpUpstream::new("https://x:1", t).is_err());
        assert!(HttpUpstream::new("http://x:1/functions", t).is_err());
        assert!(HttpUpstream::new("x", t).is_err());
    }
}
