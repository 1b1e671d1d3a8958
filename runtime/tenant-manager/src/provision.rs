//! Work on worker servers: the tenant template, and each project's database and login role.

use crate::error::ApiError;
use crate::store::{connect, Worker};
use sha2::{Digest, Sha256};
use supactl_common::ident::{quote_ident, quote_literal};

pub const TEMPLATE_DB: &str = "supactl_template";
const ROLES_SQL: &str = include_str!("../../../templates/roles.sql");
const TENANT_SQL: &str = include_str!("../../../templates/tenant.sql");
/// What auth needs in each tenant database (GoTrue's tables, the project's auth settings, OAuth).
const AUTH_SQL: &str = include_str!("../../../templates/auth.sql");
/// What the REST engine needs in each tenant database (schema-cache reload on DDL, its settings).
const REST_SQL: &str = include_str!("../../../templates/rest.sql");
/// Takes the cluster-wide catalogs away from project roles.
const CONFINE_SQL: &str = include_str!("../../../templates/confine.sql");
/// What realtime needs in each tenant database (`realtime.messages` for private channels, the change
/// capture functions).
const REALTIME_SQL: &str = include_str!("../../../templates/realtime.sql");
/// What storage needs in each tenant database (`storage.buckets`, `storage.objects`, their helpers).
const STORAGE_SQL: &str = include_str!("../../../templates/storage.sql");
/// The cluster role whose members may capture their database's changes (templates/roles.sql).
const CAPTURE_ROLE: &str = "supactl_realtime";

/// The project schema: the scripts every project database holds, in order, on top of [`TENANT_SQL`].
/// Each is idempotent: it builds into the template, and [`upgrade_projects`] runs them all again on a
/// project database created from an earlier template, which keeps its rows and gains what is new.
const PROJECT_SCHEMA: [&str; 5] = [REALTIME_SQL, STORAGE_SQL, AUTH_SQL, REST_SQL, CONFINE_SQL];

/// Identifies the template's content, so a changed template is rebuilt.
fn template_version() -> String {
    let mut h = Sha256::new();
    h.update(ROLES_SQL);
    h.update(TENANT_SQL);
    for sql in PROJECT_SCHEMA {
        h.update(sql);
    }
    format!("supactl template {}", &hex::encode(h.finalize())[..16])
}

/// The version of [`PROJECT_SCHEMA`] a project database holds, as its comment: set when the database is
/// created from the template, and by [`upgrade_projects`] once it has brought an older one up to date.
fn schema_version() -> String {
    let mut h = Sha256::new();
    for sql in PROJECT_SCHEMA {
        h.update(sql);
    }
    format!("supactl schema {}", &hex::encode(h.finalize())[..16])
}

/// Runs the [`PROJECT_SCHEMA`] scripts on a database.
async fn apply_project_schema(db: &tokio_postgres::Client) -> Result<(), ApiError> {
    for sql in PROJECT_SCHEMA {
        db.batch_execute(sql).await?;
    }
    Ok(())
}

/// Creates the cluster roles and (re)builds the template database on `worker` when it is missing or
/// out of date. Safe to run from several replicas at once (advisory lock).
pub async fn ensure_template(worker: &Worker) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    admin
        .batch_execute("SELECT pg_advisory_lock(7315002)")
        .await?;
    let result = build_template(worker, &admin).await;
    admin
        .batch_execute("SELECT pg_advisory_unlock(7315002)")
        .await?;
    result
}

async fn build_template(worker: &Worker, admin: &tokio_postgres::Client) -> Result<(), ApiError> {
    admin.batch_execute(ROLES_SQL).await?;
    confine_public(worker, admin).await?;
    reset_shared_roles(worker, admin).await;
    let version = template_version();
    let current: Option<String> = admin
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&TEMPLATE_DB],
        )
        .await?
        .and_then(|r| r.get(0));
    if current.as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    let t = quote_ident(TEMPLATE_DB);
    if current.is_some() || template_exists(admin).await? {
        tracing::info!(worker = %worker.spec.identifier, "rebuilding the tenant template");
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {t} IS_TEMPLATE false; DROP DATABASE {t} WITH (FORCE);"
            ))
            .await?;
    }
    admin.batch_execute(&format!("CREATE DATABASE {t}")).await?;
    let tpl = connect(&worker.pg_config(TEMPLATE_DB)).await?;
    tpl.batch_execute(TENANT_SQL).await?;
    apply_project_schema(&tpl).await?;
    drop(tpl);
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE {t} IS {}; ALTER DATABASE {t} IS_TEMPLATE true ALLOW_CONNECTIONS false;",
            quote_literal(&version)
        ))
        .await?;
    Ok(())
}

