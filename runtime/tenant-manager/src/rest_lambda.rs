//! REST on Lambda: one `<prefix><ref>` function per project, from the REST image, behind a Function URL with
//! `AWS_IAM` auth (only the gateway's task role may invoke it; it signs with SigV4). The prefix is the stack's
//! (`SUPACTL_REST_LAMBDA_NAME_PREFIX`): IAM scopes both the gateway and this tenant-manager to it, so two stacks
//! in one account and region cannot touch each other's functions. The functions log to the stack's log group
//! (`SUPACTL_REST_LAMBDA_LOG_GROUP`, which has a retention), not to a group per function Lambda would create
//! without one.
//!
//! The function is configured at cold start from the internal endpoint, authenticated with the project's
//! own token ([`supactl_common::tokens::project_token`]): the platform's service token is never put in a
//! function's environment, where anyone allowed `lambda:GetFunctionConfiguration` could read it.
//!
//! Creation is create → wait until `Active` (the SDK waiter, under an explicit timeout) → Function URL;
//! when a step fails the function is deleted again, so the caller only has to undo its own steps.
//! Deletion tolerates a URL or function that is already gone.

use crate::error::ApiError;
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::types::{
    Environment, FunctionCode, FunctionUrlAuthType, LogFormat, LoggingConfig, PackageType,
    VpcConfig,
};
use std::time::Duration;

/// The Lambda mode's settings, validated ([`RestLambdaSettings::new`]); the environment contract of
/// `supactl serve tenant-manager` (`SUPACTL_REST_LAMBDA_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestLambdaSettings {
    /// The REST image, by digest (`<registry>/<repository>@sha256:<hex>`).
    pub image_uri: String,
    /// The functions' execution role.
    pub role_arn: String,
    /// Private subnets and security groups the functions run in (they reach the worker databases).
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    /// The tenant-manager's internal URL as the functions reach it.
    pub internal_url: String,
    /// How long project creation waits for a new function to become `Active`.
    pub active_timeout: Duration,
    /// Extra tags on every function (`SUPACTL_REST_LAMBDA_TAGS=k=v,k=v`): the stack's ownership tags,
    /// so `supactl status` tells this stack's functions from another's in the same region.
    pub tags: Vec<(String, String)>,
    /// The start of every function's name (the stack's, e.g. `rest-1a2b3c4d-`).
    pub name_prefix: String,
    /// The CloudWatch Logs group the functions log to; Lambda's `/aws/lambda/<name>` when unset.
    pub log_group: Option<String>,
}

/// The settings as given (environment or flags), before validation.
#[derive(Debug, Clone, Default)]
pub struct RawRestLambdaSettings {
    pub image_uri: Option<String>,
    pub role_arn: Option<String>,
    /// Comma-separated.
    pub subnets: Option<String>,
    /// Comma-separated.
    pub security_groups: Option<String>,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub internal_url: Option<String>,
    /// Comma-separated `key=value` pairs.
    pub tags: Option<String>,
    pub name_prefix: Option<String>,
    pub log_group: Option<String>,
}

/// A setting that is missing or wrong, named as the environment variable that sets it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name}: {message}")]
pub struct SettingsError {
    pub name: &'static str,
    pub message: String,
}

fn bad(name: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        message: message.into(),
    }
}

fn list(name: &'static str, v: Option<String>, prefix: &str) -> Result<Vec<String>, SettingsError> {
    let items: Vec<String> = v
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if items.is_empty() {
        return Err(bad(name, "required in lambda mode (comma-separated ids)"));
    }
    if let Some(i) = items.iter().find(|i| !i.starts_with(prefix)) {
        return Err(bad(name, format!("{i:?} is not a {prefix}… id")));
    }
    Ok(items)
}

