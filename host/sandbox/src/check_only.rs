//! Checking plans without a sandbox, for `toolgate plugin dry-run`: a `PlanCheck` accepts and
//! refuses what `Sandbox::new` and `Sandbox::prepare_planned` accept and refuse, and creates
//! nothing: no output or jobs root, no private or output directory, no cgroup, and it starts no
//! thread and changes nothing about the process.
//!
//! Invariants:
//! - The policy is refused for the reasons `Sandbox::new` refuses it without side effects: no
//!   allowed directory, an allowed directory or output root that cannot be opened, or a host
//!   shortfall (`host_shortfalls`, which `config check` uses too). What only starting can tell
//!   (a root that cannot be created, a cgroup that cannot be set up) is not checked.
//! - An existing output root is checked by the functions `prepare_planned` uses
//!   (`check_job_id`, `requested_output_dir`, `check_absent`, `resolve_args`), on the same
//!   canonical paths. A missing one is what `Sandbox::new` would create: an empty directory, at
//!   the canonical path of its nearest existing ancestor joined with the rest. Every name below
//!   it is free, so it gets the lexical checks only (`name_below_root`, the reserved job-id
//!   names, one requested directory at most).
//! - `tests/check_only.rs` runs the same table through both and compares the answers.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::args::{self, Arg};
use crate::error::{PlanRejected, RejectReason, SandboxError};
use crate::job_dirs;
use crate::paths::{self, HeldDir};
use crate::policy::SandboxPolicy;

/// The policy of a sandbox, checked and held like `Sandbox::new` would, with nothing created.
#[derive(Debug)]
pub struct PlanCheck {
    policy: SandboxPolicy,
    allowed: Vec<HeldDir>,
    output_root: OutputRoot,
}

#[derive(Debug)]
enum OutputRoot {
    Exists(HeldDir),
    /// The canonical path `Sandbox::new` would create it at.
    Missing(PathBuf),
}

/// What `Sandbox::prepare_planned` would answer for a plan, without a job to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPlan {
    pub job_id: String,
    /// The resolved arguments, without argv[0].
    pub argv: Vec<String>,
    /// The job's output directory (only reported when `has_output_dir` is false).
    pub output_dir: PathBuf,
    /// Whether an argument names the output directory (the run would create it).
    pub has_output_dir: bool,
}

impl PlanCheck {
    /// Checks `policy` as `Sandbox::new` would, opening its existing directories and creating
    /// none. `policy()` then reports canonical paths, like `Sandbox::policy`.
    pub fn new(mut policy: SandboxPolicy) -> Result<Self, SandboxError> {
        let allowed = crate::open_allowed_dirs(&policy)?;
        let output_root = match HeldDir::open(&policy.output_root) {
            Ok(root) => OutputRoot::Exists(root),
            Err(error) if is_missing(&policy.output_root, &error) => {
                OutputRoot::Missing(path_once_created(&policy.output_root)?)
            }
            Err(source) => {
                return Err(SandboxError::OpenDir {
                    path: policy.output_root.clone(),
                    source,
                });
            }
        };
        policy.allowed_dirs = allowed.iter().map(|d| d.path.clone()).collect();
        policy.output_root = match &output_root {
            OutputRoot::Exists(root) => root.path.clone(),
            OutputRoot::Missing(path) => path.clone(),
        };
        policy.jobs_root = path_once_created(&policy.jobs_root)?;
        if let Some(shortfall) = crate::host_shortfalls(&policy).into_iter().next() {
            return Err(shortfall);
        }
        Ok(PlanCheck {
            policy,
            allowed,
            output_root,
        })
    }

