//! Per-job directories: the private `home` and `tmp` under `jobs_root/<job>`, and the output
//! directory under `output_root`.
//!
//! Invariants: a job id is a single safe path component, so `<root>/<job>` can never leave its
//! root; private directories are created fresh (an existing one means a reused job id, which is
//! refused so a job never sees another job's files); with a dedicated uid they are chowned to it.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{PlanRejected, RejectReason};
use crate::paths::{HeldDir, PRIVATE_DIR_MODE, open_beneath};
use crate::policy::RunAs;

/// Longest accepted job id (fits comfortably in a path component and a cgroup name).
pub const MAX_JOB_ID_LEN: usize = 64;

/// Accepts `[A-Za-z0-9_.-]{1,64}` except `.` and `..`.
pub fn check_job_id(job_id: &str) -> Result<(), PlanRejected> {
    let valid = !job_id.is_empty()
        && job_id.len() <= MAX_JOB_ID_LEN
        && job_id != "."
        && job_id != ".."
        && job_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(PlanRejected::job(job_id, RejectReason::BadJobId))
    }
}

/// The private directories of a job.
#[derive(Debug, Clone)]
pub struct PrivateDirs {
    pub home: PathBuf,
    pub tmp: PathBuf,
}

/// Creates `jobs_root/<job>/{home,tmp}`; `job_id` must have passed `check_job_id`.
pub fn create_private(
    jobs_root: &HeldDir,
    job_id: &str,
    owner: Option<RunAs>,
) -> Result<PrivateDirs, PlanRejected> {
    let internal = |e: io::Error| PlanRejected::job(job_id, RejectReason::Internal(e.to_string()));
    mkdir_at(jobs_root, Path::new(job_id)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EEXIST) {
            PlanRejected::job(job_id, RejectReason::JobIdInUse)
        } else {
            internal(e)
        }
    })?;
    let root = jobs_root.path.join(job_id);
    let home = root.join("home");
    let tmp = root.join("tmp");
    for relative in [format!("{job_id}/home"), format!("{job_id}/tmp")] {
        mkdir_at(jobs_root, Path::new(&relative)).map_err(internal)?;
    }
    if let Some(owner) = owner {
        for dir in [&root, &home, &tmp] {
            chown(dir, owner).map_err(internal)?;
        }
    }
    Ok(PrivateDirs { home, tmp })
}

/// Removes the private directories of `job_id` (never the output directory).
pub fn remove_private(jobs_root: &Path, job_id: &str) -> io::Result<()> {
    if check_job_id(job_id).is_err() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    match std::fs::remove_dir_all(jobs_root.join(job_id)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Hands a directory to the dedicated identity.
pub fn chown(path: &Path, owner: RunAs) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
}

/// `mkdirat(root, relative)` where `relative`'s parent is resolved beneath `root`.
fn mkdir_at(root: &HeldDir, relative: &Path) -> io::Result<()> {
    let parent = relative.parent().filter(|p| !p.as_os_str().is_empty());
    let parent_fd = open_beneath(
        Some(&root.fd),
        parent.unwrap_or(Path::new(".")),
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?;
    let name = relative
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let c_name =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `parent_fd` is an open directory and `c_name` a valid C string.
    if unsafe { libc::mkdirat(parent_fd.as_raw_fd(), c_name.as_ptr(), PRIVATE_DIR_MODE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_table() {
        let long = "a".repeat(MAX_JOB_ID_LEN + 1);
        let max = "a".repeat(MAX_JOB_ID_LEN);
        let cases: &[(&str, bool)] = &[
            ("job-1", true),
            ("0193f5a2-7c1e-7abc-9def-0123456789ab", true),
            ("a.b_c", true),
            (&max, true),
            (&long, false),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("../x", false),
            ("a b", false),
            ("a\0", false),
            ("é", false),
        ];
        for (id, ok) in cases {
            assert_eq!(check_job_id(id).is_ok(), *ok, "{id:?}");
        }
    }

    #[test]
    fn private_dirs_are_fresh_and_removable() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HeldDir::open(tmp.path()).unwrap();
        let dirs = create_private(&root, "j1", None).unwrap();
        assert!(dirs.home.is_dir() && dirs.tmp.is_dir());
        let again = create_private(&root, "j1", None).unwrap_err();
        assert_eq!(again.reason, RejectReason::JobIdInUse);
        remove_private(&root.path, "j1").unwrap();
        assert!(!dirs.home.parent().unwrap().exists());
        assert!(remove_private(&root.path, "..").is_err());
        assert!(remove_private(&root.path, "missing").is_ok());
    }
}
