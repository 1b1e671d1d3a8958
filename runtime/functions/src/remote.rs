//! The platform's [`FunctionStore`]: the tenant-manager's internal API, with the service token.
//!
//! - `GET /internal/v1/projects/{ref}/functions/{slug}` → [`FunctionMeta`] (404: no such function). Its
//!   `version` is the deployment's platform-wide id; `env_revision` changes with the project's secrets
//!   and keys. Cached for [`META_TTL`], so a redeploy, a delete or a secret change is seen within a
//!   second of the admin API's answer (the TTL, one lookup and a worker's start), and a busy function
//!   costs the control plane at most a few indexed lookups a second per replica.
//! - `GET …/functions/{slug}/versions/{version}` → [`Bundle`] (404: no longer kept). A deployment's code
//!   never changes, so it is cached by version until evicted (least recently used first, at most
//!   [`BUNDLE_CACHE_BYTES`] in all).
//! - `GET …/projects/{ref}/function-env` → [`ProjectEnv`], secrets included: read when a worker starts,
//!   never cached here.
//!
//! While the control plane cannot answer, a function already known keeps its last metadata for up to
//! [`META_STALE_FOR`] (see [`supactl_common::cache`]); what was never looked up answers 503.

use crate::router::valid_slug;
use crate::store::{Bundle, FunctionMeta, FunctionStore, ProjectEnv, StoreError};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supactl_common::cache::{CacheConfig, LoadAborted, TtlCache};
use supactl_common::http_client::HttpClient;
use supactl_common::ident::valid_ref;
use supactl_common::wire::Envelope;

/// How long a function's metadata is trusted: under a third of the second within which a redeploy must
/// be served, the rest for the lookup in flight when it was committed and the new worker's start.
pub const META_TTL: Duration = Duration::from_millis(300);
/// How long past its TTL known metadata stands in for a control plane that cannot answer.
pub const META_STALE_FOR: Duration = Duration::from_secs(30);
/// Functions whose metadata is kept at most (whatever slugs callers spray).
const MAX_META_ENTRIES: usize = 10_000;
/// Code kept in memory at most; a bundle larger than this is fetched every time a worker starts.
pub const BUNDLE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Lookups of metadata and environments answer fast or not at all…
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// …a bundle may be 20 MB.
const BUNDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the internal API is and the token it takes.
#[derive(Clone)]
pub struct RemoteConfig {
    /// The tenant-manager's base URL, e.g. `http://127.0.0.1:54323`.
    pub url: String,
    pub service_token: String,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &self.url)
            .field("service_token", &supactl_common::redact::Redacted)
            .finish()
    }
}

/// A lookup that failed, shareable between the callers of one cached load.
#[derive(Debug, Clone)]
struct Unreachable(String);

impl From<LoadAborted> for Unreachable {
    fn from(_: LoadAborted) -> Unreachable {
        Unreachable("the lookup was aborted".into())
    }
}

pub struct RemoteStore {
    fetcher: Arc<Fetcher>,
    meta: TtlCache<(String, String), Option<FunctionMeta>, Unreachable>,
    bundles: Mutex<BundleCache>,
}

struct Fetcher {
    config: RemoteConfig,
    lookups: HttpClient,
    downloads: HttpClient,
}

/// What an answer of the internal API was.
enum Answer<T> {
    Found(T),
    NotFound,
}

impl Fetcher {
    async fn get<T: DeserializeOwned>(
        &self,
        client: &HttpClient,
        path: &str,
    ) -> Result<Answer<T>, Unreachable> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.config.url.trim_end_matches('/')))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.config.service_token),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| Unreachable(e.to_string()))?;
        let (status, body) = client
            .send(req)
            .await
            .map_err(|e| Unreachable(e.to_string()))?;
        match status {
            StatusCode::OK => serde_json::from_slice::<Envelope<T>>(&body)
                .map(|e| Answer::Found(e.data))
                .map_err(|e| Unreachable(format!("bad response from the tenant-manager: {e}"))),
            StatusCode::NOT_FOUND => Ok(Answer::NotFound),
            other => Err(Unreachable(format!("the tenant-manager answered {other}"))),
        }
    }
}

impl RemoteStore {
    pub fn new(config: RemoteConfig) -> RemoteStore {
        RemoteStore {
            fetcher: Arc::new(Fetcher {
                config,
                lookups: HttpClient::new(LOOKUP_TIMEOUT),
                downloads: HttpClient::new(BUNDLE_TIMEOUT),
            }),
            meta: TtlCache::new(
                "function metadata",
                CacheConfig {
                    ttl: META_TTL,
                    stale_for: META_STALE_FOR,
                    max_entries: MAX_META_ENTRIES,
                },
            ),
            bundles: Mutex::new(BundleCache::new(BUNDLE_CACHE_BYTES)),
        }
    }