async fn template_exists(admin: &tokio_postgres::Client) -> Result<bool, ApiError> {
    Ok(admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&TEMPLATE_DB],
        )
        .await?
        .is_some())
}

/// Takes CONNECT and TEMPORARY away from PUBLIC on every database of the worker that is not a project's
/// (`postgres`, `template1`, the platform and template databases, anything else), so a project's login role,
/// which holds CONNECT on its own database only, can reach no other. A database the admin neither owns nor
/// can act for as superuser (RDS's `rdsadmin`, say) is left alone and named in the log.
async fn confine_public(worker: &Worker, admin: &tokio_postgres::Client) -> Result<(), ApiError> {
    let rows = admin
        .query(
            "SELECT d.datname, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                 OR pg_has_role(current_user, d.datdba, 'MEMBER')
             FROM pg_database d
             WHERE d.datname NOT LIKE 'project\\_%' AND d.datname <> 'template0'
               AND (d.datacl IS NULL OR EXISTS (
                 SELECT 1 FROM aclexplode(d.datacl) a
                 WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY')))",
            &[],
        )
        .await?;
    for r in rows {
        let (name, allowed): (String, bool) = (r.get(0), r.get(1));
        if !allowed {
            tracing::warn!(worker = %worker.spec.identifier, database = %name,
                "cannot revoke PUBLIC's CONNECT on a database the worker's admin does not own; project roles can connect to it");
            continue;
        }
        admin
            .batch_execute(&format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
                quote_ident(&name)
            ))
            .await?;
        tracing::info!(worker = %worker.spec.identifier, database = %name, "revoked PUBLIC's CONNECT and TEMPORARY");
    }
    Ok(())
}

/// The cluster-wide API roles are shared by every project on the worker, and PostgreSQL lets a role change
/// its own settings and password (`ALTER ROLE anon SET …` from a function any project runs as anon). Those
/// settings never take effect (the roles cannot log in, and `SET ROLE` does not apply them; the data plane
/// sets what it relies on per request), but they are cleared here so that what one project wrote is not
/// left for the others to read, and reported.
async fn reset_shared_roles(worker: &Worker, admin: &tokio_postgres::Client) {
    const SHARED: &str = "'anon', 'authenticated', 'service_role', 'supabase_auth_admin'";
    let found = admin
        .query(
            &format!(
                "SELECT r.rolname, d.datname FROM pg_db_role_setting s
                 JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
                 WHERE r.rolname IN ({SHARED})"
            ),
            &[],
        )
        .await;
    let rows = match found {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(worker = %worker.spec.identifier, error = %e, "cannot read the shared roles' settings");
            return;
        }
    };
    for r in rows {
        let (role, db): (String, Option<String>) = (r.get(0), r.get(1));
        let sql = match &db {
            Some(d) => format!(
                "ALTER ROLE {} IN DATABASE {} RESET ALL",
                quote_ident(&role),
                quote_ident(d)
            ),
            None => format!("ALTER ROLE {} RESET ALL", quote_ident(&role)),
        };
        match admin.batch_execute(&sql).await {
            Ok(()) => tracing::warn!(worker = %worker.spec.identifier, %role, database = ?db,
                "settings of a shared API role had been changed from inside a project; reset"),
            Err(e) => tracing::warn!(worker = %worker.spec.identifier, %role, error = %e,
                "cannot reset a shared API role's settings"),
        }
    }
}

/// Brings project databases created from an earlier template up to the current [`PROJECT_SCHEMA`]: the
/// template gives new ones all of it, but a database keeps what its template had when it was created. A
/// database whose comment is not the current [`schema_version`] gets every script again (idempotent,
/// keeping its rows), then the mark.
pub async fn upgrade_projects(worker: &Worker, databases: &[String]) -> Result<(), ApiError> {
    if databases.is_empty() {
        return Ok(());
    }
    let admin = connect(&worker.pg_config("postgres")).await?;
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    if !superuser {
        tracing::warn!(worker = %worker.spec.identifier,
            "the worker's admin is not a superuser: project roles can still read the cluster-wide catalogs (other projects' database and role names, sessions)");
    }
    let version = schema_version();
    let stale: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname = ANY($1)
               AND shobj_description(oid, 'pg_database') IS DISTINCT FROM $2",
            &[&databases, &version],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for db in &stale {
        let c = connect(&worker.pg_config(db)).await?;
        apply_project_schema(&c).await?;
        admin
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                quote_ident(db),
                quote_literal(&version)
            ))
            .await?;
        tracing::info!(worker = %worker.spec.identifier, database = %db, %version, "project database schema upgraded");
    }
    Ok(())
}