    /// The policy as `Sandbox::policy` would report it: directories are canonical.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.policy
    }

    /// `Sandbox::prepare_planned`'s checks of `args` under `job_id`, creating nothing.
    pub fn check_planned(&self, job_id: &str, args: &[Arg]) -> Result<CheckedPlan, PlanRejected> {
        job_dirs::check_job_id(job_id)?;
        let has_output_dir = args
            .iter()
            .any(|arg| matches!(arg, Arg::OutputDir | Arg::RequestedOutputDir(_)));
        let (root_path, name) = match &self.output_root {
            OutputRoot::Exists(root) => {
                let name = match args::requested_output_dir(root, args)? {
                    Some((_, name)) => Some(name),
                    None if has_output_dir => {
                        let name = PathBuf::from(job_id);
                        paths::check_absent(&root.fd, &name)
                            .map_err(|reason| PlanRejected::job(job_id, reason))?;
                        Some(name)
                    }
                    None => None,
                };
                (&root.path, name)
            }
            OutputRoot::Missing(path) => (path, requested_name_below_missing_root(path, args)?),
        };
        let output_dir = root_path.join(name.unwrap_or_else(|| PathBuf::from(job_id)));
        let argv = args::resolve_args(&self.allowed, &output_dir, args)?;
        Ok(CheckedPlan {
            job_id: job_id.to_string(),
            argv,
            output_dir,
            has_output_dir,
        })
    }
}

/// `requested_output_dir` for an output root that does not exist yet: every name below it is
/// free, so only the lexical checks apply.
fn requested_name_below_missing_root(
    root: &Path,
    args: &[Arg],
) -> Result<Option<PathBuf>, PlanRejected> {
    let mut found = None;
    for (index, arg) in args.iter().enumerate() {
        let Arg::RequestedOutputDir(value) = arg else {
            continue;
        };
        let refused = |reason| PlanRejected::arg(index, value, reason);
        if found.is_some() {
            return Err(refused(RejectReason::SecondOutputDir));
        }
        let name = name_below(root, value).map_err(refused)?;
        if job_dirs::is_reserved_output_name(name.as_os_str()) {
            return Err(refused(RejectReason::ReservedOutputName));
        }
        found = Some(name);
    }
    Ok(found)
}

/// `paths::name_below_root` for a root that is not there to hold open: it reads only the
/// root's path, so the descriptor it is given here (of `/`) is never used.
fn name_below(root: &Path, value: &str) -> Result<PathBuf, RejectReason> {
    let stand_in = HeldDir {
        path: root.to_path_buf(),
        fd: paths::open_beneath(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|error| RejectReason::Internal(error.to_string()))?,
    };
    paths::name_below_root(&stand_in, value)
}

/// Whether `path` is absent (not even a dangling symlink), as opposed to unreadable.
fn is_missing(path: &Path, error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
        && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// The canonical path `path` has once `create_dir_all` made it: its nearest existing ancestor,
/// canonical, joined with the rest. An ancestor that is not a directory is the error
/// `Sandbox::new` would meet creating it.
fn path_once_created(path: &Path) -> Result<PathBuf, SandboxError> {
    let create_error = |source| SandboxError::CreateDir {
        path: path.to_path_buf(),
        source,
    };
    let mut existing = path;
    let mut rest = Vec::new();
    let base = loop {
        match existing.canonicalize() {
            Ok(base) => break base,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match (existing.parent(), existing.components().next_back()) {
                    (Some(parent), Some(last)) => {
                        rest.push(last);
                        existing = parent;
                    }
                    _ => return Err(create_error(error)),
                }
            }
            Err(error) => return Err(create_error(error)),
        }
    };
    if !base.is_dir() {
        return Err(create_error(io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    let mut created = base;
    for component in rest.into_iter().rev() {
        match component {
            Component::Normal(name) => created.push(name),
            Component::ParentDir => {
                created.pop();
            }
            _ => {}
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_of_a_missing_directory_is_its_ancestors_canonical_path_and_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        std::fs::write(base.join("file"), "").unwrap();
        let cases: Vec<(PathBuf, Option<PathBuf>)> = vec![
            (base.join("real"), Some(base.join("real"))),
            (base.join("link/a/b"), Some(base.join("real/a/b"))),
            (base.join("new/./x/../y"), Some(base.join("new/y"))),
            (base.join("file/x"), None),
        ];
        for (path, expected) in cases {
            match (path_once_created(&path), expected) {
                (Ok(got), Some(expected)) => assert_eq!(got, expected, "{}", path.display()),
                (Err(SandboxError::CreateDir { .. }), None) => {}
                (got, expected) => panic!("{}: {got:?}, expected {expected:?}", path.display()),
            }
        }
        // Nothing was created on the way.
        assert!(!base.join("real/a").exists() && !base.join("new").exists());
    }
}
