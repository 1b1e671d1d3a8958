//! `supactl serve gateway|tenant-manager|functions|rest-lambda`: one runtime service per process, as on
//! ECS (or as a second gateway replica beside `supactl up`), or the REST engine as a project's Lambda
//! function. Secrets come from the environment, never from flags' values in
//! process listings: SUPACTL_SERVICE_TOKEN, SUPACTL_ADMIN_KEY, SUPACTL_ENCRYPTION_KEY, SUPACTL_DATABASE_URL.

use super::{serve_env, CliError, CliResult};
use crate::functions_runtime::FunctionsArgs;
use crate::stack;
use clap::{Args, Subcommand};
use stacks::compute::env as task_env;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

// No `Debug`: its arguments hold secrets, and nothing formats them.
#[derive(Subcommand)]
pub enum ServeCommand {
    /// The API gateway with the REST engine in-process (and storage, given a bucket or a directory).
    Gateway(Box<GatewayArgs>),
    /// The tenant-manager (admin API and internal config endpoint).
    TenantManager(Box<TenantManagerArgs>),
    /// Edge Functions: the Deno workers' supervisor, for the gateway's `--functions-url`.
    Functions(Box<FunctionsServiceArgs>),
    /// The REST engine for one project as an AWS Lambda function (the REST image's entrypoint),
    /// configured from the environment: SUPACTL_PROJECT_REF, SUPACTL_TENANT_MANAGER_URL,
    /// SUPACTL_PROJECT_TOKEN (or SUPACTL_SERVICE_TOKEN locally; optional SUPACTL_CACHE_TTL,
    /// SUPACTL_REST_POOL_SIZE), plus the variables
    /// Lambda sets (AWS_LAMBDA_RUNTIME_API, …).
    RestLambda,
}

// No `Debug`: it holds secrets, and nothing formats it.
#[derive(Args)]
pub struct GatewayArgs {
    #[arg(long, env = task_env::PORT, default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = task_env::LISTEN, default_value = "127.0.0.1")]
    listen: String,
    /// Base URL of the tenant-manager's internal endpoint.
    #[arg(long, env = task_env::TENANT_MANAGER_URL)]
    tenant_manager_url: String,
    #[arg(long, env = task_env::SERVICE_TOKEN, hide_env_values = true)]
    service_token: String,
    #[arg(long, env = "SUPACTL_REDIS_URL")]
    redis_url: Option<String>,
    #[command(flatten)]
    redis_parts: serve_env::RedisParts,
    /// Serve Prometheus metrics at `GET /metrics` on this port (bearer: the service token), apart from
    /// the public listener.
    #[arg(long, env = "SUPACTL_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// Seconds a key or project lookup is trusted (the bound on staleness without Redis).
    #[arg(long, env = "SUPACTL_CACHE_TTL", default_value_t = 1.0)]
    cache_ttl: f64,
    /// Seconds past its TTL a known key or project keeps its last answer while the tenant-manager
    /// cannot be reached (0: never).
    #[arg(long, env = "SUPACTL_CACHE_STALE_SECS",
          default_value_t = supactl_common::directory::DirectoryConfig::DEFAULT_STALE_FOR.as_secs())]
    cache_stale_secs: u64,
    /// Route `<ref>.<base-domain>` by Host, besides the `/p/<ref>` path prefix.
    #[arg(long, env = task_env::BASE_DOMAIN)]
    base_domain: Option<String>,
    #[arg(long, env = "SUPACTL_REST_POOL_SIZE", default_value_t = 10)]
    rest_pool_size: usize,
    /// REST connections open across all projects before idle ones of other projects are closed.
    #[arg(long, env = "SUPACTL_REST_MAX_CONNECTIONS", default_value_t = 200)]
    rest_max_connections: usize,
    /// Public URL of a project, with `{ref}` in it (the issuer of auth tokens and the base of email
    /// links; the tenant-manager's setting of the same name). Default: `https://{ref}.<base-domain>`
    /// with a base domain, else `http://<listen>:<port>/p/{ref}`.
    #[arg(long, env = task_env::API_URL_TEMPLATE)]
    api_url_template: Option<String>,
    /// Region to sign Function URL requests for when the URL's host names none (projects with REST on
    /// Lambda; credentials come from aws-config's default chain, on first use).
    #[arg(long, env = "AWS_REGION")]
    aws_region: Option<String>,
    /// Seconds to wait for a project's REST function to answer.
    #[arg(
        long,
        env = "SUPACTL_REST_FUNCTION_TIMEOUT_SECONDS",
        default_value_t = 35
    )]
    rest_function_timeout: u64,
    /// The functions service (`supactl serve functions`), `http://host:port`; without it the gateway
    /// serves no `/functions/v1`.
    #[arg(long, env = task_env::FUNCTIONS_URL)]
    functions_url: Option<String>,
    /// Seconds to wait for a function's response head (above the functions' own limit).
    #[arg(
        long,
        env = "SUPACTL_FUNCTIONS_HEAD_TIMEOUT_SECS",
        default_value_t = 160
    )]
    functions_head_timeout: u64,
    /// Peers whose X-Forwarded-For names the client (the load balancer's range, e.g. the VPC CIDR),
    /// comma-separated; others are taken as the client themselves.
    #[arg(long, env = task_env::TRUSTED_PROXIES, value_parser = gateway::client_ip::parse_list)]
    trusted_proxies: Option<Vec<gateway::Cidr>>,
    #[command(flatten)]
    realtime: serve_env::RealtimeArgs,
    #[command(flatten)]
    storage: serve_env::StorageArgs,
    #[command(flatten)]
    server: stack::ServerArgs,
}

