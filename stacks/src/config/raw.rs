//! Stage one: the config file exactly as written (field names of the original CDK project's `config.json`).
//!
//! Everything is optional or loosely typed here so that the second stage ([`super::Config::try_from`]) can
//! report *all* problems with their JSON path and a fix, instead of serde stopping at the first one.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawConfig {
    pub project: Option<RawProject>,
    pub infra_stack: Option<RawInfraStack>,
    pub domain: Option<RawDomain>,
    pub secrets: Option<RawSecrets>,
    pub rds: Option<RawRds>,
    pub worker_rds: Option<RawRds>,
    pub redis: Option<RawRedis>,
    /// Compute tier (its own issue); parsed so unknown keys inside it are reported.
    pub ecs_task_stack: Option<RawEcsTaskStack>,
    /// Not in the original: how REST runs (Lambda per project, or inside the gateway).
    pub rest: Option<RawRest>,
    /// Not in the original (it has no Storage): the environment's storage bucket.
    pub storage: Option<RawStorage>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawProject {
    pub name: Option<String>,
    pub environment: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawInfraStack {
    pub vpc: Option<RawVpc>,
    pub cluster: Option<RawNamed>,
    pub load_balancer: Option<RawNamed>,
    pub studio_load_balancer: Option<RawNamed>,
    pub certificate: Option<RawCertificate>,
    pub ecr: Option<RawEcr>,
    /// Not in the original (3 months there); optional override of the ECS log group's retention.
    pub log_retention_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawVpc {
    pub max_azs: Option<i64>,
    pub nat_gateways: Option<i64>,
    /// Not in the original (CDK's default 10.0.0.0/16 was implied); optional.
    pub cidr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNamed {
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCertificate {
    pub arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEcr {
    pub repositories: Option<BTreeMap<String, RawEcrRepository>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEcrRepository {
    pub uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawDomain {
    pub base_domain: Option<String>,
    pub api_subdomain: Option<String>,
    /// Not in the original (Studio's `studio.` there): the admin ALB's host name label, default `admin`.
    pub admin_subdomain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSecrets {
    pub prefix: Option<String>,
}

/// `rds` and `workerRds` share a shape (`engine` only appears in `rds`, `clusterIdentifier` only in `workerRds`
/// in the original files; both are accepted in both).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRds {
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub database_name: Option<String>,
    pub port: Option<i64>,
    pub cluster_identifier: Option<String>,
    #[serde(rename = "serverlessV2MinCapacity")]
    pub serverless_v2_min_capacity: Option<f64>,
    #[serde(rename = "serverlessV2MaxCapacity")]
    pub serverless_v2_max_capacity: Option<f64>,
    pub readers: Option<i64>,
    /// Not in the original (derived from the environment there); optional override.
    pub deletion_protection: Option<bool>,
    /// Not in the original (30 days in production, 7 otherwise); optional override.
    pub backup_retention_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRedis {
    pub node_type: Option<String>,
    pub num_cache_clusters: Option<i64>,
    /// Not in the original (on when ≥ 2 nodes there); optional override.
    pub multi_az: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEcsTaskStack {
    pub services: Option<BTreeMap<String, RawEcsService>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawEcsService {
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub desired_count: Option<i64>,
    /// Not in the original (autoscaling was min 2, max 20 on every service there): the autoscaling range,
    /// both default to `desiredCount` (no autoscaling).
    pub min_count: Option<i64>,
    pub max_count: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRest {
    /// `lambda` (one function per project, the default as in the original) or `service` (inside the gateway).
    pub mode: Option<String>,
    pub memory_mb: Option<i64>,
    pub timeout_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawStorage {
    /// A KMS key (ARN) for the bucket's default encryption; SSE-S3 (AES256) without one.
    pub kms_key_arn: Option<String>,
    /// Days after which an incomplete multipart upload is aborted (default 7).
    pub abort_incomplete_upload_days: Option<i64>,
}
