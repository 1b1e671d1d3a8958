//! Lambda mode: the same engine serving ONE project per function, behind a Lambda Function URL.
//!
//! The function is configured from its environment at cold start ([`LambdaConfig::from_env`]): its
//! project ref (`SUPACTL_PROJECT_REF`) and the tenant-manager's internal endpoint
//! (`SUPACTL_TENANT_MANAGER_URL`) with the project's own token (`SUPACTL_PROJECT_TOKEN`, which the
//! tenant-manager puts there and accepts for this project's config only; `SUPACTL_SERVICE_TOKEN` is
//! accepted instead for local use), from which the project's database and JWT secrets are read through
//! the usual [`Directory`]. Requests arrive over the Lambda Runtime API as
//! Function URL events (API Gateway v2 payloads) and are turned into HTTP requests by `lambda_http`;
//! [`service`] then adapts them to the server-mode [`router`]:
//!
//! - the project header is set from the configuration (whatever the caller sent), so callers need not
//!   name the project and cannot name another one;
//! - the Function URL's `AWS_IAM` auth consumes `Authorization` (it carries the caller's SigV4
//!   signature), so the gateway sends its minted JWT in [`CLIENT_AUTHORIZATION_HEADER`], which replaces
//!   `Authorization` here. Without it no credential reaches the router and the request is refused (401):
//!   a SigV4 header is never taken for a JWT.
//!
//! The JWT is still verified with the project's secrets (defence in depth): IAM says who may invoke the
//! function, the JWT says which role the request runs as.

use crate::service::{router, Rest, RestConfig, PROJECT_HEADER};
use axum::extract::{Request, State};
use axum::Router;
use http::{header, HeaderValue};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::directory::{Directory, DirectoryConfig};
use supactl_common::ident::valid_ref;

/// The header in which the gateway sends the minted JWT to a Function URL.
pub const CLIENT_AUTHORIZATION_HEADER: &str = supactl_common::headers::FORWARDED_JWT_HEADER;

/// Errors of the Lambda mode's start-up and runtime loop.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("lambda: environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("lambda: environment variable {name} is invalid: {message}")]
    BadEnv { name: &'static str, message: String },
    #[error("lambda: the runtime loop failed: {0}")]
    Runtime(String),
}

/// What a REST function needs to serve its project.
#[derive(Clone)]
pub struct LambdaConfig {
    pub project_ref: String,
    /// Base URL of the tenant-manager's internal endpoint.
    pub tenant_manager_url: String,
    /// The project's token (or, locally, the service token) for the internal endpoint.
    pub token: String,
    /// How long the project's config (database, JWT secrets) is trusted before it is read again.
    pub cache_ttl: Duration,
    pub rest: RestConfig,
}

impl std::fmt::Debug for LambdaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaConfig")
            .field("project_ref", &self.project_ref)
            .field("tenant_manager_url", &self.tenant_manager_url)
            .field("token", &supactl_common::redact::Redacted)
            .field("cache_ttl", &self.cache_ttl)
            .field("rest", &self.rest)
            .finish()
    }
}

impl LambdaConfig {
    /// Reads `SUPACTL_PROJECT_REF`, `SUPACTL_TENANT_MANAGER_URL`, `SUPACTL_PROJECT_TOKEN` (or
    /// `SUPACTL_SERVICE_TOKEN`) and the optional
    /// `SUPACTL_CACHE_TTL` (seconds, default 5) and `SUPACTL_REST_POOL_SIZE` (default 2: a Lambda instance
    /// serves one request at a time).
    pub fn from_env() -> Result<LambdaConfig, LambdaError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`LambdaConfig::from_env`], from any source of variables.
    pub fn from_lookup(
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<LambdaConfig, LambdaError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(LambdaError::MissingEnv(name))
        };
        let project_ref = required("SUPACTL_PROJECT_REF")?;
        if !valid_ref(&project_ref) {
            return Err(LambdaError::BadEnv {
                name: "SUPACTL_PROJECT_REF",
                message: format!("{project_ref:?} is not a project ref"),
            });
        }
        let tenant_manager_url = required("SUPACTL_TENANT_MANAGER_URL")?;
        if !(tenant_manager_url.starts_with("http://")
            || tenant_manager_url.starts_with("https://"))
        {
            return Err(LambdaError::BadEnv {
                name: "SUPACTL_TENANT_MANAGER_URL",
                message: format!("{tenant_manager_url:?} is not an http(s) URL"),
            });
        }
        let token = required("SUPACTL_PROJECT_TOKEN")
            .or_else(|_| required("SUPACTL_SERVICE_TOKEN"))
            .map_err(|_| LambdaError::MissingEnv("SUPACTL_PROJECT_TOKEN"))?;
        let cache_ttl = match get("SUPACTL_CACHE_TTL") {
            None => Duration::from_secs(5),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=3600.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| LambdaError::BadEnv {
                    name: "SUPACTL_CACHE_TTL",
                    message: format!("{v:?} is not a number of seconds between 0 and 3600"),
                })?,
        };
        let pool_size = match get("SUPACTL_REST_POOL_SIZE") {
            None => 2,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| LambdaError::BadEnv {
                    name: "SUPACTL_REST_POOL_SIZE",
                    message: format!("{v:?} is not a positive integer"),
                })?,
        };
        Ok(LambdaConfig {
            project_ref,
            tenant_manager_url,
            token,
            cache_ttl,
            rest: RestConfig {
                pool_size,
                ..RestConfig::default()
            },
        })
    }
}