/// Brings project login roles made by earlier releases up to date: each gets its configured `CONNECTION
/// LIMIT` where it differs (roles created before limits existed have none) and membership in the
/// change-capture role where it lacks it.
pub async fn reconcile_login_roles(
    worker: &Worker,
    roles: &[(String, u32)],
) -> Result<(), ApiError> {
    if roles.is_empty() {
        return Ok(());
    }
    let admin = connect(&worker.pg_config("postgres")).await?;
    let names: Vec<&str> = roles.iter().map(|(r, _)| r.as_str()).collect();
    let current: std::collections::HashMap<String, i32> = admin
        .query(
            "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY($1)",
            &[&names],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (role, limit) in roles {
        if current.get(role).is_some_and(|c| *c != *limit as i32) {
            set_connection_limit_on(&admin, role, *limit).await?;
        }
    }
    let missing: Vec<String> = admin
        .query(
            "SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = ANY($1)
               AND NOT pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = $2), 'MEMBER')",
            &[&names, &CAPTURE_ROLE],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for role in missing {
        admin
            .batch_execute(&format!(
                "GRANT {} TO {}",
                quote_ident(CAPTURE_ROLE),
                quote_ident(&role)
            ))
            .await?;
        tracing::info!(worker = %worker.spec.identifier, %role, "login role may now capture its database's changes");
    }
    Ok(())
}

/// Changes a project login role's connection limit (existing sessions are not closed).
pub async fn set_connection_limit(
    worker: &Worker,
    db_user: &str,
    limit: u32,
) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    set_connection_limit_on(&admin, db_user, limit).await
}

async fn set_connection_limit_on(
    admin: &tokio_postgres::Client,
    db_user: &str,
    limit: u32,
) -> Result<(), ApiError> {
    admin
        .batch_execute(&format!(
            "ALTER ROLE {} CONNECTION LIMIT {limit}",
            quote_ident(db_user)
        ))
        .await?;
    Ok(())
}

/// Creates the project's login role (at most `connection_limit` sessions) and database. When a step
/// fails, the steps already done are undone (and only those: an object that existed before is never
/// dropped).
pub async fn create_database(
    worker: &Worker,
    db_name: &str,
    db_user: &str,
    password: &str,
    connection_limit: u32,
) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    let (db, user) = (quote_ident(db_name), quote_ident(db_user));
    admin
        .batch_execute(&format!(
            "CREATE ROLE {user} LOGIN NOINHERIT CONNECTION LIMIT {connection_limit} PASSWORD {}; \
             GRANT anon, authenticated, service_role, supabase_auth_admin, {} TO {user};",
            quote_literal(password),
            quote_ident(CAPTURE_ROLE)
        ))
        .await?;
    if let Err(e) = admin
        .batch_execute(&format!(
            "CREATE DATABASE {db} TEMPLATE {}",
            quote_ident(TEMPLATE_DB)
        ))
        .await
    {
        undo(&admin, &format!("DROP ROLE IF EXISTS {user}")).await;
        return Err(e.into());
    }
    if let Err(e) = admin
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {user}; \
             COMMENT ON DATABASE {db} IS {};",
            quote_literal(&schema_version())
        ))
        .await
    {
        undo(&admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
        undo(&admin, &format!("DROP ROLE IF EXISTS {user}")).await;
        return Err(e.into());
    }
    Ok(())
}

async fn undo(admin: &tokio_postgres::Client, sql: &str) {
    if let Err(e) = admin.batch_execute(sql).await {
        tracing::error!(%sql, error = %e, "rollback step failed");
    }
}

/// Drops the project's database (closing its connections) and login role; missing ones are fine.
pub async fn drop_database(worker: &Worker, db_name: &str, db_user: &str) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    drop_database_on(&admin, db_name, db_user).await
}

async fn drop_database_on(
    admin: &tokio_postgres::Client,
    db_name: &str,
    db_user: &str,
) -> Result<(), ApiError> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(db_name)
        ))
        .await?;
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(db_user)))
        .await?;
    Ok(())
}

/// Lets the project's login role connect to its database again, or stops it and closes its sessions
/// (pause).
pub async fn set_connect(
    worker: &Worker,
    db_name: &str,
    db_user: &str,
    allowed: bool,
) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    let (db, user) = (quote_ident(db_name), quote_ident(db_user));
    if allowed {
        admin
            .batch_execute(&format!("GRANT CONNECT ON DATABASE {db} TO {user}"))
            .await?;
    } else {
        admin
            .batch_execute(&format!("REVOKE CONNECT ON DATABASE {db} FROM {user}"))
            .await?;
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
                &[&db_name, &db_user],
            )
            .await?;
    }
    Ok(())
}