fn tag_list(v: Option<String>) -> Result<Vec<(String, String)>, SettingsError> {
    let mut tags = Vec::new();
    for pair in v.unwrap_or_default().split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !k.starts_with("aws:") => {
                tags.push((k.trim().to_string(), v.trim().to_string()))
            }
            _ => {
                return Err(bad(
                    "SUPACTL_REST_LAMBDA_TAGS",
                    format!("{pair:?} is not key=value (keys may not start with aws:)"),
                ))
            }
        }
    }
    Ok(tags)
}

impl RestLambdaSettings {
    /// Validates `raw`; every error names the variable to fix.
    pub fn new(raw: RawRestLambdaSettings) -> Result<RestLambdaSettings, SettingsError> {
        let required = |name: &'static str, v: Option<String>| {
            v.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad(name, "required in lambda mode"))
        };
        let image_uri = required("SUPACTL_REST_LAMBDA_IMAGE", raw.image_uri)?;
        let digest_ok = image_uri.split_once("@sha256:").is_some_and(|(repo, d)| {
            repo.contains('/') && d.len() == 64 && d.bytes().all(|c| c.is_ascii_hexdigit())
        });
        if !digest_ok {
            return Err(bad(
                "SUPACTL_REST_LAMBDA_IMAGE",
                format!("{image_uri:?} must name the image by digest: <registry>/<repository>@sha256:<64 hex>"),
            ));
        }
        let role_arn = required("SUPACTL_REST_LAMBDA_ROLE_ARN", raw.role_arn)?;
        if !(role_arn.starts_with("arn:") && role_arn.contains(":role/")) {
            return Err(bad(
                "SUPACTL_REST_LAMBDA_ROLE_ARN",
                format!("{role_arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
            ));
        }
        let subnets = list("SUPACTL_REST_LAMBDA_SUBNETS", raw.subnets, "subnet-")?;
        let security_groups = list(
            "SUPACTL_REST_LAMBDA_SECURITY_GROUPS",
            raw.security_groups,
            "sg-",
        )?;
        if !(128..=10240).contains(&raw.memory_mb) {
            return Err(bad(
                "SUPACTL_REST_LAMBDA_MEMORY_MB",
                format!("{} is outside Lambda's 128–10240 MB", raw.memory_mb),
            ));
        }
        if !(1..=900).contains(&raw.timeout_seconds) {
            return Err(bad(
                "SUPACTL_REST_LAMBDA_TIMEOUT_SECONDS",
                format!("{} is outside Lambda's 1–900 s", raw.timeout_seconds),
            ));
        }
        let internal_url = required("SUPACTL_TENANT_MANAGER_INTERNAL_URL", raw.internal_url)?;
        if !(internal_url.starts_with("http://") || internal_url.starts_with("https://")) {
            return Err(bad(
                "SUPACTL_TENANT_MANAGER_INTERNAL_URL",
                format!("{internal_url:?} is not an http(s) URL"),
            ));
        }
        let name_prefix = required("SUPACTL_REST_LAMBDA_NAME_PREFIX", raw.name_prefix)?;
        // a project ref has up to 40 characters, a function name up to 64
        let prefix_ok = name_prefix.len() <= 24
            && name_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok {
            return Err(bad(
                "SUPACTL_REST_LAMBDA_NAME_PREFIX",
                format!("{name_prefix:?} is not 1-24 letters, digits, hyphens and underscores"),
            ));
        }
        let log_group = raw
            .log_group
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if let Some(g) = &log_group {
            let ok = g.len() <= 512
                && g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
            if !ok {
                return Err(bad(
                    "SUPACTL_REST_LAMBDA_LOG_GROUP",
                    format!("{g:?} is not a CloudWatch Logs group name"),
                ));
            }
        }
        Ok(RestLambdaSettings {
            name_prefix,
            log_group,
            image_uri,
            role_arn,
            subnets,
            security_groups,
            memory_mb: raw.memory_mb,
            timeout_seconds: raw.timeout_seconds,
            internal_url: internal_url.trim_end_matches('/').to_string(),
            active_timeout: Duration::from_secs(300),
            tags: tag_list(raw.tags)?,
        })
    }
}

