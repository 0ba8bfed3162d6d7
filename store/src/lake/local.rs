//! The lake in a local folder. Writes go to a temp file in the same folder, are synced, then
//! renamed over the key: a reader sees the old object or the new one, never half of one.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Lake, Object};
use crate::error::{Result, StoreError};

/// A folder lake.
#[derive(Debug, Clone)]
pub struct LocalLake {
    root: PathBuf,
}

impl LocalLake {
    /// A lake rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalLake { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// [`Lake::list`] on this thread: for readers that are not async (Polars scans).
    pub fn list_blocking(&self, prefix: &str) -> Result<Vec<Object>> {
        // Walk only the deepest folder that the prefix names in full.
        let start = match prefix.rfind('/') {
            Some(i) => self.path(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        walk(&start, &self.root, &mut out).map_err(|e| StoreError::io(&start, e))?;
        out.retain(|o| o.key.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    /// The file of an object key.
    pub fn path(&self, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<Object>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&path, root, out)?;
        } else if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(Object {
                key,
                size: meta.len(),
                version: format!("{modified}-{}", inode(&meta)),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// Writes a file beside `path` with `write`, syncs it, and renames it over `path`, then syncs
/// the folder: a reader sees the old file or the new one, never half of one.
fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File, &Path) -> Result<()>,
) -> Result<()> {
    let dir = path.parent().expect("keys have a folder");
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let name = path
        .file_name()
        .expect("keys have a name")
        .to_string_lossy();
    // One temporary file per write, not per process: two writes of the same key at once (the
    // watermark's timer and the last write at a stop) must not rename each other's file away.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{name}-{}-{n}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    write(&mut f, &tmp)?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    // Make the rename itself durable.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[async_trait]
impl Lake for LocalLake {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(key);
        tokio::task::spawn_blocking(move || {
            replace_atomically(&path, |f, tmp| {
                use std::io::Write;
                f.write_all(&bytes).map_err(|e| StoreError::io(tmp, e))
            })
        })
        .await?
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.to_owned()))
            }
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    async fn download(&self, key: &str, dest: &Path) -> Result<u64> {
        let path = self.path(key);
        match tokio::fs::copy(&path, dest).await {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.exists() => {
                Err(StoreError::NotFound(key.to_owned()))
            }
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    async fn upload(&self, key: &str, src: &Path) -> Result<()> {
        let (path, src) = (self.path(key), src.to_owned());
        tokio::task::spawn_blocking(move || {
            replace_atomically(&path, |f, tmp| {
                let mut from = std::fs::File::open(&src).map_err(|e| StoreError::io(&src, e))?;
                std::io::copy(&mut from, f).map_err(|e| StoreError::io(tmp, e))?;
                Ok(())
            })
        })
        .await?
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>> {
        let lake = self.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || lake.list_blocking(&prefix)).await?
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}
