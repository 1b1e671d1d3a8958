//! The platform database: schema migrations and every query on workers, projects, keys and secrets.

use crate::error::ApiError;
use crate::sealed::Column;
use crate::Capacity;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::time::Duration;
use supactl_common::crypto::Cipher;
use supactl_common::ident::quote_ident;
use supactl_common::pg;
use supactl_common::pg_tls::{PgTls, SslMode};

pub const PLATFORM_DB: &str = "supactl_platform";

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_control_plane.sql")),
    (3, include_str!("../migrations/0003_rest_lambda.sql")),
    (4, include_str!("../migrations/0004_project_limits.sql")),
    (5, include_str!("../migrations/0005_audit_failed_auth.sql")),
    (6, include_str!("../migrations/0006_worker_tls.sql")),
    (7, include_str!("../migrations/0007_functions.sql")),
    (8, include_str!("../migrations/0008_dashboard_sessions.sql")),
    (9, include_str!("../migrations/0009_jwt_signing_keys.sql")),
];

const WORKER_SPEC_COLS: &str =
    "id, identifier, host, port, admin_user, admin_password, sslmode, ssl_root_cert";

/// A worker as registered (connection details in clear, for the caller's use only).
#[derive(Clone)]
pub struct WorkerSpec {
    pub identifier: String,
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password: String,
    /// TLS to this server, for the tenant-manager's admin connections and the data plane's alike.
    pub tls: PgTls,
}

impl std::fmt::Debug for WorkerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSpec")
            .field("identifier", &self.identifier)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("admin_user", &self.admin_user)
            .field("admin_password", &supactl_common::redact::Redacted)
            .finish()
    }
}

impl WorkerSpec {
    /// A worker reached with the credentials of a libpq URL (`postgres://user:pw@host:port/db`, with
    /// `sslmode` and `sslrootcert` as libpq reads them).
    pub fn from_url(identifier: &str, url: &str) -> Result<WorkerSpec, ApiError> {
        let (c, tls) = parse_url(url)?;
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => {
                return Err(ApiError::BadRequest(
                    "database url: a TCP host is required (unix sockets are not supported)".into(),
                ))
            }
        };
        Ok(WorkerSpec {
            identifier: identifier.to_string(),
            host,
            port: c.get_ports().first().copied().unwrap_or(5432),
            admin_user: c
                .get_user()
                .ok_or_else(|| ApiError::BadRequest("database url: a user is required".into()))?
                .to_string(),
            admin_password: c
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            tls,
        })
    }
}

/// A libpq connection string's settings and its TLS settings.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, PgTls), ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("database url: {e}"));
    let (rest, tls) = PgTls::from_conninfo(url).map_err(|e| bad(&e))?;
    let c = tokio_postgres::Config::from_str(&rest).map_err(|e| bad(&e))?;
    Ok((c, tls))
}

/// Where and how to connect: a config and its TLS settings.
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: PgTls,
}

/// A registered worker.
#[derive(Clone)]
pub struct Worker {
    pub id: i64,
    pub spec: WorkerSpec,
}

impl Worker {
    /// Connection config for `dbname` on this worker as its admin.
    pub fn pg_config(&self, dbname: &str) -> PgTarget {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.spec.host)
            .port(self.spec.port)
            .user(&self.spec.admin_user)
            .password(&self.spec.admin_password)
            .dbname(dbname)
            .application_name("supactl-tenant-manager")
            .connect_timeout(std::time::Duration::from_secs(10));
        PgTarget {
            config: c,
            tls: self.spec.tls.clone(),
        }
    }
}

/// A project row.
#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub project_ref: String,
    pub name: String,
    pub worker_id: i64,
    pub db_name: String,
    pub db_user: String,
    pub db_password: Vec<u8>,
    pub status: String,
    pub created_at: String,
    /// The REST Lambda function and its URL, in Lambda mode.
    pub rest_function_name: Option<String>,
    pub rest_function_url: Option<String>,
    /// Limits set for this project (overrides of the platform defaults).
    pub limits: crate::limits::Overrides,
}

/// A key row (ciphertext still sealed).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub project_ref: String,
    pub name: String,
    pub key_type: String,
    pub role: String,
    pub prefix: String,
    pub key_enc: Vec<u8>,
    pub status: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// Filters and page of a project listing.
