//! Copying a directory the daemon may read into a fresh scan tree: what an MCP agent's
//! `start_scan` of a directory inside the allowed directories scans, so that its job reads only
//! its own copy, as an uploaded scan reads only its own upload.
//!
//! Invariants: the source is opened once and its real path (read back from the open
//! descriptor, so a swap after the caller's check changes nothing) must lie under one of the
//! given roots; every directory below it is opened relative to its already-open parent with
//! `O_NOFOLLOW`, every file likewise, so no link is ever followed and nothing outside the source
//! is read; a link, device, socket or FIFO is refused naming it; the copy goes through the same
//! `TreeWriter` as an archive, with the same limits, and on any error `dest` is removed.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::entry_path::{self, EntryPath};
use super::tree::TreeWriter;
use super::{ArchiveKind, ExtractError, ExtractedTree, RemoveTreeOnDrop};
use crate::limits::ExtractLimits;

/// Copies the directory `source` into `dest` (which must not exist; its parent must), refusing a
/// source whose real path is not under one of `roots` (absolute, canonical paths).
pub fn copy_directory(
    source: &Path,
    roots: &[PathBuf],
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractedTree, ExtractError> {
    let top = open_directory(source).map_err(|e| ExtractError::io(source, e))?;
    let real =
        std::fs::read_link(descriptor_path(&top)).map_err(|e| ExtractError::io(source, e))?;
    if !roots.iter().any(|root| real.starts_with(root)) {
        return Err(ExtractError::OutsideAllowedDirs { path: real });
    }
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
    // A copy is not compressed: no ratio to judge, so the "upload" is as large as it can be.
    let mut writer = TreeWriter::new(dest, limits, u64::MAX);
    // Depth-first, with the open parent held so each child is opened relative to it.
    let mut pending: Vec<(File, Vec<String>)> = vec![(top, Vec::new())];
    while let Some((directory, components)) = pending.pop() {
        let listing = std::fs::read_dir(descriptor_path(&directory))
            .map_err(|e| ExtractError::io(&real, e))?;
        let mut names = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| ExtractError::io(&real, e))?;
            let file_type = entry.file_type().map_err(|e| ExtractError::io(&real, e))?;
            names.push((entry.file_name(), file_type));
        }
        // Sorted, so the same directory always copies (and fails) the same way.
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in names {
            let mut child = components.clone();
            child.push(name.to_string_lossy().into_owned());
            let raw = child.join("/");
            let path: EntryPath = entry_path::parse(raw.as_bytes(), limits.max_depth)?;
            if name.to_str().is_none() {
                return Err(ExtractError::NonUtf8Name { entry: raw });
            }
            let opened = descriptor_path(&directory).join(&name);
            if file_type.is_symlink() {
                return Err(ExtractError::Symlink { entry: raw });
            } else if file_type.is_dir() {
                writer.add_dir(&path)?;
                let sub = open_directory(&opened).map_err(|e| ExtractError::io(&raw, e))?;
                pending.push((sub, child));
            } else if file_type.is_file() {
                let mut file = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&opened)
                    .map_err(|e| ExtractError::io(&raw, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| ExtractError::io(&raw, e))?
                    .len();
                writer.add_file(&path, &mut file, size, &|| None)?;
            } else {
                let kind = if file_type.is_block_device() || file_type.is_char_device() {
                    "device"
                } else if file_type.is_fifo() {
                    "FIFO"
                } else {
                    "socket"
                };
                return Err(ExtractError::SpecialFile { entry: raw, kind });
            }
        }
    }
    let tally = writer.tally();
    guard.disarm();
    Ok(ExtractedTree {
        root: dest.to_path_buf(),
        kind: ArchiveKind::Directory,
        single_file: false,
        files: tally.files,
        directories: tally.directories,
        total_bytes: tally.total_bytes,
    })
}

/// Opens a directory without following a link in its last component.
fn open_directory(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The path of an open descriptor: names the very directory it holds, however its path changes.
fn descriptor_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}
