//! Safe extraction of an upload into a fresh directory (blocking: call it from
//! `spawn_blocking`).
//!
//! The format is recognised by content (`detect`): zip, tar.gz, tar, or else one UTF-8 template.
//! Invariants: `dest` is created by the call and holds nothing but what the upload listed;
//! nothing is written outside it (names are checked lexically by `entry_path`, and `tree` creates
//! every path new in a tree that never contains a link); links, devices and other special
//! entries, duplicates and every limit of `ExtractLimits` are refused with a variant naming the
//! entry; on any error or panic `dest` is removed entirely, so a refused upload leaves nothing.

mod counting;
mod detect;
mod directory;
mod entry_path;
mod error;
mod single;
mod tar_format;
mod tree;
mod zip_directory;
mod zip_format;

use std::fs::{DirBuilder, File};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use detect::ArchiveKind;
pub use directory::copy_directory;
pub use error::ExtractError;
pub use single::{SINGLE_TEMPLATE_NAME, name_single_template};

use crate::limits::ExtractLimits;
use tree::TreeWriter;

/// What `extract` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedTree {
    /// The directory holding the tree (the `dest` given to [`extract`]).
    pub root: PathBuf,
    /// What the upload was.
    pub kind: ArchiveKind,
    /// True when the upload was one template, now at `root/template` (see
    /// [`name_single_template`]).
    pub single_file: bool,
    /// Regular files created.
    pub files: u64,
    /// Directories created below `root` (listed or implied by a path).
    pub directories: u64,
    /// Bytes of file content written.
    pub total_bytes: u64,
}

/// Extracts `upload` into `dest`, which must not exist yet (its parent must): `dest` is created
/// (0755) and, on any error, removed again with everything written into it.
pub fn extract(
    upload: &Path,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractedTree, ExtractError> {
    let mut file = File::open(upload).map_err(|e| ExtractError::io(upload, e))?;
    let upload_len = file
        .metadata()
        .map_err(|e| ExtractError::io(upload, e))?
        .len();
    let kind = detect::sniff(&mut file)
        .map_err(|e| ExtractError::io(upload, e))?
        .ok_or(ExtractError::EmptyUpload)?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| ExtractError::io(upload, e))?;

    DirBuilder::new().mode(0o755).create(dest).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ExtractError::DestinationExists {
                path: dest.to_path_buf(),
            }
        } else {
            ExtractError::io(dest, e)
        }
    })?;
    let guard = RemoveTreeOnDrop::new(dest);
    let mut writer = TreeWriter::new(dest, limits, upload_len);
    match kind {
        ArchiveKind::Zip => zip_format::extract(file, upload_len, &mut writer, limits)?,
        ArchiveKind::TarGz => tar_format::extract_tar_gz(file, &mut writer, limits)?,
        ArchiveKind::Tar => tar_format::extract_tar(file, &mut writer, limits)?,
        ArchiveKind::SingleTemplate => {
            single::extract(upload, &mut file, &mut writer, limits.max_file_bytes)?
        }
        // `sniff` reads bytes; a directory is never an upload's content.
        ArchiveKind::Directory => return Err(ExtractError::NotAnArchiveOrTemplate),
    }
    let tally = writer.tally();
    guard.disarm();
    Ok(ExtractedTree {
        root: dest.to_path_buf(),
        kind,
        single_file: kind == ArchiveKind::SingleTemplate,
        files: tally.files,
        directories: tally.directories,
        total_bytes: tally.total_bytes,
    })
}

/// Removes the extraction directory when dropped, unless disarmed: every error return and any
/// panic during extraction leave nothing behind.
struct RemoveTreeOnDrop<'p> {
    root: Option<&'p Path>,
}

impl<'p> RemoveTreeOnDrop<'p> {
    fn new(root: &'p Path) -> Self {
        Self { root: Some(root) }
    }

    fn disarm(mut self) {
        self.root = None;
    }
}

impl Drop for RemoveTreeOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(root) = self.root.take() {
            // The tree holds only what we created (no links), and remove_dir_all does not follow
            // links anyway. A failure here leaves files the retention sweep removes later.
            let _ = std::fs::remove_dir_all(root);
        }
    }
}
