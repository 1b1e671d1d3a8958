//! Serves a directory of functions laid out like `supabase/functions` (`<dir>/<slug>/index.ts`) as one
//! project on a loopback port, at `/functions/v1/<slug>`, every caller trusted (no gateway, no keys): for
//! `bench/functions.sh` and for trying functions by hand. Not a platform service.
//!
//! Usage: `serve_dir <dir> <port>` (Deno from `find_deno`; work dir under /tmp; Ctrl-C stops it).

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use functions::memory::MemoryStore;
use functions::{Caller, NetPolicy, ProjectEnv, Supervisor, SupervisorConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PROJECT: &str = "local";

async fn trusted(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Caller {
        project_ref: PROJECT.into(),
        jwt_verified: true,
    });
    next.run(req).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, port] = &args[..] else {
        return Err("usage: serve_dir <functions dir> <port>".into());
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let store = Arc::new(MemoryStore::new());
    store.set_environment(
        PROJECT,
        ProjectEnv {
            api_url: format!("http://{addr}"),
            publishable_key: "sb_publishable_local".into(),
            secret_key: "sb_secret_local".into(),
            db_url: None,
            secrets: Vec::new(),
        },
    );
    let slugs = store.load_dir(PROJECT, &PathBuf::from(dir), false)?;
    let work_dir = tempfile::Builder::new()
        .prefix("fnserve")
        .tempdir_in("/tmp")?;
    let mut config = SupervisorConfig::new(
        functions::find_deno()?,
        work_dir.path().to_path_buf(),
        NetPolicy::platform(Some(addr), &[]),
    );
    config.max_workers = slugs.len().max(1);
    config.max_workers_per_project = config.max_workers;
    let supervisor = Supervisor::new(config, store)?;
    let app = Router::new()
        .nest("/functions/v1", functions::router(supervisor.clone()))
        .layer(middleware::from_fn(trusted));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "serving {} functions on http://{addr}/functions/v1/",
        slugs.len()
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    supactl_common::server::serve(listener, app, Default::default(), shutdown).await;
    supervisor.shutdown();
    Ok(())
}
