//! `supactl serve gateway|tenant-manager|rest-lambda`: one runtime service per process, as on ECS (or as a
//! second gateway replica beside `supactl up`), or the REST engine as a project's Lambda function. Secrets come from the environment, never from flags' values in
//! process listings: SUPACTL_SERVICE_TOKEN, SUPACTL_ADMIN_KEY, SUPACTL_ENCRYPTION_KEY, SUPACTL_DATABASE_URL.

use super::{serve_env, CliError, CliResult};
use crate::stack;
use clap::{Args, Subcommand};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum ServeCommand {
    /// The API gateway with the REST engine in-process.
    Gateway(Box<GatewayArgs>),
    /// The tenant-manager (admin API and internal config endpoint).
    TenantManager(Box<TenantManagerArgs>),
    /// The REST engine for one project as an AWS Lambda function (the REST image's entrypoint),
    /// configured from the environment: SUPACTL_PROJECT_REF, SUPACTL_TENANT_MANAGER_URL,
    /// SUPACTL_SERVICE_TOKEN (optional SUPACTL_CACHE_TTL, SUPACTL_REST_POOL_SIZE), plus the variables
    /// Lambda sets (AWS_LAMBDA_RUNTIME_API, …).
    RestLambda,
}

#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[arg(long, env = "SUPACTL_PORT", default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "SUPACTL_LISTEN", default_value = "127.0.0.1")]
    listen: String,
    /// Base URL of the tenant-manager's internal endpoint.
    #[arg(long, env = "SUPACTL_TENANT_MANAGER_URL")]
    tenant_manager_url: String,
    #[arg(long, env = "SUPACTL_SERVICE_TOKEN", hide_env_values = true)]
    service_token: String,
    #[arg(long, env = "SUPACTL_REDIS_URL")]
    redis_url: Option<String>,
    #[command(flatten)]
    redis_parts: serve_env::RedisParts,
    /// Seconds a key or project lookup is trusted (the bound on staleness without Redis).
    #[arg(long, env = "SUPACTL_CACHE_TTL", default_value_t = 1.0)]
    cache_ttl: f64,
    /// Route `<ref>.<base-domain>` by Host, besides the `/p/<ref>` path prefix.
    #[arg(long, env = "SUPACTL_BASE_DOMAIN")]
    base_domain: Option<String>,
    #[arg(long, env = "SUPACTL_REST_POOL_SIZE", default_value_t = 10)]
    rest_pool_size: usize,
    /// Public URL of a project, with `{ref}` in it (the issuer of auth tokens and the base of email
    /// links; the tenant-manager's setting of the same name). Default: `https://{ref}.<base-domain>`
    /// with a base domain, else `http://<listen>:<port>/p/{ref}`.
    #[arg(long, env = "SUPACTL_API_URL_TEMPLATE")]
    api_url_template: Option<String>,
}

#[derive(Args, Debug)]
pub struct TenantManagerArgs {
    #[arg(long, env = "SUPACTL_ADMIN_PORT", default_value_t = 3001)]
    port: u16,
    #[arg(long, env = "SUPACTL_LISTEN", default_value = "127.0.0.1")]
    listen: String,
    /// Superuser URL of the platform database server (or its parts: SUPACTL_DATABASE_HOST, …).
    #[arg(long, env = "SUPACTL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(flatten)]
    database_parts: serve_env::DatabaseParts,
    #[arg(long, env = "SUPACTL_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    #[arg(long, env = "SUPACTL_SERVICE_TOKEN", hide_env_values = true)]
    service_token: String,
    #[arg(long, env = "SUPACTL_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: String,
    /// Public URL of a project, with `{ref}` in it.
    #[arg(long, env = "SUPACTL_API_URL_TEMPLATE")]
    api_url_template: String,
    #[arg(long, env = "SUPACTL_REDIS_URL")]
    redis_url: Option<String>,
    #[command(flatten)]
    redis_parts: serve_env::RedisParts,
    /// Register the database server as worker `local` too.
    #[arg(long)]
    register_local_worker: bool,
    /// A worker server to register at start-up (SUPACTL_WORKER_HOST, …).
    #[command(flatten)]
    worker: serve_env::WorkerParts,
}

pub async fn run(cmd: ServeCommand) -> CliResult {
    stack::init_tracing();
    let shutdown = CancellationToken::new();
    let tasks = match cmd {
        ServeCommand::RestLambda => {
            let config = rest::lambda::LambdaConfig::from_env()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            rest::lambda::run(config)
                .await
                .map_err(anyhow::Error::from)?;
            return Ok(());
        }
        ServeCommand::Gateway(a) => {
            let a = *a;
            if !(0.0..=3600.0).contains(&a.cache_ttl) {
                return Err(CliError::Usage(
                    "--cache-ttl must be between 0 and 3600 seconds".into(),
                ));
            }
            let listener = stack::bind(&a.listen, a.port, "--port").await?;
            let api_url_template = match (&a.api_url_template, &a.base_domain) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => format!("https://{{ref}}.{d}"),
                (None, None) => format!("http://{}:{}/p/{{ref}}", a.listen, a.port),
            };
            let (app, _) = stack::data_plane(&stack::DataPlane {
                tenant_manager_url: a.tenant_manager_url,
                service_token: a.service_token,
                redis_url: a.redis_url.or_else(|| a.redis_parts.url()),
                cache_ttl: Duration::from_secs_f64(a.cache_ttl),
                rest: rest::RestConfig {
                    pool_size: a.rest_pool_size,
                    ..rest::RestConfig::default()
                },
                base_domain: a.base_domain,
                api_url_template,
            });
            eprintln!("gateway listening on {}:{}", a.listen, a.port);
            stack::serve_all(vec![(listener, app)], shutdown.clone()).await
        }
        ServeCommand::TenantManager(a) => {
            let a = *a;
            let database_url = a
                .database_url
                .clone()
                .or_else(|| a.database_parts.connection_string())
                .ok_or_else(|| {
                    CliError::Usage(
                        "the platform database is not set: pass --database-url (SUPACTL_DATABASE_URL) or SUPACTL_DATABASE_HOST and its parts".into(),
                    )
                })?;
            let listener = stack::bind(&a.listen, a.port, "--port").await?;
            let local_worker = if a.register_local_worker {
                Some(
                    tenant_manager::WorkerSpec::from_url("local", &database_url)
                        .map_err(|e| CliError::Usage(format!("--database-url: {e}")))?,
                )
            } else {
                a.worker.spec()
            };
            let tm = tenant_manager::TenantManager::start(tenant_manager::Config {
                database_url,
                admin_key: a.admin_key,
                service_token: a.service_token,
                encryption_key: a.encryption_key,
                api_url_template: a.api_url_template,
                local_worker,
                redis_url: a.redis_url.or_else(|| a.redis_parts.url()),
            })
            .await
            .map_err(|e| anyhow::anyhow!("tenant-manager failed to start: {e}"))?;
            eprintln!("tenant-manager listening on {}:{}", a.listen, a.port);
            stack::serve_all(
                vec![(listener, tenant_manager::router(tm))],
                shutdown.clone(),
            )
            .await
        }
    };
    stack::run_until_signal(tasks, shutdown).await?;
    Ok(())
}
