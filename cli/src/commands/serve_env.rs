//! Connection settings `supactl serve` composes from parts, for ECS: a task gets a secret from Secrets Manager
//! only as a whole value (the RDS-managed master secret's `password` key, the Redis AUTH token), so the URLs
//! cannot be injected ready-made. Each part has its own variable; a full `SUPACTL_DATABASE_URL` /
//! `SUPACTL_REDIS_URL` still wins (TLS then goes in the URL: `?sslmode=verify-full&sslrootcert=…`).

use clap::Args;
use stacks::compute::env as task_env;
use std::fmt;
use supactl_common::pg_tls::{PgTls, SslMode};
use supactl_common::redact;

/// `SUPACTL_DATABASE_HOST`/`PORT`/`USER`/`NAME`/`PASSWORD`: the platform database server.
#[derive(Args, Clone)]
pub struct DatabaseParts {
    #[arg(long, env = task_env::DATABASE_HOST)]
    pub database_host: Option<String>,
    #[arg(long, env = task_env::DATABASE_PORT, default_value_t = 5432)]
    pub database_port: u16,
    #[arg(long, env = task_env::DATABASE_USER, default_value = "postgres")]
    pub database_user: String,
    #[arg(long, env = task_env::DATABASE_NAME, default_value = "postgres")]
    pub database_name: String,
    #[arg(long, env = task_env::DATABASE_PASSWORD, hide_env_values = true)]
    pub database_password: Option<String>,
    /// TLS to the platform database: disable (default), require, verify-ca or verify-full.
    #[arg(long, env = task_env::DATABASE_SSLMODE)]
    pub database_sslmode: Option<String>,
    /// PEM file of the CA certificates that verify it; default: the built-in Amazon RDS bundle.
    #[arg(long, env = "SUPACTL_DATABASE_SSLROOTCERT")]
    pub database_sslrootcert: Option<String>,
}

/// TLS settings from a mode and CA file variable pair, with errors that name them.
fn tls_parts(
    mode: Option<&str>,
    root_cert: Option<&str>,
    vars: (&str, &str),
) -> Result<PgTls, String> {
    let sslmode = match mode {
        Some(m) => m
            .parse::<SslMode>()
            .map_err(|e| format!("{}: {e}", vars.0))?,
        None if root_cert.is_some() => {
            return Err(format!(
                "{} is set but {} is not: set {}=verify-full",
                vars.1, vars.0, vars.0
            ))
        }
        None => SslMode::Disable,
    };
    PgTls::from_file(sslmode, root_cert).map_err(|e| format!("{}: {e}", vars.1))
}

impl fmt::Debug for DatabaseParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseParts")
            .field("database_host", &self.database_host)
            .field("database_port", &self.database_port)
            .field("database_user", &self.database_user)
            .field("database_name", &self.database_name)
            .field(
                "database_password",
                &redact::optional(&self.database_password),
            )
            .field("database_sslmode", &self.database_sslmode)
            .field("database_sslrootcert", &self.database_sslrootcert)
            .finish()
    }
}

/// A libpq key/value value: quoted, with `\` and `'` escaped.
fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

const DATABASE_TLS_VARS: (&str, &str) =
    ("SUPACTL_DATABASE_SSLMODE", "SUPACTL_DATABASE_SSLROOTCERT");

impl DatabaseParts {
    /// A libpq key/value connection string (no URL escaping needed for generated passwords), with
    /// `sslmode` and `sslrootcert` when set (checked here, so errors name their variables).
    pub fn connection_string(&self) -> Result<Option<String>, String> {
        let Some(host) = self.database_host.as_ref() else {
            return Ok(None);
        };
        let mode = self.database_sslmode.as_deref();
        let root_cert = self.database_sslrootcert.as_deref();
        tls_parts(mode, root_cert, DATABASE_TLS_VARS)?;
        let mut s = format!(
            "host={} port={} user={} dbname={} password={}",
            quoted(host),
            self.database_port,
            quoted(&self.database_user),
            quoted(&self.database_name),
            quoted(self.database_password.as_deref().unwrap_or(""))
        );
        if let Some(m) = mode {
            s.push_str(&format!(" sslmode={m}"));
        }
        if let Some(path) = root_cert {
            s.push_str(&format!(" sslrootcert={}", quoted(path)));
        }
        Ok(Some(s))
    }