impl RestLambdaSettings {
    /// The name of a project's REST function.
    pub fn function_name(&self, project_ref: &str) -> String {
        format!("{}{project_ref}", self.name_prefix)
    }
}

/// A created function and its URL.
#[derive(Debug, Clone)]
pub struct RestFunction {
    pub name: String,
    pub url: String,
}

/// Creates and deletes the projects' REST functions.
pub struct RestLambda {
    settings: RestLambdaSettings,
    client: aws_sdk_lambda::Client,
}

impl RestLambda {
    /// A client from aws-config's standard chain: region from `AWS_REGION` (or the profile), credentials
    /// from the environment, profile, web identity or the ECS task role, and `AWS_ENDPOINT_URL` honoured.
    pub async fn from_env(settings: RestLambdaSettings) -> RestLambda {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        RestLambda::new(settings, aws_sdk_lambda::Client::new(&sdk))
    }

    pub fn new(settings: RestLambdaSettings, client: aws_sdk_lambda::Client) -> RestLambda {
        RestLambda { settings, client }
    }

    pub fn settings(&self) -> &RestLambdaSettings {
        &self.settings
    }

    /// Creates `<prefix><ref>`, waits until it is Active and gives it an `AWS_IAM` Function URL. On failure
    /// nothing of it is left.
    pub async fn create(
        &self,
        project_ref: &str,
        project_token: &str,
    ) -> Result<RestFunction, ApiError> {
        let s = &self.settings;
        let name = s.function_name(project_ref);
        let environment = Environment::builder()
            .variables("SUPACTL_PROJECT_REF", project_ref)
            .variables("SUPACTL_TENANT_MANAGER_URL", &s.internal_url)
            .variables("SUPACTL_PROJECT_TOKEN", project_token)
            .build();
        let tags = s
            .tags
            .iter()
            .cloned()
            .chain([
                ("supactl:project".to_string(), project_ref.to_string()),
                ("supactl:component".to_string(), "rest".to_string()),
            ])
            .collect();
        self.client
            .create_function()
            .function_name(&name)
            .description(format!("supactl REST for project {project_ref}"))
            .package_type(PackageType::Image)
            .code(FunctionCode::builder().image_uri(&s.image_uri).build())
            .role(&s.role_arn)
            .vpc_config(
                VpcConfig::builder()
                    .set_subnet_ids(Some(s.subnets.clone()))
                    .set_security_group_ids(Some(s.security_groups.clone()))
                    .build(),
            )
            .memory_size(s.memory_mb)
            .timeout(s.timeout_seconds)
            .environment(environment)
            .set_logging_config(s.log_group.as_ref().map(|g| {
                LoggingConfig::builder()
                    .log_format(LogFormat::Text)
                    .log_group(g)
                    .build()
            }))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws_failed("CreateFunction", &name, e))?;
        let finish = async {
            self.client
                .wait_until_function_active_v2()
                .function_name(&name)
                .wait(s.active_timeout)
                .await
                .map_err(|e| aws_failed("waiting for the function to be Active", &name, e))?;
            let url = self
                .client
                .create_function_url_config()
                .function_name(&name)
                .auth_type(FunctionUrlAuthType::AwsIam)
                .send()
                .await
                .map_err(|e| aws_failed("CreateFunctionUrlConfig", &name, e))?;
            Ok(url.function_url().to_string())
        };
        match finish.await {
            Ok(url) => Ok(RestFunction { name, url }),
            Err(e) => {
                if let Err(cleanup) = self.delete(&name).await {
                    tracing::error!(function = %name, error = %cleanup, "rollback of the REST function failed");
                }
                Err(e)
            }
        }
    }

    /// Deletes the function's URL and the function; either being gone already is fine.
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        match self
            .client
            .delete_function_url_config()
            .function_name(name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(aws_failed("DeleteFunctionUrlConfig", name, e)),
        }
        match self
            .client
            .delete_function()
            .function_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_failed("DeleteFunction", name, e)),
        }
    }
}