// No `Debug`: it holds secrets, and nothing formats it.
#[derive(Args)]
pub struct FunctionsServiceArgs {
    #[arg(long, env = task_env::PORT, default_value_t = 8081)]
    port: u16,
    /// Port of the internal listener (`/health`, log records for the tenant-manager with the service
    /// token); the gateway is never pointed at it.
    #[arg(long, env = task_env::FUNCTIONS_INTERNAL_PORT, default_value_t = 8082)]
    internal_port: u16,
    #[arg(long, env = task_env::LISTEN, default_value = "127.0.0.1")]
    listen: String,
    /// Base URL of the tenant-manager's internal endpoint (function code, environments, projects).
    #[arg(long, env = task_env::TENANT_MANAGER_URL)]
    tenant_manager_url: String,
    #[arg(long, env = task_env::SERVICE_TOKEN, hide_env_values = true)]
    service_token: String,
    /// Serve Prometheus metrics at `GET /metrics` on this port (bearer: the service token), apart from
    /// the other listeners.
    #[arg(long, env = "SUPACTL_METRICS_PORT")]
    metrics_port: Option<u16>,
    #[command(flatten)]
    functions: FunctionsArgs,
    #[command(flatten)]
    server: stack::ServerArgs,
}

// No `Debug`: it holds secrets, and nothing formats it.
#[derive(Args)]
pub struct TenantManagerArgs {
    #[arg(long, env = task_env::ADMIN_PORT, default_value_t = 3001)]
    port: u16,
    #[arg(long, env = task_env::LISTEN, default_value = "127.0.0.1")]
    listen: String,
    /// Superuser URL of the platform database server (or its parts: SUPACTL_DATABASE_HOST, …).
    #[arg(long, env = "SUPACTL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(flatten)]
    database_parts: serve_env::DatabaseParts,
    #[arg(long, env = task_env::ADMIN_KEY, hide_env_values = true)]
    admin_key: String,
    #[arg(long, env = task_env::SERVICE_TOKEN, hide_env_values = true)]
    service_token: String,
    #[arg(long, env = task_env::ENCRYPTION_KEY, hide_env_values = true)]
    encryption_key: String,
    /// Public URL of a project, with `{ref}` in it.
    #[arg(long, env = task_env::API_URL_TEMPLATE)]
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
    #[command(flatten)]
    rest_lambda: RestLambdaArgs,
    /// The functions service's internal listener (`http://host:port`), where function logs are read from
    /// every address the name resolves to; without it `functions logs` answers 503.
    #[arg(long, env = task_env::FUNCTIONS_INTERNAL_URL)]
    functions_internal_url: Option<String>,
    /// Sessions each project's login role may hold at once, unless the project sets its own.
    #[arg(long, env = "SUPACTL_PROJECT_CONNECTION_LIMIT", default_value_t = tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    project_connection_limit: u32,
    #[command(flatten)]
    server: stack::ServerArgs,
    #[command(flatten)]
    capacity: serve_env::CapacityArgs,
}