    /// The platform database's connection string: `url` (SUPACTL_DATABASE_URL) or the parts.
    pub fn resolve(&self, url: Option<String>) -> Result<Option<String>, String> {
        match url {
            Some(_) if self.database_sslmode.is_some() || self.database_sslrootcert.is_some() => {
                Err(format!(
                    "{} and {} apply to SUPACTL_DATABASE_HOST and its parts; with SUPACTL_DATABASE_URL put \
                     sslmode=… and sslrootcert=… in the URL",
                    DATABASE_TLS_VARS.0, DATABASE_TLS_VARS.1
                ))
            }
            Some(url) => Ok(Some(url)),
            None => self.connection_string(),
        }
    }
}

/// `SUPACTL_REDIS_HOST`/`PORT`/`PASSWORD`/`TLS`: Redis (ElastiCache with in-transit encryption and AUTH).
#[derive(Args, Clone)]
pub struct RedisParts {
    #[arg(long, env = task_env::REDIS_HOST)]
    pub redis_host: Option<String>,
    #[arg(long, env = task_env::REDIS_PORT, default_value_t = 6379)]
    pub redis_port: u16,
    #[arg(long, env = task_env::REDIS_PASSWORD, hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Connect with TLS (`rediss://`)
    #[arg(long, env = task_env::REDIS_TLS)]
    pub redis_tls: bool,
}

impl fmt::Debug for RedisParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisParts")
            .field("redis_host", &self.redis_host)
            .field("redis_port", &self.redis_port)
            .field("redis_password", &redact::optional(&self.redis_password))
            .field("redis_tls", &self.redis_tls)
            .finish()
    }
}

/// Percent-encodes what is not unreserved in a URL's userinfo.
fn userinfo(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl RedisParts {
    pub fn url(&self) -> Option<String> {
        let host = self.redis_host.as_ref()?;
        let scheme = if self.redis_tls { "rediss" } else { "redis" };
        let auth = match &self.redis_password {
            Some(p) if !p.is_empty() => format!(":{}@", userinfo(p)),
            _ => String::new(),
        };
        Some(format!("{scheme}://{auth}{host}:{}", self.redis_port))
    }
}

/// `SUPACTL_WORKER_IDENTIFIER`/`HOST`/`PORT`/`USER`/`PASSWORD`: a worker server registered at start-up (on AWS,
/// the worker Aurora cluster).
#[derive(Args, Clone)]
pub struct WorkerParts {
    #[arg(long, env = task_env::WORKER_IDENTIFIER)]
    pub worker_identifier: Option<String>,
    #[arg(long, env = task_env::WORKER_HOST)]
    pub worker_host: Option<String>,
    #[arg(long, env = task_env::WORKER_PORT, default_value_t = 5432)]
    pub worker_port: u16,
    #[arg(long, env = task_env::WORKER_USER, default_value = "postgres")]
    pub worker_user: String,
    #[arg(long, env = task_env::WORKER_PASSWORD, hide_env_values = true)]
    pub worker_password: Option<String>,
    /// TLS to the worker: disable (default), require, verify-ca or verify-full.
    #[arg(long, env = task_env::WORKER_SSLMODE)]
    pub worker_sslmode: Option<String>,
    /// PEM file of the CA certificates that verify it; default: the built-in Amazon RDS bundle.
    #[arg(long, env = "SUPACTL_WORKER_SSLROOTCERT")]
    pub worker_sslrootcert: Option<String>,
}

impl fmt::Debug for WorkerParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerParts")
            .field("worker_identifier", &self.worker_identifier)
            .field("worker_host", &self.worker_host)
            .field("worker_port", &self.worker_port)
            .field("worker_user", &self.worker_user)
            .field("worker_password", &redact::optional(&self.worker_password))
            .field("worker_sslmode", &self.worker_sslmode)
            .field("worker_sslrootcert", &self.worker_sslrootcert)
            .finish()
    }
}

