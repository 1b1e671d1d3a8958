//! What `supactl up` (everything in one process) and `supactl serve` (one service per process, as on
//! ECS) share around the services: listener limits, binding, serving until a signal, tracing, AWS
//! credentials. The data plane itself is composed by the `dataplane` crate.

use std::time::Duration;
use supactl_common::server::{self, ServerConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The limits of every listener (`supactl_common::server`), shared by `supactl up` and `supactl serve …`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Seconds a client has to send a request's line and headers, from connecting (first request) or from
    /// the first byte (later ones); past it the connection is closed.
    #[arg(long, env = "SUPACTL_HEADER_TIMEOUT_SECS", default_value_t = server::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout_secs: u64,
    /// Seconds a keep-alive connection may sit with no request before it is closed. Keep it above the idle
    /// timeout of any load balancer in front (the ALBs: 180 s public, 400 s admin): a target closing first
    /// makes the balancer answer 502.
    #[arg(long, env = "SUPACTL_IDLE_TIMEOUT_SECS", default_value_t = server::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_secs: u64,
    /// Seconds a request may run before it is cancelled and answered 504 `request_timeout`.
    #[arg(long, env = "SUPACTL_REQUEST_TIMEOUT_SECS", default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout_secs: u64,
    /// Connections each listener holds open at once (a realtime WebSocket is one for its whole life);
    /// past it new connections wait in the kernel's backlog. Keep `ulimit -n` above it.
    #[arg(long, env = "SUPACTL_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

/// The largest `--max-connections`: Linux's default ceiling on a process's open files (`fs.nr_open`).
const MAX_CONNECTIONS_CEILING: usize = 1 << 20;

impl ServerArgs {
    /// The validated server settings; an error names the flag and its range.
    pub fn config(&self) -> Result<ServerConfig, crate::commands::CliError> {
        let secs = |v: u64, max: u64, flag: &str, env: &str| {
            if (1..=max).contains(&v) {
                Ok(Duration::from_secs(v))
            } else {
                Err(crate::commands::CliError::Usage(format!(
                    "{flag} ({env}) must be between 1 and {max} seconds (got {v})"
                )))
            }
        };
        Ok(ServerConfig {
            header_timeout: secs(
                self.header_timeout_secs,
                300,
                "--header-timeout-secs",
                "SUPACTL_HEADER_TIMEOUT_SECS",
            )?,
            idle_timeout: secs(
                self.idle_timeout_secs,
                3600,
                "--idle-timeout-secs",
                "SUPACTL_IDLE_TIMEOUT_SECS",
            )?,
            request_timeout: secs(
                self.request_timeout_secs,
                3600,
                "--request-timeout-secs",
                "SUPACTL_REQUEST_TIMEOUT_SECS",
            )?,
            max_connections: connections(self.max_connections)?,
            ..ServerConfig::default()
        })
        .inspect(|c| warn_if_files_run_out(c.max_connections))
    }
}

fn connections(n: usize) -> Result<usize, crate::commands::CliError> {
    if (1..=MAX_CONNECTIONS_CEILING).contains(&n) {
        Ok(n)
    } else {
        Err(crate::commands::CliError::Usage(format!(
            "--max-connections (SUPACTL_MAX_CONNECTIONS) must be between 1 and {MAX_CONNECTIONS_CEILING} (got {n})"
        )))
    }
}

/// A connection is a file descriptor: past the process's soft `RLIMIT_NOFILE` accepts fail (and so do
/// database connections), so a cap above it is a promise the process cannot keep. Linux only (read
/// from /proc, which needs no unsafe call); elsewhere nothing is checked.
fn warn_if_files_run_out(max_connections: usize) {
    let Some(files) = open_files_limit() else {
        return;
    };
    if files < max_connections as u64 {
        eprintln!(
            "warning: --max-connections is {max_connections} but this process may open only {files} files (ulimit -n); raise the limit or lower SUPACTL_MAX_CONNECTIONS"
        );
    }
}

/// The soft limit on open files, from /proc/self/limits (`Max open files  <soft>  <hard>  files`).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves each router on its listener with the shared server until `shutdown`; each task ends once its
/// listener has drained. The data plane's listener (the public gateway) is served from one
/// single-threaded runtime per core ([`server::serve_per_core`]), the others from the main runtime.
pub async fn serve_all(
    apps: Vec<(TcpListener, axum::Router)>,
    data_plane: Option<(TcpListener, axum::Router)>,
    config: &ServerConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, app) in apps {
        tasks.spawn(server::serve(
            listener,
            app,
            config.clone(),
            shutdown.clone(),
        ));
    }
    if let Some((listener, app)) = data_plane {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(e) = server::serve_per_core(listener, app, config, shutdown, threads).await {
                tracing::error!(error = %e, "the gateway's listener failed");
            }
        });
    }
    tasks
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Runs servers until a signal, then drains them for up to 10 s.
pub async fn run_until_signal(
    mut tasks: tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tokio::select! {
        _ = wait_for_signal() => eprintln!("shutting down"),
        Some(r) = tasks.join_next() => {
            shutdown.cancel();
            return Err(anyhow::anyhow!("a server stopped unexpectedly: {r:?}"));
        }
    }
    shutdown.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        eprintln!("warning: servers did not stop within 10 s");
    }
    Ok(())
}

