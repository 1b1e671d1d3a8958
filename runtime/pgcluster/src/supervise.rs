//! Keeping a managed cluster running: a [`Supervisor`] watches the postmaster from a thread of its own and,
//! when it dies (crash, OOM kill, `kill -9`), restarts it after an exponential backoff, clearing what the
//! dead one left behind (orphaned backends, a stale `postmaster.pid`; see [`Cluster::start`]). Each death
//! and restart is reported as an [`Event`]. Stopping the supervisor first is what lets a deliberate
//! `Cluster::stop` stay stopped.

use crate::process::Pid;
use crate::{Cluster, Leftovers};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When to check and when to retry.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// How often the postmaster is checked: the delay before a death is noticed.
    pub poll: Duration,
    /// Wait before the first restart after a death; doubled for each restart that follows.
    pub initial: Duration,
    pub max: Duration,
    /// A postmaster that ran this long before dying starts the backoff over.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            poll: Duration::from_millis(500),
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before restart number `attempt` (0-based) of a series.
    fn delay(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max)
    }
}

/// What the supervisor saw or did, for the log (no secrets in any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The postmaster is gone (`pid` None: none was running when supervision began).
    Died {
        pid: Option<u32>,
    },
    /// Restart number `attempt` (1-based) of this series, after `delay`.
    Restarting {
        attempt: u32,
        delay: Duration,
    },
    /// Running again; `cleared` is what the dead postmaster had left behind.
    Restarted {
        pid: u32,
        cleared: Leftovers,
    },
    RestartFailed {
        attempt: u32,
        error: String,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Died { pid: Some(pid) } => write!(f, "PostgreSQL postmaster (pid {pid}) died"),
            Event::Died { pid: None } => write!(f, "PostgreSQL is not running"),
            Event::Restarting { attempt, delay } => write!(
                f,
                "restarting PostgreSQL in {:.1} s (attempt {attempt})",
                delay.as_secs_f64()
            ),
            Event::Restarted { pid, cleared } => {
                write!(f, "PostgreSQL restarted (postmaster pid {pid}")?;
                if cleared.orphans > 0 {
                    write!(
                        f,
                        "; killed {} orphaned process(es) of the dead one",
                        cleared.orphans
                    )?;
                }
                if cleared.stale_lock {
                    write!(f, "; removed its stale postmaster.pid")?;
                }
                write!(f, ")")
            }
            Event::RestartFailed { attempt, error } => {
                write!(f, "PostgreSQL restart attempt {attempt} failed: {error}")
            }
        }
    }
}

/// A running supervisor; [`Supervisor::stop`] (or dropping it) ends supervision and leaves the cluster as
/// it is.
pub struct Supervisor {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Supervises `cluster` (normally just started), reporting to `on_event` from the supervisor's thread.
    pub fn start(
        cluster: Cluster,
        backoff: Backoff,
        on_event: impl Fn(&Event) + Send + 'static,
    ) -> Supervisor {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        // Observed here, not in the thread: a postmaster that dies right after `start` returns is
        // reported with its pid.
        let current = cluster.postmaster();
        let watch = Watch {
            cluster,
            backoff,
            stop: stop.clone(),
            on_event: Box::new(on_event),
        };
        let thread = std::thread::Builder::new()
            .name("pg-supervisor".into())
            .spawn(move || watch.run(current))
            .expect("spawn the PostgreSQL supervisor thread");
        Supervisor {
            stop,
            thread: Some(thread),
        }
    }

    /// Ends supervision, waiting for a restart in progress to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Watch {
    cluster: Cluster,
    backoff: Backoff,
    stop: Arc<(Mutex<bool>, Condvar)>,
    on_event: Box<dyn Fn(&Event) + Send>,
}

impl Watch {
    fn run(self, mut current: Option<Pid>) {
        let mut up_since = Instant::now();
        let mut attempt = 0;
        loop {
            if self.sleep(self.backoff.poll) {
                return;
            }
            if current.is_some_and(|p| p.is_alive()) {
                continue;
            }
            (self.on_event)(&Event::Died {
                pid: current.map(|p| p.pid),
            });
            if up_since.elapsed() >= self.backoff.reset_after {
                attempt = 0;
            }
            match self.restart(&mut attempt) {
                Some(p) => {
                    current = Some(p);
                    up_since = Instant::now();
                }
                None => return,
            }
        }
    }

    /// Restarts with backoff until the postmaster runs again; None when stopped first.
    fn restart(&self, attempt: &mut u32) -> Option<Pid> {
        loop {
            let delay = self.backoff.delay(*attempt);
            *attempt += 1;
            (self.on_event)(&Event::Restarting {
                attempt: *attempt,
                delay,
            });
            if self.sleep(delay) {
                return None;
            }
            let started = self
                .cluster
                .start_clearing()
                .map_err(|e| e.to_string())
                .and_then(|cleared| match self.cluster.postmaster() {
                    Some(p) => Ok((p, cleared)),
                    None => Err("the postmaster exited right after starting".to_string()),
                });
            match started {
                Ok((p, cleared)) => {
                    (self.on_event)(&Event::Restarted {
                        pid: p.pid,
                        cleared,
                    });
                    return Some(p);
                }
                Err(error) => (self.on_event)(&Event::RestartFailed {
                    attempt: *attempt,
                    error,
                }),
            }
        }
    }

    /// Sleeps for `d` unless stopped; true when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let (flag, wake) = &*self.stop;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            ..Backoff::default()
        };
        let delays: Vec<u64> = (0..9).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }
}
