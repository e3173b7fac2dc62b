//! Landlock: start-up detection and the per-job ruleset.
//!
//! Invariants:
//! - The ruleset is built entirely in the parent (opening paths and allocating is allowed
//!   there); the child only calls `landlock_restrict_self` on the finished ruleset fd, a single
//!   async-signal-safe syscall (see `child.rs`).
//! - Rules bind to inodes: the allowed directories use the fds the sandbox holds open, so a
//!   path renamed or replaced after validation does not widen what the tool can reach.
//! - Enforcement is reported as the `landlock` crate's `restrict_self` returned it for a probe
//!   ruleset handling exactly the same access rights, run once at start-up on a throwaway
//!   thread (Landlock and no_new_privs are per-thread, so the daemon itself stays unrestricted).
//!   Every job uses the same handled rights, so its enforcement is the probe's.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::Serialize;

use crate::error::SandboxError;

/// The Landlock ABI whose rights every ruleset handles. V6 adds scopes: a tool can neither
/// signal processes outside its domain (the daemon) nor connect to abstract UNIX sockets
/// created outside it. Older kernels enforce a subset, reported as `partial`.
pub const TARGET_ABI: ABI = ABI::V6;

/// Device files every tool may read and write (null sinks and entropy sources).
pub const DEVICE_FILES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// How much of the requested Landlock restriction the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Not requested by the policy (or not applicable).
    Off,
    FullyEnforced,
    PartiallyEnforced,
    NotEnforced,
}

/// Probes Landlock on a throwaway thread and returns what `restrict_self` reported.
pub fn probe() -> Enforcement {
    let probe = std::thread::Builder::new()
        .name("toolgate-landlock-probe".into())
        .spawn(|| {
            let status = handled_ruleset()
                .and_then(|ruleset| ruleset.restrict_self().map_err(|e| e.to_string()));
            match status.map(|s| s.ruleset) {
                Ok(RulesetStatus::FullyEnforced) => Enforcement::FullyEnforced,
                Ok(RulesetStatus::PartiallyEnforced) => Enforcement::PartiallyEnforced,
                Ok(RulesetStatus::NotEnforced) | Err(_) => Enforcement::NotEnforced,
            }
        });
    match probe.map(|thread| thread.join()) {
        Ok(Ok(enforcement)) => enforcement,
        _ => Enforcement::NotEnforced,
    }
}

/// Rules shared by every job, opened once at start-up: system paths (read and execute) and
/// device files (read and write). Missing paths are skipped.
pub struct SharedRules {
    rules: Vec<(PathFd, BitFlags<AccessFs>)>,
}

impl SharedRules {
    pub fn open(system: &[PathBuf]) -> Result<Self, SandboxError> {
        let mut rules = Vec::new();
        for path in system {
            if let Some(fd) = open_optional(path)? {
                let access = narrow(&fd, AccessFs::from_read(TARGET_ABI))?;
                rules.push((fd, access));
            }
        }
        for device in DEVICE_FILES {
            if let Some(fd) = open_optional(Path::new(device))? {
                rules.push((fd, AccessFs::ReadFile | AccessFs::WriteFile));
            }
        }
        Ok(Self { rules })
    }
}

/// The paths a job may touch, grouped by access.
pub struct JobRules<'a> {
    pub shared: &'a SharedRules,
    /// Read-only, bound to held directory fds: the allowed (input) directories.
    pub inputs: Vec<&'a OwnedFd>,
    /// Read and execute: the tool binary itself.
    pub binary: &'a Path,
    /// Read-write: the job's output directory, private home and tmp.
    pub writable: [&'a Path; 3],
}

/// Builds the ruleset of one job and returns its fd (`None` when the kernel has no Landlock).
pub fn build(rules: &JobRules<'_>) -> Result<Option<OwnedFd>, SandboxError> {
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let mut ruleset = handled_ruleset().map_err(SandboxError::Landlock)?;
    for (fd, access) in &rules.shared.rules {
        ruleset = add(ruleset, fd, *access)?;
    }
    for fd in &rules.inputs {
        ruleset = add(ruleset, fd.as_fd(), read)?;
    }
    let binary = PathFd::new(rules.binary).map_err(|e| SandboxError::Landlock(e.to_string()))?;
    ruleset = add(ruleset, binary, AccessFs::ReadFile | AccessFs::Execute)?;
    // The writable paths are directories the sandbox itself created: all rights apply.
    for path in rules.writable {
        let fd = PathFd::new(path).map_err(|e| SandboxError::Landlock(e.to_string()))?;
        ruleset = add(ruleset, fd, all)?;
    }
    Ok(ruleset.into())
}

fn handled_ruleset() -> Result<RulesetCreated, String> {
    Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .and_then(|r| r.scope(Scope::from_all(TARGET_ABI)))
        .and_then(|r| r.create())
        .map_err(|e| e.to_string())
}

fn add<F: AsFd>(
    ruleset: RulesetCreated,
    fd: F,
    access: BitFlags<AccessFs>,
) -> Result<RulesetCreated, SandboxError> {
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| SandboxError::Landlock(e.to_string()))
}

/// Narrows `access` to the rights valid for a non-directory when `fd` is a file (directory-only
/// rights on a file would silently degrade the ruleset).
fn narrow(fd: &PathFd, access: BitFlags<AccessFs>) -> Result<BitFlags<AccessFs>, SandboxError> {
    let is_dir = fstat_is_dir(fd.as_fd()).map_err(|e| SandboxError::Landlock(e.to_string()))?;
    Ok(if is_dir {
        access
    } else {
        access & AccessFs::from_file(TARGET_ABI)
    })
}

fn open_optional(path: &Path) -> Result<Option<PathFd>, SandboxError> {
    if !path.exists() {
        return Ok(None);
    }
    PathFd::new(path)
        .map(Some)
        .map_err(|e| SandboxError::Landlock(format!("{}: {e}", path.display())))
}

fn fstat_is_dir(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    let file = std::fs::File::from(fd.try_clone_to_owned()?);
    Ok(file.metadata()?.is_dir())
}
