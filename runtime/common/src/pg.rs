//! Connections to PostgreSQL: the data plane's to a project's database, always as the project's own
//! login role from its [`DbConfig`], with the same timeouts everywhere; and, for every connection the
//! platform makes (tenant-manager's included), the TLS connector of its settings ([`connector`]).

use crate::pg_tls::{Connector, PgTls};
use crate::wire::DbConfig;
use deadpool_postgres::{Manager, Pool, Runtime};
use std::time::Duration;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before the service answers 503.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection settings of `db`, named `application_name` in `pg_stat_activity`; connect with
/// `connector(&db.tls)`.
pub fn project_config(db: &DbConfig, application_name: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.ssl_mode(db.tls.wire_mode())
        .host(&db.host)
        .port(db.port)
        .dbname(&db.dbname)
        .user(&db.user)
        .password(&db.password)
        .application_name(application_name)
        .connect_timeout(CONNECT_TIMEOUT);
    cfg
}

/// The TLS connector of a connection with settings `tls`: the one thing to pass to `Config::connect`,
/// deadpool's `Manager` or `CancelToken::cancel_query`. The config must carry `tls.wire_mode()` (as
/// [`project_config`] does), so that `disable` never starts TLS and the other modes never fall back to
/// plain text.
pub fn connector(tls: &PgTls) -> Connector {
    Connector::new(tls)
}

/// Connects with `cfg` (its sslmode set from `tls`) and drives the connection in a task of its own.
pub async fn connect(
    cfg: &tokio_postgres::Config,
    tls: &PgTls,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = cfg.clone();
    cfg.ssl_mode(tls.wire_mode());
    let (client, conn) = cfg.connect(connector(tls)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    Ok(client)
}

/// Why a connection with settings `tls` failed, in full: tokio-postgres's own message names only the
/// kind of failure ("error performing TLS handshake"), its source says which; plus what to do when the
/// cause is the TLS setting itself.
pub fn connect_error(e: &tokio_postgres::Error, tls: &PgTls) -> String {
    let mut text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    };
    if let Some(hint) = tls_hint(e, tls) {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

/// What to do when a connection failed for its TLS settings (a server that takes only TLS connections
/// from a `disable` client, or one without TLS for a client that requires it), if that is the cause.
fn tls_hint(e: &tokio_postgres::Error, tls: &PgTls) -> Option<&'static str> {
    use crate::pg_tls::SslMode;
    let refused = e.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().contains("no encryption")
    });
    if refused && tls.sslmode == SslMode::Disable {
        return Some(
            "the server accepts only TLS connections (hostssl in pg_hba.conf): set sslmode to \
             verify-full, with sslrootcert for its CA unless it is an Amazon RDS/Aurora server",
        );
    }
    // tokio-postgres reports this as a TLS error with no kind of its own: its source's text is all
    // there is.
    let no_tls = std::error::Error::source(e)
        .is_some_and(|s| s.to_string().contains("server does not support TLS"));
    if tls.sslmode != SslMode::Disable && no_tls {
        return Some(
            "the server has TLS turned off (ssl = off): turn it on, or use sslmode disable on \
             loopback only",
        );
    }
    None
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
/// `connect_timeout` applies), over the same TLS settings as the connection itself.
pub async fn cancel(
    token: &tokio_postgres::CancelToken,
    tls: &PgTls,
) -> Result<(), tokio_postgres::Error> {
    token.cancel_query(connector(tls)).await
}

/// Whether a SQLSTATE says the backend is gone: terminated by an administrator or `pg_terminate_backend`
/// (`57P01`), by the crash of another backend (`57P02`), or refused while the server starts or stops
/// (`57P03`).
pub fn backend_gone(code: &tokio_postgres::error::SqlState) -> bool {
    ["57P01", "57P02", "57P03"].contains(&code.code())
}

/// Whether `e` says the session itself is lost (its backend is gone, or the connection closed): the
/// request may succeed on another connection, and this one must not be reused.
pub fn session_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => backend_gone(db.code()),
        None => e.is_closed(),
    }
}

/// Sets who the rest of a transaction runs as, the way RLS policies read it: `$1` the role (`anon`,
/// `authenticated`, `service_role`), `$2` the claims as JSON (`request.jwt.claims`, which `auth.uid()`,
/// `auth.role()` and `auth.jwt()` read), `$3` the role's `statement_timeout` (e.g. `3000ms`). For services
/// that run a few statements per request as the caller (storage); REST sets these together with
/// PostgREST's other request settings in its own pipelined statement.
pub const SET_CALLER: &str = "SELECT set_config('role', $1, true), \
     set_config('request.jwt.claims', $2, true), set_config('statement_timeout', $3, true)";
