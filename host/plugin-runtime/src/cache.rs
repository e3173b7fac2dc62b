//! Precompiled plugin artefacts on disk, so a restart does not recompile every plugin.
//!
//! Layout: `<dir>/<key>.cwasm` (wasmtime's serialized component) and `<dir>/<key>.hmac` (its
//! tag, in hex), where `key` = sha256(component bytes ‖ engine compatibility hash): a different
//! plugin build or an incompatible engine (wasmtime version, config) gets a new key. The tag is
//! HMAC-SHA256 over a domain label, the key and the artefact's bytes, keyed by a 32-byte secret
//! kept in `<dir>.key`, beside the directory and not in it.
//!
//! # What the cache trusts, and why
//!
//! An artefact is native code: `Component::deserialize` maps it executable in the daemon after
//! checking little more than its header, so whoever chooses its bytes runs code as the daemon.
//! The cache trusts one thing, the secret: it loads only bytes whose tag was made with the
//! secret, and only `ArtefactCache::store` makes tags, of what `Component::serialize` returned.
//! - Whoever can write the cache directory but cannot read the secret cannot forge a tag (a plain
//!   digest written beside the artefact, as before, could be rewritten by the same writer). The
//!   secret lives outside the directory, so a copy, backup or share of the directory carries no
//!   secret with it.
//! - The tag covers the key, so a genuine artefact cannot be served under another plugin's key.
//! - The bytes checked are the bytes loaded: an artefact is read into memory once, its tag is
//!   checked on that buffer, and that buffer is deserialized (wasmtime copies it into its own
//!   mapping). The file is never mapped, so a write after the check changes nothing.
//! - The secret and every cache file are private to the daemon's uid: the secret is created 0600
//!   (`O_EXCL`, published with a hard link, never replaced) and used only when it is a regular
//!   file of the daemon's euid without group or other bits (opened `O_NOFOLLOW`); the directory
//!   is created 0700 and used only when, at start-up, it is a directory (not a symlink) of the
//!   daemon's euid without group or other bits. Cache files are written 0600.
//!
//! Why a secret on disk rather than digests kept in memory only: the cache exists to spare a
//! *restart* the compile, and memory does not survive one.
//!
//! What it does not stop: code running as the daemon's uid outside Landlock (`landlock = "off"`
//! or a kernel without it, and no `run_as`) can read the secret as the daemon does, and so forge
//! tags; such a tool can reach every other file of the daemon's too (GUARANTEES.md, "What is not
//! provided"). Under Landlock a tool reaches its allowed directories, the system read paths and
//! its own job directories, not the cache (unless `data_dir` lies in an allowed directory);
//! with `run_as` it has another uid.
//!
//! A cache directory or secret that fails these checks is not used, and start-up goes on: a
//! warning names the path and what is wrong, and every plugin is compiled in memory at every
//! start until it is fixed (a slower start, never a refused one, like any other cache failure).
//!
//! Invariants: files appear only complete (written to a new temporary name, then renamed, or
//! linked for the secret); an artefact is deserialized only from a buffer whose tag matched;
//! a missing, truncated, corrupted, swapped or forged entry is recompiled instead of loaded; a
//! cache that cannot be read or written costs a compile, never a plugin.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::hash::Hasher;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;
use crate::loader::MAX_PLUGIN_BYTES;

const ARTEFACT_EXTENSION: &str = "cwasm";
const TAG_EXTENSION: &str = "hmac";
const SECRET_EXTENSION: &str = "key";
/// Ties a tag to this use of the secret and this format (a new format gets a new label).
const TAG_DOMAIN: &[u8] = b"toolgate plugin artefact v1\0";
const SECRET_BYTES: usize = 32;
const TAG_BYTES: usize = 32;
const PRIVATE_DIR_MODE: u32 = 0o700;
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Group and other permission bits: a cache directory or secret with any of them is not used.
const GROUP_OTHER_BITS: u32 = 0o077;
/// Largest artefact read: compiled code is a few times the size of its component, which is at
/// most `MAX_PLUGIN_BYTES`; a larger file was not written by us.
const MAX_ARTEFACT_BYTES: u64 = 8 * MAX_PLUGIN_BYTES;

/// Makes temporary file names unique between threads of this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

type HmacSha256 = Hmac<Sha256>;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Compiled,
    Cache,
}

