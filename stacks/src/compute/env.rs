//! The environment contract between the ECS tasks this crate deploys and `supactl serve` in them: the names of
//! the `SUPACTL_*` variables the task definitions set ([`crate::kinds::ecs::task`]) and the CLI reads. Defined
//! once here; both sides use these constants.

pub const LISTEN: &str = "SUPACTL_LISTEN";
pub const PORT: &str = "SUPACTL_PORT";
pub const ADMIN_PORT: &str = "SUPACTL_ADMIN_PORT";
pub const API_URL_TEMPLATE: &str = "SUPACTL_API_URL_TEMPLATE";
pub const BASE_DOMAIN: &str = "SUPACTL_BASE_DOMAIN";
pub const REST_MODE: &str = "SUPACTL_REST_MODE";
pub const SERVICE_TOKEN: &str = "SUPACTL_SERVICE_TOKEN";
pub const ADMIN_KEY: &str = "SUPACTL_ADMIN_KEY";
pub const ENCRYPTION_KEY: &str = "SUPACTL_ENCRYPTION_KEY";
pub const TENANT_MANAGER_URL: &str = "SUPACTL_TENANT_MANAGER_URL";
pub const TENANT_MANAGER_INTERNAL_URL: &str = "SUPACTL_TENANT_MANAGER_INTERNAL_URL";

pub const REDIS_HOST: &str = "SUPACTL_REDIS_HOST";
pub const REDIS_PORT: &str = "SUPACTL_REDIS_PORT";
pub const REDIS_TLS: &str = "SUPACTL_REDIS_TLS";
pub const REDIS_PASSWORD: &str = "SUPACTL_REDIS_PASSWORD";

pub const DATABASE_HOST: &str = "SUPACTL_DATABASE_HOST";
pub const DATABASE_PORT: &str = "SUPACTL_DATABASE_PORT";
pub const DATABASE_USER: &str = "SUPACTL_DATABASE_USER";
pub const DATABASE_NAME: &str = "SUPACTL_DATABASE_NAME";
pub const DATABASE_PASSWORD: &str = "SUPACTL_DATABASE_PASSWORD";
pub const DATABASE_SSLMODE: &str = "SUPACTL_DATABASE_SSLMODE";

pub const WORKER_IDENTIFIER: &str = "SUPACTL_WORKER_IDENTIFIER";
pub const WORKER_HOST: &str = "SUPACTL_WORKER_HOST";
pub const WORKER_PORT: &str = "SUPACTL_WORKER_PORT";
pub const WORKER_USER: &str = "SUPACTL_WORKER_USER";
pub const WORKER_PASSWORD: &str = "SUPACTL_WORKER_PASSWORD";
pub const WORKER_SSLMODE: &str = "SUPACTL_WORKER_SSLMODE";

pub const REST_LAMBDA_IMAGE: &str = "SUPACTL_REST_LAMBDA_IMAGE";
pub const REST_LAMBDA_ROLE_ARN: &str = "SUPACTL_REST_LAMBDA_ROLE_ARN";
pub const REST_LAMBDA_SUBNETS: &str = "SUPACTL_REST_LAMBDA_SUBNETS";
pub const REST_LAMBDA_SECURITY_GROUPS: &str = "SUPACTL_REST_LAMBDA_SECURITY_GROUPS";
pub const REST_LAMBDA_MEMORY_MB: &str = "SUPACTL_REST_LAMBDA_MEMORY_MB";
pub const REST_LAMBDA_TIMEOUT_SECONDS: &str = "SUPACTL_REST_LAMBDA_TIMEOUT_SECONDS";
pub const REST_LAMBDA_TAGS: &str = "SUPACTL_REST_LAMBDA_TAGS";
/// The gateway's functions upstream (`supactl serve functions`).
pub const FUNCTIONS_URL: &str = "SUPACTL_FUNCTIONS_URL";
/// The functions service's internal listener: its port there, its URL for the tenant-manager (logs).
pub const FUNCTIONS_INTERNAL_PORT: &str = "SUPACTL_FUNCTIONS_INTERNAL_PORT";
pub const FUNCTIONS_INTERNAL_URL: &str = "SUPACTL_FUNCTIONS_INTERNAL_URL";
/// Endpoints functions must not reach besides the built-in ones (the VPC's range on ECS).
pub const FUNCTIONS_DENY_NET: &str = "SUPACTL_FUNCTIONS_DENY_NET";
/// The gateway's trusted proxies (the VPC's range, where the ALB's nodes are).
pub const TRUSTED_PROXIES: &str = "SUPACTL_TRUSTED_PROXIES";
/// The gateway's storage bucket (S3) and its region; the endpoint and prefix are for tests and shared buckets.
pub const STORAGE_S3_BUCKET: &str = "SUPACTL_STORAGE_S3_BUCKET";
pub const STORAGE_S3_REGION: &str = "SUPACTL_STORAGE_S3_REGION";
pub const STORAGE_S3_ENDPOINT: &str = "SUPACTL_STORAGE_S3_ENDPOINT";
pub const STORAGE_S3_PREFIX: &str = "SUPACTL_STORAGE_S3_PREFIX";
pub const REST_LAMBDA_ARCHITECTURE: &str = "SUPACTL_REST_LAMBDA_ARCHITECTURE";
pub const REST_LAMBDA_NAME_PREFIX: &str = "SUPACTL_REST_LAMBDA_NAME_PREFIX";
pub const REST_LAMBDA_LOG_GROUP: &str = "SUPACTL_REST_LAMBDA_LOG_GROUP";
