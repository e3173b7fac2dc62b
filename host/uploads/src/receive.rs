//! Streaming receipt of an upload body to a new file.
//!
//! Invariants: the body is never held whole in memory (one chunk at a time goes to the file and
//! the hash); the file is created with `create_new` (never truncating or following an existing
//! path), mode 0600; the byte count is checked BEFORE a chunk is written, so at most `limit`
//! bytes ever reach the disk; on any error, and when the future is dropped mid-way (client gone,
//! handler cancelled), a guard removes the partial file, so only a complete upload remains.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::os::unix::fs::OpenOptionsExt;
use tokio::io::AsyncWriteExt;

/// A complete upload on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    /// Where it was written (the `dest` given to [`receive`]).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content, lowercase hex.
    pub sha256: String,
}

/// Why an upload was not received. The partial file is already removed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body exceeded the limit; nothing past the limit was written.
    #[error("the upload is larger than the limit of {limit} bytes (`uploads.max_upload_bytes`)")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body stream failed, e.g. the client disconnected mid-upload.
    #[error("the upload was interrupted after {received} bytes: {source}")]
    Stream {
        /// Bytes received before the failure.
        received: u64,
        /// The stream's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The file could not be created or written.
    #[error("writing the upload to {path}: {source}")]
    Io {
        /// The destination file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Streams `body` into the new file `dest` (which must not exist), stopping with
/// [`UploadError::TooLarge`] as soon as more than `limit` bytes arrive. Returns the size and
/// SHA-256 of what was written. Errors and cancellation leave no file behind. The file is
/// written but not synced to disk.
pub async fn receive<S, E>(body: S, dest: &Path, limit: u64) -> Result<ReceivedFile, UploadError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let io_err = |source| UploadError::Io {
        path: dest.to_path_buf(),
        source,
    };
    // Created synchronously (one quick syscall) so no await point separates the file's creation
    // from its guard: a future dropped while an async open was in flight would leave the file.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(io_err)?;
    // Armed only once the file exists and is ours: removing a pre-existing path would delete
    // something create_new just refused to touch.
    let guard = RemoveOnDrop::new(dest.to_path_buf());
    let mut file = tokio::fs::File::from_std(file);

    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Stream {
            received: size,
            source: e.into(),
        })?;
        let next_size = size.saturating_add(chunk.len() as u64);
        if next_size > limit {
            return Err(UploadError::TooLarge { limit });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io_err)?;
        size = next_size;
    }
    // tokio's File writes in the background: flush to surface the last write's error. Not
    // synced here: the caller makes durable what it keeps (the daemon syncs the extracted tree,
    // and deletes the received file).
    file.flush().await.map_err(io_err)?;
    drop(file);
    guard.disarm();
    Ok(ReceivedFile {
        path: dest.to_path_buf(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Removes a file when dropped, unless disarmed: the one place that keeps "a failed or
/// cancelled upload leaves nothing behind" true on every exit path, including future drop.
struct RemoveOnDrop {
    path: Option<PathBuf>,
}

impl RemoveOnDrop {
    fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Unlinking is one quick syscall, fine even on an async worker; a background write
            // still in flight lands in the unlinked inode and vanishes with it.
            let _ = std::fs::remove_file(path);
        }
    }
}
