//! The project directory as data-plane services see it: API-key and project-config lookups against the
//! tenant-manager's internal endpoint (service-token authenticated), behind short-TTL in-process caches.
//!
//! The TTL bounds how long a deleted project or revoked key keeps working on a replica that was not told;
//! [`Directory::invalidate_project`] makes it immediate where the control plane can reach the cache.
//! When the control plane cannot answer (tenant-manager or platform database unreachable, overloaded),
//! a project or key already known keeps its last answer for up to [`DirectoryConfig::stale_for`] past
//! its TTL while it is refreshed in the background (see [`crate::cache`]); what was never looked up,
//! or was invalidated, gets [`DirectoryError::Unavailable`].

use crate::cache::{CacheConfig, LoadAborted, TtlCache};
use crate::http_client::{ClientError, HttpClient};
use crate::wire::{Envelope, KeyInfo, ProjectConfig};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error, Clone)]
pub enum DirectoryError {
    #[error("project directory unavailable: {0}")]
    Unavailable(String),
}

impl From<LoadAborted> for DirectoryError {
    fn from(_: LoadAborted) -> DirectoryError {
        DirectoryError::Unavailable("the lookup was aborted".into())
    }
}

/// Keys (and projects) each cache holds at most: a few MB, whatever an attacker sprays.
const MAX_ENTRIES: usize = 10_000;

/// Where the directory reads from, and how long answers are trusted.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// Base URL of the tenant-manager, e.g. `http://127.0.0.1:54323`.
    pub url: String,
    pub service_token: String,
    pub ttl: Duration,
    /// How long past its TTL a known project or key keeps its last answer while the control plane
    /// cannot be reached ([`DirectoryConfig::DEFAULT_STALE_FOR`]; zero: never).
    pub stale_for: Duration,
}

impl DirectoryConfig {
    pub const DEFAULT_STALE_FOR: Duration = Duration::from_secs(300);
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("service_token", &crate::redact::Redacted)
            .field("ttl", &self.ttl)
            .field("stale_for", &self.stale_for)
            .finish()
    }
}

pub struct Directory {
    fetcher: Arc<Fetcher>,
    keys: TtlCache<[u8; 32], Option<Arc<KeyInfo>>, DirectoryError>,
    projects: TtlCache<String, Option<Arc<ProjectConfig>>, DirectoryError>,
}

/// The client of the internal endpoint; shared with the loads, which run as their own tasks.
struct Fetcher {
    config: DirectoryConfig,
    client: HttpClient,
}

impl Directory {
    pub fn new(config: DirectoryConfig) -> Directory {
        let cache = CacheConfig {
            ttl: config.ttl,
            stale_for: config.stale_for,
            max_entries: MAX_ENTRIES,
        };
        Directory {
            keys: TtlCache::new("api keys", cache),
            projects: TtlCache::new("project configs", cache),
            fetcher: Arc::new(Fetcher {
                client: HttpClient::new(Duration::from_secs(5)),
                config,
            }),
        }
    }

    /// The key with this SHA-256, or None when no active key has it.
    pub async fn key(&self, hash: &[u8; 32]) -> Result<Option<Arc<KeyInfo>>, DirectoryError> {
        lookup("api-keys");
        // built only when the cache misses: this runs on every request
        let fetcher = &self.fetcher;
        self.keys
            .get_or_load(hash, || {
                let (fetcher, hash) = (fetcher.clone(), *hash);
                async move {
                    let path = format!("/internal/v1/api-keys/{}", hex::encode(hash));
                    Ok(fetcher
                        .get::<KeyInfo>("api-keys", &path)
                        .await?
                        .map(Arc::new))
                }
            })
            .await
    }

    /// The project's config, or None when the project does not exist.
    pub async fn project(
        &self,
        project_ref: &str,
    ) -> Result<Option<Arc<ProjectConfig>>, DirectoryError> {
        if !crate::ident::valid_ref(project_ref) {
            return Ok(None);
        }
        lookup("projects");
        let fetcher = &self.fetcher;
        self.projects
            .get_or_load(&project_ref.to_string(), || {
                let fetcher = fetcher.clone();
                let path = format!("/internal/v1/projects/{project_ref}/config");
                async move {
                    Ok(fetcher
                        .get::<ProjectConfig>("projects", &path)
                        .await?
                        .map(Arc::new))
                }
            })
            .await
    }

    /// Forgets everything cached about a project (its config and its keys).
    pub fn invalidate_project(&self, project_ref: &str) {
        self.projects.invalidate(&project_ref.to_string());
        self.keys
            .invalidate_where(|_, v| matches!(v, Some(Some(k)) if k.project_ref == project_ref));
    }

    /// Forgets everything cached.
    pub fn invalidate_all(&self) {
        self.projects.invalidate_where(|_, _| true);
        self.keys.invalidate_where(|_, _| true);
    }
}

fn lookup(cache: &'static str) {
    let labels = crate::metrics::CacheLabels { cache };
    crate::metrics::metrics()
        .directory_lookups
        .get_or_create(&labels)
        .inc();
}

impl Fetcher {
    /// Fetches `path`, counted under `cache` with its outcome.
    async fn get<T: DeserializeOwned>(
        &self,
        cache: &'static str,
        path: &str,
    ) -> Result<Option<T>, DirectoryError> {
        let got = self.fetch(path).await;
        let outcome = match &got {
            Ok(Some(_)) => "found",
            Ok(None) => "not_found",
            Err(_) => "error",
        };
        let labels = crate::metrics::FetchLabels { cache, outcome };
        crate::metrics::metrics()
            .directory_fetches
            .get_or_create(&labels)
            .inc();
        got
    }

    async fn fetch<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, DirectoryError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.config.url.trim_end_matches('/'), path))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.config.service_token),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        let (status, body) = self
            .client
            .send(req)
            .await
            .map_err(|e: ClientError| DirectoryError::Unavailable(e.to_string()))?;
        match status {
            StatusCode::OK => serde_json::from_slice::<Envelope<T>>(&body)
                .map(|e| Some(e.data))
                .map_err(|e| DirectoryError::Unavailable(format!("bad response: {e}"))),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(DirectoryError::Unavailable(format!(
                "tenant-manager answered {other}"
            ))),
        }
    }
}
