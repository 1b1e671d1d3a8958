//! Log lines about an event that can repeat on every request (a control plane that cannot be reached, say):
//! one line per period with the count since the last one, so an outage cannot flood the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets an event through at most once per period, counting the ones in between.
pub struct Throttle {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event at `now`; `Some(n)` when it should be logged, with the `n` events it stands for
    /// (itself and the ones held back since the last logged one).
    pub fn tick(&self, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().expect("throttle lock");
        st.1 += 1;
        if st.0.is_some_and(|t| now.duration_since(t) < self.period) {
            return None;
        }
        st.0 = Some(now);
        Some(std::mem::take(&mut st.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period_with_the_count() {
        let t = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.tick(start), Some(1));
        assert_eq!(t.tick(start + Duration::from_secs(1)), None);
        assert_eq!(t.tick(start + Duration::from_secs(9)), None);
        assert_eq!(t.tick(start + Duration::from_secs(10)), Some(3));
        assert_eq!(t.tick(start + Duration::from_secs(11)), None);
    }
}