/// The on-disk artefact cache in one directory, with the secret its tags are made with.
#[derive(Debug, Clone)]
pub(crate) struct ArtefactCache {
    dir: PathBuf,
    secret: Secret,
}

/// The key of the artefact tags (see the module docs). Never printed.
#[derive(Clone)]
struct Secret([u8; SECRET_BYTES]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The tag of the artefact `serialized` stored under `key`, not finalized yet.
    fn tag(&self, key: &str, serialized: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.0).expect("HMAC accepts a key of any length");
        mac.update(TAG_DOMAIN);
        mac.update(key.as_bytes());
        mac.update(b"\0");
        mac.update(serialized);
        mac
    }
}

/// Why a cache directory or its secret is not used.
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error("cannot inspect it: {0}")]
    Inspect(std::io::Error),
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a {0}")]
    WrongKind(&'static str),
    #[error("it is owned by uid {owner}, not by the daemon's uid {euid}")]
    Owner { owner: u32, euid: u32 },
    #[error("its mode {mode:04o} grants group or other users access (chmod go= it)")]
    Mode { mode: u32 },
    #[error("it holds {len} bytes, not a {SECRET_BYTES}-byte secret")]
    SecretLength { len: u64 },
    #[error("cannot create it: {0}")]
    Create(std::io::Error),
    #[error("it has no file name to name its secret after")]
    NoName,
}

/// Why one cache entry is not loaded (it is recompiled and written again).
#[derive(Debug, thiserror::Error)]
enum BadEntry {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is {len} bytes; no artefact of ours exceeds {MAX_ARTEFACT_BYTES}")]
    TooLarge { len: u64 },
    #[error("cannot read its tag {path}: {source}")]
    TagUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("its tag is not {TAG_BYTES} bytes in hex")]
    MalformedTag,
    #[error(
        "its tag does not match: this cache did not write these bytes under this key (tampered, \
         swapped, or tagged with another secret)"
    )]
    Forged,
    #[error("wasmtime refused it: {0}")]
    Refused(String),
}

impl ArtefactCache {
    /// Opens the cache directory (created 0700 if missing) and its secret (created if missing).
    /// `Ok(None)` when either is not private to the daemon's uid: the cache is not used, and a
    /// warning names the path and what is wrong. `Err` when the directory cannot be created.
    pub(crate) fn open(dir: PathBuf) -> Result<Option<Self>, RuntimeError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(&dir)
            .map_err(|source| RuntimeError::CacheDir {
                path: dir.clone(),
                source,
            })?;
        let euid = effective_uid();
        let secret = check_private_dir(&dir, euid)
            .and_then(|()| secret_path(&dir))
            .map_err(|problem| (dir.clone(), problem))
            .and_then(|path| load_or_create_secret(&path, euid).map_err(|problem| (path, problem)));
        match secret {
            Ok(secret) => Ok(Some(ArtefactCache { dir, secret })),
            Err((path, problem)) => {
                tracing::warn!(
                    cache = %dir.display(),
                    path = %path.display(),
                    %problem,
                    "not using the compiled-plugin cache: every plugin is compiled in memory at \
                     every start until the path is fixed (or removed, to be recreated)"
                );
                Ok(None)
            }
        }
    }

    /// The compiled component for `bytes`: from the cache when a verified artefact exists,
    /// otherwise compiled (and then written to the cache, best effort).
    pub(crate) fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let key = cache_key(engine, bytes);
        let artefact = self.dir.join(format!("{key}.{ARTEFACT_EXTENSION}"));
        let tag = self.dir.join(format!("{key}.{TAG_EXTENSION}"));
        match self.load_verified(engine, &key, &artefact, &tag) {
            Ok(Some(component)) => return Ok((component, Origin::Cache)),
            Ok(None) => {}
            Err(reason) => tracing::warn!(
                artefact = %artefact.display(),
                %reason,
                "ignoring a bad cached plugin artefact; recompiling"
            ),
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&component, &key, &artefact, &tag) {
            tracing::warn!(
                artefact = %artefact.display(),
                %error,
                "cannot write the plugin artefact cache; the next start recompiles"
            );
        }
        Ok((component, Origin::Compiled))
    }

    fn store(
        &self,
        component: &Component,
        key: &str,
        artefact: &Path,
        tag: &Path,
    ) -> std::io::Result<()> {
        let serialized = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let tag_hex = hex::encode(self.secret.tag(key, &serialized).finalize().into_bytes());
        // Tag first: an artefact is never visible without the tag it must match.
        write_atomically(&self.dir, tag, tag_hex.as_bytes())?;
        write_atomically(&self.dir, artefact, &serialized)
    }

    /// `Ok(None)` on a cache miss, `Err` with the reason when an entry exists but is not used.
    fn load_verified(
        &self,
        engine: &Engine,
        key: &str,
        artefact: &Path,
        tag: &Path,
    ) -> Result<Option<Component>, BadEntry> {
        let Some(serialized) = read_artefact(artefact)? else {
            return Ok(None);
        };
        let recorded = read_tag(tag)?;
        self.secret
            .tag(key, &serialized)
            .verify_slice(&recorded)
            .map_err(|_| BadEntry::Forged)?;
        // SAFETY: `Component::deserialize` may only be given bytes that `Component::serialize`
        // (or `Engine::precompile_component`) produced, because it maps them as native code.
        // These are: their tag, checked just above on this very buffer, was made with the
        // cache secret, and the only code that tags anything with it is `store`, over the
        // output of `Component::serialize` ("What the cache trusts" in the module docs says why
        // nobody else holds the secret). The buffer is ours alone between the check and this
        // call, and wasmtime copies it. An artefact of another wasmtime version or engine
        // configuration is refused by wasmtime itself, and has another key anyway.
        let component = unsafe { Component::deserialize(engine, &serialized) }
            .map_err(|error| BadEntry::Refused(format!("{error:#}")))?;
        Ok(Some(component))
    }
}

