//! OCI image-spec types (manifest, config, index, descriptors) and the on-disk image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) that `build` writes and `push` reads. Fields are in a fixed
//! order and maps are sorted, so the same image always serialises to the same bytes (and digest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation naming a manifest in the layout's index (our service name).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const CREATED: &str = "org.opencontainers.image.created";

/// `sha256:<hex>` of some bytes.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &str, data: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest(data),
            size: data.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// The image configuration (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub config: RunConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    pub user: String,
    pub exposed_ports: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub created: String,
    pub created_by: String,
}

/// An OCI image layout directory holding several images, one per service, named by the
/// `org.opencontainers.image.ref.name` annotation of their index entry. Layers are shared between images.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    fn io(&self, path: &Path, e: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }

    /// Stores a blob (no-op when present) and returns its descriptor.
    pub fn put_blob(&self, media_type: &str, data: &[u8]) -> Result<Descriptor, Error> {
        let d = Descriptor::of(media_type, data);
        let path = self.blob_path(&d.digest);
        if !path.exists() {
            let dir = path.parent().unwrap_or(&self.root);
            std::fs::create_dir_all(dir).map_err(|e| self.io(dir, e))?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, data).map_err(|e| self.io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))?;
        }
        Ok(d)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let data = std::fs::read(&path).map_err(|e| self.io(&path, e))?;
        if crate::oci::digest(&data) != digest {
            return Err(Error::Corrupt {
                path,
                detail: format!("content does not match {digest}"),
            });
        }
        Ok(data)
    }

    pub fn index(&self) -> Result<Index, Error> {
        let path = self.root.join("index.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index {
                schema_version: 2,
                media_type: INDEX_MEDIA_TYPE.to_string(),
                manifests: Vec::new(),
            }),
            Err(e) => Err(self.io(&path, e)),
        }
    }

    /// Records `manifest` under `name`, replacing the previous image of that name.
    pub fn set_ref(&self, name: &str, mut manifest: Descriptor) -> Result<(), Error> {
        std::fs::create_dir_all(&self.root).map_err(|e| self.io(&self.root, e))?;
        let layout = self.root.join("oci-layout");
        std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|e| self.io(&layout, e))?;
        let mut index = self.index()?;
        index
            .manifests
            .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        manifest
            .annotations
            .insert(REF_NAME.to_string(), name.to_string());
        index.manifests.push(manifest);
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(REF_NAME)
                .cmp(&b.annotations.get(REF_NAME))
        });
        let path = self.root.join("index.json");
        let bytes =
            serde_json::to_vec_pretty(&index).map_err(|e| Error::Internal(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| self.io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))
    }

    /// The manifest stored under `name` with its descriptor.
    pub fn image(&self, name: &str) -> Result<(Descriptor, Manifest, Vec<u8>), Error> {
        let index = self.index()?;
        let desc = index
            .manifests
            .into_iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(name))
            .ok_or_else(|| Error::NotBuilt {
                service: name.to_string(),
                layout: self.root.clone(),
            })?;
        let bytes = self.read_blob(&desc.digest)?;
        let manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: self.blob_path(&desc.digest),
            detail: e.to_string(),
        })?;
        Ok((desc, manifest, bytes))
    }
}
