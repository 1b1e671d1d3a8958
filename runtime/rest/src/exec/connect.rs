//! Opening a project's connections: each runs `LISTEN pgrst` for schema-cache invalidation and counts
//! in its project and in the process-wide connection budget while its driver task lives.

use super::{ProjectState, Shared};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use tokio_postgres::AsyncMessage;

/// Opens connections that `LISTEN pgrst` and report notifications to the project's state, within the
/// process-wide connection budget.
pub(super) struct ListeningConnect {
    /// TLS as the project's worker was registered.
    pub(super) tls: supactl_common::pg_tls::Connector,
    pub(super) state: Weak<ProjectState>,
    pub(super) shared: Weak<Shared>,
    pub(super) project: String,
}

/// Counts a connection in its project and in the budget for as long as its driver task lives (the task
/// is aborted when the pool drops the client, so this must be a guard, not code after the loop).
pub(super) struct OpenGuard {
    state: Weak<ProjectState>,
    shared: Weak<Shared>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(s) = self.state.upgrade() {
            s.live_connections.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(sh) = self.shared.upgrade() {
            sh.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

pub(super) type ConnectFuture<'a> = Pin<
    Box<
        dyn Future<
                Output = Result<
                    (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                    tokio_postgres::Error,
                >,
            > + Send
            + 'a,
    >,
>;

impl deadpool_postgres::Connect for ListeningConnect {
    fn connect(&self, cfg: &tokio_postgres::Config) -> ConnectFuture<'_> {
        let cfg = cfg.clone();
        let tls = self.tls.clone();
        let state = self.state.clone();
        let shared = self.shared.clone();
        if let Some(sh) = shared.upgrade() {
            if sh.open.load(Ordering::SeqCst) >= sh.max_open {
                sh.shed(&self.project);
            }
        }
        Box::pin(async move {
            let (client, mut conn) = cfg.connect(tls).await?;
            if let Some(s) = state.upgrade() {
                if s.live_connections.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Nobody was listening: a notification may have been missed.
                    s.invalidate();
                }
            }
            if let Some(sh) = shared.upgrade() {
                sh.open.fetch_add(1, Ordering::SeqCst);
            }
            let guard = OpenGuard {
                state: state.clone(),
                shared,
            };
            let task_state = state.clone();
            let task = tokio::spawn(async move {
                let _guard = guard;
                loop {
                    let msg = std::future::poll_fn(|cx| conn.poll_message(cx)).await;
                    match msg {
                        Some(Ok(AsyncMessage::Notification(n))) if n.channel() == "pgrst" => {
                            if let Some(s) = task_state.upgrade() {
                                tracing::debug!(payload = n.payload(), "schema cache reload");
                                s.invalidate();
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "rest connection closed");
                            break;
                        }
                        None => break,
                    }
                }
            });
            client.batch_execute("LISTEN pgrst").await?;
            Ok((client, task))
        })
    }
}