/// Where REST runs for the projects this tenant-manager creates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RestMode {
    /// In the gateway's process.
    Service,
    /// One Lambda function per project (named with the stack's prefix) behind an AWS_IAM Function URL.
    Lambda,
}

/// Lambda mode for REST. AWS region, credentials and endpoint come from aws-config's standard chain
/// (AWS_REGION, the ECS task role, AWS_ENDPOINT_URL, …).
#[derive(Args, Debug)]
struct RestLambdaArgs {
    #[arg(long, env = task_env::REST_MODE, value_enum, default_value_t = RestMode::Service)]
    rest_mode: RestMode,
    /// The REST image by digest (`<registry>/<repository>@sha256:<hex>`).
    #[arg(long, env = task_env::REST_LAMBDA_IMAGE)]
    rest_lambda_image: Option<String>,
    /// The functions' execution role.
    #[arg(long, env = task_env::REST_LAMBDA_ROLE_ARN)]
    rest_lambda_role_arn: Option<String>,
    /// Comma-separated subnet ids the functions run in.
    #[arg(long, env = task_env::REST_LAMBDA_SUBNETS)]
    rest_lambda_subnets: Option<String>,
    /// Comma-separated security group ids of the functions.
    #[arg(long, env = task_env::REST_LAMBDA_SECURITY_GROUPS)]
    rest_lambda_security_groups: Option<String>,
    #[arg(long, env = task_env::REST_LAMBDA_MEMORY_MB, default_value_t = 512)]
    rest_lambda_memory_mb: i32,
    #[arg(
        long,
        env = task_env::REST_LAMBDA_TIMEOUT_SECONDS,
        default_value_t = 30
    )]
    rest_lambda_timeout_seconds: i32,
    /// This tenant-manager's internal URL as the functions reach it.
    #[arg(long, env = task_env::TENANT_MANAGER_INTERNAL_URL)]
    tenant_manager_internal_url: Option<String>,
    /// Extra tags on the functions, `key=value,…` (the stack's ownership tags on ECS).
    #[arg(long, env = task_env::REST_LAMBDA_TAGS)]
    rest_lambda_tags: Option<String>,
    /// The start of every function's name (the stack's prefix, which IAM is scoped to).
    #[arg(long, env = task_env::REST_LAMBDA_NAME_PREFIX)]
    rest_lambda_name_prefix: Option<String>,
    /// The log group the functions log to (default: Lambda's `/aws/lambda/<function>`).
    #[arg(long, env = task_env::REST_LAMBDA_LOG_GROUP)]
    rest_lambda_log_group: Option<String>,
}

