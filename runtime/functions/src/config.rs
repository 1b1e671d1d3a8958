//! The supervisor's settings, checked once by [`SupervisorConfig::validate`], and where the Deno binary is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Supabase's wall-clock limit on one invocation.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(150);
/// A warm worker with no request for this long is stopped.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Long enough for a first start that downloads `npm:` packages.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// V8's old-space limit per worker (Supabase's free-tier memory limit).
pub const DEFAULT_MAX_HEAP_MB: u32 = 256;
pub const DEFAULT_MAX_WORKERS: usize = 64;
pub const DEFAULT_MAX_WORKERS_PER_PROJECT: usize = 8;
/// Log records kept per function.
pub const DEFAULT_LOG_CAPACITY: usize = 1000;
/// Where `scripts/setup.sh deno` installs the pinned Deno, under `$HOME`.
pub const DENO_CACHE_PATH: &str = ".cache/supactl/deno/node_modules/@deno/linux-x64-glibc/deno";
/// A Unix socket path is at most 107 bytes; a worker's is the work dir plus `/workers/w-<16 hex>/sock` (32).
const MAX_WORK_DIR_LEN: usize = 107 - 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("functions: {0}")]
    Invalid(String),
    #[error("functions: the Deno binary was not found (set SUPACTL_DENO, or run `scripts/setup.sh deno`)")]
    DenoMissing,
}

/// How the supervisor runs workers. Build one, then pass it to [`crate::Supervisor::new`], which validates it.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The `deno` executable ([`find_deno`]).
    pub deno: PathBuf,
    /// Private directory for the workers' bundles and sockets, and Deno's module cache (`deno/`).
    pub work_dir: PathBuf,
    /// Wall-clock limit of one invocation, response body included.
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a new worker may take to load its module and listen.
    pub start_timeout: Duration,
    pub max_heap_mb: u32,
    pub max_workers: usize,
    pub max_workers_per_project: usize,
    pub log_capacity: usize,
    pub net: NetPolicy,
    /// `NPM_CONFIG_REGISTRY` for the workers (where `npm:` imports come from); Deno's default when unset.
    pub npm_registry: Option<String>,
    /// Extra CA certificates (PEM) the workers trust besides Deno's own roots (`DENO_CERT`), for outbound
    /// TLS and `npm:` downloads through an intercepting proxy.
    pub ca_file: Option<PathBuf>,
}

impl SupervisorConfig {
    /// Defaults for everything but the binary, the work dir and the network policy; the CA file is the
    /// supervisor's own `SSL_CERT_FILE`, when set (the usual way a machine names its CA bundle).
    pub fn new(deno: PathBuf, work_dir: PathBuf, net: NetPolicy) -> SupervisorConfig {
        SupervisorConfig {
            deno,
            work_dir,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            start_timeout: DEFAULT_START_TIMEOUT,
            max_heap_mb: DEFAULT_MAX_HEAP_MB,
            max_workers: DEFAULT_MAX_WORKERS,
            max_workers_per_project: DEFAULT_MAX_WORKERS_PER_PROJECT,
            log_capacity: DEFAULT_LOG_CAPACITY,
            net,
            npm_registry: None,
            ca_file: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.max_workers == 0 || self.max_workers_per_project == 0 {
            return bad("maxWorkers and maxWorkersPerProject must be ≥ 1".into());
        }
        if self.max_workers_per_project > self.max_workers {
            return bad(format!(
                "maxWorkersPerProject must be ≤ maxWorkers (got {} > {})",
                self.max_workers_per_project, self.max_workers
            ));
        }
        if self.max_heap_mb < 16 {
            return bad(format!("maxHeapMb must be ≥ 16 (got {})", self.max_heap_mb));
        }
        if self.log_capacity == 0 {
            return bad("logCapacity must be ≥ 1".into());
        }
        for (name, d) in [
            ("requestTimeout", self.request_timeout),
            ("idleTimeout", self.idle_timeout),
            ("startTimeout", self.start_timeout),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be > 0"));
            }
        }
        let dir = self.work_dir.as_os_str().len();
        if !self.work_dir.is_absolute() || dir > MAX_WORK_DIR_LEN {
            return bad(format!(
                "workDir must be an absolute path of at most {MAX_WORK_DIR_LEN} bytes (Unix socket paths are short); got {}",
                self.work_dir.display()
            ));
        }
        self.net.validate()
    }
}

/// The platform's private endpoints, denied to every function (Deno's `--deny-net`, which wins over
/// `--allow-net` and is checked against the resolved address, so a name that resolves to a denied address is
/// refused too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Deno `--deny-net` entries: `host`, `ip`, `cidr`, each with an optional `:port`.
    pub deny: Vec<String>,
}

