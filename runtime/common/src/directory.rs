//! The project directory as data-plane services see it: API-key and project-config lookups against the
//! tenant-manager's internal endpoint (service-token authenticated), behind short-TTL in-process caches.
//!
//! The TTL bounds how long a deleted project or revoked key keeps working on a replica that was not told;
//! [`Directory::invalidate_project`] makes it immediate where the control plane can reach the cache.

use crate::cache::TtlCache;
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

/// Where the directory reads from, and how long answers are trusted.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// Base URL of the tenant-manager, e.g. `http://127.0.0.1:54323`.
    pub url: String,
    pub service_token: String,
    pub ttl: Duration,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("service_token", &crate::redact::Redacted)
            .field("ttl", &self.ttl)
            .finish()
    }
}

pub struct Directory {
    config: DirectoryConfig,
    client: HttpClient,
    keys: TtlCache<[u8; 32], Option<Arc<KeyInfo>>>,
    projects: TtlCache<String, Option<Arc<ProjectConfig>>>,
}

impl Directory {
    pub fn new(config: DirectoryConfig) -> Directory {
        Directory {
            keys: TtlCache::new(config.ttl),
            projects: TtlCache::new(config.ttl),
            client: HttpClient::new(Duration::from_secs(5)),
            config,
        }
    }

    /// The key with this SHA-256, or None when no active key has it.
    pub async fn key(&self, hash: &[u8; 32]) -> Result<Option<Arc<KeyInfo>>, DirectoryError> {
        self.keys
            .get_or_load(hash, || async {
                let path = format!("/internal/v1/api-keys/{}", hex::encode(hash));
                Ok(self.get::<KeyInfo>(&path).await?.map(Arc::new))
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
        self.projects
            .get_or_load(&project_ref.to_string(), || async {
                let path = format!("/internal/v1/projects/{project_ref}/config");
                Ok(self.get::<ProjectConfig>(&path).await?.map(Arc::new))
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

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, DirectoryError> {
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