impl RestLambdaArgs {
    /// The validated Lambda settings in lambda mode, None in service mode.
    fn settings(
        &self,
    ) -> Result<Option<tenant_manager::rest_lambda::RestLambdaSettings>, CliError> {
        use tenant_manager::rest_lambda::{RawRestLambdaSettings, RestLambdaSettings};
        if self.rest_mode == RestMode::Service {
            return Ok(None);
        }
        RestLambdaSettings::new(RawRestLambdaSettings {
            image_uri: self.rest_lambda_image.clone(),
            role_arn: self.rest_lambda_role_arn.clone(),
            subnets: self.rest_lambda_subnets.clone(),
            security_groups: self.rest_lambda_security_groups.clone(),
            memory_mb: self.rest_lambda_memory_mb,
            timeout_seconds: self.rest_lambda_timeout_seconds,
            internal_url: self.tenant_manager_internal_url.clone(),
            tags: self.rest_lambda_tags.clone(),
            name_prefix: self.rest_lambda_name_prefix.clone(),
            log_group: self.rest_lambda_log_group.clone(),
        })
        .map(Some)
        .map_err(|e| CliError::Usage(format!("SUPACTL_REST_MODE=lambda: {e}")))
    }
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
            let server_config = a.server.config()?;
            let listener = stack::bind(&a.listen, a.port, "--port").await?;
            let mut listeners = Vec::new();
            if let Some(port) = a.metrics_port {
                let l = stack::bind(&a.listen, port, "--metrics-port").await?;
                listeners.push((l, supactl_common::metrics::router(a.service_token.clone())));
            }
            let api_url_template = match (&a.api_url_template, &a.base_domain) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => format!("https://{{ref}}.{d}"),
                (None, None) => format!("http://{}:{}/p/{{ref}}", a.listen, a.port),
            };
            let function_urls = gateway::FunctionUrls::new(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    stack::LazyDefaultCredentials::default(),
                ),
                gateway::FunctionUrlConfig {
                    region: a.aws_region.clone(),
                    timeout: Duration::from_secs(a.rest_function_timeout),
                    ..gateway::FunctionUrlConfig::default()
                },
            )
            .map_err(anyhow::Error::from)?;
            let mut app = dataplane::Settings {
                tenant_manager_url: a.tenant_manager_url,
                service_token: a.service_token,
                redis_url: a.redis_url.or_else(|| a.redis_parts.url()),
                cache_ttl: Duration::from_secs_f64(a.cache_ttl),
                cache_stale: Duration::from_secs(a.cache_stale_secs),
                rest: rest::RestConfig {
                    pool_size: a.rest_pool_size,
                    max_connections: a.rest_max_connections,
                    ..rest::RestConfig::default()
                },
                base_domain: a.base_domain,
                api_url_template,
                trusted_proxies: a.trusted_proxies.unwrap_or_default(),
                capture_slots: a.realtime.realtime_capture_slots,
            }
            .builder(shutdown.clone())
            .function_urls(function_urls);
            if let Some(url) = &a.functions_url {
                let head_timeout = Duration::from_secs(a.functions_head_timeout);
                let upstream = gateway::HttpUpstream::new(url, head_timeout)
                    .map_err(|e| CliError::Usage(format!("--functions-url: {e}")))?;
                app = app.functions(dataplane::Functions::At(Box::new(upstream)));
            }
            if let Some(config) = a.storage.backend() {
                let backend = storage::Backend::new(&config)
                    .map_err(|e| CliError::Usage(format!("storage: {e}")))?;
                app = app.storage(backend, storage::StorageConfig::default());
            }
            let app = app
                .build()
                .map_err(|e| CliError::Usage(format!("--redis-url: {e}")))?
                .router;
            eprintln!("gateway listening on {}:{}", a.listen, a.port);
            stack::serve_all(
                listeners,
                Some((listener, app)),
                &server_config,
                shutdown.clone(),
            )
            .await
        }
        ServeCommand::Functions(a) => {
            let server_config = a.server.config()?;
            let listener = stack::bind(&a.listen, a.port, "--port").await?;
            // Off loopback (ECS) the stack denies the VPC's range through --functions-deny-net.
            let private = match tenant_manager_endpoint(&a.tenant_manager_url) {
                Some(e) => vec![e],
                None => Vec::new(),
            };
            let supervisor = a.functions.supervisor(
                std::path::Path::new("/tmp/supactl-fn"),
                None,
                &private,
                &a.tenant_manager_url,
                &a.service_token,
            )?;
            let directory = std::sync::Arc::new(supactl_common::directory::Directory::new(
                supactl_common::directory::DirectoryConfig {
                    url: a.tenant_manager_url.clone(),
                    service_token: a.service_token.clone(),
                    ttl: Duration::from_secs(1),
                    stale_for: supactl_common::directory::DirectoryConfig::DEFAULT_STALE_FOR,
                },
            ));
            let internal_listener =
                stack::bind(&a.listen, a.internal_port, "--internal-port").await?;
            let internal = functions::internal_router(supervisor.clone(), a.service_token.clone());
            let app = functions::behind_gateway(supervisor, directory);
            eprintln!(
                "functions listening on {}:{} (internal: {})",
                a.listen, a.port, a.internal_port
            );
            let mut listeners = vec![(listener, app), (internal_listener, internal)];
            if let Some(port) = a.metrics_port {
                let l = stack::bind(&a.listen, port, "--metrics-port").await?;
                listeners.push((l, supactl_common::metrics::router(a.service_token.clone())));
            }
            stack::serve_all(listeners, None, &server_config, shutdown.clone()).await
        }
        ServeCommand::TenantManager(a) => {
            let a = *a;
            let database_url = a
                .database_parts
                .resolve(a.database_url.clone())
                .map_err(CliError::Usage)?
                .ok_or_else(|| {
                    CliError::Usage(
                        "the platform database is not set: pass --database-url (SUPACTL_DATABASE_URL) or SUPACTL_DATABASE_HOST and its parts".into(),
                    )
                })?;
            let server_config = a.server.config()?;
            let listener = stack::bind(&a.listen, a.port, "--port").await?;
            let local_worker = if a.register_local_worker {
                Some(
                    tenant_manager::WorkerSpec::from_url("local", &database_url)
                        .map_err(|e| CliError::Usage(format!("--database-url: {e}")))?,
                )
            } else {
                a.worker.spec().map_err(CliError::Usage)?
            };
            let rest_lambda = a.rest_lambda.settings()?;
            let function_logs = match &a.functions_internal_url {
                Some(url) => Some(
                    functions::RemoteLogs::new(url, &a.service_token)
                        .map_err(|e| CliError::Usage(format!("--functions-internal-url: {e}")))?,
                ),
                None => None,
            };
            let config = tenant_manager::Config {
                database_url,
                admin_key: a.admin_key,
                service_token: a.service_token,
                encryption_key: a.encryption_key,
                api_url_template: a.api_url_template,
                local_worker,
                redis_url: a.redis_url.or_else(|| a.redis_parts.url()),
                project_connection_limit: a.project_connection_limit,
                capacity: a.capacity.capacity(),
            };
            let tm = match rest_lambda {
                None => tenant_manager::TenantManager::start(config).await,
                Some(settings) => {
                    let lambda = tenant_manager::rest_lambda::RestLambda::from_env(settings).await;
                    tenant_manager::TenantManager::start_with_rest_lambda(config, lambda).await
                }
            }
            .map_err(|e| anyhow::anyhow!("tenant-manager failed to start: {e}"))?;
            if let Some(logs) = function_logs {
                tm.set_function_logs(tenant_manager::LogSource::Remote(std::sync::Arc::new(logs)));
            }
            eprintln!("tenant-manager listening on {}:{}", a.listen, a.port);
            stack::serve_all(
                vec![(listener, tenant_manager::router(tm))],
                None,
                &server_config,
                shutdown.clone(),
            )
            .await
        }
    };
    stack::run_until_signal(tasks, shutdown).await?;
    Ok(())
}

fn tenant_manager_endpoint(url: &str) -> Option<String> {
    crate::functions_runtime::endpoint_of(url)
}
