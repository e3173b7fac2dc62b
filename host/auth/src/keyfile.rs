//! The login-token signing key on disk: loaded, or created on first start.
//!
//! Invariants: the key is [`KEY_BYTES`] bytes from the operating system's CSPRNG; the file is
//! mode 0600 and a missing parent directory is created 0700; an existing file that others can
//! read, or of the wrong length, is refused (never silently replaced: that would log everyone
//! out, and hide an intrusion); creation is atomic (written aside, then hard-linked into place),
//! so two daemons starting together end with one key and a crash never leaves half a key.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::secret::{EntropyUnavailable, random_bytes};

/// Bytes in the HS256 key: RFC 7518 §3.2 requires a key at least as long as the hash output
/// (256 bits), and more adds nothing to HMAC-SHA-256's strength.
pub const KEY_BYTES: usize = 32;

/// Permission bits the key file must have no more of: the owner's read and write.
const KEY_FILE_MODE: u32 = 0o600;

/// Permission bits of a parent directory this module creates: the owner's only.
const KEY_DIR_MODE: u32 = 0o700;

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading, creating or linking failed.
    #[error("token signing key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file is readable or writable by others than its owner.
    #[error(
        "token signing key {path} has mode {mode:o}, so others can read it (and forge logins); \
         run chmod 600 {path}, or delete it to make a new key (everyone logged in must log in again)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold exactly [`KEY_BYTES`] bytes.
    #[error(
        "token signing key {path} holds {len} bytes, not {KEY_BYTES}; delete it to make a new key"
    )]
    Length {
        /// The key file.
        path: PathBuf,
        /// What it holds.
        len: usize,
    },
    /// No randomness to make a key from.
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key at `path`, creating it (and a missing parent directory) if absent.
pub fn load_or_create_key(path: &Path) -> Result<Zeroizing<[u8; KEY_BYTES]>, KeyFileError> {
    match load_key(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        loaded => return loaded,
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(KEY_DIR_MODE)
            .create(parent)
            .map_err(io_error(parent))?;
    }
    let key = random_bytes::<KEY_BYTES>()?;
    let aside = aside_path(path)?;
    let written = write_new(&aside, key.as_ref());
    let linked = written.and_then(|()| fs::hard_link(&aside, path));
    let _ = fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(key),
        // Another process created it between our check and our link: use theirs.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => load_key(path),
        Err(error) => Err(io_error(path)(error)),
    }
}

fn load_key(path: &Path) -> Result<Zeroizing<[u8; KEY_BYTES]>, KeyFileError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let mode = file.metadata().map_err(io_error(path))?.mode() & 0o777;
    if mode & !KEY_FILE_MODE != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_BYTES + 1));
    // One byte more than a key, so a longer file is noticed without reading all of it.
    (&mut file)
        .take(KEY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    let key: [u8; KEY_BYTES] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyFileError::Length {
            path: path.to_owned(),
            len: bytes.len(),
        })?;
    Ok(Zeroizing::new(key))
}

/// A unique name beside `path` for writing the new key before linking it into place.
fn aside_path(path: &Path) -> Result<PathBuf, KeyFileError> {
    let suffix = random_bytes::<8>()?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", hex::encode(*suffix)));
    Ok(path.with_file_name(name))
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(KEY_FILE_MODE)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_key_is_created_0600_under_a_new_0700_directory_then_loaded_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/secrets/token.key");
        let created = load_or_create_key(&path).expect("create");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
        let loaded = load_or_create_key(&path).expect("load");
        assert_eq!(*created, *loaded);
        let leftovers = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .count();
        assert_eq!(leftovers, 1, "no .new- file left behind");
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token.key");
        load_or_create_key(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = load_or_create_key(&path).expect_err("refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0usize, 31, 33, 4096] {
            let path = dir.path().join(format!("key-{len}"));
            write_new(&path, &vec![7u8; len]).expect("write");
            let error = load_or_create_key(&path).expect_err("refused");
            assert!(
                matches!(error, KeyFileError::Length { .. }),
                "{len}: {error}"
            );
            assert_eq!(fs::read(&path).expect("still there").len(), len);
        }
    }
}
