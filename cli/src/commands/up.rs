//! `supactl up`: PostgreSQL (managed in the data directory and restarted when it dies, or given by URL),
//! the tenant-manager on the admin port and the gateway (with REST in-process) on the API port, all on
//! loopback, until SIGINT or SIGTERM; then everything it started is stopped, PostgreSQL included.

use super::{CliError, CliResult};
use crate::functions_runtime::{endpoint_of, FunctionsArgs};
use crate::local_state::{self, State};
use crate::log_files::{copy_postgres_log, LogFiles};
use crate::stack;
use anyhow::Context;
use clap::Args;
use pgcluster::{Backoff, Cluster, Event, Supervisor};
use stacks::compute::env as task_env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

// No `Debug`: it holds secrets, and nothing formats it.
#[derive(Args)]
pub struct UpArgs {
    /// Where the cluster, secrets and state live (default /var/lib/supactl as root, else ~/.local/share/supactl).
    #[arg(long, env = "SUPACTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Port of the API gateway (what Supabase clients talk to).
    #[arg(long, env = task_env::PORT, default_value_t = 54321)]
    pub port: u16,
    /// Port of the tenant-manager's admin API.
    #[arg(long, env = task_env::ADMIN_PORT, default_value_t = 54323)]
    pub admin_port: u16,
    /// Admin API key (default: generated once and kept in the data directory).
    #[arg(long, env = task_env::ADMIN_KEY, hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Use this PostgreSQL server (a superuser URL) instead of a cluster in the data directory.
    #[arg(long, env = "SUPACTL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Port of the managed PostgreSQL cluster.
    #[arg(long, env = "SUPACTL_DB_PORT", default_value_t = 54322)]
    pub db_port: u16,
    /// Connections per project in the REST engine's pools.
    #[arg(long, env = "SUPACTL_REST_POOL_SIZE", default_value_t = 10)]
    pub rest_pool_size: usize,
    /// Connections the REST engine keeps open across all projects before closing idle ones of the least
    /// recently used projects (keep it below PostgreSQL's max_connections, 400 in the managed cluster).
    #[arg(long, env = "SUPACTL_REST_MAX_CONNECTIONS", default_value_t = 200)]
    pub rest_max_connections: usize,
    /// Redis for cross-replica cache invalidation (optional locally), e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "SUPACTL_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Seconds a REST project pool (and its schema cache) lives without requests.
    #[arg(long, env = "SUPACTL_REST_IDLE_SECS", default_value_t = 300)]
    pub rest_idle_secs: u64,
    /// Sessions each project's login role may hold at once, unless the project sets its own (at least
    /// --rest-pool-size × 2, for REST and auth, plus a few).
    #[arg(long, env = "SUPACTL_PROJECT_CONNECTION_LIMIT", default_value_t = tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub project_connection_limit: u32,
    /// Seconds an unused pooled REST connection stays open.
    #[arg(long, env = "SUPACTL_REST_CONNECTION_IDLE_SECS", default_value_t = 60)]
    pub rest_connection_idle_secs: u64,
    /// Size at which a service's log file under <data dir>/logs is rotated.
    #[arg(long, env = "SUPACTL_LOG_FILE_MAX_BYTES", default_value_t = 10 << 20,
          value_parser = clap::value_parser!(u64).range(4096..))]
    pub log_file_max_bytes: u64,
    /// Rotated files kept per service (<service>.log.1 …): a service's logs take at most
    /// (N + 1) × --log-file-max-bytes.
    #[arg(long, env = "SUPACTL_LOG_FILES_KEPT", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(0..=100))]
    pub log_files_kept: u16,
    #[command(flatten)]
    pub server: stack::ServerArgs,
    #[command(flatten)]
    pub realtime: super::serve_env::RealtimeArgs,
    #[command(flatten)]
    pub capacity: super::serve_env::CapacityArgs,
    #[command(flatten)]
    pub functions: FunctionsArgs,
}

