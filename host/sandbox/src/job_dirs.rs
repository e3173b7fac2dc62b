//! Job ids and the job's output directory (the private ones come from `private_dirs`).
//!
//! Invariants:
//! - A job id is a single safe path component, so `<root>/<job>` (output directory, cgroup)
//!   can never leave its root.
//! - A job's output directory is one name directly below the output root: no job directory can
//!   lie inside another's. Planning it has no side effect; it is created with `mkdirat` only
//!   when the job is given its directories (after the daemon admitted it), and a name that
//!   exists by then is refused, never reused.
//! - Only a directory this job created is ever chowned to the dedicated identity, granted to
//!   the tool (Landlock) or removed, and it is removed only while it is the same inode and empty.
//! - Names in the job-id (UUID) form are reserved for the jobs' own directories, so a caller
//!   cannot request the directory of a past, running or future job.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{PlanRejected, RejectReason};
use crate::paths::{self, HeldDir};
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

/// Whether `name` has the form of the daemon's job ids, a hyphenated UUID (8-4-4-4-12 hex
/// digits, either case): such names are reserved for the jobs' default output directories.
pub fn is_reserved_output_name(name: &OsStr) -> bool {
    const GROUP_LENGTHS: [usize; 5] = [8, 4, 4, 4, 12];
    let groups: Vec<&[u8]> = name.as_bytes().split(|&byte| byte == b'-').collect();
    groups.len() == GROUP_LENGTHS.len()
        && groups
            .iter()
            .zip(GROUP_LENGTHS)
            .all(|(group, length)| group.len() == length && group.iter().all(u8::is_ascii_hexdigit))
}

/// The job's output directory, from planning to its removal.
#[derive(Debug)]
pub enum OutputDir {
    /// No argument names one: nothing is created, granted or removed.
    Unused,
    /// Checked when the job was planned: `name`, one component below the output root, was free
    /// then. `arg_index` is the `RequestedOutputDir` argument that asked for it (`None`: the
    /// job's default directory, named after the job id).
    Planned {
        name: PathBuf,
        arg_index: Option<usize>,
    },
    /// Created by this job: the only state in which the directory is chowned, granted to the
    /// tool or removed. `root` is a duplicate of the output root's fd, `dir` the new directory.
    Created {
        name: PathBuf,
        root: OwnedFd,
        dir: OwnedFd,
    },
}

impl OutputDir {
    /// Whether an argument names the directory (it is, or will be, created for this job).
    pub fn is_used(&self) -> bool {
        !matches!(self, OutputDir::Unused)
    }

    /// Whether this job created the directory.
    pub fn is_created(&self) -> bool {
        matches!(self, OutputDir::Created { .. })
    }

    /// Whether the directory is planned but not created yet.
    pub fn awaits_creation(&self) -> bool {
        matches!(self, OutputDir::Planned { .. })
    }

    /// Creates a planned directory below `root` (`mkdirat`: a name that exists now is refused)
    /// and hands it to `owner`, the dedicated identity, when there is one. On failure nothing
    /// this job created is left and the directory is still only planned.
    pub fn create(&mut self, root: &HeldDir, owner: Option<RunAs>) -> Result<(), RejectReason> {
        let OutputDir::Planned { name, .. } = self else {
            return Ok(());
        };
        let internal = |what: &str, error: std::io::Error| {
            RejectReason::Internal(format!("{what} {}: {error}", name.display()))
        };
        // Duplicated first, so that a failure here has created nothing.
        let root_fd = root
            .fd
            .try_clone()
            .map_err(|e| internal("holding the output root for", e))?;
        let dir = paths::create_new_dir(&root.fd, name)?;
        if let Some(owner) = owner
            && let Err(errno) =
                nix::unistd::fchown(&dir, Some(owner.uid.into()), Some(owner.gid.into()))
        {
            // Best effort: it is empty and ours (same inode), so nothing else can be removed.
            let _ = paths::remove_created_dir(&root.fd, name, &dir);
            return Err(internal("handing over", errno.into()));
        }
        let name = std::mem::take(name);
        *self = OutputDir::Created {
            name,
            root: root_fd,
            dir,
        };
        Ok(())
    }

    /// For a job that will not run: removes the directory when this job created it and it is
    /// still the same, empty directory; anything else is left alone.
    pub fn remove(self) {
        if let OutputDir::Created { name, root, dir } = self {
            let _ = paths::remove_created_dir(&root, &name, &dir);
        }
    }
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
    fn reserved_name_table() {
        let cases: &[(&str, bool)] = &[
            ("0193f5a2-7c1e-7abc-9def-0123456789ab", true),
            ("0193F5A2-7C1E-7ABC-9DEF-0123456789AB", true),
            ("00000000-0000-0000-0000-000000000000", true),
            ("mine", false),
            ("job-1", false),
            ("0193f5a2-7c1e-7abc-9def-0123456789a", false),
            ("0193f5a2-7c1e-7abc-9def-0123456789abc", false),
            ("0193f5a27c1e7abc9def0123456789ab", false),
            ("0193f5a2-7c1e-7abc-9def-0123456789ag", false),
            ("run-0193f5a2-7c1e-7abc-9def-0123456789ab", false),
            ("", false),
        ];
        for (name, reserved) in cases {
            assert_eq!(
                is_reserved_output_name(OsStr::new(name)),
                *reserved,
                "{name:?}"
            );
        }
    }

    /// A planned directory whose name was taken since planning is refused, not reused, and
    /// removing the job never touches it; a directory the job did create is removed.
    #[test]
    fn only_what_the_job_created_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = HeldDir::open(tmp.path()).unwrap();
        let planned = |name: &str| OutputDir::Planned {
            name: PathBuf::from(name),
            arg_index: Some(1),
        };

        let mut taken = planned("taken");
        std::fs::create_dir(root.path.join("taken")).unwrap();
        assert_eq!(
            taken.create(&root, None),
            Err(RejectReason::OutputDirExists)
        );
        assert!(taken.awaits_creation() && !taken.is_created());
        taken.remove();
        assert!(root.path.join("taken").is_dir(), "a found directory stays");

        let mut ours = planned("ours");
        ours.create(&root, None).unwrap();
        assert!(ours.is_created());
        ours.create(&root, None).unwrap();
        ours.remove();
        assert!(!root.path.join("ours").exists());

        OutputDir::Unused.remove();
        assert_eq!(std::fs::read_dir(&root.path).unwrap().count(), 1);
    }
}
