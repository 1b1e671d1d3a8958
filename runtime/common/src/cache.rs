//! The data plane's lookup cache (API keys, project configs), with three properties:
//!
//! - **One load per key at a time.** Concurrent misses share a single load (no stampede on the config
//!   endpoint when a hot key expires) and every waiter gets its outcome, failure included. Loads run as
//!   their own tasks, so a caller that goes away neither stalls nor cancels the others.
//! - **Bounded stale-while-revalidate.** When a load fails (the control plane cannot answer), the last
//!   value loaded keeps being answered for up to `stale_for` past its expiry. While loads fail, expired
//!   values are answered at once and refreshed in the background (one refresh per key at a time, at most
//!   one per TTL and at least one per second), so requests do not each wait on a dead control plane.
//!   A definitive answer is a value (e.g. "no such key" as `None`) and replaces the old one: only a
//!   failed load falls back. Stale answers are logged, at most once per 10 s per cache.
//! - **Bounded memory.** At most `max_entries` keys; when full, what is past any use goes first, then
//!   what is expired, then the oldest.
//!
//! [`TtlCache::invalidate`] removes a key outright, with any load in flight for it: an invalidated
//! value is never answered, stale or not.

use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::throttle::Throttle;

/// How long values are trusted, how long past that they may stand in for a failed load, how many
/// are kept.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub stale_for: Duration,
    pub max_entries: usize,
}

/// A load that ended without an outcome (its task panicked, or the runtime shut down).
#[derive(Debug, Clone, Copy)]
pub struct LoadAborted;

/// Longest time between two background refreshes of one key while loads fail (shorter with a
/// shorter TTL).
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Shortest time between two warnings about stale answers.
const WARN_EVERY: Duration = Duration::from_secs(10);

type Load<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

struct Slot<V, E> {
    /// The last value loaded, and when.
    value: Option<(V, Instant)>,
    /// The load in flight: its id (to tell it from a later one) and its shared outcome.
    loading: Option<(u64, Load<V, E>)>,
    /// When the last load started.
    attempted: Instant,
}

impl<V, E> Slot<V, E> {
    fn born(&self) -> Instant {
        self.value.as_ref().map_or(self.attempted, |(_, at)| *at)
    }
}

struct State<K, V, E> {
    map: HashMap<K, Slot<V, E>>,
    next_id: u64,
    /// Whether the last load to finish failed: expired values are then answered without waiting.
    failing: bool,
}

struct Inner<K, V, E> {
    /// What the cache holds, for logs.
    name: &'static str,
    config: CacheConfig,
    stale_warnings: Throttle,
    state: Mutex<State<K, V, E>>,
}

/// What a key holds at some instant.
enum Found<V> {
    Fresh(V),
    /// Expired, but still allowed to stand in for a failed load.
    Stale(V),
    Nothing,
}

pub struct TtlCache<K, V, E> {
    inner: Arc<Inner<K, V, E>>,
}

impl<K, V, E> TtlCache<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + From<LoadAborted> + 'static,
{
    pub fn new(name: &'static str, config: CacheConfig) -> TtlCache<K, V, E> {
        assert!(config.max_entries > 0, "a cache holds at least one entry");
        TtlCache {
            inner: Arc::new(Inner {
                name,
                config,
                stale_warnings: Throttle::new(WARN_EVERY),
                state: Mutex::new(State {
                    map: HashMap::new(),
                    next_id: 0,
                    failing: false,
                }),
            }),
        }
    }

