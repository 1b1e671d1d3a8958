//! Admission control for provisioning. Creating a project copies the tenant template
//! (`CREATE DATABASE … TEMPLATE`) and deleting one drops a database: seconds each, with a worker
//! connection and platform-database connections held. A few run at once, a few more wait in a bounded
//! queue, and the rest are refused at once ([`ApiError::ProvisioningBusy`]: 429 with `Retry-After`)
//! before anything is done, instead of piling up on the platform database's pool until they time out.
//!
//! 429 rather than 503: the platform is healthy and keeps serving everything else; the caller (an admin
//! sending many creates at once) is asked to slow down, which is what 429 means to HTTP clients and
//! their retry policies.

use crate::error::ApiError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Gate {
    slots: Arc<Semaphore>,
    /// Callers running or waiting.
    admitted: Arc<AtomicUsize>,
    running: usize,
    queue: usize,
}

/// The right to provision, held until the work (and its rollback) is over.
pub struct Ticket {
    _slot: OwnedSemaphorePermit,
    _admitted: Admitted,
}

/// One caller counted as admitted, until dropped (also when it gives up waiting).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// `running` at once (at least one), `queue` more waiting.
    pub fn new(running: usize, queue: usize) -> Gate {
        let running = running.max(1);
        Gate {
            slots: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(AtomicUsize::new(0)),
            running,
            queue,
        }
    }

    /// Waits for a slot, or refuses at once when the queue is full.
    pub async fn enter(&self) -> Result<Ticket, ApiError> {
        let limit = self.running + self.queue;
        self.admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| ApiError::ProvisioningBusy {
                running: self.running,
                queued: self.queue,
            })?;
        let admitted = Admitted(self.admitted.clone());
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed");
        Ok(Ticket {
            _slot: slot,
            _admitted: admitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_some_queues_some_refuses_the_rest() {
        let gate = Arc::new(Gate::new(2, 1));
        let a = gate.enter().await.unwrap();
        let _b = gate.enter().await.unwrap();
        // The third waits in the queue.
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.map(|_| ()) })
        };
        while gate.admitted.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        // The fourth is refused.
        assert!(matches!(
            gate.enter().await,
            Err(ApiError::ProvisioningBusy {
                running: 2,
                queued: 1
            })
        ));
        drop(a);
        waiting.await.unwrap().unwrap();
        // Everyone who left made room again.
        assert_eq!(gate.admitted.load(Ordering::SeqCst), 1);
        let _c = gate.enter().await.unwrap();
    }
}
