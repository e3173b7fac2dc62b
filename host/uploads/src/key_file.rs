//! The upload URL signing key on disk: 32 random bytes, created on first start.
//!
//! Invariants: a key file we create is 0600 in a parent directory we create 0700, and appears
//! atomically (written to a temporary file, fsynced, then hard-linked into place, which fails
//! instead of replacing when a second daemon won the race; the winner's key is then loaded). A key
//! file we load must be a regular file of exactly `KEY_LEN` bytes that neither group nor others
//! may access, so a copied-in key with loose permissions is refused instead of trusted.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::signer::SignerError;

/// Key length in bytes: HMAC-SHA256's block-internal key size; longer adds nothing, shorter
/// weakens the tag.
pub(crate) const KEY_LEN: usize = 32;

/// Permission bits a key file must not have: any access for group or others.
const GROUP_OTHER_BITS: u32 = 0o077;

/// Loads the key at `path`, creating it (and its parent directory) if it does not exist.
pub(crate) fn load_or_create(path: &Path) -> Result<[u8; KEY_LEN], SignerError> {
    match load(path) {
        Err(SignerError::KeyFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            create(path)
        }
        other => other,
    }
}

fn load(path: &Path) -> Result<[u8; KEY_LEN], SignerError> {
    let io_err = |source| SignerError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let metadata = file.metadata().map_err(io_err)?;
    if !metadata.is_file() {
        return Err(SignerError::KeyFileInvalid {
            path: path.to_path_buf(),
            reason: "is not a regular file".to_owned(),
        });
    }
    if metadata.mode() & GROUP_OTHER_BITS != 0 {
        return Err(SignerError::KeyFileInvalid {
            path: path.to_path_buf(),
            reason: format!(
                "has mode {:o}: group or others may access it; allowed: 0600 or stricter (chmod 600)",
                metadata.mode() & 0o777
            ),
        });
    }
    // Read one byte past the key length so a longer file is recognised as wrong, not truncated.
    let mut contents = Vec::with_capacity(KEY_LEN + 1);
    (&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut contents)
        .map_err(io_err)?;
    <[u8; KEY_LEN]>::try_from(contents.as_slice()).map_err(|_| SignerError::KeyFileInvalid {
        path: path.to_path_buf(),
        reason: format!(
            "holds {} bytes or more; allowed: exactly {KEY_LEN} bytes (delete it to create a new key, which invalidates outstanding upload URLs)",
            contents.len()
        ),
    })
}

fn create(path: &Path) -> Result<[u8; KEY_LEN], SignerError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io_err = |path: &Path, source| SignerError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| io_err(parent, e))?;

    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| SignerError::Randomness(e.to_string()))?;

    let temporary = temporary_path(path)?;
    let written = write_new_file(&temporary, &key).and_then(|()| {
        match fs::hard_link(&temporary, path) {
            Ok(()) => Ok(true),
            // Another daemon created the key between our load and now: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    });
    // The temporary name is never needed after the link, whatever happened.
    let _ = fs::remove_file(&temporary);
    match written {
        Ok(true) => {
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| io_err(parent, e))?;
            Ok(key)
        }
        Ok(false) => load(path),
        Err(e) => Err(io_err(path, e)),
    }
}

fn temporary_path(path: &Path) -> Result<PathBuf, SignerError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| SignerError::Randomness(e.to_string()))?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", hex::encode(suffix)));
    Ok(path.with_file_name(name))
}

fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn first_start_creates_a_private_key_that_later_starts_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/secrets/upload-url.key");
        let created = load_or_create(&path).expect("created");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("data/secrets")), 0o700);
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&created[..]));
        assert_ne!(created, [0u8; KEY_LEN]);
        let loaded = load_or_create(&path).expect("loaded");
        assert_eq!(created, loaded);
        // Nothing but the key is left in the directory (the temporary name is gone).
        let names: Vec<_> = fs::read_dir(path.parent().unwrap_or(dir.path()))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["upload-url.key"]);
    }

    #[test]
    fn untrustworthy_key_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, contents: &[u8], mode: u32| {
            let path = dir.path().join(name);
            fs::write(&path, contents).expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        let cases = [
            (write("readable", &[1; 32], 0o644), "group or others"),
            (write("group", &[1; 32], 0o640), "group or others"),
            (write("short", &[1; 31], 0o600), "exactly 32 bytes"),
            (write("long", &[1; 33], 0o600), "exactly 32 bytes"),
            (write("empty", &[], 0o600), "exactly 32 bytes"),
        ];
        for (path, reason) in cases {
            match load_or_create(&path) {
                Err(SignerError::KeyFileInvalid { reason: got, .. }) => {
                    assert!(got.contains(reason), "{}: {got}", path.display())
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        let directory = dir.path().join("a-directory");
        fs::create_dir(&directory).expect("mkdir");
        fs::set_permissions(&directory, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(matches!(
            load_or_create(&directory),
            Err(SignerError::KeyFileInvalid { .. })
        ));
    }
}
