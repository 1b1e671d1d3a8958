//! Test-only: what the services' integration tests start. A throwaway PostgreSQL cluster ([`db`],
//! which needs nothing else), a tenant-manager over it serving its admin and internal APIs on a
//! loopback port, with helpers to drive it ([`ControlPlane`]), the production data plane in front of
//! it ([`ControlPlane::serve_data_plane`]), test certificates ([`tls`]) and the AWS emulator ([`moto`]). Only ever a
//! `[dev-dependencies]` entry; no service may depend on it.

mod control_plane;
pub mod db;
pub mod moto;
pub mod tls;

pub use control_plane::ControlPlane;
pub use db::Database;
use tokio::net::TcpListener;

/// A loopback listener on a free port and its `http://` URL.
pub async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// An active project's configuration for unit tests: `project_ref`, one HS256 `secret`, a database
/// that is never connected to.
pub fn project_config(project_ref: &str, secret: &str) -> supactl_common::wire::ProjectConfig {
    use supactl_common::wire::{status, DbConfig, Limits, ProjectConfig};
    ProjectConfig {
        project_ref: project_ref.into(),
        status: status::ACTIVE.into(),
        jwt_secrets: vec![secret.into()],
        db: DbConfig {
            host: "127.0.0.1".into(),
            port: 1,
            dbname: "d".into(),
            user: "u".into(),
            password: "p".into(),
            tls: supactl_common::pg_tls::PgTls::disabled(),
        },
        rest_function_url: None,
        limits: Limits::default(),
        signing_keys: Vec::new(),
        data_key: String::new(),
        parsed_keys: Default::default(),
    }
}