pub async fn run(args: UpArgs) -> CliResult {
    let server_config = args.server.config()?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(local_state::default_data_dir);
    fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    // The cluster user must be able to traverse into the data directory; the files in it are 0600.
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711))
        .with_context(|| format!("cannot set permissions on {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .context("cannot resolve the data directory")?;
    let log_dir = data_dir.join("logs");
    let log_files = LogFiles::new(
        &log_dir,
        args.log_file_max_bytes,
        args.log_files_kept.into(),
    )
    .with_context(|| format!("cannot create the log directory {}", log_dir.display()))?;
    stack::init_tracing_with_files(log_files.clone());
    let mut secrets = local_state::load_or_create_secrets(&data_dir)?;
    if let Some(k) = &args.admin_key {
        if k.len() < 16 {
            return Err(CliError::Usage(
                "--admin-key must be at least 16 characters".into(),
            ));
        }
        if *k != secrets.admin_key {
            secrets.admin_key = k.clone();
            local_state::save_secrets(&data_dir, &secrets)?;
        }
    }

    let gateway_listener = stack::bind("127.0.0.1", args.port, "--port").await?;
    let admin_listener = stack::bind("127.0.0.1", args.admin_port, "--admin-port").await?;
    let gateway_url = format!("http://127.0.0.1:{}", args.port);
    let admin_url = format!("http://127.0.0.1:{}", args.admin_port);

    // PostgreSQL: a managed cluster is supervised; a server given by URL is someone else's to run.
    let managed = match &args.database_url {
        Some(_) => None,
        None => Some(
            start_managed(
                data_dir.join("pg"),
                args.db_port,
                secrets.postgres_password.clone(),
            )
            .await?,
        ),
    };
    // buffered log lines written out twice a second; the managed server's own output joins the files
    let logs_stop = CancellationToken::new();
    let mut log_tasks = tokio::task::JoinSet::new();
    log_tasks.spawn(log_files.clone().flush_every(logs_stop.clone()));
    if let Some(m) = &managed {
        log_tasks.spawn(copy_postgres_log(
            log_files.clone(),
            m.cluster.log_file(),
            logs_stop.clone(),
        ));
    }
    let database_url = match (&args.database_url, &managed) {
        (Some(u), _) => u.clone(),
        (None, Some(m)) => m.cluster.url("postgres"),
        (None, None) => unreachable!("a cluster is started when no URL is given"),
    };

    let result = serve(
        &args,
        &server_config,
        &secrets,
        &database_url,
        gateway_listener,
        admin_listener,
        &gateway_url,
        &admin_url,
        &data_dir,
    )
    .await;

    local_state::remove_state(&data_dir);
    if let Some(m) = managed {
        eprintln!("stopping PostgreSQL");
        // supervision ends first, so the stop is not undone
        let stopped = tokio::task::spawn_blocking(move || {
            m.supervisor.stop();
            m.cluster.stop()
        });
        if let Err(e) = stopped.await.context("stop task")? {
            eprintln!("warning: {e}");
        }
    }
    logs_stop.cancel();
    while log_tasks.join_next().await.is_some() {}
    log_files.flush();
    result
}

/// The cluster in the data directory and the supervisor that restarts it when it dies.
struct Managed {
    cluster: Cluster,
    supervisor: Supervisor,
}

async fn start_managed(dir: PathBuf, port: u16, password: String) -> CliResult<Managed> {
    let cluster =
        tokio::task::spawn_blocking(move || -> Result<Cluster, pgcluster::ClusterError> {
            let c = Cluster::open(&dir, port, &password)?;
            c.start()?;
            Ok(c)
        })
        .await
        .context("cluster task failed")?
        .map_err(|e| match e {
            pgcluster::ClusterError::PortTaken(_) => CliError::Usage(e.to_string()),
            pgcluster::ClusterError::BinariesMissing(_) => CliError::Usage(e.to_string()),
            other => CliError::Other(anyhow::anyhow!("postgres: {other}")),
        })?;
    // target `pgcluster`: with the server's own output in logs/postgres.log
    let supervisor = Supervisor::start(cluster.clone(), Backoff::default(), |e| match e {
        Event::Restarted { .. } => tracing::info!(target: "pgcluster", "{e}"),
        Event::RestartFailed { .. } => tracing::error!(target: "pgcluster", "{e}"),
        Event::Died { .. } | Event::Restarting { .. } => tracing::warn!(target: "pgcluster", "{e}"),
    });
    Ok(Managed {
        cluster,
        supervisor,
    })
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    args: &UpArgs,
    server_config: &supactl_common::server::ServerConfig,
    secrets: &local_state::Secrets,
    database_url: &str,
    gateway_listener: TcpListener,
    admin_listener: TcpListener,
    gateway_url: &str,
    admin_url: &str,
    data_dir: &std::path::Path,
) -> CliResult {
    let tm = tenant_manager::TenantManager::start(tenant_manager::Config {
        database_url: database_url.to_string(),
        admin_key: secrets.admin_key.clone(),
        service_token: secrets.service_token.clone(),
        encryption_key: secrets.encryption_key.clone(),
        api_url_template: format!("{gateway_url}/p/{{ref}}"),
        redis_url: args.redis_url.clone(),
        project_connection_limit: args.project_connection_limit,
        capacity: args.capacity.capacity(),
        local_worker: Some(
            tenant_manager::WorkerSpec::from_url("local", database_url)
                .map_err(|e| CliError::Usage(format!("--database-url: {e}")))?,
        ),
    })
    .await
    .map_err(|e| anyhow::anyhow!("tenant-manager failed to start: {e}"))?;

    let shutdown = CancellationToken::new();
    let mut data_plane = dataplane::Settings {
        tenant_manager_url: admin_url.to_string(),
        service_token: secrets.service_token.clone(),
        redis_url: args.redis_url.clone(),
        cache_ttl: Duration::from_secs(1),
        cache_stale: supactl_common::directory::DirectoryConfig::DEFAULT_STALE_FOR,
        rest: rest::RestConfig {
            pool_size: args.rest_pool_size,
            max_connections: args.rest_max_connections,
            idle_timeout: Duration::from_secs(args.rest_idle_secs),
            connection_idle_timeout: Duration::from_secs(args.rest_connection_idle_secs),
            ..rest::RestConfig::default()
        },
        base_domain: None,
        api_url_template: format!("{gateway_url}/p/{{ref}}"),
        trusted_proxies: Vec::new(),
        capture_slots: args.realtime.realtime_capture_slots,
    }
    .builder(shutdown.clone());
    match local_functions(
        args,
        database_url,
        data_dir,
        admin_url,
        &secrets.service_token,
    ) {
        Ok(supervisor) => {
            tm.set_function_logs(tenant_manager::LogSource::InProcess(supervisor.clone()));
            data_plane = data_plane.functions(dataplane::Functions::InProcess(supervisor));
        }
        Err(e) => eprintln!("warning: Edge Functions are off: {e}"),
    }
    let objects = storage::Backend::new(&storage::BackendConfig::Local {
        root: data_dir.join("storage"),
    })
    .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
    let data_plane = data_plane
        .storage(objects, storage::StorageConfig::default())
        .build()
        .map_err(|e| CliError::Usage(format!("--redis-url: {e}")))?;
    tm.on_change(data_plane.on_change);
    let tasks = stack::serve_all(
        vec![(admin_listener, tenant_manager::router(tm))],
        Some((gateway_listener, data_plane.router)),
        server_config,
        shutdown.clone(),
    )
    .await;

    local_state::write_state(
        data_dir,
        &State {
            gateway_url: gateway_url.to_string(),
            admin_url: admin_url.to_string(),
            admin_key: secrets.admin_key.clone(),
            pid: std::process::id(),
        },
    )?;
    println!("supactl is up");
    println!("  gateway URL:  {gateway_url}");
    println!("  admin URL:    {admin_url}");
    println!("  dashboard:    {admin_url}/  (sign in with the admin key)");
    // Never the key itself: terminals, CI logs and process supervisors keep what is printed.
    println!(
        "  admin key:    stored in {} (the project commands read it there)",
        data_dir.join("state.json").display()
    );
    println!("  data dir:     {}", data_dir.display());
    println!("  logs:         {}", data_dir.join("logs").display());
    println!("Create a project: supactl project create --name demo   (Ctrl-C to stop)");

    stack::run_until_signal(tasks, shutdown).await?;
    Ok(())
}

/// The functions supervisor of a local platform: workers may call the gateway on loopback, never the
/// admin API, PostgreSQL or Redis.
fn local_functions(
    args: &UpArgs,
    database_url: &str,
    data_dir: &std::path::Path,
    admin_url: &str,
    service_token: &str,
) -> CliResult<functions::Supervisor> {
    let private: Vec<String> = [
        Some(format!("127.0.0.1:{}", args.admin_port)),
        endpoint_of(database_url),
        args.redis_url.as_deref().and_then(endpoint_of),
    ]
    .into_iter()
    .flatten()
    .collect();
    // a worker's socket path must fit in 107 bytes
    let mut dir = data_dir.join("fn");
    if dir.as_os_str().len() > 60 {
        dir = std::env::temp_dir().join(format!("supactl-fn-{}", std::process::id()));
    }
    let gateway = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    args.functions
        .supervisor(&dir, Some(gateway), &private, admin_url, service_token)
}
