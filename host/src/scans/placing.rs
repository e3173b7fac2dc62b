//! Placing a scan's input: a tree staged in the scan's folder (an extracted upload, a copied
//! directory) becomes the scan's tree, on disk, before the store records the upload.
//!
//! Invariants: the tree is in place and written back (`syncfs`) before the upload is recorded,
//! so a recorded scan finds its whole tree after a machine crash as well as after a daemon
//! crash; if placing fails nothing of the staged tree is left, and if the record fails the
//! placed tree is removed. Until the record the scan awaits its upload, so nothing reads the
//! tree meanwhile. A placing waits for a `syncfs` that started after its tree was in place
//! ([`SharedSync`]): concurrent placings share one instead of each making its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use toolgate_model::{Scan, ScanId, UploadInfo};

use super::{ScanError, ScanService};

/// Why a staged tree did not become the scan's tree.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("move the scan's files into place: {0}")]
    Move(std::io::Error),
    #[error("write the scan's files to disk: {0}")]
    Sync(std::io::Error),
}

/// Places staged trees under one scans directory (see the module doc); cheap to clone.
#[derive(Clone, Default)]
pub struct Placer {
    syncs: Arc<SharedSync>,
}

impl Placer {
    /// Renames `staged` to `tree` and writes both back to disk; blocking (call it on the
    /// blocking pool, beside the work that staged the tree). On failure neither path is left.
    pub fn place_durably(&self, staged: &Path, tree: &Path) -> Result<(), PlaceError> {
        if let Err(error) = std::fs::rename(staged, tree) {
            let _ = std::fs::remove_dir_all(staged);
            return Err(PlaceError::Move(error));
        }
        if let Err(error) = self.syncs.sync_after_now(tree) {
            let _ = std::fs::remove_dir_all(tree);
            return Err(PlaceError::Sync(error));
        }
        Ok(())
    }
}

/// `syncfs` shared between callers: one syncfs writes back everything written on the
/// filesystem before it started, for any number of files, so a caller needs one that starts
/// after its call, not one of its own. While one runs, every caller that arrives waits and the
/// next one covers them all.
///
/// Why: at 32 concurrent uploads, each upload's own syncfs (4.6 ms on average, `perf trace -s`)
/// waited behind the others' and made the journal commit 32 times where a few commits cover
/// the same writes.
#[derive(Default)]
struct SharedSync {
    state: Mutex<SyncState>,
    finished: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// How many syncs have started, and whether the last one is still running.
    started: u64,
    running: bool,
    /// The last finished sync: its number and whether it failed (with what).
    finished: u64,
    failure: Option<(std::io::ErrorKind, String)>,
}

impl SharedSync {
    /// Returns once a syncfs of the filesystem holding `path` that started after this call has
    /// finished; its error, if it failed.
    fn sync_after_now(&self, path: &Path) -> std::io::Result<()> {
        let lock = || self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = lock();
        // A sync running now may have started before this caller's writes: the next one.
        let needed = state.started + 1;
        loop {
            if state.finished >= needed {
                return match &state.failure {
                    None => Ok(()),
                    Some((kind, message)) => Err(std::io::Error::new(*kind, message.clone())),
                };
            }
            if state.running {
                state = self
                    .finished
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.started += 1;
            state.running = true;
            let number = state.started;
            drop(state);
            let result = sync_filesystem_of(path);
            state = lock();
            state.running = false;
            state.finished = number;
            state.failure = result.err().map(|error| (error.kind(), error.to_string()));
            self.finished.notify_all();
        }
    }
}

fn sync_filesystem_of(path: &Path) -> std::io::Result<()> {
    let directory = std::fs::File::open(path)?;
    nix::unistd::syncfs(&directory).map_err(std::io::Error::from)
}

impl ScanService {
    /// What places this service's scan trees.
    pub fn placer(&self) -> Placer {
        self.inner.placer.clone()
    }

    /// Records the upload of scan `id`, whose tree [`Placer::place_durably`] put in place, consuming
    /// the URL's single-use `nonce`; if the store refuses or fails, the tree is removed.
    pub async fn record_placed_upload(
        &self,
        id: ScanId,
        nonce: String,
        upload: UploadInfo,
    ) -> Result<Scan, ScanError> {
        let tree = self.tree(&id);
        let recorded = self.record_upload(id, nonce, upload).await;
        if recorded.is_err() {
            remove_tree(tree).await;
        }
        recorded
    }
}

async fn remove_tree(tree: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(tree)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_tree_is_moved_into_place_with_its_files() {
        let folder = tempfile::tempdir().expect("tempdir");
        let staged = folder.path().join("tree-nonce");
        std::fs::create_dir_all(staged.join("modules")).expect("staged");
        std::fs::write(staged.join("modules/main.tf"), "resource {}").expect("file");
        let tree = folder.path().join("tree");
        Placer::default()
            .place_durably(&staged, &tree)
            .expect("placed");
        assert!(!staged.exists());
        let placed = std::fs::read_to_string(tree.join("modules/main.tf")).expect("placed file");
        assert_eq!(placed, "resource {}");
    }

    #[test]
    fn a_tree_that_cannot_be_moved_is_removed_and_nothing_is_replaced() {
        let folder = tempfile::tempdir().expect("tempdir");
        let staged = folder.path().join("tree-nonce");
        std::fs::create_dir_all(&staged).expect("staged");
        std::fs::write(staged.join("main.tf"), "x").expect("file");
        // A non-empty directory already holds the place: rename(2) refuses to replace it.
        let tree = folder.path().join("tree");
        std::fs::create_dir_all(&tree).expect("tree");
        std::fs::write(tree.join("other.tf"), "y").expect("other");
        let error = Placer::default()
            .place_durably(&staged, &tree)
            .expect_err("refused");
        assert!(matches!(error, PlaceError::Move(_)), "{error}");
        assert!(!staged.exists(), "the staged tree is removed");
        assert!(
            tree.join("other.tf").exists(),
            "what held the place is untouched"
        );
    }

    #[test]
    fn each_of_concurrent_callers_waits_for_a_sync_started_after_its_call() {
        let folder = tempfile::tempdir().expect("tempdir");
        let sync = Arc::new(SharedSync::default());
        let callers = 16;
        std::thread::scope(|scope| {
            for _ in 0..callers {
                let sync = Arc::clone(&sync);
                let path = folder.path().to_path_buf();
                scope.spawn(move || {
                    let before = sync.state.lock().expect("state").started;
                    sync.sync_after_now(&path).expect("synced");
                    let after = sync.state.lock().expect("state").finished;
                    assert!(
                        after > before,
                        "a sync that started after the call finished"
                    );
                });
            }
        });
        let started = sync.state.lock().expect("state").started;
        assert!((1..=callers).contains(&(started as usize)), "{started}");
    }
}
