//! The policy documents of the stack's roles: the ECS tasks' trust, the execution role's, each service's, and
//! the REST functions' (their boundary and their inline policy are the same document), and the gateway's use of
//! the storage bucket.

use serde_json::{json, Value};

use crate::aws::partition;
use crate::config::{Config, RestMode};
use crate::family::build::Inputs;
use crate::kinds::ecr::repository_arn;
use crate::kinds::ecs::injected_secrets;
use crate::kinds::lambda::functions_arn;
use crate::kinds::logs::{log_group_name, rest_log_group_name};
use crate::kinds::storage::{bucket_arn, bucket_name};
use crate::model::r;

const ASSUME: &str = "sts:AssumeRole";

fn ecs_trust(cfg: &Config) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": ASSUME,
            "Condition": {"StringEquals": {"aws:SourceAccount": cfg.account_id}}
        }]
    })
}

pub(super) fn statements(stmts: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": stmts})
}

/// The REST Lambda's permissions: its boundary and its inline policy are the same document.
pub(super) fn rest_lambda_statements(cfg: &Config, region: &str) -> Vec<Value> {
    let p = partition(region);
    let acct = &cfg.account_id;
    let rest_logs = rest_log_group_name(cfg);
    let mut s = vec![
        json!({
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses"
            ],
            "Resource": "*"
        }),
        // the stack's REST log group only (the functions' LoggingConfig names it; it exists, with retention)
        json!({
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                format!("arn:{p}:logs:{region}:{acct}:log-group:{rest_logs}"),
                format!("arn:{p}:logs:{region}:{acct}:log-group:{rest_logs}:*")
            ]
        }),
    ];
    if let Some(repo) = repository_arn(cfg, region, "rest-lambda") {
        s.push(json!({
            "Sid": "PullRestImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repo
        }));
    }
    s
}

/// The gateway's use of the storage bucket (the Storage API): its objects, nothing else; with SSE-KMS, the
/// key too (S3 encrypts and decrypts with the caller's permissions).
fn storage_statements(cfg: &Config, region: &str) -> Vec<Value> {
    let arn = bucket_arn(&bucket_name(cfg, region), region);
    let mut s = vec![
        json!({"Sid": "StorageObjects", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                       "s3:ListMultipartUploadParts"],
            "Resource": format!("{arn}/*")}),
        json!({"Sid": "StorageList", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn}),
    ];
    if let Some(key) = &cfg.compute.storage.kms_key_arn {
        s.push(json!({"Sid": "StorageKey", "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key}));
    }
    s
}

/// A role to create: logical key, trust policy, inline policies (name, document), bounded by the boundary.
pub(super) type Role = (&'static str, Value, Vec<(&'static str, Value)>, bool);

/// The roles with their trust and inline policies, the REST role before the tenant-manager's (whose policy
/// names it).
pub(super) fn roles(cfg: &Config, inputs: &Inputs<'_>) -> Vec<Role> {
    let c = &cfg.compute;
    let region = inputs.region;
    let p = partition(region);
    let acct = cfg.account_id.clone();
    let lambda_mode = c.rest.mode == RestMode::Lambda;
    let log_group = log_group_name(cfg);
    let log_arn = format!("arn:{p}:logs:{region}:{acct}:log-group:{log_group}:*");
    let task_images: Vec<String> = c
        .services
        .iter()
        .filter_map(|s| repository_arn(cfg, region, s.name))
        .collect();
    let mut exec = vec![
        json!({"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
        json!({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": log_arn}),
        json!({"Sid": "InjectedSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
               "Resource": injected_secrets(cfg, inputs)}),
    ];
    if !task_images.is_empty() {
        exec.push(json!({"Sid": "PullImages", "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": task_images}));
    }
    // this stack's functions only: another stack in the account and region has another prefix
    let functions = functions_arn(cfg, region);
    let mut gateway = vec![("storage", statements(storage_statements(cfg, region)))];
    if lambda_mode {
        // a Function URL created since October 2025 needs both actions from its caller; the second is not
        // narrowed with lambda:InvokedViaFunctionUrl, which AWS documents for resource-based policies
        // (AddPermission) only
        gateway.push((
            "invoke-rest",
            statements(vec![
                json!({"Sid": "InvokeRestFunctionUrls", "Effect": "Allow",
                "Action": ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"],
                "Resource": functions.clone()}),
            ]),
        ));
    }
    let mut roles: Vec<Role> = vec![
        (
            "execution",
            ecs_trust(cfg),
            vec![("pull-and-log", statements(exec))],
            false,
        ),
        ("gateway", ecs_trust(cfg), gateway, false),
    ];
    let mut tm = vec![json!({
        "Sid": "ProjectSecrets",
        "Effect": "Allow",
        "Action": [
            "secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret",
            "secretsmanager:TagResource"
        ],
        "Resource": format!("arn:{p}:secretsmanager:{region}:{acct}:secret:{}*", c.secrets_prefix)
    })];
    if lambda_mode {
        tm.push(json!({
            "Sid": "RestFunctions",
            "Effect": "Allow",
            "Action": [
                "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
                "lambda:CreateFunctionUrlConfig", "lambda:GetFunctionUrlConfig",
                "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
                "lambda:AddPermission", "lambda:RemovePermission", "lambda:TagResource"
            ],
            "Resource": functions
        }));
        tm.push(json!({
            "Sid": "PassRestRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": r("iam/role/rest-lambda"),
            "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
        }));
        tm.push(json!({
            "Sid": "VpcLookupsForFunctions",
            "Effect": "Allow",
            "Action": ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
            "Resource": "*"
        }));
    }
    // before the tenant-manager's role, whose policy names it
    if lambda_mode {
        roles.push((
            "rest-lambda",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ASSUME}]}),
            vec![(
                "rest-lambda",
                statements(rest_lambda_statements(cfg, region)),
            )],
            true,
        ));
    }
    roles.push((
        "tenant-manager",
        ecs_trust(cfg),
        vec![("control-plane", statements(tm))],
        false,
    ));
    // no permission at all: the functions service calls no AWS API
    roles.push(("functions", ecs_trust(cfg), vec![], false));
    roles
}
