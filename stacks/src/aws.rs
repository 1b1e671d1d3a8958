//! AWS access: the options every command takes (profile, region, endpoint URL), the SDK clients, a request
//! counter (proves a no-op deploy sends zero mutating calls), and typed error predicates.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// AWS options shared by every command.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    /// Overrides the config's `project.region`.
    pub region: Option<String>,
    /// Points the SDK at another endpoint (the emulator in tests).
    pub endpoint_url: Option<String>,
    /// Disable SDK retries (tests: the emulator answers unimplemented calls with HTTP 500, retried 3× otherwise).
    pub no_retries: bool,
}

/// Every request sent, as `service:Operation`, in order.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    /// Calls that can change something (everything but Describe*/List*/Get*).
    pub fn mutating(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| is_mutating(c))
            .collect()
    }
    pub fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

/// Whether a `service:Operation` call can change state.
pub fn is_mutating(call: &str) -> bool {
    let op = call.rsplit(':').next().unwrap_or(call);
    !["Describe", "List", "Get"]
        .iter()
        .any(|p| op.starts_with(p))
}

#[derive(Debug, Clone)]
struct Counter(CallLog);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "supactl-call-log"
    }

    // once per attempt, i.e. per HTTP request
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            if let Ok(mut v) = (self.0).0.lock() {
                v.push(format!("{}:{}", m.service(), m.name()));
            }
        }
        Ok(())
    }
}

/// The SDK config every client is built from: credentials through the standard chain (env, profile, SSO, …),
/// the region, timeouts, retries and the endpoint override.
pub async fn sdk_config(opts: &AwsOptions, region: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .retry_config(if opts.no_retries {
            RetryConfig::disabled()
        } else {
            RetryConfig::standard().with_max_attempts(5)
        });
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// The SDK clients of the stack, all counting their requests into one [`CallLog`].
#[derive(Debug, Clone)]
pub struct Clients {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub discovery: aws_sdk_servicediscovery::Client,
    pub acm: aws_sdk_acm::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub log: CallLog,
}

impl Clients {
    /// Loads credentials through the standard chain (env, profile, SSO, …) and builds the clients.
    pub async fn new(opts: &AwsOptions, region: &str) -> Clients {
        let sdk = sdk_config(opts, region).await;
        let log = CallLog::default();
        let c = Counter(log.clone());
        Clients {
            region: region.to_string(),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            elasticache: aws_sdk_elasticache::Client::from_conf(
                aws_sdk_elasticache::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            ecr: aws_sdk_ecr::Client::from_conf(
                aws_sdk_ecr::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            ecs: aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(
                aws_sdk_applicationautoscaling::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            discovery: aws_sdk_servicediscovery::Client::from_conf(
                aws_sdk_servicediscovery::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            acm: aws_sdk_acm::Client::from_conf(
                aws_sdk_acm::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            // an endpoint override (the emulator) has no per-bucket host names: path-style addressing
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(opts.endpoint_url.is_some())
                    .interceptor(c.clone())
                    .build(),
            ),
            log,
        }
    }
}

/// An AWS call that failed, with the operation and the service's message.
#[derive(Debug, thiserror::Error)]
#[error("aws: {op} failed: {message}")]
pub struct AwsError {
    pub op: String,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new(op: impl Into<String>, e: &(impl ProvideErrorMetadata + std::fmt::Display)) -> Self {
        let code = e.code().map(str::to_string);
        let message = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            // unmodelled answers (e.g. an emulator's HTTP 500 page) have neither
            (None, None) => {
                format!("{e} (no error code: the endpoint may not implement this operation)")
            }
        };
        AwsError {
            op: op.into(),
            code,
            message,
        }
    }
}

/// EC2 models no error shapes: its documented error codes are the contract, so they are compared as strings.
pub fn ec2_code(e: &impl ProvideErrorMetadata) -> Option<&str> {
    e.code()
}

/// EC2 "the thing is already gone" codes (`InvalidVpcID.NotFound`, `InvalidGroup.NotFound`, …).
pub fn ec2_is_not_found(e: &impl ProvideErrorMetadata) -> bool {
    ec2_code(e).is_some_and(|c| c.ends_with(".NotFound") || c == "InvalidAssociationID.NotFound")
}

/// EC2 "already exists" codes (`InvalidPermission.Duplicate`, `RouteAlreadyExists`, …).
pub fn ec2_is_duplicate(e: &impl ProvideErrorMetadata) -> bool {
    ec2_code(e).is_some_and(|c| {
        c.ends_with(".Duplicate")
            || c.contains("AlreadyExists")
            || c == "Resource.AlreadyAssociated"
    })
}

/// `map_err` adapter: an SDK error of operation `op` into the engine's error.
pub fn err<E: ProvideErrorMetadata + std::fmt::Display>(
    op: &'static str,
) -> impl Fn(E) -> crate::Error {
    move |e| crate::Error::Aws(AwsError::new(op, &e))
}

/// Sends a call whose "not found" answer (`not_found` on the service error) means the resource is absent:
/// `Ok(None)` then, `Ok(Some(output))` when it answered, and the engine's error otherwise.
pub async fn absent<T, E, R>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, SdkError<E, R>>>,
    not_found: impl FnOnce(&E) -> bool,
) -> Result<Option<T>, crate::Error>
where
    SdkError<E, R>: ProvideErrorMetadata + std::fmt::Display,
{
    match call.await {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(not_found) => Ok(None),
        Err(e) => Err(crate::Error::Aws(AwsError::new(op, &e))),
    }
}

/// `aws`, `aws-cn` or `aws-us-gov`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
