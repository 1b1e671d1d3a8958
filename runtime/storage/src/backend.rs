//! Where the bytes live: one [`ObjectStore`] (the `object_store` crate's abstraction) for every project,
//! each object under `<ref>/<version>` where the version is a fresh random id per upload. Object names
//! therefore never become file system paths or S3 keys (no traversal, any Unicode name), a move is a
//! metadata update, and deleting a project is deleting its `<ref>/` prefix.
//!
//! Uploads are streamed: the body goes to the store in parts of [`Backend::part_size`] with at most two
//! in flight, so memory per upload stays a few MiB whatever the object's size. Locally the store is a
//! directory (`supactl up`: the data directory's `storage/`); a part is written to a staging file that
//! is renamed into place when the upload completes, so a half-written object is never visible. On AWS
//! it is the environment's S3 bucket ([`crate::s3`]), written by S3 multipart uploads of 5 MiB parts
//! (S3's smallest), which S3 shows only once completed; an upload that fails is aborted, and the
//! bucket's lifecycle rule removes the parts of one a crash left behind.

use crate::error::{StorageError, StorageResult};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::sync::Arc;

/// Which object store holds the bytes.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// A directory of the local file system (created when missing).
    Local { root: std::path::PathBuf },
    /// An S3 bucket.
    S3(crate::s3::S3Location),
}

/// What an upload wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    /// Hex digest of the bytes (the object's ETag, quoted when sent).
    pub etag: String,
}

#[derive(Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store.to_string())
            .finish()
    }
}

/// Uploads in flight per object (each holding one part in memory).
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes per read (and per body frame) when a download streams a local file.
const FILE_READ_SIZE: usize = 512 * 1024;
/// Reads of a local file in flight beyond the chunk being sent.
const READS_AHEAD: usize = 2;
/// Parts written more than once a second on a local disk; bounded memory either way.
const LOCAL_PART_SIZE: usize = 1024 * 1024;
/// S3 refuses parts below 5 MiB (but the last); 5 GiB in 1,024 parts, well below its 10,000.
pub const S3_PART_SIZE: usize = 5 * 1024 * 1024;

impl Backend {
    pub fn new(config: &BackendConfig) -> Result<Backend, String> {
        match config {
            BackendConfig::Local { root } => {
                std::fs::create_dir_all(root)
                    .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| format!("{}: {e}", root.display()))?;
                Ok(Backend {
                    store: Arc::new(fs),
                    part_size: LOCAL_PART_SIZE,
                })
            }
            BackendConfig::S3(location) => Ok(Backend {
                store: crate::s3::store(location)?,
                part_size: S3_PART_SIZE,
            }),
        }
    }

    /// A backend over any object store (S3 with its own part size of at least 5 MiB).
    pub fn with_store(store: Arc<dyn ObjectStore>, part_size: usize) -> Backend {
        Backend { store, part_size }
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    fn key(project_ref: &str, version: &str) -> Path {
        Path::from(format!("{project_ref}/{version}"))
    }

    /// Streams `body` into a new object `<ref>/<version>`, refusing it (and leaving nothing behind) past
    /// `limit` bytes.
    pub async fn put<S>(
        &self,
        project_ref: &str,
        version: &str,
        mut body: S,
        limit: u64,
    ) -> StorageResult<Written>
    where
        S: futures_util::Stream<Item = StorageResult<Bytes>> + Unpin,
    {
        let upload = self
            .store
            .put_multipart(&Self::key(project_ref, version))
            .await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                let _ = writer.abort().await;
                return Err(StorageError::too_large());
            }
            hash.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(e.into());
            }
            writer.put(chunk);
        }
        writer.finish().await?;
        Ok(Written {
            size,
            etag: hex::encode(&hash.finalize()[..16]),
        })
    }

    /// The object's bytes, or the bytes of `range` of it. A local file is read in [`FILE_READ_SIZE`]
    /// chunks (the store's own stream reads 8 KiB at a time, a body frame each); S3's stream is S3's.
    pub async fn get(
        &self,
        project_ref: &str,
        version: &str,
        range: Option<Range<u64>>,
    ) -> StorageResult<BoxStream<'static, std::io::Result<Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&Self::key(project_ref, version), options)
            .await?;
        match got.payload {
            GetResultPayload::File(file, path) => read_file(file, got.range).await.map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "storage: cannot read a file");
                StorageError::internal()
            }),
            GetResultPayload::Stream(s) => Ok(s.map(|r| r.map_err(std::io::Error::other)).boxed()),
        }
    }

    pub async fn copy(&self, project_ref: &str, from: &str, to: &str) -> StorageResult<()> {
        self.store
            .copy(&Self::key(project_ref, from), &Self::key(project_ref, to))
            .await?;
        Ok(())
    }

    /// Deletes objects whose rows are gone, logging (not failing on) what cannot be deleted: the rows
    /// are the truth, a leftover is only space.
    pub async fn delete(&self, project_ref: &str, versions: Vec<String>) {
        let keys = versions
            .into_iter()
            .map(|v| Ok(Self::key(project_ref, &v)))
            .collect::<Vec<_>>();
        self.delete_keys(futures_util::stream::iter(keys).boxed())
            .await;
    }

    /// Deletes `keys` as they come (S3: up to 1,000 per request), returning how many went.
    async fn delete_keys(&self, keys: BoxStream<'static, object_store::Result<Path>>) -> usize {
        self.store
            .delete_stream(keys)
            .fold(0, |n, r| async move {
                match r {
                    Ok(_) => n + 1,
                    Err(object_store::Error::NotFound { .. }) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "storage: cannot delete an object");
                        n
                    }
                }
            })
            .await
    }

    /// Deletes every object of a project (a deleted project), listing and deleting page by page.
    pub async fn delete_project(&self, project_ref: &str) {
        let prefix = Path::from(project_ref);
        let keys = self
            .store
            .list(Some(&prefix))
            .map(|m| m.map(|m| m.location))
            .boxed();
        let n = self.delete_keys(keys).await;
        tracing::info!(
            project = project_ref,
            objects = n,
            "storage: deleted the project's objects"
        );
    }

    /// Deletes every object below `<ref>/<folder>/` (a resumable upload's segments, including any a
    /// crash left unrecorded), listing and deleting page by page; returns how many went.
    pub async fn delete_below(&self, project_ref: &str, folder: &str) -> usize {
        let prefix = Path::from(format!("{project_ref}/{folder}"));
        let keys = self
            .store
            .list(Some(&prefix))
            .map(|m| m.map(|m| m.location))
            .boxed();
        self.delete_keys(keys).await
    }

    /// Number of objects stored for a project (tests, diagnostics).
    pub async fn count(&self, project_ref: &str) -> usize {
        let prefix = Path::from(project_ref);
        self.store.list(Some(&prefix)).count().await
    }
}

