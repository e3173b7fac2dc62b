//! The three Landlock system calls the per-job ruleset needs, called directly.
//!
//! Why not the `landlock` crate on this path: every job builds a ruleset of a few dozen rules,
//! and the crate's per-call compatibility bookkeeping (plus an `fstat` per rule) roughly doubled
//! the cost of the bare syscalls. The crate still defines the access rights and runs the
//! start-up probe; this module only issues the calls with rights computed once from them.
//!
//! Invariants: every ruleset fd is created close-on-exec and owned (`OwnedFd`); rule rights
//! are always a subset of the ruleset's handled rights (the kernel refuses anything else with
//! `EINVAL`, which surfaces as an error, never as a weaker ruleset).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `LANDLOCK_CREATE_RULESET_VERSION`: ask the kernel for its Landlock ABI version.
const CREATE_RULESET_VERSION: libc::c_uint = 1;
/// `LANDLOCK_RULE_PATH_BENEATH`: a rule attached to a file or directory hierarchy.
const RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr` (ABI 6 layout: handled fs rights, net rights, scopes).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's uapi header).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel (`None`: no Landlock).
pub fn abi_version() -> Option<i32> {
    // SAFETY: a null attribute with size 0 and the VERSION flag is the documented query; the
    // kernel reads nothing from user memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(version).ok().filter(|v| *v > 0)
}

/// Creates a ruleset handling `fs` rights and `scoped` scopes; the fd is close-on-exec.
pub fn create_ruleset(fs: u64, scoped: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: 0,
        scoped,
    };
    // SAFETY: `attr` is a valid, fully initialised ruleset_attr whose exact size we pass; the
    // kernel copies it and keeps no pointer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a new descriptor (O_CLOEXEC) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Allows `access` beneath the file or directory `parent` in `ruleset`.
pub fn add_path_rule(ruleset: &OwnedFd, parent: BorrowedFd<'_>, access: u64) -> io::Result<()> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: `ruleset` is a Landlock ruleset fd, `attr` a valid path_beneath_attr that the
    // kernel copies; `parent` stays open for the duration of the call; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