/// Compiles `bytes` without a cache.
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, Origin)> {
    Ok((Component::new(engine, bytes)?, Origin::Compiled))
}

/// sha256 of the component bytes and of the engine's compatibility hash, in hex.
fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut DigestHasher(&mut hasher),
    );
    hex::encode(hasher.finalize())
}

/// Feeds `std::hash::Hash` output into a sha256, which unlike `DefaultHasher` is stable.
struct DigestHasher<'a>(&'a mut Sha256);

impl Hasher for DigestHasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Never used for the key: the key is the sha256 itself.
        0
    }
}

/// Opens `path` for reading without following a symlink in its last component, and without
/// blocking on a FIFO planted in its place (`O_NONBLOCK` changes nothing for a regular file).
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// The artefact's bytes, read once; `Ok(None)` when there is none.
fn read_artefact(path: &Path) -> Result<Option<Vec<u8>>, BadEntry> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(BadEntry::NotAFile);
        }
        Err(error) => return Err(BadEntry::Read(error)),
    };
    let metadata = file.metadata().map_err(BadEntry::Read)?;
    if !metadata.is_file() {
        return Err(BadEntry::NotAFile);
    }
    if metadata.len() > MAX_ARTEFACT_BYTES {
        return Err(BadEntry::TooLarge {
            len: metadata.len(),
        });
    }
    let mut serialized = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_ARTEFACT_BYTES + 1)
        .read_to_end(&mut serialized)
        .map_err(BadEntry::Read)?;
    let len = serialized.len() as u64;
    if len > MAX_ARTEFACT_BYTES {
        return Err(BadEntry::TooLarge { len });
    }
    Ok(Some(serialized))
}

/// The tag recorded for an artefact.
fn read_tag(path: &Path) -> Result<Vec<u8>, BadEntry> {
    let unreadable = |source| BadEntry::TagUnreadable {
        path: path.to_owned(),
        source,
    };
    let file = open_no_follow(path).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(BadEntry::MalformedTag);
    }
    let mut text = String::new();
    // Two hex digits a byte, and room for a newline an editor may have added.
    file.take(2 * TAG_BYTES as u64 + 2)
        .read_to_string(&mut text)
        .map_err(|_| BadEntry::MalformedTag)?;
    match hex::decode(text.trim()) {
        Ok(tag) if tag.len() == TAG_BYTES => Ok(tag),
        _ => Err(BadEntry::MalformedTag),
    }
}