/// `range` of an open local file as a stream of [`FILE_READ_SIZE`] chunks, read ahead: while one chunk
/// is being sent the next [`READS_AHEAD`] are read (positional reads on the blocking pool, each a short
/// task, so a slow client holds no thread) into recycled buffers.
async fn read_file(
    file: std::fs::File,
    range: Range<u64>,
) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    use std::collections::VecDeque;
    use std::os::unix::fs::FileExt;
    type Read = tokio::task::JoinHandle<std::io::Result<Bytes>>;
    let file = Arc::new(file);
    let state = (file, range.start, range.end, VecDeque::<Read>::new());
    Ok(
        futures_util::stream::unfold(state, |(file, mut next, end, mut reads)| async move {
            while reads.len() < READS_AHEAD && next < end {
                let (f, at) = (file.clone(), next);
                let len = (end - next).min(FILE_READ_SIZE as u64) as usize;
                next += len as u64;
                reads.push_back(tokio::task::spawn_blocking(move || {
                    let mut buf = Chunk::new(len);
                    f.read_exact_at(buf.as_mut(), at)?;
                    Ok(Bytes::from_owner(buf))
                }));
            }
            let chunk = match reads.pop_front()?.await {
                Ok(r) => r,
                Err(e) => Err(std::io::Error::other(e)),
            };
            // after an error the stream ends (the reads still queued finish on their own)
            let next = if chunk.is_err() { end } else { next };
            if chunk.is_err() {
                reads.clear();
            }
            Some((chunk, (file, next, end, reads)))
        })
        .boxed(),
    )
}

/// Buffers of [`FILE_READ_SIZE`] bytes given back by sent chunks, taken by the next reads: a download
/// neither faults in nor zeroes fresh memory for each chunk. At most [`FREE_CHUNKS`] are kept.
static FREE: std::sync::Mutex<Vec<Box<[u8]>>> = std::sync::Mutex::new(Vec::new());
const FREE_CHUNKS: usize = 32;

/// The first `len` bytes of a recycled buffer; dropped (once the body frame is written), the buffer
/// goes back to [`FREE`].
struct Chunk {
    buf: Option<Box<[u8]>>,
    len: usize,
}

impl Chunk {
    fn new(len: usize) -> Chunk {
        let reused = FREE.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let buf = reused.unwrap_or_else(|| vec![0u8; FILE_READ_SIZE].into_boxed_slice());
        Chunk {
            buf: Some(buf),
            len,
        }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut().expect("held until dropped")[..self.len]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf.as_ref().expect("held until dropped")[..self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < FREE_CHUNKS {
            free.extend(self.buf.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;
    use std::io::Write;

    /// Ranges across chunk boundaries, read twice: the second pass reads into the buffers the first
    /// gave back (their earlier contents longer than the new chunks) and must see only its own bytes.
    #[tokio::test]
    async fn ranges_read_into_recycled_buffers_are_exact() {
        let mut bytes = vec![0u8; 3 * FILE_READ_SIZE + 1234];
        rand::thread_rng().fill_bytes(&mut bytes);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        let len = bytes.len() as u64;
        let chunk = FILE_READ_SIZE as u64;
        for range in [
            0..len,
            7..chunk + 9,
            chunk - 1..len - 5,
            5..6,
            len - 1..len,
            0..len,
        ] {
            let stream = read_file(f.try_clone().unwrap(), range.clone())
                .await
                .unwrap();
            let frames: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
            assert!(frames.iter().all(|b| b.len() <= FILE_READ_SIZE));
            assert_eq!(
                frames.concat(),
                &bytes[range.start as usize..range.end as usize]
            );
        }
        assert!(
            !FREE.lock().unwrap().is_empty(),
            "sent chunks give their buffers back"
        );
    }
}