/// Logs to stderr: human lines on a terminal, JSON lines otherwise (a file, a pipe, CloudWatch);
/// `SUPACTL_LOG_FORMAT=json|text` chooses, `SUPACTL_LOG` filters (default `info`, moved by -q/-v),
/// `--color`/`NO_COLOR` decide the human lines' colours.
pub fn init_tracing() {
    init_tracing_at(tracing::Level::INFO);
}

/// As [`init_tracing`], with `default` the level when SUPACTL_LOG names none (before -q/-v).
pub fn init_tracing_at(default: tracing::Level) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(log_filter(default))
        .with(stderr_layer())
        .try_init();
}

/// As [`init_tracing`], and every event also as a JSON line in its service's file (`supactl up`).
pub fn init_tracing_with_files(files: crate::log_files::LogFiles) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let to_files = tracing_subscriber::fmt::layer()
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(crate::log_json::JsonLines)
        .with_ansi(false)
        .with_writer(files);
    let _ = tracing_subscriber::registry()
        .with(log_filter(tracing::Level::INFO))
        .with(stderr_layer())
        .with(to_files)
        .try_init();
}

/// The filter of every log layer: SUPACTL_LOG's directives over the level -q/-v leave.
pub fn log_filter(default: tracing::Level) -> tracing_subscriber::EnvFilter {
    let level = crate::output::log_level(default);
    tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::from_level(level).into())
        .with_env_var("SUPACTL_LOG")
        .from_env_lossy()
}

/// The stderr layer: JSON lines off a terminal (or with SUPACTL_LOG_FORMAT=json), human lines otherwise.
pub fn stderr_layer<S>() -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let json = match std::env::var("SUPACTL_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !terminal,
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(crate::log_stderr::stderr(terminal));
    if json {
        Box::new(
            fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(crate::log_json::JsonLines),
        )
    } else {
        Box::new(fmt.with_ansi(crate::output::color_stderr()))
    }
}

/// Binds 127.0.0.1:`port`, naming the flag to change in the error.
pub async fn bind(
    host: &str,
    port: u16,
    flag: &str,
) -> Result<TcpListener, crate::commands::CliError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr).await.map_err(|e| {
        crate::commands::CliError::Usage(format!(
            "cannot listen on {addr} ({e}); choose another port with {flag} or stop what is using it"
        ))
    })
}

/// AWS credentials from aws-config's default provider chain (environment, profile, web identity, the ECS
/// task role, …), built on first use: a gateway whose projects all run REST in-process never looks for
/// credentials. The gateway caches what this returns until shortly before it expires.
#[derive(Debug, Default)]
pub struct LazyDefaultCredentials {
    chain:
        tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl aws_credential_types::provider::ProvideCredentials for LazyDefaultCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| async {
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .build()
                        .await
                })
                .await;
            chain.provide_credentials().await
        })
    }
}
