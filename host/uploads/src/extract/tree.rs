//! The extracted tree: the only code that creates files and directories under `dest`.
//!
//! Invariants: every path is `root` joined with components that `entry_path::parse` validated;
//! every directory and file is created new (`create_dir`, `create_new`), never opened or followed
//! if it exists, and the tree never holds a link, so no write can land outside `root`. The
//! in-memory record of what was created is the authority for duplicates and file/directory
//! conflicts. Limits are enforced on the bytes actually read from the decompressor, before they
//! are written: at most one buffer past a limit is ever decompressed, none of it is written.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ExtractError;
use super::entry_path::EntryPath;
use crate::limits::{ExtractLimits, RATIO_CHECK_MIN_BYTES};

/// Copy buffer: large enough that a 100 MB archive costs few syscalls, small enough to be
/// irrelevant next to the daemon's memory.
const COPY_BUFFER_BYTES: usize = 256 * 1024;

/// Created files are readable by the tool's user (the sandbox may run tools under another uid)
/// and never executable; the scan directory's parent decides who else may reach them.
const FILE_MODE: u32 = 0o644;
/// Created directories: traversable by the tool's user, writable only by the daemon.
const DIR_MODE: u32 = 0o755;

/// What the tree has at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// A directory created as the parent of an entry, not (yet) listed itself.
    ImpliedDir,
    /// A directory the archive listed.
    Dir,
    /// A file the archive listed.
    File,
}

/// Tallies of a finished tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) files: u64,
    pub(crate) directories: u64,
    pub(crate) total_bytes: u64,
}

/// Writes validated entries under `root`, enforcing `ExtractLimits`.
pub(crate) struct TreeWriter<'l> {
    root: PathBuf,
    limits: &'l ExtractLimits,
    /// Size of the upload: the denominator of the overall compression ratio.
    upload_len: u64,
    known: HashMap<String, Known>,
    tally: Tally,
    buffer: Vec<u8>,
}

