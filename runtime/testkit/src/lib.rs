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
