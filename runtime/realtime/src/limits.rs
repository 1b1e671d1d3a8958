//! Per-project limits on sockets, joins, channels, messages and presence, with Supabase's
//! defaults and error texts. Pure: the caller passes the time, so tests need no clock.
//!
//! Rates are token buckets (a burst of one second's worth, refilled continuously), counted per
//! replica: N replicas admit up to N times a project's rate, which bounds the harm without a
//! round trip per message. A channel's own presence calls have Supabase's fixed window on top
//! (5 calls per 30 s).

use std::time::{Duration, Instant};

/// A project's limits; the defaults are Supabase's tenant defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectLimits {
    /// Open sockets (Supabase's "concurrent users").
    pub max_sockets: usize,
    pub joins_per_second: u32,
    pub channels_per_socket: usize,
    /// Broadcasts, presence and postgres_changes messages handled per second.
    pub events_per_second: u32,
    pub presence_events_per_second: u32,
    /// Largest broadcast or presence payload, in bytes.
    pub max_payload_bytes: usize,
    /// Presence calls one channel may make per [`ProjectLimits::presence_window`].
    pub presence_calls_per_window: u32,
    pub presence_window: Duration,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        ProjectLimits {
            max_sockets: 200,
            joins_per_second: 100,
            channels_per_socket: 100,
            events_per_second: 100,
            presence_events_per_second: 1000,
            max_payload_bytes: 3000 * 1000,
            presence_calls_per_window: 5,
            presence_window: Duration::from_secs(30),
        }
    }
}

/// A token bucket holding at most `per_second` tokens, refilled at `per_second`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = f64::from(per_second);
        TokenBucket {
            per_second,
            tokens: per_second,
            last: now,
        }
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.last = now;
        if self.tokens >= f64::from(n) {
            self.tokens -= f64::from(n);
            true
        } else {
            false
        }
    }
}

/// One project's counters on this replica.
#[derive(Debug)]
pub struct ProjectCounters {
    limits: ProjectLimits,
    sockets: usize,
    joins: TokenBucket,
    events: TokenBucket,
    presence: TokenBucket,
}

impl ProjectCounters {
    pub fn new(limits: ProjectLimits, now: Instant) -> Self {
        ProjectCounters {
            limits,
            sockets: 0,
            joins: TokenBucket::new(limits.joins_per_second, now),
            events: TokenBucket::new(limits.events_per_second, now),
            presence: TokenBucket::new(limits.presence_events_per_second, now),
        }
    }

    pub fn limits(&self) -> &ProjectLimits {
        &self.limits
    }

    /// Counts a new socket, or refuses it; pair with [`ProjectCounters::close_socket`].
    pub fn open_socket(&mut self) -> Result<(), LimitError> {
        if self.sockets >= self.limits.max_sockets {
            return Err(LimitError::TooManyConnections);
        }
        self.sockets += 1;
        Ok(())
    }

    pub fn close_socket(&mut self) {
        self.sockets = self.sockets.saturating_sub(1);
    }

    pub fn sockets(&self) -> usize {
        self.sockets
    }

    /// Admits a join on a socket that already has `channels` channels.
    pub fn join(&mut self, channels: usize, now: Instant) -> Result<(), LimitError> {
        if channels >= self.limits.channels_per_socket {
            return Err(LimitError::TooManyChannels);
        }
        if !self.joins.try_take(1, now) {
            return Err(LimitError::TooManyJoins);
        }
        Ok(())
    }

    /// Admits `n` messages (a REST broadcast counts each of its messages).
    pub fn events(&mut self, n: u32, now: Instant) -> Result<(), LimitError> {
        if self.events.try_take(n, now) {
            Ok(())
        } else {
            Err(LimitError::TooManyEvents)
        }
    }

    pub fn presence_event(&mut self, now: Instant) -> Result<(), LimitError> {
        if self.presence.try_take(1, now) {
            Ok(())
        } else {
            Err(LimitError::TooManyPresenceEvents)
        }
    }

    pub fn payload(&self, bytes: usize) -> Result<(), LimitError> {
        if bytes > self.limits.max_payload_bytes {
            return Err(LimitError::PayloadTooLarge);
        }
        Ok(())
    }
}

/// A channel's presence calls in fixed windows (Supabase's client presence rate limit).
#[derive(Clone, Debug)]
pub struct PresenceWindow {
    max_calls: u32,
    window: Duration,
    calls: u32,
    resets_at: Option<Instant>,
}

impl PresenceWindow {
    pub fn new(limits: &ProjectLimits) -> Self {
        PresenceWindow {
            max_calls: limits.presence_calls_per_window,
            window: limits.presence_window,
            calls: 0,
            resets_at: None,
        }
    }

