//! `stacks`: supactl's infrastructure engine for a platform in the operator's own AWS account (network, data
//! and compute tiers), reconciled straight through the AWS SDK (no CloudFormation, no CDK).
//!
//! It owns: the environment config model and its validation ([`config`]), and an engine generic over resource
//! families: the desired resources computed from the config ([`desired`]), observation of what exists by
//! ownership tags ([`observe`]), the pure diff into a [`plan`], and [`apply`] (create/update/replace/delete in
//! dependency order), plus the commands built on them ([`ops`]: validate, plan, deploy, destroy, status,
//! outputs). Each family of resource kinds is one module of [`kinds`] behind the [`family::Family`] trait:
//! its desired state, observation, replace rules, create/update/delete and tag conversions. Families: the
//! network (VPC, subnets, internet and NAT gateways, route tables, security groups and rules derived from what
//! each part of the stack connects to: [`reach`]), Aurora Serverless v2, ElastiCache Redis, the platform's
//! Secrets Manager secrets, the storage bucket (S3), ECR, IAM, CloudWatch Logs, ECS (cluster, task definitions by image digest,
//! services), Cloud Map, the two ALBs and Application Auto Scaling. [`compute`] holds what the compute tier's
//! families share (the services deployed, image and certificate checks, outputs).
//!
//! It must not touch anything it does not own: every resource carries the tags `supactl:stack`, `supactl:env`
//! and `supactl:id`, and a resource found under one of our names without our tags is an error, never adopted.
//! This is the only crate of the workspace that depends on `aws-sdk-*` crates.

pub mod apply;
pub mod aws;
pub mod compute;
pub mod config;
pub mod cost;
pub mod desired;
pub mod ecr;
pub mod family;
pub mod kinds;
pub mod model;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod reach;
pub mod tail;

use std::time::Duration;

pub use apply::{ApplyOptions, Progress, Quiet, Quirks};
pub use aws::{AwsOptions, CallLog, Clients};
pub use config::{Config, ConfigError, Issue, LoadOptions, Loaded};
pub use model::{Kind, ResId};
pub use ops::Session;
pub use plan::{Action, Change, Plan};

/// Errors of the engine. Messages are lowercase and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("preflight: {} problem(s):\n{}", .0.len(), .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Preflight(Vec<Issue>),
    #[error("no region: set project.region in the config or pass --region")]
    NoRegion,
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
    #[error("{kind} {name} exists but is owned by {owner}, not this stack: rename it in the config or remove it")]
    NotOwned {
        kind: Kind,
        name: String,
        owner: String,
    },
    #[error("timed out after {timeout:?} waiting for {what}; re-run the command to resume")]
    Timeout { what: String, timeout: Duration },
    #[error(
        "gave up waiting for {what} (limit {timeout:?}): {detail}; re-run the command to resume"
    )]
    WaitFailed {
        what: String,
        timeout: Duration,
        detail: String,
    },
    #[error("deletion protection is on for {}: pass --force to turn it off and delete", names.join(", "))]
    DeletionProtected { names: Vec<String> },
    #[error("the plan changed since it was shown (someone else changed the account or the config): run the command again and review the new plan")]
    PlanChanged,
    #[error("{action:?} {id} failed: {source}; fix the cause and re-run deploy (it resumes from what exists)")]
    Apply {
        id: ResId,
        action: Action,
        #[source]
        source: Box<Error>,
    },
    #[error("aborted: the plan was not approved")]
    NotApproved,
    #[error("refusing to change anything without confirmation: there is no terminal to ask on, pass --yes")]
    NeedsConfirmation,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Process exit code: 2 for usage/config problems, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Preflight(_) | Error::NoRegion | Error::NeedsConfirmation => {
                2
            }
            _ => 1,
        }
    }
}
