//! A scan of a directory the caller may read (MCP `start_scan`): the directory is copied into
//! the scan's own folder, as an upload is extracted there, so its job reads only that copy and
//! a later change to the directory cannot change what was scanned.
//!
//! Invariants: the copy is `toolgate_uploads::copy_directory` (no link followed, the source's
//! real path under one of the roots, the extraction limits), made into a staging tree that is
//! placed as an upload's is (`placing`: moved into place and written to disk before the store
//! records it); on any failure nothing of the copy is left and the scan stays awaiting its
//! upload (the retention sweep removes it).

use std::path::PathBuf;

use chrono::Utc;
use toolgate_model::{NewScan, Scan, UploadInfo};
use toolgate_uploads::ExtractLimits;

use super::{ScanError, ScanService};

impl ScanService {
    /// Creates scan `new` with a copy of `source` (which must lie under one of `roots`) as its
    /// upload; the caller initiates it.
    pub async fn create_from_directory(
        &self,
        new: NewScan,
        source: PathBuf,
        roots: Vec<PathBuf>,
        limits: ExtractLimits,
    ) -> Result<Scan, ScanError> {
        let scan = self.create(new).await?;
        let id = scan.id.clone();
        let folder = self.folder(&id);
        let nonce = toolgate_uploads::new_nonce().map_err(|e| ScanError::Copy(e.to_string()))?;
        let staged = folder.join(format!("tree-{nonce}"));
        let tree = self.tree(&id);
        let placer = self.placer();
        let copied = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
            let copied = toolgate_uploads::copy_directory(&source, &roots, &staged, &limits)
                .map_err(|e| e.to_string())?;
            placer
                .place_durably(&staged, &tree)
                .map_err(|e| e.to_string())?;
            Ok(copied)
        })
        .await
        .map_err(|e| ScanError::Copy(e.to_string()))?
        .map_err(ScanError::Copy)?;
        let info = UploadInfo {
            bytes: copied.total_bytes,
            // A copied directory is not one byte stream: there is no upload digest.
            sha256: String::new(),
            files: copied.files,
            uploaded_at: Utc::now(),
        };
        self.record_placed_upload(id, nonce, info).await
    }
}