/// An AWS call failed: the detail goes to the log, the client gets a stable code.
fn aws_failed(step: &str, function: &str, e: impl std::error::Error) -> ApiError {
    tracing::error!(%step, %function, error = %DisplayErrorContext(&e), "AWS Lambda call failed");
    ApiError::RestFunction(format!("{step} for {function} failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawRestLambdaSettings {
        RawRestLambdaSettings {
            image_uri: Some(format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/supactl-rest@sha256:{}",
                "a".repeat(64)
            )),
            role_arn: Some("arn:aws:iam::123456789012:role/rest-lambda".into()),
            subnets: Some("subnet-1, subnet-2".into()),
            security_groups: Some("sg-1".into()),
            memory_mb: 512,
            timeout_seconds: 30,
            internal_url: Some("http://tenant-manager.supactl.local:3001/".into()),
            tags: Some("supactl:stack=demo,supactl:env=test".into()),
            name_prefix: Some("rest-0123abcd-".into()),
            log_group: Some("/aws/lambda/demo-test-rest".into()),
        }
    }

    #[test]
    fn valid_settings() {
        let s = RestLambdaSettings::new(raw()).unwrap();
        assert_eq!(s.subnets, ["subnet-1", "subnet-2"]);
        assert_eq!(s.security_groups, ["sg-1"]);
        assert_eq!(s.internal_url, "http://tenant-manager.supactl.local:3001");
        assert_eq!(s.function_name("abc"), "rest-0123abcd-abc");
        assert_eq!(s.log_group.as_deref(), Some("/aws/lambda/demo-test-rest"));
        assert_eq!(
            s.tags,
            [
                ("supactl:stack".to_string(), "demo".to_string()),
                ("supactl:env".to_string(), "test".to_string())
            ]
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: Vec<(RawRestLambdaSettings, &str)> = vec![
            (
                RawRestLambdaSettings {
                    image_uri: None,
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_IMAGE",
            ),
            (
                RawRestLambdaSettings {
                    image_uri: Some("123.dkr.ecr.us-east-1.amazonaws.com/rest:latest".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_IMAGE",
            ),
            (
                RawRestLambdaSettings {
                    role_arn: Some("rest-lambda".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_ROLE_ARN",
            ),
            (
                RawRestLambdaSettings {
                    subnets: Some(" , ".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_SUBNETS",
            ),
            (
                RawRestLambdaSettings {
                    security_groups: Some("subnet-1".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_SECURITY_GROUPS",
            ),
            (
                RawRestLambdaSettings {
                    memory_mb: 64,
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_MEMORY_MB",
            ),
            (
                RawRestLambdaSettings {
                    timeout_seconds: 0,
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_TIMEOUT_SECONDS",
            ),
            (
                RawRestLambdaSettings {
                    internal_url: Some("tenant-manager:3001".into()),
                    ..raw()
                },
                "SUPACTL_TENANT_MANAGER_INTERNAL_URL",
            ),
            (
                RawRestLambdaSettings {
                    tags: Some("supactl:stack".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_TAGS",
            ),
            (
                RawRestLambdaSettings {
                    name_prefix: None,
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_NAME_PREFIX",
            ),
            (
                RawRestLambdaSettings {
                    name_prefix: Some("rest-a-very-long-stack-prefix-".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_NAME_PREFIX",
            ),
            (
                RawRestLambdaSettings {
                    log_group: Some("no spaces".into()),
                    ..raw()
                },
                "SUPACTL_REST_LAMBDA_LOG_GROUP",
            ),
        ];
        for (r, name) in cases {
            let e = RestLambdaSettings::new(r).unwrap_err();
            assert_eq!(e.name, name, "{e}");
        }
    }
}
