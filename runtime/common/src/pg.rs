//! Connections of data-plane services to a project's database: always as the project's own login role
//! from its [`DbConfig`], with the same timeouts everywhere.

use crate::wire::DbConfig;
use deadpool_postgres::{Manager, Pool, Runtime};
use std::time::Duration;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before the service answers 503.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection settings of `db`, named `application_name` in `pg_stat_activity`.
pub fn project_config(db: &DbConfig, application_name: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&db.host)
        .port(db.port)
        .dbname(&db.dbname)
        .user(&db.user)
        .password(&db.password)
        .application_name(application_name)
        .connect_timeout(CONNECT_TIMEOUT);
    cfg
}

/// A pool of at most `max_size` connections made by `manager`.
pub fn pool(manager: Manager, max_size: usize) -> Pool {
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(WAIT_TIMEOUT))
        .build()
        .expect("a pool with a runtime and timeouts builds")
}

/// Asks the server to cancel the statement that the connection `token` came from is running (a
/// separate short connection to the same server, carrying that backend's key; the connection's own
/// `connect_timeout` applies). Every cancel request goes through here, so that the transport of the
/// project connections is chosen in one place.
pub async fn cancel(token: &tokio_postgres::CancelToken) -> Result<(), tokio_postgres::Error> {
    token.cancel_query(tokio_postgres::NoTls).await
}