impl<'l> TreeWriter<'l> {
    pub(crate) fn new(root: &Path, limits: &'l ExtractLimits, upload_len: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            limits,
            upload_len,
            known: HashMap::new(),
            tally: Tally {
                files: 0,
                directories: 0,
                total_bytes: 0,
            },
            // Allocated by the first copy: a linked single template needs none.
            buffer: Vec::new(),
        }
    }

    pub(crate) fn tally(&self) -> Tally {
        self.tally
    }

    /// Creates the directory `path` (and its parents). The root (`./`) is accepted and ignored.
    pub(crate) fn add_dir(&mut self, path: &EntryPath) -> Result<(), ExtractError> {
        let Some((_, parents)) = path.components.split_last() else {
            return Ok(());
        };
        self.ensure_parents(path, parents.len())?;
        match self.known.entry(path.key()) {
            Entry::Occupied(mut seen) => match seen.get() {
                Known::ImpliedDir => {
                    seen.insert(Known::Dir);
                    Ok(())
                }
                Known::Dir => Err(ExtractError::DuplicatePath {
                    entry: path.display.clone(),
                }),
                Known::File => Err(ExtractError::PathConflict {
                    entry: path.display.clone(),
                }),
            },
            Entry::Vacant(slot) => {
                slot.insert(Known::Dir);
                self.create_dir(path, path.components.len())
            }
        }
    }

    /// Creates the file `path` with the content of `content`, checking the size limits and the
    /// compression ratio as bytes arrive. `declared_size` is what the archive's header says (it
    /// must match what is read); `compressed_bound` is an upper bound of the compressed bytes
    /// behind this entry so far, or `None` when the entry is stored uncompressed.
    pub(crate) fn add_file(
        &mut self,
        path: &EntryPath,
        content: &mut dyn Read,
        declared_size: u64,
        compressed_bound: &dyn Fn() -> Option<u64>,
    ) -> Result<(), ExtractError> {
        let target = self.new_file_slot(path, declared_size)?;
        self.write_new_file(path, &target, content, declared_size, compressed_bound)
    }

    /// Places the regular file `source` (`size` bytes, already checked by the caller to be
    /// what it should be) at `path` as a second name of the same file, without copying its
    /// bytes; copies them when the filesystem refuses a hard link. The limits apply as for
    /// [`Self::add_file`]; an existing `path` is refused (a link never replaces a name).
    pub(crate) fn link_file(
        &mut self,
        path: &EntryPath,
        source: &Path,
        size: u64,
    ) -> Result<(), ExtractError> {
        let target = self.new_file_slot(path, size)?;
        match std::fs::hard_link(source, &target) {
            Ok(()) => {}
            // No hard links here (another filesystem type, or a policy): copy instead.
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                let mut content = File::open(source).map_err(|e| ExtractError::io(source, e))?;
                return self.write_new_file(path, &target, &mut content, size, &|| None);
            }
            Err(e) => return Err(ExtractError::io(&target, e)),
        }
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| ExtractError::io(&target, e))?;
        self.tally.files += 1;
        self.tally.total_bytes += size;
        Ok(())
    }

    /// Checks the limits for a new file of `declared_size` bytes at `path`, creates its parents
    /// and records it; returns where it goes.
    fn new_file_slot(
        &mut self,
        path: &EntryPath,
        declared_size: u64,
    ) -> Result<PathBuf, ExtractError> {
        let Some((_, parents)) = path.components.split_last() else {
            return Err(ExtractError::EmptyName);
        };
        let limits = self.limits;
        if declared_size > limits.max_file_bytes {
            return Err(ExtractError::FileTooLarge {
                entry: path.display.clone(),
                limit: limits.max_file_bytes,
            });
        }
        if self.tally.total_bytes.saturating_add(declared_size) > limits.max_total_bytes {
            return Err(ExtractError::TotalTooLarge {
                limit: limits.max_total_bytes,
            });
        }
        self.ensure_parents(path, parents.len())?;
        match self.known.entry(path.key()) {
            Entry::Occupied(seen) => {
                return Err(match seen.get() {
                    Known::File => ExtractError::DuplicatePath {
                        entry: path.display.clone(),
                    },
                    Known::Dir | Known::ImpliedDir => ExtractError::PathConflict {
                        entry: path.display.clone(),
                    },
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(Known::File);
            }
        }
        self.count_created()?;
        let target = self.path_of(path, path.components.len());
        Ok(target)
    }

    /// Creates `target` (the slot of `path`) and fills it from `content`.
    fn write_new_file(
        &mut self,
        path: &EntryPath,
        target: &Path,
        content: &mut dyn Read,
        declared_size: u64,
        compressed_bound: &dyn Fn() -> Option<u64>,
    ) -> Result<(), ExtractError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(target)
            .map_err(|e| ExtractError::io(target, e))?;
        let written = self.copy_checked(path, content, &mut file, target, compressed_bound)?;
        if written != declared_size {
            return Err(ExtractError::corrupt(
                Some(&path.display),
                format!("{written} bytes of content, the header declares {declared_size}"),
            ));
        }
        self.tally.files += 1;
        self.tally.total_bytes += written;
        Ok(())
    }

    fn copy_checked(
        &mut self,
        path: &EntryPath,
        content: &mut dyn Read,
        file: &mut File,
        target: &Path,
        compressed_bound: &dyn Fn() -> Option<u64>,
    ) -> Result<u64, ExtractError> {
        let limits = self.limits;
        // One byte past the limit is enough to know it is exceeded; never ask the decompressor
        // for more.
        let mut content = content.take(limits.max_file_bytes.saturating_add(1));
        let mut written: u64 = 0;
        if self.buffer.is_empty() {
            self.buffer = vec![0; COPY_BUFFER_BYTES];
        }
        loop {
            let read = match content.read(&mut self.buffer) {
                Ok(0) => return Ok(written),
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ExtractError::corrupt(Some(&path.display), e)),
            };
            written += read as u64;
            if written > limits.max_file_bytes {
                return Err(ExtractError::FileTooLarge {
                    entry: path.display.clone(),
                    limit: limits.max_file_bytes,
                });
            }
            let archive_total = self.tally.total_bytes + written;
            if archive_total > limits.max_total_bytes {
                return Err(ExtractError::TotalTooLarge {
                    limit: limits.max_total_bytes,
                });
            }
            if written > RATIO_CHECK_MIN_BYTES
                && let Some(compressed) = compressed_bound()
                && written > compressed.max(1).saturating_mul(limits.max_ratio)
            {
                return Err(ExtractError::EntryRatioTooHigh {
                    entry: path.display.clone(),
                    limit: limits.max_ratio,
                });
            }
            if archive_total > RATIO_CHECK_MIN_BYTES
                && archive_total > self.upload_len.max(1).saturating_mul(limits.max_ratio)
            {
                return Err(ExtractError::ArchiveRatioTooHigh {
                    limit: limits.max_ratio,
                });
            }
            file.write_all(&self.buffer[..read])
                .map_err(|e| ExtractError::io(target, e))?;
        }
    }

    /// Creates the first `depth` components' directories that do not exist yet.
    fn ensure_parents(&mut self, path: &EntryPath, depth: usize) -> Result<(), ExtractError> {
        for prefix_len in 1..=depth {
            let key = path.components[..prefix_len].join("/");
            match self.known.get(&key) {
                Some(Known::Dir | Known::ImpliedDir) => {}
                Some(Known::File) => {
                    return Err(ExtractError::PathConflict {
                        entry: path.display.clone(),
                    });
                }
                None => {
                    self.known.insert(key, Known::ImpliedDir);
                    self.create_dir(path, prefix_len)?;
                }
            }
        }
        Ok(())
    }

    fn create_dir(&mut self, path: &EntryPath, prefix_len: usize) -> Result<(), ExtractError> {
        self.count_created()?;
        let target = self.path_of(path, prefix_len);
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(&target)
            .map_err(|e| ExtractError::io(&target, e))?;
        self.tally.directories += 1;
        Ok(())
    }

    fn count_created(&mut self) -> Result<(), ExtractError> {
        let created = self.tally.files + self.tally.directories;
        if created >= self.limits.max_files {
            return Err(ExtractError::TooManyFiles {
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    fn path_of(&self, path: &EntryPath, prefix_len: usize) -> PathBuf {
        let mut target = self.root.clone();
        target.extend(&path.components[..prefix_len]);
        target
    }
}
