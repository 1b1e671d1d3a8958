//! Running statements: one pool per project (capped, evicted when idle) and one pipelined round trip per
//! request — `BEGIN`, the role and claims `set_config`, the statement and `COMMIT` are written together
//! and their replies read together. Statements are prepared once per connection (PostgreSQL infers each
//! parameter's type) and reused by every request of the same shape.

use crate::error::RestError;
use crate::sql::Statement;
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use postgres_types::{to_sql_checked, Format, IsNull, ToSql, Type};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use supactl_common::keys::Role;
use supactl_common::wire::DbConfig;

/// A bind parameter sent in text format. Statements are prepared without parameter types, so PostgreSQL
/// infers each from its context exactly as for a quoted literal (`'42'` against an integer column is an
/// integer) and parses the text with that type's input function.
#[derive(Debug)]
struct Text<'a>(&'a str);

impl ToSql for Text<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// Sets the role and claims for the transaction (PostgREST's GUCs).
const SETUP: &str =
    "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)";

/// Errors a re-prepared statement may not hit again.
fn stale_statement(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::FEATURE_NOT_SUPPORTED
            || *c == SqlState::DATATYPE_MISMATCH
            || *c == SqlState::UNDEFINED_FUNCTION
    )
}

/// What a statement produced.
#[derive(Debug)]
pub struct Outcome {
    pub body: String,
    pub page: i64,
    pub total: Option<i64>,
}

struct Entry {
    pool: Pool,
    db: DbConfig,
    last_used: Instant,
    primary_keys: HashMap<String, Arc<Vec<String>>>,
}

/// Per-project pools.
pub struct Pools {
    max_size: usize,
    idle: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl Pools {
    /// Pools of at most `max_size` connections, dropped after `idle` without use (checked by a
    /// background task that ends with the last reference).
    pub fn new(max_size: usize, idle: Duration) -> Arc<Pools> {
        let pools = Arc::new(Pools {
            max_size,
            idle,
            map: Mutex::new(HashMap::new()),
        });
        let weak: Weak<Pools> = Arc::downgrade(&pools);
        tokio::spawn(async move {
            let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
            loop {
                tokio::time::sleep(period).await;
                let Some(p) = weak.upgrade() else { break };
                p.evict_idle();
            }
        });
        pools
    }

    fn evict_idle(&self) {
        let now = Instant::now();
        let mut map = self.map.lock().expect("pools lock");
        map.retain(|project, e| {
            let keep = now.duration_since(e.last_used) < self.idle;
            if !keep {
                tracing::debug!(%project, "evicting idle project pool");
            }
            keep
        });
    }

    /// Drops a project's pool (deleted or paused project).
    pub fn remove(&self, project_ref: &str) {
        self.map.lock().expect("pools lock").remove(project_ref);
    }

    /// Number of projects holding a pool.
    pub fn len(&self) -> usize {
        self.map.lock().expect("pools lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pool(&self, project_ref: &str, db: &DbConfig) -> Pool {
        let mut map = self.map.lock().expect("pools lock");
        if let Some(e) = map.get_mut(project_ref) {
            if e.db == *db {
                e.last_used = Instant::now();
                return e.pool.clone();
            }
        }
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&db.host)
            .port(db.port)
            .dbname(&db.dbname)
            .user(&db.user)
            .password(&db.password)
            .application_name("supactl-rest")
            .connect_timeout(Duration::from_secs(5));
        let mgr = Manager::from_config(
            cfg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(self.max_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(5)))
            .wait_timeout(Some(Duration::from_secs(10)))
            .build()
            .expect("pool config is valid");
        map.insert(
            project_ref.to_string(),
            Entry {
                pool: pool.clone(),
                db: db.clone(),
                last_used: Instant::now(),
                primary_keys: HashMap::new(),
            },
        );
        pool
    }

    /// The primary-key columns of `schema.relation` (cached per project until its pool is dropped).
    pub async fn primary_key(
        &self,
        project_ref: &str,
        db: &DbConfig,
        qualified: &str,
    ) -> Result<Arc<Vec<String>>, RestError> {
        let pool = self.pool(project_ref, db);
        if let Some(pk) = self
            .map
            .lock()
            .expect("pools lock")
            .get(project_ref)
            .and_then(|e| e.primary_keys.get(qualified).cloned())
        {
            return Ok(pk);
        }
        let client = pool
            .get()
            .await
            .map_err(|e| RestError::Unavailable(e.to_string()))?;
        let rows = client
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
                &[&qualified],
            )
            .await
            .map_err(|e| RestError::from_pg(&e, Role::ServiceRole))?;
        let pk = Arc::new(
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>(),
        );
        if let Some(e) = self.map.lock().expect("pools lock").get_mut(project_ref) {
            e.primary_keys.insert(qualified.to_string(), pk.clone());
        }
        Ok(pk)
    }

    /// Runs `stmt` as `role` with `claims` in one transaction and one round trip.
    pub async fn run(
        &self,
        project_ref: &str,
        db: &DbConfig,
        role: Role,
        claims: &str,
        stmt: &Statement,
    ) -> Result<Outcome, RestError> {
        let pool = self.pool(project_ref, db);
        let client = pool
            .get()
            .await
            .map_err(|e| RestError::Unavailable(e.to_string()))?;
        let params: Vec<Text> = stmt.params.iter().map(|p| Text(p)).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let (role_param, claims_param) = (Text(role.as_str()), Text(claims));
        let setup_params: [&(dyn ToSql + Sync); 2] = [&role_param, &claims_param];
        let mut retried = false;
        let rows = loop {
            // Prepared once per connection: later requests of the same shape skip parsing and planning.
            let prepared = async {
                Ok::<_, tokio_postgres::Error>((
                    client.prepare_cached(SETUP).await?,
                    client.prepare_cached(&stmt.sql).await?,
                ))
            };
            let (setup, main) = prepared.await.map_err(|e| RestError::from_pg(&e, role))?;
            let (begin, set, result, commit) = tokio::join!(
                client.batch_execute("BEGIN"),
                client.query(&setup, &setup_params),
                client.query(&main, &params),
                client.batch_execute("COMMIT"),
            );
            begin.map_err(|e| RestError::from_pg(&e, role))?;
            set.map_err(|e| RestError::from_pg(&e, role))?;
            commit.map_err(|e| RestError::from_pg(&e, role))?;
            match result {
                Ok(rows) => break rows,
                // A cached statement can go stale when the schema changes under it (a column's type,
                // say): forget the connection's statements and prepare again, once.
                Err(e) if !retried && stale_statement(&e) => {
                    client.statement_cache.clear();
                    retried = true;
                }
                Err(e) => return Err(RestError::from_pg(&e, role)),
            }
        };
        let row = rows
            .first()
            .ok_or_else(|| RestError::Unavailable("statement returned no row".into()))?;
        Ok(Outcome {
            body: row.get(0),
            page: row.get(1),
            total: row.get(2),
        })
    }
}