#[derive(Debug, Default)]
pub struct ProjectQuery {
    pub search: Option<String>,
    pub status: Option<String>,
    pub worker_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// A key about to be stored.
pub struct NewKey {
    /// Chosen before the insert: the key is sealed for this row.
    pub id: String,
    pub name: String,
    pub key_type: &'static str,
    pub role: &'static str,
    pub prefix: String,
    pub hash: Vec<u8>,
    pub key_enc: Vec<u8>,
}

/// The platform database's two pools: admin work and provisioning on one, the data plane's lookups
/// (internal endpoint) on the other, so a burst of admin work never makes a request wait.
pub struct Store {
    pool: Pool,
    lookups: Pool,
}

/// How long admin work waits for a connection before answering 503 `platform_busy`.
const ADMIN_WAIT: Duration = Duration::from_secs(5);
/// How long a lookup waits: well within the data plane's 5 s request timeout, so that it gets a 503
/// (and answers from its cache) rather than timing out itself.
const LOOKUP_WAIT: Duration = Duration::from_secs(2);
/// Opening a platform-database connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of `size` connections configured by `cfg`.
fn pool(
    cfg: tokio_postgres::Config,
    tls: &PgTls,
    size: usize,
    wait: Duration,
) -> Result<Pool, ApiError> {
    let mgr = Manager::from_config(
        cfg,
        pg::connector(tls),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(ApiError::internal)
}

/// Connects to `target` (TLS as its settings ask). The error keeps its class (an unreachable server is
/// worth a retry) and says in full why the connection failed.
pub async fn connect(target: &PgTarget) -> Result<tokio_postgres::Client, ApiError> {
    pg::connect(&target.config, &target.tls).await.map_err(|e| {
        let detail = pg::connect_error(&e, &target.tls);
        match ApiError::from(e) {
            ApiError::Unavailable(_) => ApiError::Unavailable(detail),
            _ => ApiError::Internal(detail),
        }
    })
}

const PROJECT_COLS: &str = "ref, name, worker_id, db_name, db_user, db_password, status, \
     to_json(created_at) #>> '{}', rest_function_name, rest_function_url, limits::text";

fn project_row(r: &tokio_postgres::Row) -> ProjectRow {
    ProjectRow {
        project_ref: r.get(0),
        name: r.get(1),
        worker_id: r.get(2),
        db_name: r.get(3),
        db_user: r.get(4),
        db_password: r.get(5),
        status: r.get(6),
        created_at: r.get(7),
        rest_function_name: r.get(8),
        rest_function_url: r.get(9),
        limits: crate::limits::Overrides::from_stored(
            &serde_json::from_str(r.get::<_, &str>(10)).unwrap_or_default(),
        ),
    }
}

const KEY_COLS: &str = "id::text, project_ref, name, type, role, prefix, key_enc, status, description, to_json(created_at) #>> '{}'";

pub fn key_row(r: &tokio_postgres::Row) -> KeyRow {
    KeyRow {
        id: r.get(0),
        project_ref: r.get(1),
        name: r.get(2),
        key_type: r.get(3),
        role: r.get(4),
        prefix: r.get(5),
        key_enc: r.get(6),
        status: r.get(7),
        description: r.get(8),
        created_at: r.get(9),
    }
}

impl Store {
    /// Creates the platform database when missing, opens its pools and applies pending migrations.
    pub async fn open(url: &str, capacity: &Capacity) -> Result<Store, ApiError> {
        let (admin, tls) = parse_url(url)?;
        let client = connect(&PgTarget {
            config: admin.clone(),
            tls: tls.clone(),
        })
        .await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&PLATFORM_DB],
            )
            .await?
            .is_some();
        if !exists {
            if let Err(e) = client
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(PLATFORM_DB)))
                .await
            {
                // Another replica may have created it between the check and here.
                if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(e.into());
                }
            }
        }
        drop(client);
        let mut cfg = admin.clone();
        cfg.dbname(PLATFORM_DB)
            .application_name("supactl-tenant-manager")
            .ssl_mode(tls.wire_mode());
        let mut lookups = cfg.clone();
        lookups.application_name("supactl-tenant-manager-lookups");
        let store = Store {
            pool: pool(cfg, &tls, capacity.admin_pool, ADMIN_WAIT)?,
            lookups: pool(lookups, &tls, capacity.lookup_pool, LOOKUP_WAIT)?,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Serialise replicas migrating at once.
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7315001);
             CREATE SCHEMA IF NOT EXISTS supactl;
             CREATE TABLE IF NOT EXISTS supactl.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .await?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM supactl.schema_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if !applied.contains(version) {
                tracing::info!(version, "applying platform migration");
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO supactl.schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, ApiError> {
        Ok(self.pool.get().await?)
    }

    /// A connection of the data plane's lookup pool (see [`Store`]).
    pub async fn lookup_client(&self) -> Result<deadpool_postgres::Object, ApiError> {
        Ok(self.lookups.get().await?)
    }

    pub async fn upsert_worker(&self, w: &WorkerSpec, cipher: &Cipher) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO supactl.workers (identifier, host, port, admin_user, admin_password, sslmode, ssl_root_cert)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (identifier) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port,
               admin_user = EXCLUDED.admin_user, admin_password = EXCLUDED.admin_password,
               sslmode = EXCLUDED.sslmode, ssl_root_cert = EXCLUDED.ssl_root_cert",
            &[
                &w.identifier,
                &w.host,
                &i32::from(w.port),
                &w.admin_user,
                &Column::WorkerPassword.seal(cipher, &w.identifier, &w.admin_password),
                &w.tls.sslmode.as_str(),
                &w.tls.ssl_root_cert,
            ],
        )
        .await?;
        Ok(())
    }

    fn worker_from_row(r: &tokio_postgres::Row, cipher: &Cipher) -> Result<Worker, ApiError> {
        let port: i32 = r.get(3);
        let identifier: String = r.get(1);
        Ok(Worker {
            id: r.get(0),
            spec: WorkerSpec {
                admin_password: Column::WorkerPassword.open(cipher, &identifier, r.get(5))?,
                identifier,
                host: r.get(2),
                port: u16::try_from(port).map_err(ApiError::internal)?,
                admin_user: r.get(4),
                tls: PgTls {
                    sslmode: r
                        .get::<_, &str>(6)
                        .parse::<SslMode>()
                        .map_err(ApiError::internal)?,
                    ssl_root_cert: r.get(7),
                },
            },
        })
    }

    pub async fn workers(&self, cipher: &Cipher) -> Result<Vec<Worker>, ApiError> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {WORKER_SPEC_COLS} FROM supactl.workers WHERE status = 'active' ORDER BY id"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| Self::worker_from_row(r, cipher))
        .collect()
    }

    pub async fn worker(&self, id: i64, cipher: &Cipher) -> Result<Worker, ApiError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!("SELECT {WORKER_SPEC_COLS} FROM supactl.workers WHERE id = $1"),
                &[&id],
            )
            .await?;
        Self::worker_from_row(&r, cipher)
    }

    /// Reserves a ref (status COMING_UP). A taken ref is a conflict.
    pub async fn insert_project(&self, p: &ProjectRow) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO supactl.projects (ref, name, worker_id, db_name, db_user, db_password, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &p.project_ref,
                &p.name,
                &p.worker_id,
                &p.db_name,
                &p.db_user,
                &p.db_password,
                &p.status,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                ApiError::Conflict(format!("a project with ref {} already exists", p.project_ref))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    /// Stores the project's JWT secret (`(id, ciphertext)`), keys and REST function (Lambda mode) and
    /// marks it active, all or nothing.
    pub async fn activate_project(
        &self,
        project_ref: &str,
        (jwt_secret_id, jwt_secret_enc): (&str, &[u8]),
        keys: &[NewKey],
        rest_function: Option<(&str, &str)>,
        status: &str,
    ) -> Result<(), ApiError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO supactl.jwt_secrets (id, project_ref, secret_enc, status)
             VALUES ($1::text::uuid, $2, $3, 'current')",
            &[&jwt_secret_id, &project_ref, &jwt_secret_enc],
        )
        .await?;
        for k in keys {
            tx.execute(
                "INSERT INTO supactl.api_keys (id, project_ref, name, type, role, prefix, key_hash, key_enc)
                 VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8)",
                &[&k.id, &project_ref, &k.name, &k.key_type, &k.role, &k.prefix, &k.hash, &k.key_enc],
            )
            .await?;
        }
        let (function_name, function_url) = rest_function.unzip();
        tx.execute(
            "UPDATE supactl.projects SET status = $2, rest_function_name = $3, rest_function_url = $4,
               updated_at = now() WHERE ref = $1",
            &[&project_ref, &status, &function_name, &function_url],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_status(&self, project_ref: &str, status: &str) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE supactl.projects SET status = $2, updated_at = now() WHERE ref = $1",
            &[&project_ref, &status],
        )
        .await?;
        Ok(())
    }

    pub async fn delete_project(&self, project_ref: &str) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM supactl.projects WHERE ref = $1",
            &[&project_ref],
        )
        .await?;
        Ok(())
    }

    pub async fn project(&self, project_ref: &str) -> Result<Option<ProjectRow>, ApiError> {
        let c = self.client().await?;
        let sql = format!("SELECT {PROJECT_COLS} FROM supactl.projects WHERE ref = $1");
        Ok(c.query_opt(&sql, &[&project_ref])
            .await?
            .as_ref()
            .map(project_row))
    }

    /// One page of projects matching an optional search (ref or name, case-insensitive) and status, with
    /// the total number of matches.
    pub async fn projects(&self, q: &ProjectQuery) -> Result<(Vec<ProjectRow>, i64), ApiError> {
        let c = self.client().await?;
        let filter = "($1::text IS NULL OR ref ILIKE '%' || $1 || '%' OR name ILIKE '%' || $1 || '%')
                      AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR worker_id = $3)";
        let sql = format!(
            "SELECT {PROJECT_COLS} FROM supactl.projects WHERE {filter} ORDER BY created_at, ref LIMIT $4 OFFSET $5"
        );
        let rows = c
            .query(
                &sql,
                &[&q.search, &q.status, &q.worker_id, &q.limit, &q.offset],
            )
            .await?
            .iter()
            .map(project_row)
            .collect();
        let total: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM supactl.projects WHERE {filter}"),
                &[&q.search, &q.status, &q.worker_id],
            )
            .await?
            .get(0);
        Ok((rows, total))
    }

    pub async fn rename_project(&self, project_ref: &str, name: &str) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE supactl.projects SET name = $2, updated_at = now() WHERE ref = $1",
            &[&project_ref, &name],
        )
        .await?;
        Ok(())
    }

    pub async fn set_limits(
        &self,
        project_ref: &str,
        limits: &crate::limits::Overrides,
    ) -> Result<(), ApiError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE supactl.projects SET limits = $2::text::jsonb, updated_at = now() WHERE ref = $1",
            &[&project_ref, &limits.to_stored().to_string()],
        )
        .await?;
        Ok(())
    }

    /// Every project placed on a worker: its login role and limits (for reconciling the worker).
    pub async fn projects_on_worker(&self, worker_id: i64) -> Result<Vec<ProjectRow>, ApiError> {
        let c = self.client().await?;
        let sql = format!("SELECT {PROJECT_COLS} FROM supactl.projects WHERE worker_id = $1");
        Ok(c.query(&sql, &[&worker_id])
            .await?
            .iter()
            .map(project_row)
            .collect())
    }

    pub async fn keys(&self, project_ref: &str) -> Result<Vec<KeyRow>, ApiError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM supactl.api_keys WHERE project_ref = $1 AND status = 'active' ORDER BY created_at, type"
        );
        Ok(c.query(&sql, &[&project_ref])
            .await?
            .iter()
            .map(key_row)
            .collect())
    }

    /// The active key with this hash, on a project that exists (a data-plane lookup).
    pub async fn key_by_hash(&self, hash: &[u8]) -> Result<Option<KeyRow>, ApiError> {
        let c = self.lookups.get().await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM supactl.api_keys WHERE key_hash = $1 AND status = 'active'"
        );
        Ok(c.query_opt(&sql, &[&hash]).await?.as_ref().map(key_row))
    }

    /// What the data plane needs of a project: one query, and nothing of its worker but the address
    /// (its admin credentials are neither read nor decrypted). The data plane's lookups run on the
    /// lookup pool; the admin API's own calls into a project's services on the admin pool.
    pub async fn project_config(
        &self,
        project_ref: &str,
        caller: Caller,
    ) -> Result<Option<ConfigRow>, ApiError> {
        let c = match caller {
            Caller::DataPlane => self.lookups.get().await?,
            Caller::Admin => self.client().await?,
        };
        let row = c
            .query_opt(
                "WITH k AS (
                   SELECT s.id::text AS id, s.secret_enc, s.status, s.algorithm, s.created_at
                     FROM supactl.jwt_secrets s WHERE s.project_ref = $1
                     AND (s.status IN ('current', 'standby')
                          OR (s.status = 'previous' AND (s.expires_at IS NULL OR s.expires_at > now())))),
                 s AS (SELECT * FROM k WHERE algorithm = 'HS256' AND status <> 'standby'
                       ORDER BY status = 'current' DESC, created_at DESC),
                 a AS (SELECT * FROM k WHERE algorithm <> 'HS256'
                       ORDER BY status = 'current' DESC, created_at DESC)
                 SELECT p.ref, p.status, p.db_name, p.db_user, p.db_password, p.rest_function_url,
                   w.host, w.port, ARRAY(SELECT id FROM s), ARRAY(SELECT secret_enc FROM s), p.limits::text,
                   w.sslmode, w.ssl_root_cert,
                   ARRAY(SELECT id FROM a), ARRAY(SELECT secret_enc FROM a), ARRAY(SELECT status FROM a),
                   ARRAY(SELECT algorithm FROM a)
                 FROM supactl.projects p JOIN supactl.workers w ON w.id = p.worker_id
                 WHERE p.ref = $1",
                &[&project_ref],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ConfigRow {
            project_ref: r.get(0),
            status: r.get(1),
            db_name: r.get(2),
            db_user: r.get(3),
            db_password: r.get(4),
            rest_function_url: r.get(5),
            host: r.get(6),
            port: u16::try_from(r.get::<_, i32>(7)).map_err(ApiError::internal)?,
            jwt_secrets: r
                .get::<_, Vec<String>>(8)
                .into_iter()
                .zip(r.get::<_, Vec<Vec<u8>>>(9))
                .collect(),
            limits: crate::limits::Overrides::from_stored(
                &serde_json::from_str(r.get::<_, &str>(10)).unwrap_or_default(),
            ),
            tls: PgTls {
                sslmode: r
                    .get::<_, &str>(11)
                    .parse::<SslMode>()
                    .map_err(ApiError::internal)?,
                ssl_root_cert: r.get(12),
            },
            signing_keys: zip4(r.get(13), r.get(14), r.get(15), r.get(16)),
        }))
    }
}

