//! Placing a scan's input: a tree staged in the scan's folder (an extracted upload, a copied
//! directory) becomes the scan's tree, on disk, before the store records the upload.
//!
//! Invariants: the tree is in place and written back (`syncfs`) before the upload is recorded,
//! so a recorded scan finds its whole tree after a machine crash as well as after a daemon
//! crash; if placing fails nothing of the staged tree is left, and if the record fails the
//! placed tree is removed. Until the record the scan awaits its upload, so nothing reads the
//! tree meanwhile.

use std::path::{Path, PathBuf};

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

/// Renames `staged` to `tree` and writes both back to disk; blocking (call it on the blocking
/// pool, beside the work that staged the tree). On failure neither path is left.
pub fn place_durably(staged: &Path, tree: &Path) -> Result<(), PlaceError> {
    if let Err(error) = std::fs::rename(staged, tree) {
        let _ = std::fs::remove_dir_all(staged);
        return Err(PlaceError::Move(error));
    }
    // One syncfs writes back the tree, its files and its move into place, for any number of
    // files, where syncing each would cost a disk flush per file.
    if let Err(error) = sync_filesystem_of(tree) {
        let _ = std::fs::remove_dir_all(tree);
        return Err(PlaceError::Sync(error));
    }
    Ok(())
}

fn sync_filesystem_of(path: &Path) -> std::io::Result<()> {
    let directory = std::fs::File::open(path)?;
    nix::unistd::syncfs(&directory).map_err(std::io::Error::from)
}

impl ScanService {
    /// Records the upload of scan `id`, whose tree [`place_durably`] put in place, consuming
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
        place_durably(&staged, &tree).expect("placed");
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
        let error = place_durably(&staged, &tree).expect_err("refused");
        assert!(matches!(error, PlaceError::Move(_)), "{error}");
        assert!(!staged.exists(), "the staged tree is removed");
        assert!(
            tree.join("other.tf").exists(),
            "what held the place is untouched"
        );
    }
}
