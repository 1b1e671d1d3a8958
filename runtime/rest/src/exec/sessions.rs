//! What each pooled connection's session holds, so that a plain read of a relation sets only what
//! changes from request to request (see [`super::Pools::run`]): the role, search path and statement
//! timeout, which a read relies on the session holding, and the request's method, path and cookies,
//! which it sets for its transaction only where they differ from those the session holds.
//!
//! Such a read runs in `BEGIN READ ONLY` … `ROLLBACK`: whatever it, or any function it reached, set
//! on the session (at session level or for the transaction) is undone with its transaction, so the
//! session still holds exactly what [`SESSION_BASELINE`](crate::session::SESSION_BASELINE) set before
//! it. Every other use of a connection commits, or changes the session itself: writes, function
//! calls, reads with a pre-request function or a time zone, the schema cache's load. A function may
//! have left anything behind there, so the connection's baseline is forgotten before such a use, and
//! the next read of a relation sets it again.
//!
//! A connection is known by the address of its statement cache, which lives as long as the
//! connection does; the `Weak` kept beside each entry holds that address, so no later connection can
//! be given it while the entry exists.

use deadpool_postgres::{ClientWrapper, StatementCache};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use supactl_common::keys::Role;

/// What a read of a relation wants its session to hold (the parameters of
/// [`SESSION_BASELINE`](crate::session::SESSION_BASELINE)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Baseline<'a> {
    pub role: Role,
    pub search_path: &'a str,
    pub statement_timeout: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub cookies: &'a str,
}

/// Which of a read's request GUCs its session holds other values of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Differs {
    pub method: bool,
    pub path: bool,
    pub cookies: bool,
}

/// A [`Baseline`] kept for a connection.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    role: Role,
    search_path: String,
    statement_timeout: String,
    method: String,
    path: String,
    cookies: String,
}

impl Held {
    /// What differs from `b` in the request GUCs, if the rest is the same.
    fn against(&self, b: &Baseline<'_>) -> Option<Differs> {
        let same = self.role == b.role
            && self.search_path == b.search_path
            && self.statement_timeout == b.statement_timeout;
        same.then(|| Differs {
            method: self.method != b.method,
            path: self.path != b.path,
            cookies: self.cookies != b.cookies,
        })
    }
}

/// The baseline each of a project's connections is known to hold.
#[derive(Default)]
pub(super) struct Sessions {
    known: Mutex<HashMap<usize, (Weak<StatementCache>, Held)>>,
}

impl Sessions {
    /// Which request GUCs of `wanted` differ from those `client`'s session holds; `None` when its role,
    /// search path or timeout differ from `wanted`'s, or are not known.
    pub(super) fn differs(&self, client: &ClientWrapper, wanted: &Baseline<'_>) -> Option<Differs> {
        let known = self.known.lock().expect("sessions lock");
        known
            .get(&key(client))
            .and_then(|(_, held)| held.against(wanted))
    }

    /// Nothing is known of `client`'s session any more.
    pub(super) fn forget(&self, client: &ClientWrapper) {
        self.known
            .lock()
            .expect("sessions lock")
            .remove(&key(client));
    }

    /// `client`'s session holds `baseline`; entries of closed connections are dropped meanwhile.
    pub(super) fn remember(&self, client: &ClientWrapper, baseline: &Baseline<'_>) {
        let held = Held {
            role: baseline.role,
            search_path: baseline.search_path.to_string(),
            statement_timeout: baseline.statement_timeout.to_string(),
            method: baseline.method.to_string(),
            path: baseline.path.to_string(),
            cookies: baseline.cookies.to_string(),
        };
        let mut known = self.known.lock().expect("sessions lock");
        known.retain(|_, (cache, _)| cache.strong_count() > 0);
        known.insert(key(client), (Arc::downgrade(&client.statement_cache), held));
    }
}

fn key(client: &ClientWrapper) -> usize {
    Arc::as_ptr(&client.statement_cache) as usize
}
