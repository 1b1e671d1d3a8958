//! The Edge Functions runtime as `supactl up` and `supactl serve functions` start it: the supervisor of
//! Deno workers over the tenant-manager's internal API, with the platform's private endpoints denied.

use crate::commands::CliError;
use clap::Args;
use functions::{NetPolicy, RemoteConfig, RemoteStore, Supervisor, SupervisorConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct FunctionsArgs {
    /// Private directory of the workers' bundles and sockets and Deno's module cache (an absolute path
    /// of at most 75 bytes; default: `fn` in the data directory, or /tmp/supactl-fn).
    #[arg(long, env = "SUPACTL_FUNCTIONS_DIR")]
    pub functions_dir: Option<PathBuf>,
    /// More endpoints functions must not reach, comma-separated (`host:port`, an address or a CIDR
    /// with an optional port). Metadata endpoints, loopback other than the gateway, and this
    /// platform's own services are always denied.
    #[arg(long, env = stacks::compute::env::FUNCTIONS_DENY_NET, value_delimiter = ',')]
    pub functions_deny_net: Vec<String>,
    /// Deno workers running at once across every project.
    #[arg(long, env = "SUPACTL_FUNCTIONS_MAX_WORKERS", default_value_t = functions::config::DEFAULT_MAX_WORKERS)]
    pub functions_max_workers: usize,
    /// Deno workers per project.
    #[arg(long, env = "SUPACTL_FUNCTIONS_MAX_WORKERS_PER_PROJECT", default_value_t = functions::config::DEFAULT_MAX_WORKERS_PER_PROJECT)]
    pub functions_max_workers_per_project: usize,
    /// V8 heap limit of a worker, in MB.
    #[arg(long, env = "SUPACTL_FUNCTIONS_MAX_HEAP_MB", default_value_t = functions::config::DEFAULT_MAX_HEAP_MB)]
    pub functions_max_heap_mb: u32,
    /// Seconds one invocation may take, response included.
    #[arg(long, env = "SUPACTL_FUNCTIONS_TIMEOUT_SECS", default_value_t = functions::config::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub functions_timeout_secs: u64,
    /// Registry `npm:` imports come from (Deno's default when unset).
    #[arg(long, env = "NPM_CONFIG_REGISTRY")]
    pub npm_registry: Option<String>,
}

impl FunctionsArgs {
    /// The supervisor, reading functions from the tenant-manager at `tenant_manager_url`. `gateway` is the
    /// gateway's address when it listens on loopback (functions may call it); `private` lists the
    /// platform's own endpoints (`host:port`) to deny.
    pub fn supervisor(
        &self,
        default_dir: &Path,
        gateway: Option<SocketAddr>,
        private: &[String],
        tenant_manager_url: &str,
        service_token: &str,
    ) -> Result<Supervisor, CliError> {
        let deno = functions::find_deno().map_err(|e| CliError::Usage(e.to_string()))?;
        let work_dir = self
            .functions_dir
            .clone()
            .unwrap_or_else(|| default_dir.to_path_buf());
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            CliError::Usage(format!(
                "--functions-dir: cannot create {}: {e}",
                work_dir.display()
            ))
        })?;
        let mut deny: Vec<String> = private.to_vec();
        deny.extend(self.functions_deny_net.iter().cloned());
        let mut config = SupervisorConfig::new(deno, work_dir, NetPolicy::platform(gateway, &deny));
        config.max_workers = self.functions_max_workers;
        config.max_workers_per_project = self.functions_max_workers_per_project;
        config.max_heap_mb = self.functions_max_heap_mb;
        config.request_timeout = Duration::from_secs(self.functions_timeout_secs);
        config.npm_registry = self.npm_registry.clone();
        let store = RemoteStore::new(RemoteConfig {
            url: tenant_manager_url.to_string(),
            service_token: service_token.to_string(),
        });
        Supervisor::new(config, Arc::new(store))
            .map_err(|e| CliError::Usage(format!("{e} (see --functions-* flags)")))
    }
}

/// `host:port` of a URL's authority (`redis://:pw@127.0.0.1:6379/0` → `127.0.0.1:6379`), for the deny list.
pub fn endpoint_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host_port.is_empty() && host_port.contains(':')).then(|| host_port.to_string())
}

#[cfg(test)]
mod tests {
    use super::endpoint_of;

    #[test]
    fn endpoints_of_urls() {
        assert_eq!(
            endpoint_of("redis://:secret@127.0.0.1:6379/0").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            endpoint_of("postgres://u:p@db.internal:5432/postgres?sslmode=require").as_deref(),
            Some("db.internal:5432")
        );
        assert_eq!(endpoint_of("redis://cache").as_deref(), None);
        assert_eq!(endpoint_of("nonsense"), None);
    }
}