/// Who reads a project's config, which decides the platform-database pool it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    DataPlane,
    Admin,
}

/// A project as the data plane sees it, secrets still sealed: its JWT secrets that verify tokens
/// (the current one, then previous ones until they expire), its asymmetric signing keys and its
/// database on its worker.
pub struct ConfigRow {
    pub project_ref: String,
    pub status: String,
    pub db_name: String,
    pub db_user: String,
    pub db_password: Vec<u8>,
    pub rest_function_url: Option<String>,
    pub host: String,
    pub port: u16,
    /// `(id, sealed secret)` of the JWT secrets that verify tokens, the signing one first.
    pub jwt_secrets: Vec<(String, Vec<u8>)>,
    pub limits: crate::limits::Overrides,
    /// TLS to the project's worker.
    pub tls: PgTls,
    /// `(id, sealed private key, status, algorithm)` of its asymmetric signing keys (standby, current,
    /// previous within their grace period), the current one first.
    pub signing_keys: Vec<(String, Vec<u8>, String, String)>,
}

/// Four parallel arrays as one list of tuples.
fn zip4(
    ids: Vec<String>,
    sealed: Vec<Vec<u8>>,
    statuses: Vec<String>,
    algs: Vec<String>,
) -> Vec<(String, Vec<u8>, String, String)> {
    ids.into_iter()
        .zip(sealed)
        .zip(statuses.into_iter().zip(algs))
        .map(|((id, sealed), (status, alg))| (id, sealed, status, alg))
        .collect()
}
