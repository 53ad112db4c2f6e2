//! Where media files live: one trait, its backends, one conformance suite
//! (`tests/it/storage.rs`).
//!
//! A key is `{token}/{name}`: a random 128-bit token per upload (so URLs cannot be guessed)
//! and a file name (`upload`, `original.jpg`, `small.jpg`). Every write is whole or
//! nothing: a file appears under its key only once it is complete, so a failed upload or a
//! worker killed mid-write leaves nothing half-written where it could be served.

use std::future::Future;
use std::path::{Path, PathBuf};

use starling_schema::settings::{MediaBackend, MediaSettings};
use tokio::io::AsyncWriteExt;

use crate::{MediaError, Result};

/// A file in storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub key: String,
    pub size: u64,
    pub modified_ms: u64,
}

/// A media storage backend.
pub trait MediaStorage: Send + Sync + 'static {
    /// Keep `bytes` under `key`, replacing what was there; whole or not at all.
    fn put(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = Result<()>> + Send;
    /// Keep a staged upload under `key`, whole or not at all.
    fn put_staged(&self, key: &str, staged: Staged) -> impl Future<Output = Result<()>> + Send;
    /// The bytes under `key`; [`MediaError::NotFound`] if none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>>> + Send;
    /// Remove `key`; removing an absent key is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// Every file, in key order.
    fn list(&self) -> impl Future<Output = Result<Vec<StoredFile>>> + Send;
    /// Write, read back and remove a probe file: what `starling admin doctor` checks.
    fn check(&self) -> impl Future<Output = Result<()>> + Send {
        async {
            let key = key(&new_token(), "doctor");
            self.put(&key, b"starling".to_vec()).await?;
            let back = self.get(&key).await?;
            self.delete(&key).await?;
            if back == b"starling" {
                Ok(())
            } else {
                Err(MediaError::Storage {
                    context: "reading back a probe file",
                    source: std::io::Error::other("read back different bytes"),
                })
            }
        }
    }
}

/// A fresh random token for an upload's keys.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The key of file `name` of the upload `token`.
pub fn key(token: &str, name: &str) -> String {
    format!("{token}/{name}")
}

/// The token of a key (the upload it belongs to).
pub fn token_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(t, _)| t)
}

/// Whether `key` is one of ours: a 32-hex-digit token, `/`, a plain file name. Anything
/// else (`..`, absolute paths, other directories) names nothing.
pub fn valid_key(key: &str) -> bool {
    let Some((token, name)) = key.split_once('/') else {
        return false;
    };
    token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

/// An upload being received, in a local staging file until it is complete. Dropped
/// without being stored, the file is removed.
pub struct Staged {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    len: u64,
}

impl Staged {
    /// A new empty staging file under `dir`.
    pub async fn create(dir: &Path) -> Result<Staged> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(MediaError::io("creating the staging directory"))?;
        let path = dir.join(format!("{}.part", new_token()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(MediaError::io("creating a staging file"))?;
        Ok(Staged {
            path,
            file: Some(file),
            len: 0,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(chunk)
                .await
                .map_err(MediaError::io("writing a staging file"))?;
        }
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush and sync what was written; the file is complete after this.
    pub async fn finish(&mut self) -> Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()
                .await
                .map_err(MediaError::io("flushing a staging file"))?;
            f.sync_data()
                .await
                .map_err(MediaError::io("syncing a staging file"))?;
        }
        Ok(())
    }

    /// The first `n` bytes of what was written (after [`Staged::finish`]).
    pub async fn head(&self, n: usize) -> Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let f = tokio::fs::File::open(&self.path)
            .await
            .map_err(MediaError::io("reading a staging file"))?;
        let mut out = Vec::with_capacity(n);
        f.take(n as u64)
            .read_to_end(&mut out)
            .await
            .map_err(MediaError::io("reading a staging file"))?;
        Ok(out)
    }

    /// Give up the staging file to whoever moves it; it is no longer removed on drop.
    fn take_path(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Files under a directory: `{root}/{token}/{name}`, staging under `{root}/.staging`.
#[derive(Clone, Debug)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: impl Into<PathBuf>) -> FsStorage {
        FsStorage { root: root.into() }
    }

    /// Where uploads are staged while they stream in (same file system: moved, not copied).
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(".staging")
    }

    /// The path of `key`, for serving it; [`MediaError::BadKey`] if it is not one of ours.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        if !valid_key(key) {
            return Err(MediaError::BadKey);
        }
        Ok(self.root.join(key))
    }

    /// Move a complete file into place under `key` (a rename: atomic).
    async fn place(&self, from: &Path, key: &str) -> Result<()> {
        let to = self.path_of(key)?;
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(MediaError::io("creating a media directory"))?;
        }
        tokio::fs::rename(from, &to)
            .await
            .map_err(MediaError::io("moving a file into place"))
    }
}