    /// The cached value; else the outcome of `load`, shared with concurrent callers for the same key;
    /// else, when that fails, the last value within its stale bound.
    pub async fn get_or_load<F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let pending = {
            let mut st = self.inner.lock();
            let now = Instant::now();
            match self.inner.find(&st, key, now) {
                Found::Fresh(v) => return Ok(v),
                Found::Stale(v) if st.failing => {
                    self.refresh_in_background(&mut st, key, load, now);
                    self.inner.stale_answer(now);
                    return Ok(v);
                }
                _ => match st.map.get(key).and_then(|s| s.loading.as_ref()) {
                    Some((_, l)) => l.clone(),
                    None => self.start(&mut st, key, load(), now),
                },
            }
        };
        let err = match pending.await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let st = self.inner.lock();
        let now = Instant::now();
        match self.inner.find(&st, key, now) {
            Found::Fresh(v) => Ok(v),
            Found::Stale(v) => {
                self.inner.stale_answer(now);
                Ok(v)
            }
            Found::Nothing => Err(err),
        }
    }

    /// Starts a refresh of an expired key unless one is in flight or one started too recently.
    fn refresh_in_background<F, Fut>(&self, st: &mut State<K, V, E>, key: &K, load: F, now: Instant)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let every = self.inner.config.ttl.min(RETRY_EVERY);
        let due = st
            .map
            .get(key)
            .is_some_and(|s| s.loading.is_none() && now.duration_since(s.attempted) >= every);
        if due {
            // The task stores its outcome; nobody waits for it here.
            drop(self.start(st, key, load(), now));
        }
    }

    /// Runs `fut` as its own task, which stores its outcome in the key's slot (unless the key was
    /// invalidated meanwhile); returns the outcome, shareable between waiters.
    fn start<Fut>(&self, st: &mut State<K, V, E>, key: &K, fut: Fut, now: Instant) -> Load<V, E>
    where
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let id = st.next_id;
        st.next_id += 1;
        let (inner, k) = (self.inner.clone(), key.clone());
        let task = tokio::spawn(async move {
            let result = AssertUnwindSafe(fut)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(LoadAborted.into()));
            inner.finish(&k, id, &result);
            result
        });
        let load = async move { task.await.unwrap_or_else(|_| Err(LoadAborted.into())) }
            .boxed()
            .shared();
        if !st.map.contains_key(key) {
            self.inner.make_room(st, now);
        }
        let slot = st.map.entry(key.clone()).or_insert_with(|| Slot {
            value: None,
            loading: None,
            attempted: now,
        });
        slot.loading = Some((id, load.clone()));
        slot.attempted = now;
        load
    }

    /// Forgets a key, with any load in flight for it.
    pub fn invalidate(&self, key: &K) {
        self.inner.lock().map.remove(key);
    }

    /// Forgets the keys whose value matches, and every key still loading for the first time (its load
    /// may have read what the caller is invalidating).
    pub fn invalidate_where(&self, pred: impl Fn(&K, Option<&V>) -> bool) {
        self.inner.lock().map.retain(|k, s| match &s.value {
            Some((v, _)) => !pred(k, Some(v)),
            None => false,
        });
    }

    #[cfg(test)]
    fn cached(&self, key: &K) -> Option<V> {
        let st = self.inner.lock();
        st.map.get(key)?.value.as_ref().map(|(v, _)| v.clone())
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.inner.lock().map.len()
    }
}

