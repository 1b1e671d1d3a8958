//! OAuth 2 / OpenID Connect sign-in with a project's providers, as GoTrue does it: the protocol side
//! (the routes are `service::oauth`). `provider` holds the configured providers and their endpoints,
//! `state` the signed `state` parameter, `id_token` the verification of a provider's ID tokens against
//! its JWKS, `identity` who the provider says the user is and the auth user that becomes, `fetch` the
//! bounded HTTP client the service calls providers with.

pub mod fetch;
pub mod id_token;
pub mod identity;
pub mod provider;
pub mod state;

use fetch::{FetchError, Fetcher};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Provider documents (discovery, JWKS) kept at most this many per service.
const MAX_CACHED: usize = 256;

/// What the auth service keeps for talking to providers: its client and its caches.
pub struct OAuth {
    pub fetcher: Fetcher,
    /// Discovery documents by URL.
    pub discovery: Cache,
    /// JWKS documents by URL.
    pub jwks: Cache,
}

impl Default for OAuth {
    fn default() -> OAuth {
        OAuth {
            fetcher: Fetcher::new(),
            discovery: Cache::new(Duration::from_secs(3600)),
            jwks: Cache::new(Duration::from_secs(600)),
        }
    }
}

/// JSON documents fetched from providers, by URL, for a while.
pub struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Value>)>>,
}

impl Cache {
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The document at `key` younger than the cache's lifetime, else what `fetch` answers (kept).
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> Result<Arc<Value>, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, FetchError>>,
    {
        if let Some(v) = self.fresh(key, self.ttl) {
            return Ok(v);
        }
        let v = Arc::new(fetch().await?);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= MAX_CACHED {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Drops `key` when it is older than `min_age` (a key rotation shows as an unknown `kid`; the
    /// bound keeps a stream of made-up `kid`s from refetching on every request).
    pub fn forget_older_than(&self, key: &str, min_age: Duration) -> bool {
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(key) {
            Some((at, _)) if at.elapsed() >= min_age => {
                entries.remove(key);
                true
            }
            _ => false,
        }
    }

    fn fresh(&self, key: &str, ttl: Duration) -> Option<Arc<Value>> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }
}