impl MediaStorage for FsStorage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.path_of(key)?;
        let mut staged = Staged::create(&self.staging_dir()).await?;
        staged.write(&bytes).await?;
        staged.finish().await?;
        self.put_staged(key, staged).await
    }

    async fn put_staged(&self, key: &str, mut staged: Staged) -> Result<()> {
        staged.finish().await?;
        let from = staged.path().to_owned();
        match self.place(&from, key).await {
            Ok(()) => {
                staged.take_path();
                Ok(())
            }
            // `staged` is dropped here and removes the file.
            Err(e) => Err(e),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path_of(key)?;
        tokio::fs::read(path)
            .await
            .map_err(MediaError::io("reading a media file"))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(MediaError::Storage {
                    context: "removing a media file",
                    source,
                });
            }
        }
        // The upload's directory goes with its last file (fails harmlessly if not empty).
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::remove_dir(dir).await;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StoredFile>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || list_dir(&root))
            .await
            .map_err(|e| MediaError::Storage {
                context: "listing media files",
                source: std::io::Error::other(e),
            })?
    }
}

fn list_dir(root: &Path) -> Result<Vec<StoredFile>> {
    let ctx = "listing media files";
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(MediaError::Storage {
                context: ctx,
                source,
            });
        }
    };
    for dir in entries {
        let dir = dir.map_err(MediaError::io(ctx))?;
        let token = dir.file_name().to_string_lossy().into_owned();
        if !dir.path().is_dir() || token.starts_with('.') {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).map_err(MediaError::io(ctx))? {
            let file = file.map_err(MediaError::io(ctx))?;
            let key = key(&token, &file.file_name().to_string_lossy());
            if !valid_key(&key) {
                continue;
            }
            let meta = file.metadata().map_err(MediaError::io(ctx))?;
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            out.push(StoredFile {
                key,
                size: meta.len(),
                modified_ms,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The backend chosen by `media.backend`.
#[derive(Clone, Debug)]
pub enum AnyStorage {
    Fs(FsStorage),
    S3(crate::s3::S3Storage),
}

impl AnyStorage {
    /// The configured backend. Fails when its settings are incomplete (an S3 bucket
    /// without credentials); connects to nothing yet.
    pub fn from_settings(settings: &MediaSettings) -> Result<AnyStorage> {
        let fs = FsStorage::new(&settings.path);
        Ok(match settings.backend {
            MediaBackend::Fs => AnyStorage::Fs(fs),
            MediaBackend::S3 => {
                AnyStorage::S3(crate::s3::S3Storage::new(&settings.s3, fs.staging_dir())?)
            }
        })
    }

    /// Where uploads are staged while they stream in.
    pub fn staging_dir(&self) -> PathBuf {
        match self {
            AnyStorage::Fs(s) => s.staging_dir(),
            AnyStorage::S3(s) => s.staging_dir(),
        }
    }

    /// The local path of `key` when this backend serves files from disk;
    /// [`MediaError::NotFound`] when files are served from elsewhere (`media.public_url`).
    pub fn local_path(&self, key: &str) -> Result<PathBuf> {
        match self {
            AnyStorage::Fs(s) => s.path_of(key),
            AnyStorage::S3(_) => Err(MediaError::NotFound),
        }
    }

    /// What to call this backend in messages: its directory or its bucket.
    pub fn describe(settings: &MediaSettings) -> String {
        match settings.backend {
            MediaBackend::Fs => format!("fs {}", settings.path.display()),
            MediaBackend::S3 => {
                let s3 = &settings.s3;
                let at = if s3.endpoint.is_empty() {
                    format!("AWS {}", s3.region)
                } else {
                    s3.endpoint.clone()
                };
                format!("s3 bucket {} at {at}", s3.bucket)
            }
        }
    }
}

impl MediaStorage for AnyStorage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            AnyStorage::Fs(s) => s.put(key, bytes).await,
            AnyStorage::S3(s) => s.put(key, bytes).await,
        }
    }

    async fn put_staged(&self, key: &str, staged: Staged) -> Result<()> {
        match self {
            AnyStorage::Fs(s) => s.put_staged(key, staged).await,
            AnyStorage::S3(s) => s.put_staged(key, staged).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        match self {
            AnyStorage::Fs(s) => s.get(key).await,
            AnyStorage::S3(s) => s.get(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self {
            AnyStorage::Fs(s) => s.delete(key).await,
            AnyStorage::S3(s) => s.delete(key).await,
        }
    }

    async fn list(&self) -> Result<Vec<StoredFile>> {
        match self {
            AnyStorage::Fs(s) => s.list().await,
            AnyStorage::S3(s) => s.list().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_keys_are_valid() {
        let t = new_token();
        assert!(valid_key(&key(&t, "original.jpg")));
        assert!(valid_key(&key(&t, "upload")));
        for bad in [
            "../etc/passwd".to_owned(),
            format!("{t}/../x"),
            format!("{t}/.hidden"),
            format!("{t}/a/b"),
            format!("{}/x", t.to_uppercase()),
            "abc/x".to_owned(),
            t.clone(),
        ] {
            assert!(!valid_key(&bad), "{bad}");
        }
    }
}
