//! Precompiled plugin artefacts on disk, so a restart does not recompile every plugin.
//!
//! Layout: `<dir>/<key>.cwasm` (wasmtime's serialized component) and `<dir>/<key>.sha256` (hex
//! digest of that file), where `key` = sha256(component bytes ‖ engine compatibility hash). A
//! different plugin build or an incompatible engine (wasmtime version, config) gets a new key.
//!
//! Invariants: files appear only complete (written to a temporary name, then renamed); an
//! artefact is deserialized only when its digest matches the one we wrote beside it, so a
//! truncated, corrupted or foreign file is recompiled instead of loaded; a cache that cannot be
//! read or written costs a compile, never a plugin.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

const ARTEFACT_EXTENSION: &str = "cwasm";
const DIGEST_EXTENSION: &str = "sha256";

/// Makes temporary file names unique between threads of this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Compiled,
    Cache,
}

/// The on-disk artefact cache in one directory.
#[derive(Debug, Clone)]
pub(crate) struct ArtefactCache {
    dir: PathBuf,
}

impl ArtefactCache {
    /// Opens (creating if needed) the cache directory.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(&dir).map_err(|source| RuntimeError::CacheDir {
            path: dir.clone(),
            source,
        })?;
        Ok(ArtefactCache { dir })
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
        let digest = self.dir.join(format!("{key}.{DIGEST_EXTENSION}"));
        match load_verified(engine, &artefact, &digest) {
            Ok(Some(component)) => return Ok((component, Origin::Cache)),
            Ok(None) => {}
            Err(reason) => tracing::warn!(
                artefact = %artefact.display(),
                %reason,
                "ignoring a bad cached plugin artefact; recompiling"
            ),
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&component, &artefact, &digest) {
            tracing::warn!(
                artefact = %artefact.display(),
                %error,
                "cannot write the plugin artefact cache; the next start recompiles"
            );
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, component: &Component, artefact: &Path, digest: &Path) -> std::io::Result<()> {
        let serialized = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let digest_hex = hex::encode(Sha256::digest(&serialized));
        // Digest first: an artefact is never visible without the digest it must match.
        write_atomically(&self.dir, digest, digest_hex.as_bytes())?;
        write_atomically(&self.dir, artefact, &serialized)
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

/// `Ok(None)` on a cache miss, `Err` with the reason when an entry exists but cannot be used.
fn load_verified(
    engine: &Engine,
    artefact: &Path,
    digest: &Path,
) -> Result<Option<Component>, String> {
    let serialized = match std::fs::read(artefact) {
        Ok(serialized) => serialized,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read it: {error}")),
    };
    let expected = std::fs::read_to_string(digest)
        .map_err(|error| format!("cannot read its digest {}: {error}", digest.display()))?;
    let actual = hex::encode(Sha256::digest(&serialized));
    if expected.trim() != actual {
        return Err(format!(
            "its sha256 {actual} differs from the recorded {}",
            expected.trim()
        ));
    }
    // SAFETY: `deserialize_file` trusts the file to be a wasmtime artefact for this engine. This
    // one is: it is in our cache directory under a key that includes the engine's compatibility
    // hash, and its bytes hash to the digest we recorded when we serialized it ourselves
    // (`ArtefactCache::store`), so it is byte-for-byte what this process family wrote.
    let component = unsafe { Component::deserialize_file(engine, artefact) }
        .map_err(|error| format!("wasmtime refused it: {error:#}"))?;
    Ok(Some(component))
}

/// Writes `content` to `target` via a unique temporary file in `dir` and a rename.
fn write_atomically(dir: &Path, target: &Path, content: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(content)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, target)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        write_atomically(dir.path(), &target, b"one").unwrap();
        write_atomically(dir.path(), &target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unverifiable_entries_are_refused_table() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let artefact = dir.path().join("k.cwasm");
        let digest = dir.path().join("k.sha256");
        assert!(matches!(
            load_verified(&engine, &artefact, &digest),
            Ok(None)
        ));

        let garbage = b"not an artefact";
        let cases: &[(&str, Option<String>, &str)] = &[
            ("missing digest", None, "cannot read its digest"),
            (
                "wrong digest",
                Some("00".repeat(32)),
                "differs from the recorded",
            ),
            (
                "right digest, not an artefact",
                Some(hex::encode(Sha256::digest(garbage))),
                "wasmtime refused it",
            ),
        ];
        for (name, recorded, expected) in cases {
            std::fs::write(&artefact, garbage).unwrap();
            let _ = std::fs::remove_file(&digest);
            if let Some(recorded) = recorded {
                std::fs::write(&digest, recorded).unwrap();
            }
            let error = load_verified(&engine, &artefact, &digest).unwrap_err();
            assert!(error.contains(expected), "{name}: {error}");
        }
    }
}