impl WorkerParts {
    pub fn spec(&self) -> Result<Option<tenant_manager::WorkerSpec>, String> {
        let Some(host) = self.worker_host.clone() else {
            return Ok(None);
        };
        let tls = tls_parts(
            self.worker_sslmode.as_deref(),
            self.worker_sslrootcert.as_deref(),
            ("SUPACTL_WORKER_SSLMODE", "SUPACTL_WORKER_SSLROOTCERT"),
        )?;
        Ok(Some(tenant_manager::WorkerSpec {
            identifier: self
                .worker_identifier
                .clone()
                .unwrap_or_else(|| "worker-1".into()),
            host,
            port: self.worker_port,
            admin_user: self.worker_user.clone(),
            admin_password: self.worker_password.clone().unwrap_or_default(),
            tls,
        }))
    }
}

/// How much of the platform database and of provisioning the tenant-manager uses at once
/// (`tenant_manager::Capacity`).
#[derive(Args, Debug, Clone)]
pub struct CapacityArgs {
    /// Platform-database connections of the admin API.
    #[arg(long, env = "SUPACTL_ADMIN_POOL_SIZE", value_parser = between_1_and_1000(),
          default_value_t = tenant_manager::Capacity::default().admin_pool)]
    pub admin_pool_size: usize,
    /// Platform-database connections kept for the data plane's key and project lookups.
    #[arg(long, env = "SUPACTL_LOOKUP_POOL_SIZE", value_parser = between_1_and_1000(),
          default_value_t = tenant_manager::Capacity::default().lookup_pool)]
    pub lookup_pool_size: usize,
    /// Projects created or deleted at once.
    #[arg(long, env = "SUPACTL_MAX_CONCURRENT_PROVISIONS", value_parser = between_1_and_1000(),
          default_value_t = tenant_manager::Capacity::default().provisions)]
    pub max_concurrent_provisions: usize,
    /// Creates and deletes that may wait for a slot; beyond, they get 429 with Retry-After.
    #[arg(long, env = "SUPACTL_PROVISION_QUEUE",
          default_value_t = tenant_manager::Capacity::default().provision_queue)]
    pub provision_queue: usize,
}

fn between_1_and_1000() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=1000)
}

impl CapacityArgs {
    pub fn capacity(&self) -> tenant_manager::Capacity {
        tenant_manager::Capacity {
            admin_pool: self.admin_pool_size,
            lookup_pool: self.lookup_pool_size,
            provisions: self.max_concurrent_provisions,
            provision_queue: self.provision_queue,
        }
    }
}

/// Realtime's settings in the gateway's process (`supactl up`, `supactl serve gateway`).
#[derive(Args, Debug, Clone)]
pub struct RealtimeArgs {
    /// Change-capture slots (postgres_changes) this process opens at once per database server, one per
    /// project with subscribers; each decodes the server's whole WAL. Past it a join gets a `system`
    /// error. 0 turns postgres_changes off. The server's `max_replication_slots` bounds it too.
    #[arg(long, env = "SUPACTL_REALTIME_CAPTURE_SLOTS", default_value_t = dataplane::DEFAULT_CAPTURE_SLOTS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub realtime_capture_slots: usize,
}

/// Storage in the gateway's process (`supactl serve gateway`): served when a bucket or a directory is
/// named, else not at all (`supactl up` always serves it, from its data directory).
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// The S3 bucket of the objects (on AWS the stack's bucket, set by the task definition); credentials
    /// come from the environment: AWS_ACCESS_KEY_ID/…, else the ECS task role.
    #[arg(long, env = task_env::STORAGE_S3_BUCKET, conflicts_with = "storage_dir")]
    pub storage_s3_bucket: Option<String>,
    /// The bucket's region (default: AWS_REGION).
    #[arg(long, env = task_env::STORAGE_S3_REGION, requires = "storage_s3_bucket")]
    pub storage_s3_region: Option<String>,
    /// Another S3 endpoint than AWS's, e.g. the emulator's `http://127.0.0.1:5000`.
    #[arg(long, env = task_env::STORAGE_S3_ENDPOINT, requires = "storage_s3_bucket")]
    pub storage_s3_endpoint: Option<String>,
    /// Keep the objects below this prefix of the bucket.
    #[arg(long, env = task_env::STORAGE_S3_PREFIX, requires = "storage_s3_bucket")]
    pub storage_s3_prefix: Option<String>,
    /// A directory of the objects instead (a replica beside `supactl up` names its `DATA_DIR/storage`).
    #[arg(long, env = "SUPACTL_STORAGE_DIR")]
    pub storage_dir: Option<std::path::PathBuf>,
}