    async fn load_bundle(
        &self,
        project: &str,
        slug: &str,
        version: u64,
    ) -> Result<Bundle, StoreError> {
        let key = (project.to_string(), slug.to_string(), version);
        if let Some(b) = self.bundles.lock().expect("bundle cache lock").get(&key) {
            return Ok(b);
        }
        if !valid_ref(project) || !valid_slug(slug) {
            return Err(StoreError::VersionGone);
        }
        let path = format!("/internal/v1/projects/{project}/functions/{slug}/versions/{version}");
        match self.fetcher.get(&self.fetcher.downloads, &path).await {
            Ok(Answer::Found(bundle)) => {
                let bundle: Bundle = bundle;
                self.bundles
                    .lock()
                    .expect("bundle cache lock")
                    .insert(key, bundle.clone());
                Ok(bundle)
            }
            Ok(Answer::NotFound) => Err(StoreError::VersionGone),
            Err(Unreachable(e)) => Err(StoreError::Unavailable(e)),
        }
    }
}

impl FunctionStore for RemoteStore {
    fn function<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Option<FunctionMeta>, StoreError>> {
        Box::pin(async move {
            if !valid_ref(project) || !valid_slug(slug) {
                return Ok(None);
            }
            let fetcher = self.fetcher.clone();
            let path = format!("/internal/v1/projects/{project}/functions/{slug}");
            self.meta
                .get_or_load(&(project.to_string(), slug.to_string()), || async move {
                    match fetcher.get(&fetcher.lookups, &path).await? {
                        Answer::Found(meta) => Ok(Some(meta)),
                        Answer::NotFound => Ok(None),
                    }
                })
                .await
                .map_err(|Unreachable(e)| StoreError::Unavailable(e))
        })
    }

    fn bundle<'a>(
        &'a self,
        project: &'a str,
        slug: &'a str,
        version: u64,
    ) -> BoxFuture<'a, Result<Bundle, StoreError>> {
        Box::pin(self.load_bundle(project, slug, version))
    }

    fn environment<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<ProjectEnv, StoreError>> {
        Box::pin(async move {
            if !valid_ref(project) {
                return Err(StoreError::Unavailable(format!(
                    "bad project ref {project:?}"
                )));
            }
            let path = format!("/internal/v1/projects/{project}/function-env");
            match self.fetcher.get(&self.fetcher.lookups, &path).await {
                Ok(Answer::Found(env)) => Ok(env),
                Ok(Answer::NotFound) => Err(StoreError::Unavailable(format!(
                    "project {project} not found"
                ))),
                Err(Unreachable(e)) => Err(StoreError::Unavailable(e)),
            }
        })
    }
}

type BundleKey = (String, String, u64);

/// Bundles by deployment, least recently used evicted first, at most `capacity` bytes of code.
struct BundleCache {
    capacity: usize,
    bytes: usize,
    tick: u64,
    map: HashMap<BundleKey, (Bundle, usize, u64)>,
}

impl BundleCache {
    fn new(capacity: usize) -> BundleCache {
        BundleCache {
            capacity,
            bytes: 0,
            tick: 0,
            map: HashMap::new(),
        }
    }

    fn get(&mut self, key: &BundleKey) -> Option<Bundle> {
        self.tick += 1;
        let (bundle, _, used) = self.map.get_mut(key)?;
        *used = self.tick;
        Some(bundle.clone())
    }

    fn insert(&mut self, key: BundleKey, bundle: Bundle) {
        let size = size_of(&bundle);
        if size > self.capacity {
            return;
        }
        if let Some((_, old, _)) = self.map.remove(&key) {
            self.bytes -= old;
        }
        // (a scan per eviction: the cache holds at most a few hundred bundles, evicted rarely)
        while self.bytes + size > self.capacity {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, freed, _)) = self.map.remove(&oldest) {
                self.bytes -= freed;
            }
        }
        self.tick += 1;
        self.bytes += size;
        self.map.insert(key, (bundle, size, self.tick));
    }
}

/// What a bundle takes in memory, roughly: its text.
fn size_of(b: &Bundle) -> usize {
    let files: usize = b.files.iter().map(|f| f.name.len() + f.content.len()).sum();
    files + b.entrypoint.len() + b.import_map.as_ref().map_or(0, String::len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BundleFile;

    fn bundle(bytes: usize) -> Bundle {
        Bundle {
            entrypoint: String::new(),
            files: vec![BundleFile {
                name: String::new(),
                content: "x".repeat(bytes),
            }],
            import_map: None,
        }
    }

    fn key(v: u64) -> BundleKey {
        ("p".into(), "f".into(), v)
    }

    #[test]
    fn the_bundle_cache_keeps_the_recently_used_within_its_bytes() {
        let mut c = BundleCache::new(100);
        c.insert(key(1), bundle(40));
        c.insert(key(2), bundle(40));
        assert!(c.get(&key(1)).is_some()); // 2 is now the least recently used
        c.insert(key(3), bundle(40));
        assert!(c.get(&key(2)).is_none());
        assert!(c.get(&key(1)).is_some() && c.get(&key(3)).is_some());
        assert_eq!(c.bytes, 80);
        c.insert(key(4), bundle(101)); // larger than the whole cache: not kept
        assert!(c.get(&key(4)).is_none());
        c.insert(key(3), bundle(10)); // replaced, not counted twice
        assert_eq!(c.bytes, 50);
    }

    #[test]
    fn debug_hides_the_token() {
        let c = RemoteConfig {
            url: "http://tm".into(),
            service_token: "svc-token-123".into(),
        };
        assert!(!format!("{c:?}").contains("svc-token-123"));
    }
}
