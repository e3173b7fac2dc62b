//! Job ids and the ownership of job directories (the private ones come from `private_dirs`).
//!
//! Invariant: a job id is a single safe path component, so `<root>/<job>` (output directory,
//! cgroup) can never leave its root; with a dedicated uid, the directories a job writes are
//! chowned to it.

use std::io;
use std::path::Path;

use crate::error::{PlanRejected, RejectReason};
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

/// Hands a directory to the dedicated identity.
pub fn chown(path: &Path, owner: RunAs) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
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
}