impl StorageArgs {
    /// Where the objects are, or None when storage is not served.
    pub fn backend(&self) -> Option<storage::BackendConfig> {
        if let Some(bucket) = &self.storage_s3_bucket {
            return Some(storage::BackendConfig::S3(storage::S3Location {
                bucket: bucket.clone(),
                region: self.storage_s3_region.clone(),
                endpoint: self.storage_s3_endpoint.clone(),
                prefix: self.storage_s3_prefix.clone(),
            }));
        }
        self.storage_dir
            .clone()
            .map(|root| storage::BackendConfig::Local { root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        redis: RedisParts,
        #[command(flatten)]
        worker: WorkerParts,
    }

    #[derive(Parser)]
    struct StorageCmd {
        #[command(flatten)]
        storage: StorageArgs,
    }

    #[test]
    fn storage_is_a_bucket_a_directory_or_nothing() {
        let parse = |args: &[&str]| {
            StorageCmd::try_parse_from([&["x"], args].concat()).map(|c| c.storage.backend())
        };
        match parse(&[
            "--storage-s3-bucket",
            "b",
            "--storage-s3-region",
            "eu-west-1",
        ]) {
            Ok(Some(storage::BackendConfig::S3(l))) => assert_eq!(
                (l.bucket.as_str(), l.region.as_deref(), l.endpoint, l.prefix),
                ("b", Some("eu-west-1"), None, None)
            ),
            _ => panic!("a bucket is S3"),
        }
        assert!(matches!(
            parse(&["--storage-dir", "/d"]),
            Ok(Some(storage::BackendConfig::Local { .. }))
        ));
        assert!(matches!(parse(&[]), Ok(None)));
        // a region without a bucket, or a bucket and a directory, is a usage error
        assert!(parse(&["--storage-s3-region", "eu-west-1"]).is_err());
        assert!(parse(&["--storage-s3-bucket", "b", "--storage-dir", "/d"]).is_err());
    }

    #[test]
    fn parts_come_from_the_environment_as_ecs_sets_it() {
        // the only test of this binary that sets these variables
        std::env::set_var("SUPACTL_REDIS_HOST", "master.example");
        std::env::set_var("SUPACTL_REDIS_TLS", "true");
        std::env::set_var("SUPACTL_REDIS_PASSWORD", "tok");
        std::env::set_var("SUPACTL_WORKER_HOST", "worker.example");
        std::env::set_var("SUPACTL_WORKER_IDENTIFIER", "supabase-worker-cluster");
        std::env::set_var("SUPACTL_WORKER_PASSWORD", "pw");
        std::env::set_var("SUPACTL_WORKER_SSLMODE", "verify-full");
        let c = Cmd::try_parse_from(["x"]).unwrap();
        assert_eq!(c.redis.url().unwrap(), "rediss://:tok@master.example:6379");
        let w = c.worker.spec().unwrap().unwrap();
        // verify-full with the built-in Amazon RDS bundle
        assert_eq!(
            (w.tls.sslmode, w.tls.ssl_root_cert.as_deref()),
            (SslMode::VerifyFull, None)
        );
        assert_eq!(
            (
                w.identifier.as_str(),
                w.host.as_str(),
                w.port,
                w.admin_user.as_str(),
                w.admin_password.as_str()
            ),
            (
                "supabase-worker-cluster",
                "worker.example",
                5432,
                "postgres",
                "pw"
            )
        );
    }

    #[test]
    fn database_tls_parts_reach_the_connection_string_and_errors_name_the_variable() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), supactl_common::pg_tls::RDS_CA_BUNDLE).unwrap();
        let mut db = DatabaseParts {
            database_host: Some("db.example".into()),
            database_port: 5432,
            database_user: "postgres".into(),
            database_name: "postgres".into(),
            database_password: Some("pw".into()),
            database_sslmode: Some("verify-full".into()),
            database_sslrootcert: Some(ca.path().display().to_string()),
        };
        let s = db.resolve(None).unwrap().unwrap();
        let w = tenant_manager::WorkerSpec::from_url("x", &s).unwrap();
        assert_eq!(w.tls.sslmode, SslMode::VerifyFull);
        assert_eq!(
            w.tls.ssl_root_cert.as_deref(),
            Some(supactl_common::pg_tls::RDS_CA_BUNDLE)
        );
        let e = db.resolve(Some("postgres://h/db".into())).unwrap_err();
        assert!(
            e.starts_with("SUPACTL_DATABASE_SSLMODE and SUPACTL_DATABASE_SSLROOTCERT apply"),
            "{e}"
        );
        db.database_sslmode = Some("prefer".into());
        let e = db.connection_string().unwrap_err();
        assert!(
            e.starts_with("SUPACTL_DATABASE_SSLMODE: sslmode: prefer falls back"),
            "{e}"
        );
        db.database_sslmode = Some("verify-ca".into());
        db.database_sslrootcert = Some("/nonexistent/ca.pem".into());
        let e = db.connection_string().unwrap_err();
        assert!(
            e.starts_with(
                "SUPACTL_DATABASE_SSLROOTCERT: sslrootcert: cannot read /nonexistent/ca.pem"
            ),
            "{e}"
        );
    }

    #[test]
    fn parts_compose_urls() {
        let db = DatabaseParts {
            database_host: Some("db.example".into()),
            database_port: 5433,
            database_user: "postgres".into(),
            database_name: "supabase".into(),
            database_password: Some("p@ss w'rd\\".into()),
            database_sslmode: None,
            database_sslrootcert: None,
        };
        let s = db.connection_string().unwrap().unwrap();
        assert_eq!(
            s,
            r"host='db.example' port=5433 user='postgres' dbname='supabase' password='p@ss w\'rd\\'"
        );
        // what the tenant-manager's libpq parser makes of it
        let w = tenant_manager::WorkerSpec::from_url("x", &s).unwrap();
        assert_eq!(w.admin_password, "p@ss w'rd\\");
        assert_eq!((w.host.as_str(), w.port), ("db.example", 5433));
        assert_eq!(w.tls, PgTls::disabled());

        let r = RedisParts {
            redis_host: Some("master.x.cache.amazonaws.com".into()),
            redis_port: 6379,
            redis_password: Some("a/b:c".into()),
            redis_tls: true,
        };
        assert_eq!(
            r.url().unwrap(),
            "rediss://:a%2Fb%3Ac@master.x.cache.amazonaws.com:6379"
        );
        assert_eq!(
            RedisParts {
                redis_host: None,
                ..r
            }
            .url(),
            None
        );
    }

    #[test]
    fn debug_output_hides_the_passwords() {
        let db = DatabaseParts {
            database_host: Some("db.example".into()),
            database_port: 5432,
            database_user: "postgres".into(),
            database_name: "postgres".into(),
            database_password: Some("database-password-0123".into()),
            database_sslmode: None,
            database_sslrootcert: None,
        };
        let redis = RedisParts {
            redis_host: Some("redis.example".into()),
            redis_port: 6379,
            redis_password: Some("redis-password-0123".into()),
            redis_tls: true,
        };
        let worker = WorkerParts {
            worker_identifier: None,
            worker_host: Some("worker.example".into()),
            worker_port: 5432,
            worker_user: "postgres".into(),
            worker_password: Some("worker-password-0123".into()),
            worker_sslmode: None,
            worker_sslrootcert: None,
        };
        for text in [
            format!("{db:?}{redis:?}{worker:?}"),
            format!("{db:#?}{redis:#?}{worker:#?}"),
        ] {
            for secret in [
                "database-password-0123",
                "redis-password-0123",
                "worker-password-0123",
            ] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            for shown in ["db.example", "redis.example", "worker.example"] {
                assert!(text.contains(shown), "{shown} missing from {text}");
            }
        }
    }
}
