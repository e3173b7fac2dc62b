//! Reads the files a tool left in its job's output directory, for the plugin's `parse`.
//!
//! Invariants: symlinks and special files are skipped (a tool must not make the daemon read
//! outside its output directory); depth, file count, per-file and total bytes are bounded, and
//! a cut file is marked truncated; names are relative to the output directory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use toolgate_plugin_runtime::OutputFile;

/// Largest content read from one file: prowler's OCSF JSON for a big account is tens of MB.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Largest content read from all files of one job: bounds the daemon's memory per job.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Most files handed to a plugin: reports are a handful of files, not thousands.
pub const MAX_FILES: usize = 256;
/// Deepest directory level searched (prowler writes `compliance/` one level down).
pub const MAX_DEPTH: usize = 4;

/// Reads the output directory; unreadable entries are skipped (the plugin sees what exists).
pub fn read_output_files(dir: &Path) -> Vec<OutputFile> {
    let mut files = Vec::new();
    let mut budget = MAX_TOTAL_BYTES;
    walk(dir, dir, 0, &mut files, &mut budget);
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

fn walk(root: &Path, dir: &Path, depth: usize, files: &mut Vec<OutputFile>, budget: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        if files.len() >= MAX_FILES {
            return;
        }
        // `file_type` does not follow symlinks, so a symlink is never read or descended into.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() && depth + 1 < MAX_DEPTH {
            walk(root, &path, depth + 1, files, budget);
        } else if kind.is_file() {
            let Ok(name) = path.strip_prefix(root) else {
                continue;
            };
            if let Some(file) = read_bounded(&path, budget) {
                files.push(OutputFile {
                    name: name.to_string_lossy().into_owned(),
                    content: file.0,
                    truncated: file.1,
                });
            }
        }
    }
}

fn read_bounded(path: &Path, budget: &mut u64) -> Option<(Vec<u8>, bool)> {
    let file = open_no_follow(path)?;
    let size = file.metadata().ok()?.len();
    let limit = MAX_FILE_BYTES.min(*budget);
    let mut content = Vec::new();
    file.take(limit).read_to_end(&mut content).ok()?;
    *budget = budget.saturating_sub(content.len() as u64);
    Some((content, size > limit))
}

/// Opens with O_NOFOLLOW so a file swapped for a symlink after listing is not followed.
fn open_no_follow(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_symlinks_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = tempfile::NamedTempFile::new().expect("secret");
        std::fs::write(secret.path(), "secret").expect("write");
        std::fs::write(dir.path().join("report.ocsf.json"), "[]").expect("write");
        std::fs::create_dir(dir.path().join("compliance")).expect("mkdir");
        std::fs::write(dir.path().join("compliance/cis.csv"), "a,b").expect("write");
        std::os::unix::fs::symlink(secret.path(), dir.path().join("link.json")).expect("link");
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).expect("link");
        let files = read_output_files(dir.path());
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["compliance/cis.csv", "report.ocsf.json"]);
        assert_eq!(files[1].content, b"[]");
        assert!(files.iter().all(|f| !f.truncated));
    }

    #[test]
    fn a_missing_directory_yields_no_files() {
        assert!(read_output_files(Path::new("/nonexistent/toolgate/output")).is_empty());
    }

    #[test]
    fn the_total_budget_truncates() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), vec![b'x'; 10]).expect("write");
        let mut budget = 4;
        let (content, truncated) = read_bounded(&dir.path().join("a"), &mut budget).expect("read");
        assert_eq!((content.len(), truncated, budget), (4, true, 0));
    }
}