/// The server-mode router adapted to one project behind a Function URL (see the module docs).
pub fn service(rest: Arc<Rest>, project_ref: &str) -> Router {
    let project =
        HeaderValue::from_str(project_ref).expect("a valid project ref is a valid header value");
    router(rest).layer(axum::middleware::map_request_with_state(
        project,
        adapt_request,
    ))
}

async fn adapt_request(State(project): State<HeaderValue>, mut req: Request) -> Request {
    let headers = req.headers_mut();
    headers.insert(PROJECT_HEADER, project);
    match headers.remove(CLIENT_AUTHORIZATION_HEADER) {
        Some(jwt) => {
            headers.insert(header::AUTHORIZATION, jwt);
        }
        None => {
            headers.remove(header::AUTHORIZATION);
        }
    }
    req
}

/// The engine and its adapted router for `config`, with the project's config and schema cache loaded
/// when they can be (at cold start, outside any request's latency). A failure here is only logged: the
/// first request reports it with PostgREST's error shape.
pub async fn prepare(config: &LambdaConfig) -> Router {
    let directory = Arc::new(Directory::new(DirectoryConfig {
        url: config.tenant_manager_url.clone(),
        service_token: config.token.clone(),
        ttl: config.cache_ttl,
        stale_for: DirectoryConfig::DEFAULT_STALE_FOR,
    }));
    let rest = Rest::new(directory, config.rest.clone());
    match rest.directory.project(&config.project_ref).await {
        Ok(Some(project)) => {
            if let Err(e) = rest
                .pools
                .schema(&config.project_ref, &project.db, &rest.config.schemas)
                .await
            {
                tracing::warn!(error = %e, "cold start: schema cache not loaded");
            }
        }
        Ok(None) => tracing::warn!(project = %config.project_ref, "cold start: no such project"),
        Err(e) => tracing::warn!(error = %e, "cold start: project config not loaded"),
    }
    service(rest, &config.project_ref)
}

/// Serves `config`'s project over the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API` and the other
/// variables Lambda sets) until the runtime loop ends.
pub async fn run(config: LambdaConfig) -> Result<(), LambdaError> {
    let app = prepare(&config).await;
    lambda_http::run(app)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&'static str, &str)]) -> impl Fn(&'static str) -> Option<String> {
        let m: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("SUPACTL_PROJECT_REF", "abcdefghijklmnopqrst"),
        ("SUPACTL_TENANT_MANAGER_URL", "http://tm.internal:3001"),
        ("SUPACTL_PROJECT_TOKEN", "project-token"),
    ];

    #[test]
    fn config_from_variables() {
        let c = LambdaConfig::from_lookup(lookup(BASE)).unwrap();
        assert_eq!(c.project_ref, "abcdefghijklmnopqrst");
        assert_eq!(c.token, "project-token");

        // Locally the service token does too; the project token wins when both are set.
        let mut v = BASE[..2].to_vec();
        v.push(("SUPACTL_SERVICE_TOKEN", "service-token"));
        assert_eq!(
            LambdaConfig::from_lookup(lookup(&v)).unwrap().token,
            "service-token"
        );
        v.push(("SUPACTL_PROJECT_TOKEN", "project-token"));
        assert_eq!(
            LambdaConfig::from_lookup(lookup(&v)).unwrap().token,
            "project-token"
        );
        let e = LambdaConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert!(e.to_string().contains("SUPACTL_PROJECT_TOKEN"), "{e}");
        assert_eq!(c.cache_ttl, Duration::from_secs(5));
        assert_eq!(c.rest.pool_size, 2);

        let mut v = BASE.to_vec();
        v.push(("SUPACTL_CACHE_TTL", "0.5"));
        v.push(("SUPACTL_REST_POOL_SIZE", "4"));
        let c = LambdaConfig::from_lookup(lookup(&v)).unwrap();
        assert_eq!(c.cache_ttl, Duration::from_millis(500));
        assert_eq!(c.rest.pool_size, 4);
    }

    #[test]
    fn config_errors_name_the_variable() {
        let e = LambdaConfig::from_lookup(lookup(&BASE[1..])).unwrap_err();
        assert!(
            matches!(e, LambdaError::MissingEnv("SUPACTL_PROJECT_REF")),
            "{e}"
        );
        let mut v = BASE.to_vec();
        v[0] = ("SUPACTL_PROJECT_REF", "Not A Ref!");
        let e = LambdaConfig::from_lookup(lookup(&v)).unwrap_err();
        assert!(e.to_string().contains("SUPACTL_PROJECT_REF"), "{e}");
        let mut v = BASE.to_vec();
        v[1] = ("SUPACTL_TENANT_MANAGER_URL", "tm.internal");
        assert!(LambdaConfig::from_lookup(lookup(&v)).is_err());
        let mut v = BASE.to_vec();
        v.push(("SUPACTL_CACHE_TTL", "-1"));
        let e = LambdaConfig::from_lookup(lookup(&v)).unwrap_err();
        assert!(e.to_string().contains("SUPACTL_CACHE_TTL"), "{e}");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = LambdaConfig::from_lookup(lookup(BASE)).unwrap();
        for text in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!text.contains("project-token"), "{text}");
            assert!(text.contains("abcdefghijklmnopqrst"), "{text}");
        }
    }
}
