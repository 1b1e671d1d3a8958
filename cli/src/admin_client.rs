//! A client of the tenant-manager's admin API, configured from flags, environment or the state file
//! `supactl up` writes.

use crate::local_state;
use anyhow::{anyhow, Context};
use bytes::Bytes;
use clap::Args;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use supactl_common::redact;

#[derive(Args, Clone)]
pub struct AdminArgs {
    /// Admin API base URL (default: from the state file of `supactl up`).
    #[arg(long, env = "SUPACTL_ADMIN_URL", global = true)]
    pub admin_url: Option<String>,
    /// Admin API key (default: from the state file of `supactl up`).
    #[arg(
        long,
        env = "SUPACTL_ADMIN_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub admin_key: Option<String>,
    /// Data directory of `supactl up`, where its state file is.
    #[arg(long, env = "SUPACTL_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for AdminArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminArgs")
            .field("admin_url", &self.admin_url)
            .field("admin_key", &redact::optional(&self.admin_key))
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

pub struct AdminClient {
    url: String,
    key: String,
    http: HttpClient,
}

impl AdminClient {
    pub fn from_args(a: &AdminArgs) -> anyhow::Result<AdminClient> {
        let (url, key) = match (&a.admin_url, &a.admin_key) {
            (Some(u), Some(k)) => (u.clone(), k.clone()),
            (u, k) => {
                let dir = a
                    .data_dir
                    .clone()
                    .unwrap_or_else(local_state::default_data_dir);
                let st = local_state::read_state(&dir)?;
                (
                    u.clone().unwrap_or(st.admin_url),
                    k.clone().unwrap_or(st.admin_key),
                )
            }
        };
        if !url.starts_with("http://") {
            return Err(anyhow!(
                "--admin-url {url}: only http:// URLs are supported by this version (reach a remote admin API through a tunnel)"
            ));
        }
        Ok(AdminClient {
            url: url.trim_end_matches('/').to_string(),
            key,
            http: HttpClient::new(Duration::from_secs(120)),
        })
    }

    /// Sends a request and returns the status and the JSON body (Null when empty), whatever the status.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let uri = format!("{}{}", self.url, path);
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))?;
        let (status, bytes) = self.http.send(req).await.with_context(|| {
            format!(
                "cannot reach the admin API at {}: is `supactl up` running?",
                self.url
            )
        })?;
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let v = serde_json::from_slice(&bytes).with_context(|| {
            format!("the admin API answered {status} with a body that is not JSON")
        })?;
        Ok((status, v))
    }

    /// Sends a request and returns the `data` of a 2xx answer (Null for 204); errors carry the API's
    /// code and message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call_raw(method, path, body).await?;
        if status.is_success() {
            return Ok(v.get("data").cloned().unwrap_or(Value::Null));
        }
        let code = v.get("code").and_then(Value::as_str).unwrap_or("error");
        let message = v.get("message").and_then(Value::as_str).unwrap_or("");
        Err(anyhow!("admin API: {status}: {message} ({code})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_admin_key() {
        let admin = AdminArgs {
            admin_url: Some("http://127.0.0.1:54323".into()),
            admin_key: Some("admin-key-0123".into()),
            data_dir: None,
        };
        for text in [format!("{admin:?}"), format!("{admin:#?}")] {
            assert!(!text.contains("admin-key-0123"), "{text}");
            assert!(text.contains("http://127.0.0.1:54323"), "{text}");
        }
    }
}