/// The daemon's effective uid, the owner every cache file must have.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// `Ok` when `metadata` is of the expected kind, owned by `euid`, without group or other bits.
fn check_private(
    metadata: &Metadata,
    is_expected_kind: bool,
    kind: &'static str,
    euid: u32,
) -> Result<(), Unusable> {
    if !is_expected_kind {
        return Err(Unusable::WrongKind(kind));
    }
    if metadata.uid() != euid {
        return Err(Unusable::Owner {
            owner: metadata.uid(),
            euid,
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(Unusable::Mode { mode });
    }
    Ok(())
}

/// Mode bits that let other users change a directory's entries.
const GROUP_OTHER_WRITE_BITS: u32 = 0o022;

/// The cache directory itself (not a symlink to one) must be private to `euid`. One of the
/// daemon's that only others' read or search bits keep from being private (what versions
/// before the HMAC tags created, 0755) is made private: nobody else could have written to it,
/// and its old entries carry no tag, so they are recompiled, never loaded.
fn check_private_dir(dir: &Path, euid: u32) -> Result<(), Unusable> {
    let mut metadata = std::fs::symlink_metadata(dir).map_err(Unusable::Inspect)?;
    if metadata.file_type().is_symlink() {
        return Err(Unusable::Symlink);
    }
    let mode = metadata.mode() & 0o7777;
    if metadata.is_dir()
        && metadata.uid() == euid
        && mode & GROUP_OTHER_BITS != 0
        && mode & GROUP_OTHER_WRITE_BITS == 0
    {
        std::fs::set_permissions(dir, Permissions::from_mode(mode & !GROUP_OTHER_BITS))
            .map_err(Unusable::Inspect)?;
        tracing::info!(dir = %dir.display(), "plugin cache directory made private (mode {:04o} -> {:04o})", mode, mode & !GROUP_OTHER_BITS);
        metadata = std::fs::symlink_metadata(dir).map_err(Unusable::Inspect)?;
    }
    check_private(&metadata, metadata.is_dir(), "directory", euid)
}

/// `<dir>.key`: beside the cache directory, not in it.
fn secret_path(dir: &Path) -> Result<PathBuf, Unusable> {
    let mut name = dir.file_name().ok_or(Unusable::NoName)?.to_owned();
    name.push(format!(".{SECRET_EXTENSION}"));
    Ok(dir.with_file_name(name))
}

/// The secret at `path`, created first when there is none.
fn load_or_create_secret(path: &Path, euid: u32) -> Result<Secret, Unusable> {
    match read_secret(path, euid) {
        Err(Unusable::Inspect(error)) if error.kind() == ErrorKind::NotFound => {
            create_secret(path).map_err(Unusable::Create)?;
            read_secret(path, euid)
        }
        read => read,
    }
}

fn read_secret(path: &Path, euid: u32) -> Result<Secret, Unusable> {
    let file = open_no_follow(path).map_err(|error| match error.raw_os_error() {
        Some(libc::ELOOP) => Unusable::Symlink,
        _ => Unusable::Inspect(error),
    })?;
    let metadata = file.metadata().map_err(Unusable::Inspect)?;
    check_private(&metadata, metadata.is_file(), "regular file", euid)?;
    if metadata.len() != SECRET_BYTES as u64 {
        return Err(Unusable::SecretLength {
            len: metadata.len(),
        });
    }
    let mut secret = [0; SECRET_BYTES];
    (&file).read_exact(&mut secret).map_err(Unusable::Inspect)?;
    Ok(Secret(secret))
}

/// Creates a new random secret at `path`; leaves an existing one alone (two processes starting
/// at once agree on whichever was linked first).
fn create_secret(path: &Path) -> std::io::Result<()> {
    let mut secret = [0; SECRET_BYTES];
    File::open("/dev/urandom")?.read_exact(&mut secret)?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = temp_path(parent);
    let linked = write_new_private(&temp, &secret).and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Err(error) if error.kind() != ErrorKind::AlreadyExists => Err(error),
        _ => Ok(()),
    }
}

fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `content` to the new file `path` (never an existing one, nor through a symlink), 0600.
fn write_new_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

/// Writes `content` to `target` via a unique temporary file in `dir` and a rename.
fn write_atomically(dir: &Path, target: &Path, content: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(dir);
    match write_new_private(&temp, content).and_then(|()| std::fs::rename(&temp, target)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The smallest component: its preamble and no section.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    /// Another component: the same with a custom section `x`.
    const OTHER_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0\x00\x02\x01x";

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Gives `path` to uid/gid 65534; false when this process may not (not root).
    fn give_away(path: &Path) -> bool {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).is_ok()
    }

    /// A cache in `<tempdir>/plugins` (its secret is `<tempdir>/plugins.key`).
    fn open_cache() -> (tempfile::TempDir, ArtefactCache) {
        let root = tempfile::tempdir().unwrap();
        let cache = ArtefactCache::open(root.path().join("plugins"))
            .unwrap()
            .expect("a fresh cache is used");
        (root, cache)
    }

    /// The artefact and tag paths of `bytes`' entry.
    fn entry(cache: &ArtefactCache, engine: &Engine, bytes: &[u8]) -> (String, PathBuf, PathBuf) {
        let key = cache_key(engine, bytes);
        let artefact = cache.dir.join(format!("{key}.{ARTEFACT_EXTENSION}"));
        let tag = cache.dir.join(format!("{key}.{TAG_EXTENSION}"));
        (key, artefact, tag)
    }

    #[test]
    fn key_depends_on_bytes_and_engine() {
        let engine = Engine::default();
        let mut fuel_config = wasmtime::Config::new();
        fuel_config.consume_fuel(true);
        let fuel_engine = Engine::new(&fuel_config).unwrap();
        assert_eq!(cache_key(&engine, b"a"), cache_key(&engine, b"a"));
        assert_ne!(cache_key(&engine, b"a"), cache_key(&engine, b"b"));
        assert_ne!(cache_key(&engine, b"a"), cache_key(&fuel_engine, b"a"));
    }

    #[test]
    fn atomic_write_replaces_privately_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        write_atomically(dir.path(), &target, b"one").unwrap();
        write_atomically(dir.path(), &target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(mode(&target), PRIVATE_FILE_MODE);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_stored_entry_loads_and_every_tampered_one_is_refused_table() {
        type Tamper = fn(&Entries);
        struct Entries {
            key: String,
            artefact: PathBuf,
            tag: PathBuf,
            other_artefact: PathBuf,
            other_tag: PathBuf,
        }
        fn flip_a_byte(path: &Path) -> Vec<u8> {
            let mut bytes = std::fs::read(path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(path, &bytes).unwrap();
            bytes
        }
        // `None`: the entry loads; `Some("")`: a miss; otherwise the reason it is refused.
        let cases: &[(&str, Tamper, Option<&str>)] = &[
            ("untouched", |_| {}, None),
            (
                "artefact missing",
                |e| std::fs::remove_file(&e.artefact).unwrap(),
                Some(""),
            ),
            (
                "tag missing",
                |e| std::fs::remove_file(&e.tag).unwrap(),
                Some("cannot read its tag"),
            ),
            (
                "artefact tampered after its tag was written",
                |e| {
                    flip_a_byte(&e.artefact);
                },
                Some("tag does not match"),
            ),
            (
                "artefact tampered, tag rewritten as its sha256 (the old digest)",
                |e| {
                    let tampered = flip_a_byte(&e.artefact);
                    std::fs::write(&e.tag, hex::encode(Sha256::digest(&tampered))).unwrap();
                },
                Some("tag does not match"),
            ),
            (
                "artefact tampered, tag made with another secret",
                |e| {
                    let tampered = flip_a_byte(&e.artefact);
                    let forged = Secret([7; SECRET_BYTES]).tag(&e.key, &tampered);
                    std::fs::write(&e.tag, hex::encode(forged.finalize().into_bytes())).unwrap();
                },
                Some("tag does not match"),
            ),
            (
                "another plugin's genuine artefact and tag under this key",
                |e| {
                    std::fs::copy(&e.other_artefact, &e.artefact).unwrap();
                    std::fs::copy(&e.other_tag, &e.tag).unwrap();
                },
                Some("tag does not match"),
            ),
            (
                "tag not hex",
                |e| std::fs::write(&e.tag, "not a tag").unwrap(),
                Some("is not 32 bytes in hex"),
            ),
            (
                "artefact is a symlink to a genuine artefact",
                |e| {
                    std::fs::remove_file(&e.artefact).unwrap();
                    std::os::unix::fs::symlink(&e.other_artefact, &e.artefact).unwrap();
                },
                Some("not a regular file"),
            ),
            (
                "artefact is a directory",
                |e| {
                    std::fs::remove_file(&e.artefact).unwrap();
                    std::fs::create_dir(&e.artefact).unwrap();
                },
                Some("not a regular file"),
            ),
        ];
        let engine = Engine::default();
        for (name, tamper, expected) in cases {
            let (_root, cache) = open_cache();
            let (key, artefact, tag) = entry(&cache, &engine, EMPTY_COMPONENT);
            let (_, other_artefact, other_tag) = entry(&cache, &engine, OTHER_COMPONENT);
            for bytes in [EMPTY_COMPONENT, OTHER_COMPONENT] {
                let (_, origin) = cache.component(&engine, bytes).unwrap();
                assert_eq!(origin, Origin::Compiled, "{name}");
            }
            tamper(&Entries {
                key: key.clone(),
                artefact: artefact.clone(),
                tag: tag.clone(),
                other_artefact,
                other_tag,
            });
            let loaded = cache.load_verified(&engine, &key, &artefact, &tag);
            match (expected, loaded) {
                (None, Ok(Some(_))) | (Some(""), Ok(None)) => {}
                (Some(needle), Err(error)) if !needle.is_empty() => {
                    let error = error.to_string();
                    assert!(error.contains(needle), "{name}: {error}");
                }
                (expected, loaded) => panic!("{name}: expected {expected:?}, got {loaded:?}"),
            }
            // Whatever was wrong, the next load compiles and rewrites the entry, then hits it.
            if expected.is_some() {
                let _ = std::fs::remove_dir(&artefact);
                let (_, origin) = cache.component(&engine, EMPTY_COMPONENT).unwrap();
                assert_eq!(origin, Origin::Compiled, "{name}");
            }
            let (_, origin) = cache.component(&engine, EMPTY_COMPONENT).unwrap();
            assert_eq!(origin, Origin::Cache, "{name}");
        }
    }

    #[test]
    fn a_new_cache_is_private_and_keeps_its_secret_outside_the_directory() {
        let (root, cache) = open_cache();
        let engine = Engine::default();
        cache.component(&engine, EMPTY_COMPONENT).unwrap();
        assert_eq!(mode(&cache.dir), PRIVATE_DIR_MODE);
        let secret = root.path().join("plugins.key");
        assert_eq!(mode(&secret), PRIVATE_FILE_MODE);
        assert_eq!(std::fs::read(&secret).unwrap(), cache.secret.0);
        for file in std::fs::read_dir(&cache.dir).unwrap() {
            let path = file.unwrap().path();
            assert_eq!(mode(&path), PRIVATE_FILE_MODE, "{}", path.display());
            assert_ne!(path.extension().unwrap(), SECRET_EXTENSION);
        }
        // Reopened, it keeps its secret, so what it stored still loads.
        let reopened = ArtefactCache::open(cache.dir.clone()).unwrap().unwrap();
        assert_eq!(reopened.secret.0, cache.secret.0);
        let (_, origin) = reopened.component(&engine, EMPTY_COMPONENT).unwrap();
        assert_eq!(origin, Origin::Cache);
        assert_eq!(format!("{reopened:?}").matches("Secret(..)").count(), 1);
    }

    #[test]
    fn only_a_private_directory_of_the_daemon_is_used_table() {
        type Prepare = fn(&Path) -> bool;
        // Each prepares `dir` (false: cannot here, skipped); `None` is accepted.
        let cases: &[(&str, Prepare, Option<&str>)] = &[
            (
                "0700",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o700);
                    true
                },
                None,
            ),
            (
                "0500",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o500);
                    true
                },
                None,
            ),
            (
                "0777",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o777);
                    true
                },
                Some("mode 0777"),
            ),
            // Others may read or search but not write: made private (older versions' 0755).
            (
                "0755",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o755);
                    true
                },
                None,
            ),
            (
                "0701",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o701);
                    true
                },
                None,
            ),
            (
                "0775",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o775);
                    true
                },
                Some("mode 0775"),
            ),
            (
                "0770",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o770);
                    true
                },
                Some("mode 0770"),
            ),
            (
                "another owner",
                |d| {
                    std::fs::create_dir(d).unwrap();
                    chmod(d, 0o700);
                    give_away(d)
                },
                Some("owned by uid 65534"),
            ),
            (
                "a symlink to a private directory",
                |d| {
                    let target = d.with_file_name("real");
                    std::fs::create_dir(&target).unwrap();
                    chmod(&target, 0o700);
                    std::os::unix::fs::symlink(&target, d).unwrap();
                    true
                },
                Some("symbolic link"),
            ),
            (
                "a file",
                |d| {
                    std::fs::write(d, "").unwrap();
                    chmod(d, 0o600);
                    true
                },
                Some("not a directory"),
            ),
        ];
        for (name, prepare, expected) in cases {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("plugins");
            if !prepare(&dir) {
                eprintln!("{name}: skipped (needs root)");
                continue;
            }
            match (check_private_dir(&dir, effective_uid()), expected) {
                (Ok(()), None) => assert_eq!(mode(&dir) & GROUP_OTHER_BITS, 0, "{name}"),
                (Err(problem), Some(needle)) => {
                    assert!(problem.to_string().contains(needle), "{name}: {problem}");
                }
                (got, _) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn only_a_private_secret_of_the_daemon_is_used_table() {
        type Prepare = fn(&Path) -> bool;
        let cases: &[(&str, Prepare, Option<&str>)] = &[
            ("missing: created", |_| true, None),
            (
                "0600",
                |s| {
                    std::fs::write(s, [1; SECRET_BYTES]).unwrap();
                    chmod(s, 0o600);
                    true
                },
                None,
            ),
            (
                "0400",
                |s| {
                    std::fs::write(s, [1; SECRET_BYTES]).unwrap();
                    chmod(s, 0o400);
                    true
                },
                None,
            ),
            (
                "0644",
                |s| {
                    std::fs::write(s, [1; SECRET_BYTES]).unwrap();
                    chmod(s, 0o644);
                    true
                },
                Some("mode 0644"),
            ),
            (
                "0620",
                |s| {
                    std::fs::write(s, [1; SECRET_BYTES]).unwrap();
                    chmod(s, 0o620);
                    true
                },
                Some("mode 0620"),
            ),
            (
                "another owner",
                |s| {
                    std::fs::write(s, [1; SECRET_BYTES]).unwrap();
                    chmod(s, 0o600);
                    give_away(s)
                },
                Some("owned by uid 65534"),
            ),
            (
                "too short",
                |s| {
                    std::fs::write(s, [1; 16]).unwrap();
                    chmod(s, 0o600);
                    true
                },
                Some("holds 16 bytes"),
            ),
            (
                "empty",
                |s| {
                    std::fs::write(s, []).unwrap();
                    chmod(s, 0o600);
                    true
                },
                Some("holds 0 bytes"),
            ),
            (
                "a symlink to a private secret",
                |s| {
                    let target = s.with_file_name("real.key");
                    std::fs::write(&target, [1; SECRET_BYTES]).unwrap();
                    chmod(&target, 0o600);
                    std::os::unix::fs::symlink(&target, s).unwrap();
                    true
                },
                Some("symbolic link"),
            ),
            (
                "a directory",
                |s| {
                    std::fs::create_dir(s).unwrap();
                    chmod(s, 0o700);
                    true
                },
                Some("not a regular file"),
            ),
        ];
        for (name, prepare, expected) in cases {
            let root = tempfile::tempdir().unwrap();
            let secret = root.path().join("plugins.key");
            if !prepare(&secret) {
                eprintln!("{name}: skipped (needs root)");
                continue;
            }
            match (load_or_create_secret(&secret, effective_uid()), expected) {
                (Ok(loaded), None) => {
                    assert_eq!(std::fs::read(&secret).unwrap(), loaded.0, "{name}");
                    assert_eq!(mode(&secret) & GROUP_OTHER_BITS, 0, "{name}");
                }
                (Err(problem), Some(needle)) => {
                    assert!(problem.to_string().contains(needle), "{name}: {problem}");
                }
                (got, _) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_cache_that_is_not_private_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("plugins");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o777);
        assert!(ArtefactCache::open(dir.clone()).unwrap().is_none());
        chmod(&dir, 0o700);
        std::fs::write(root.path().join("plugins.key"), [1; SECRET_BYTES]).unwrap();
        chmod(&root.path().join("plugins.key"), 0o644);
        assert!(ArtefactCache::open(dir.clone()).unwrap().is_none());
        chmod(&root.path().join("plugins.key"), 0o600);
        assert!(ArtefactCache::open(dir).unwrap().is_some());
    }

    #[test]
    fn concurrent_openers_agree_on_one_secret() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("plugins");
        let secrets: Vec<[u8; SECRET_BYTES]> = std::thread::scope(|scope| {
            let openers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| ArtefactCache::open(dir.clone()).unwrap().unwrap()))
                .collect();
            openers
                .into_iter()
                .map(|opener| opener.join().unwrap().secret.0)
                .collect()
        });
        assert!(secrets.iter().all(|secret| *secret == secrets[0]));
        // No temporary file is left beside the secret.
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
