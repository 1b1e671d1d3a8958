//! Fixed-window request counters per key (project, action and client IP or email), in memory.
//!
//! Each auth replica counts on its own, so with N replicas a client gets at most N times the limit;
//! that bounds brute force well enough without a shared store. Keys hold a SHA-256 of the email, never
//! the address itself.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter {
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key`; false when it goes over `limit` in the current `window`.
    pub fn allow(&self, key: &str, limit: u32, window: Duration) -> bool {
        self.allow_at(key, limit, window, Instant::now())
    }

    fn allow_at(&self, key: &str, limit: u32, window: Duration, now: Instant) -> bool {
        let mut map = self.windows.lock().expect("limiter lock");
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let slot = map.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(slot.0) >= window {
            *slot = (now, 0);
        }
        if slot.1 >= limit {
            return false;
        }
        slot.1 += 1;
        true
    }
}

/// The key of an email address in the limiter.
pub fn email_key(email: &str) -> String {
    hex::encode(&Sha256::digest(email.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_then_resets() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        assert!(l.allow_at("k", 2, w, t0));
        assert!(l.allow_at("k", 2, w, t0));
        assert!(!l.allow_at("k", 2, w, t0 + Duration::from_secs(1)));
        assert!(l.allow_at("other", 2, w, t0), "keys are independent");
        assert!(l.allow_at("k", 2, w, t0 + Duration::from_secs(61)));
        assert!(
            !l.allow_at("z", 0, w, t0),
            "a limit of 0 refuses everything"
        );
        assert_ne!(email_key("a@b.io"), "a@b.io");
    }
}