    pub fn call(&mut self, now: Instant) -> Result<(), LimitError> {
        match self.resets_at {
            Some(at) if now <= at => {
                if self.calls >= self.max_calls {
                    return Err(LimitError::ClientPresenceRate);
                }
                self.calls += 1;
            }
            _ => {
                self.calls = 1;
                self.resets_at = Some(now + self.window);
            }
        }
        Ok(())
    }
}

/// A limit that was reached. `Display` is the text Supabase sends: a join's error `reason`, or the
/// `system` message before a channel is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("ConnectionRateLimitReached: Too many connected users")]
    TooManyConnections,
    #[error("ClientJoinRateLimitReached: Too many joins per second")]
    TooManyJoins,
    #[error("ChannelRateLimitReached: Too many channels")]
    TooManyChannels,
    #[error("Too many messages per second")]
    TooManyEvents,
    #[error("Too many presence messages per second")]
    TooManyPresenceEvents,
    #[error("Client presence rate limit exceeded")]
    ClientPresenceRate,
    #[error("Payload size exceeds tenant limit")]
    PayloadTooLarge,
}

impl LimitError {
    /// Status and `{"error": …}` text when the limit refuses a WebSocket handshake or a REST
    /// broadcast, as Supabase answers them.
    pub fn http(self) -> (u16, &'static str) {
        match self {
            LimitError::TooManyConnections => (429, "Too many connected users"),
            LimitError::TooManyJoins => (429, "Too many joins per second"),
            LimitError::PayloadTooLarge => (422, "Payload size exceeds tenant limit"),
            _ => (429, "You have exceeded your rate limit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn buckets_allow_a_burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert!((0..10).all(|_| b.try_take(1, t0)));
        assert!(!b.try_take(1, t0));
        assert!(!b.try_take(1, t0 + ms(50)));
        assert!(b.try_take(1, t0 + ms(150)));
        // Never more than one second's worth, however long it waited.
        let later = t0 + Duration::from_secs(60);
        assert!(b.try_take(10, later));
        assert!(!b.try_take(1, later));
        assert!(!b.try_take(11, later + Duration::from_secs(60)));
    }

    #[test]
    fn sockets_joins_channels_and_payloads() {
        let t0 = Instant::now();
        let limits = ProjectLimits {
            max_sockets: 2,
            joins_per_second: 3,
            channels_per_socket: 2,
            ..ProjectLimits::default()
        };
        let mut c = ProjectCounters::new(limits, t0);
        c.open_socket().unwrap();
        c.open_socket().unwrap();
        assert_eq!(c.open_socket(), Err(LimitError::TooManyConnections));
        c.close_socket();
        assert_eq!(c.sockets(), 1);
        c.open_socket().unwrap();

        assert_eq!(c.join(2, t0), Err(LimitError::TooManyChannels));
        assert!((0..3).all(|_| c.join(0, t0).is_ok()));
        assert_eq!(c.join(0, t0), Err(LimitError::TooManyJoins));
        assert!(c.join(0, t0 + ms(400)).is_ok());

        assert_eq!(c.payload(3_000_001), Err(LimitError::PayloadTooLarge));
        assert!(c.payload(3_000_000).is_ok());
        assert_eq!(
            LimitError::TooManyJoins.to_string(),
            "ClientJoinRateLimitReached: Too many joins per second"
        );
        assert_eq!(
            LimitError::TooManyConnections.http(),
            (429, "Too many connected users")
        );
    }

    #[test]
    fn events_and_presence_rates() {
        let t0 = Instant::now();
        let limits = ProjectLimits {
            events_per_second: 5,
            presence_events_per_second: 1,
            ..ProjectLimits::default()
        };
        let mut c = ProjectCounters::new(limits, t0);
        c.events(5, t0).unwrap();
        assert_eq!(c.events(1, t0), Err(LimitError::TooManyEvents));
        assert_eq!(
            c.events(1, t0).unwrap_err().http(),
            (429, "You have exceeded your rate limit")
        );
        c.presence_event(t0).unwrap();
        assert_eq!(
            c.presence_event(t0 + ms(500)),
            Err(LimitError::TooManyPresenceEvents)
        );
        assert!(c.presence_event(t0 + ms(1500)).is_ok());
    }

    #[test]
    fn presence_window_is_fixed() {
        let t0 = Instant::now();
        let mut w = PresenceWindow::new(&ProjectLimits::default());
        assert!((0..5).all(|i| w.call(t0 + ms(i)).is_ok()));
        assert_eq!(w.call(t0 + ms(10)), Err(LimitError::ClientPresenceRate));
        assert_eq!(
            w.call(t0 + Duration::from_secs(30)),
            Err(LimitError::ClientPresenceRate)
        );
        assert!(w.call(t0 + Duration::from_secs(31)).is_ok());
    }
}