impl<K: Hash + Eq + Clone, V: Clone, E> Inner<K, V, E> {
    fn lock(&self) -> MutexGuard<'_, State<K, V, E>> {
        self.state.lock().expect("cache lock")
    }

    fn find(&self, st: &State<K, V, E>, key: &K, now: Instant) -> Found<V> {
        let Some((v, at)) = st.map.get(key).and_then(|s| s.value.as_ref()) else {
            return Found::Nothing;
        };
        let age = now.duration_since(*at);
        if age < self.config.ttl {
            Found::Fresh(v.clone())
        } else if age < self.config.ttl.saturating_add(self.config.stale_for) {
            Found::Stale(v.clone())
        } else {
            Found::Nothing
        }
    }

    /// Stores a load's outcome if the slot still waits for this load: a value replaces the old one; a
    /// failure keeps it (to stand in while within its bound), or drops a slot that never had one.
    fn finish(&self, key: &K, id: u64, result: &Result<V, E>) {
        let mut st = self.lock();
        st.failing = result.is_err();
        let Some(slot) = st.map.get_mut(key) else {
            return;
        };
        if slot.loading.as_ref().is_none_or(|(i, _)| *i != id) {
            return;
        }
        slot.loading = None;
        match result {
            Ok(v) => slot.value = Some((v.clone(), Instant::now())),
            Err(_) if slot.value.is_none() => {
                st.map.remove(key);
            }
            Err(_) => {}
        }
    }

    /// Counts a stale answer; warns about them at most once per [`WARN_EVERY`].
    fn stale_answer(&self, now: Instant) {
        if let Some(n) = self.stale_warnings.tick(now) {
            tracing::warn!(
                cache = self.name,
                stale_answers = n,
                stale_for = ?self.config.stale_for,
                "the control plane cannot answer: serving the last known values"
            );
        }
    }

    /// Makes room for one more key when full, down to nine tenths of the capacity so that this runs
    /// once per tenth of it: first what is past any use, then what is expired, then the oldest.
    fn make_room(&self, st: &mut State<K, V, E>, now: Instant) {
        let c = &self.config;
        if st.map.len() < c.max_entries {
            return;
        }
        let target = c.max_entries - c.max_entries / 10 - 1;
        for limit in [c.ttl.saturating_add(c.stale_for), c.ttl] {
            st.map.retain(|_, s| now.duration_since(s.born()) < limit);
            if st.map.len() <= target {
                return;
            }
        }
        let mut born: Vec<Instant> = st.map.values().map(Slot::born).collect();
        born.sort_unstable();
        let cutoff = born[born.len() - target - 1];
        st.map.retain(|_, s| s.born() > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Clone, PartialEq)]
    enum Fail {
        Down,
        Aborted,
    }

    impl From<LoadAborted> for Fail {
        fn from(_: LoadAborted) -> Fail {
            Fail::Aborted
        }
    }

    fn new_cache<V: Clone + Send + Sync + 'static>(
        ttl: Duration,
        stale_for: Duration,
    ) -> Arc<TtlCache<u32, V, Fail>> {
        Arc::new(TtlCache::new(
            "test",
            CacheConfig {
                ttl,
                stale_for,
                max_entries: 100,
            },
        ))
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Waits (bounded) until `f` holds.
    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..1000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} never happened");
    }

    #[tokio::test]
    async fn concurrent_misses_load_once_and_ttl_expires() {
        let cache = new_cache::<u32>(Duration::from_millis(200), Duration::ZERO);
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(&1, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.get_or_load(&1, || async { Ok(8) }).await, Ok(8));
        cache.invalidate(&1);
        let v = cache.get_or_load(&1, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down));
        let v = cache.get_or_load(&1, || async { Ok(9) }).await;
        assert_eq!(v, Ok(9), "failed loads are not cached");
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_failure() {
        let cache = new_cache::<u32>(HOUR, HOUR);
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(&1, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err(Fail::Down)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(Fail::Down));
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "waiters share the failure instead of each retrying in turn"
        );
        assert_eq!(cache.entries(), 0, "a key that never loaded leaves nothing");
    }

    #[tokio::test]
    async fn a_failed_refresh_answers_the_last_value_within_its_bound() {
        // TTL zero: every call refreshes.
        let cache = new_cache::<u32>(Duration::ZERO, HOUR);
        assert_eq!(cache.get_or_load(&1, || async { Ok(1) }).await, Ok(1));
        assert_eq!(
            cache.get_or_load(&1, || async { Err(Fail::Down) }).await,
            Ok(1)
        );
        // A key never loaded has nothing to fall back on.
        let v = cache.get_or_load(&2, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down));

        // Past the bound, the failure is the answer.
        let bounded = new_cache::<u32>(Duration::ZERO, Duration::from_millis(50));
        assert_eq!(bounded.get_or_load(&1, || async { Ok(1) }).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let v = bounded.get_or_load(&1, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down));

        // No bound: never stale.
        let strict = new_cache::<u32>(Duration::ZERO, Duration::ZERO);
        assert_eq!(strict.get_or_load(&1, || async { Ok(1) }).await, Ok(1));
        let v = strict.get_or_load(&1, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down));
    }

    #[tokio::test]
    async fn a_definitive_answer_replaces_the_value_and_invalidation_removes_it() {
        let cache = new_cache::<Option<u32>>(Duration::ZERO, HOUR);
        assert_eq!(
            cache.get_or_load(&1, || async { Ok(Some(1)) }).await,
            Ok(Some(1))
        );
        // "Not found" is an answer, not a failure: no fallback to the old value.
        assert_eq!(cache.get_or_load(&1, || async { Ok(None) }).await, Ok(None));
        assert_eq!(
            cache.get_or_load(&1, || async { Err(Fail::Down) }).await,
            Ok(None)
        );

        assert_eq!(
            cache.get_or_load(&2, || async { Ok(Some(2)) }).await,
            Ok(Some(2))
        );
        cache.invalidate(&2);
        let v = cache.get_or_load(&2, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down), "an invalidated value is never answered");

        assert_eq!(
            cache.get_or_load(&3, || async { Ok(Some(3)) }).await,
            Ok(Some(3))
        );
        cache.invalidate_where(|_, v| v == Some(&Some(3)));
        let v = cache.get_or_load(&3, || async { Err(Fail::Down) }).await;
        assert_eq!(v, Err(Fail::Down));
    }

    #[tokio::test]
    async fn an_invalidation_discards_the_load_in_flight() {
        let cache = new_cache::<u32>(HOUR, HOUR);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(&1, || async move {
                        wait.await.ok();
                        Ok(1)
                    })
                    .await
            })
        };
        until("the load started", || cache.entries() == 1).await;
        cache.invalidate(&1);
        release.send(()).unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(1), "its waiter still gets it");
        assert_eq!(cache.cached(&1), None, "but it is not stored");
    }

    #[tokio::test]
    async fn while_loads_fail_expired_values_are_answered_at_once_and_refreshed_in_the_background()
    {
        let cache = new_cache::<u32>(Duration::ZERO, HOUR);
        assert_eq!(cache.get_or_load(&1, || async { Ok(1) }).await, Ok(1));
        assert_eq!(
            cache.get_or_load(&1, || async { Err(Fail::Down) }).await,
            Ok(1)
        );

        // Loads are failing now: this call must answer without waiting for its load, which only
        // completes once the call has returned.
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let answered = tokio::time::timeout(
            Duration::from_secs(30),
            cache.get_or_load(&1, || async move {
                wait.await.ok();
                Ok(2)
            }),
        )
        .await
        .expect("a stale answer does not wait for the refresh");
        assert_eq!(answered, Ok(1));
        // While that refresh is in flight, no other starts.
        let calls = AtomicUsize::new(0);
        let v = cache
            .get_or_load(&1, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok(9) }
            })
            .await;
        assert_eq!(v, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "a second refresh started");
        release.send(()).unwrap();
        until("the background refresh stored its value", || {
            cache.cached(&1) == Some(2)
        })
        .await;
        // It succeeded, so calls wait for their loads again.
        assert_eq!(cache.get_or_load(&1, || async { Ok(3) }).await, Ok(3));
    }

    #[tokio::test]
    async fn a_panicking_load_fails_without_wedging_the_key() {
        let cache = new_cache::<u32>(HOUR, HOUR);
        async fn boom() -> Result<u32, Fail> {
            panic!("loader bug")
        }
        let v = cache.get_or_load(&1, boom).await;
        assert_eq!(v, Err(Fail::Aborted));
        assert_eq!(cache.get_or_load(&1, || async { Ok(1) }).await, Ok(1));
    }

    #[tokio::test]
    async fn memory_stays_bounded() {
        let cache = new_cache::<u32>(HOUR, HOUR);
        for k in 0..1000 {
            assert_eq!(cache.get_or_load(&k, || async move { Ok(k) }).await, Ok(k));
            assert!(cache.entries() <= 100, "{} entries", cache.entries());
        }
        // The newest survive.
        assert_eq!(cache.cached(&999), Some(999));
        assert_eq!(cache.cached(&0), None);
    }
}