impl NetPolicy {
    /// The cloud's metadata and credential endpoints (all of link-local, which holds 169.254.169.254 and ECS's
    /// 169.254.170.2), `0.0.0.0`, and loopback. When the gateway listens on a loopback address (a local
    /// platform), functions must reach it (`SUPABASE_URL`), so that one address stays open and every other
    /// loopback address is denied; the platform's other services on the gateway's address (tenant-manager,
    /// PostgreSQL, Redis, the upstreams) must then be listed in `private` (`host:port`), as must any private
    /// endpoint off loopback.
    pub fn platform(gateway: Option<SocketAddr>, private: &[String]) -> NetPolicy {
        // (Deno takes no IPv6 CIDR, so IPv6 addresses are listed one by one.)
        let mut deny: Vec<String> = ["169.254.0.0/16", "[fd00:ec2::254]", "0.0.0.0/8"]
            .map(String::from)
            .into();
        match gateway.map(|g| g.ip()) {
            Some(IpAddr::V4(ip)) if ip.is_loopback() => {
                deny.extend(loopback_except(ip));
                deny.push("[::1]".into());
            }
            Some(IpAddr::V6(ip)) if ip.is_loopback() => deny.push("127.0.0.0/8".into()),
            _ => deny.extend(["127.0.0.0/8".into(), "[::1]".into()]),
        }
        deny.extend(private.iter().cloned());
        NetPolicy { deny }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self
            .deny
            .iter()
            .find(|e| e.is_empty() || e.contains([',', ' ', '=']) || e.contains(char::is_control))
        {
            Some(e) => Err(ConfigError::Invalid(format!(
                "net.deny: {e:?} is not a host, address or CIDR with an optional port"
            ))),
            None => Ok(()),
        }
    }
}

/// 127.0.0.0/8 without one address, as the 24 CIDR blocks that cover the rest.
fn loopback_except(keep: Ipv4Addr) -> Vec<String> {
    let keep = u32::from(keep);
    (0..24)
        .map(|host_bits| {
            // the sibling, at this prefix length, of the block holding `keep`
            let prefix = 32 - host_bits;
            let sibling = (keep ^ (1 << host_bits)) & (u32::MAX << host_bits);
            format!("{}/{prefix}", Ipv4Addr::from(sibling))
        })
        .collect()
}

/// The Deno executable: `$SUPACTL_DENO`, else the one `scripts/setup.sh deno` installs under `$HOME`, else
/// `deno` on the `PATH`.
pub fn find_deno() -> Result<PathBuf, ConfigError> {
    if let Some(p) = std::env::var_os("SUPACTL_DENO") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ConfigError::DenoMissing)
        };
    }
    let dir = std::env::var_os("SUPACTL_DENO_DIR")
        .map(|d| PathBuf::from(d).join("node_modules/@deno/linux-x64-glibc/deno"));
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(DENO_CACHE_PATH));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("deno"));
    dir.into_iter()
        .chain(home)
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or(ConfigError::DenoMissing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(cidr: &str, ip: Ipv4Addr) -> bool {
        let (net, len) = cidr.split_once('/').unwrap();
        let (net, len): (Ipv4Addr, u32) = (net.parse().unwrap(), len.parse().unwrap());
        let mask = u32::MAX << (32 - len);
        u32::from(ip) & mask == u32::from(net) & mask
    }

    #[test]
    fn loopback_minus_one_address_covers_every_other_loopback_address() {
        let keep = Ipv4Addr::new(127, 0, 0, 1);
        let blocks = loopback_except(keep);
        assert_eq!(blocks.len(), 24);
        assert!(blocks.iter().all(|b| !contains(b, keep)), "{blocks:?}");
        for ip in [
            Ipv4Addr::new(127, 0, 0, 0),
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 1, 1),
            Ipv4Addr::new(127, 255, 255, 255),
            Ipv4Addr::new(127, 128, 0, 1),
        ] {
            assert_eq!(blocks.iter().filter(|b| contains(b, ip)).count(), 1, "{ip}");
        }
    }

    #[test]
    fn without_a_loopback_gateway_all_of_loopback_is_denied() {
        let p = NetPolicy::platform(None, &["10.0.0.5:3001".into()]);
        for e in ["127.0.0.0/8", "[::1]", "169.254.0.0/16", "10.0.0.5:3001"] {
            assert!(p.deny.iter().any(|d| d == e), "{e} in {:?}", p.deny);
        }
        let local = NetPolicy::platform(Some("127.0.0.1:54321".parse().unwrap()), &[]);
        assert!(!local.deny.iter().any(|d| d == "127.0.0.0/8"));
        assert!(local.deny.iter().any(|d| d == "127.0.0.2/31"));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = SupervisorConfig::new(
            "/bin/true".into(),
            "/tmp/x".into(),
            NetPolicy::platform(None, &[]),
        );
        assert_eq!(c.validate(), Ok(()));
        c.max_workers_per_project = 100;
        assert!(
            matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.contains("maxWorkersPerProject"))
        );
        c.max_workers_per_project = 1;
        c.work_dir = format!("/tmp/{}", "d".repeat(MAX_WORK_DIR_LEN)).into();
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.contains("workDir")));
        c.work_dir = "/tmp/x".into();
        c.net.deny.push("a,b".into());
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(m)) if m.contains("net.deny")));
    }
}
