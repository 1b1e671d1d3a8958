//! `supactl healthcheck [URL]`: the container health check of the service images (they have no shell, curl or
//! wget): GET the URL, exit 0 on a 2xx answer within the timeout, 1 otherwise.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use supactl_common::http_client::HttpClient;

use super::{CliError, CliResult};

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// What to ask (a plain-HTTP URL, normally on loopback)
    #[arg(default_value = "http://127.0.0.1:8000/health")]
    url: String,
    /// Seconds to wait for the answer
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

pub async fn run(a: HealthArgs) -> CliResult {
    let req = http::Request::get(&a.url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| CliError::Usage(format!("{}: {e}", a.url)))?;
    let (status, _) = HttpClient::new(Duration::from_secs(a.timeout))
        .send(req)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.url))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{}: answered {status}", a.url).into())
    }
}
