//! Work on worker servers: the tenant template, and each project's database and login role.

use crate::error::ApiError;
use crate::store::{connect, Worker};
use sha2::{Digest, Sha256};
use supactl_common::ident::{quote_ident, quote_literal};

pub const TEMPLATE_DB: &str = "supactl_template";
const ROLES_SQL: &str = include_str!("../../../templates/roles.sql");
const TENANT_SQL: &str = include_str!("../../../templates/tenant.sql");
const AUTH_SQL: &str = include_str!("../../../templates/auth.sql");
/// What the REST engine needs in each tenant database (schema-cache reload on DDL).
const REST_SQL: &str = include_str!("../../../templates/rest.sql");

/// Identifies the template's content, so a changed template is rebuilt.
fn template_version() -> String {
    let mut h = Sha256::new();
    h.update(ROLES_SQL);
    h.update(TENANT_SQL);
    h.update(AUTH_SQL);
    h.update(REST_SQL);
    format!("supactl template {}", &hex::encode(h.finalize())[..16])
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
    tpl.batch_execute(AUTH_SQL).await?;
    tpl.batch_execute(REST_SQL).await?;
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

/// Creates the project's login role and database. When a step fails, the steps already done are undone
/// (and only those: an object that existed before is never dropped).
pub async fn create_database(
    worker: &Worker,
    db_name: &str,
    db_user: &str,
    password: &str,
) -> Result<(), ApiError> {
    let admin = connect(&worker.pg_config("postgres")).await?;
    let (db, user) = (quote_ident(db_name), quote_ident(db_user));
    admin
        .batch_execute(&format!(
            "CREATE ROLE {user} LOGIN NOINHERIT PASSWORD {}; GRANT anon, authenticated, service_role, supabase_auth_admin TO {user};",
            quote_literal(password)
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
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {user};"
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
