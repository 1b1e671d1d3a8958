//! A TTL cache whose concurrent misses for one key share a single load (no stampede on the config
//! endpoint when a hot key expires). Failed loads are not cached; the next caller retries.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

struct Slot<V> {
    born: Instant,
    cell: Arc<OnceCell<V>>,
}

pub struct TtlCache<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the result of `load` (shared with concurrent callers for the same key).
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut map = self.map.lock().expect("cache lock");
            let now = Instant::now();
            match map.get(key) {
                Some(slot) if now.duration_since(slot.born) < self.ttl => slot.cell.clone(),
                _ => {
                    if map.len() > 4096 {
                        let ttl = self.ttl;
                        map.retain(|_, s| now.duration_since(s.born) < ttl);
                    }
                    let cell = Arc::new(OnceCell::new());
                    map.insert(
                        key.clone(),
                        Slot {
                            born: now,
                            cell: cell.clone(),
                        },
                    );
                    cell
                }
            }
        };
        cell.get_or_try_init(load).await.cloned()
    }

    pub fn invalidate(&self, key: &K) {
        self.map.lock().expect("cache lock").remove(key);
    }

    pub fn invalidate_where(&self, pred: impl Fn(&K, Option<&V>) -> bool) {
        self.map
            .lock()
            .expect("cache lock")
            .retain(|k, s| !pred(k, s.cell.get()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_load_once_and_ttl_expires() {
        let cache: Arc<TtlCache<u32, u32>> = Arc::new(TtlCache::new(Duration::from_millis(200)));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(&1, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let v = cache.get_or_load(&1, || async { Ok::<_, ()>(8) }).await;
        assert_eq!(v, Ok(8));
        cache.invalidate(&1);
        let v = cache
            .get_or_load(&1, || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(v, Err("down"));
        let v = cache.get_or_load(&1, || async { Ok::<_, &str>(9) }).await;
        assert_eq!(v, Ok(9), "failed loads are not cached");
    }
}
