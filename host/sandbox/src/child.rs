//! The child side: the setup sequence between clone and execve (called from `exec.rs`).
//!
//! Invariants:
//! - Only async-signal-safe system calls, no allocation, no locks: the daemon is
//!   multi-threaded, another thread may hold the allocator lock, and the child shares the
//!   daemon's memory (CLONE_VM) until it execs. All data
//!   (C strings, limit arrays, fds) is prepared by the parent in `ChildPlan`.
//! - The sequence below is linear, and each step names itself in `ChildStep`. On failure the
//!   child records `[step, errno]` in the plan's `ChildReport` (memory it shares with the
//!   suspended parent) and returns the errno: `spawn` fails and nothing runs, so a protection
//!   that was planned is never silently skipped.
//!
//! Run sequence (exec.rs has already reset every signal disposition and chdir'ed to the
//! workspace, all as the daemon's user; it execs right after this sequence). Until step 10 the
//! child shares the daemon's descriptor table (CLONE_FILES, so the clone copies none of its
//! descriptors): steps 1-9 only read descriptors (the namespace, the ruleset) or open and close
//! their own (the cgroup file), and step 10 gives the child a table of its own holding only the
//! descriptors below the spawner's stdio slots.
//!  1. join the job cgroup (before the tool can fork anything)
//!  2. a process group of its own, so the job is signalled as a group: setsid (a new session
//!     too) when the daemon has a controlling terminal, so the tool has none; otherwise
//!     setpgid(0, 0) in the daemon's session, which has no terminal to take, and which the tool,
//!     not being a session leader, can never acquire one in. Why not always setsid: a new
//!     session is also a new scheduler autogroup (`kernel.sched_autogroup_enabled`, on by
//!     default), which weighs as much as the whole daemon, so 32 running tools outweighed the
//!     daemon 32 to 1 and its answers waited (p99 latency; see PERFORMANCE.md)
//!  3. PR_SET_NO_NEW_PRIVS: setuid binaries cannot regain privileges; required by Landlock
//!  4. setrlimit for every limit (values computed in the parent)
//!  5. setns into the daemon's empty network namespace when the tool needs no network (needs
//!     the daemon's privileges, hence before the uid switch; see capabilities.rs for why one
//!     shared empty namespace)
//!  6. setgroups([]), setgid, setuid when a dedicated identity is configured
//!  7. PR_SET_PDEATHSIG(SIGKILL), then re-check getppid(): set after the uid switch because a
//!     credential change clears it; the re-check closes the race where the daemon died before
//!     the prctl. It fires when the parent THREAD exits, which is why the daemon clones from a
//!     dedicated thread that lives as long as the `Sandbox` (see `spawner.rs`).
//!  8. landlock_restrict_self on the ruleset built by the parent
//!  9. when the tool keeps uid 0: clear the ambient set and zero the effective/permitted/
//!     inheritable sets. The bounding set is already empty: the child inherited it from its
//!     spawner thread, which emptied its own at start-up (see `spawner.rs`). A uid-0 process
//!     regains only the bounding set at execve, so a root tool ends up with no capability at all
//!     (no CAP_SYS_PTRACE to read the daemon's /proc files, no CAP_DAC_OVERRIDE, no CAP_KILL).
//! 10. close_range(end of the stdio slots, ~0, CLOSE_RANGE_UNSHARE): a table of our own, with
//!     copies of the daemon's descriptors below the slots only (the daemon's first few and the
//!     spawners' slots), instead of all of them: an `execve` closes every copied descriptor one
//!     by one, ~50 us per job for the ~200 a busy daemon holds
//! 11. dup2 the stdio slots onto 0, 1 and 2
//! 12. close_range(3, ~0, CLOSE_RANGE_CLOEXEC): every fd above 2 is closed by execve (marked
//!     rather than closed, so nothing can close under a step that still runs).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::RunAs;
use crate::rlimits::MAX_LIMITS;

/// The step of the child sequence that failed (reported through `ChildReport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChildStep {
    JoinCgroup = 1,
    NewSession = 2,
    NoNewPrivs = 3,
    SetRlimit = 4,
    JoinEmptyNetwork = 5,
    DropGroups = 6,
    SetGid = 7,
    SetUid = 8,
    ParentDeathSignal = 9,
    ParentGone = 10,
    LandlockRestrict = 11,
    DropCapabilities = 12,
    CloseFds = 13,
    Stdio = 14,
    Chdir = 15,
    Exec = 16,
    OwnDescriptorTable = 17,
    OwnProcessGroup = 18,
}

impl ChildStep {
    const ALL: [ChildStep; 18] = [
        Self::JoinCgroup,
        Self::NewSession,
        Self::NoNewPrivs,
        Self::SetRlimit,
        Self::JoinEmptyNetwork,
        Self::DropGroups,
        Self::SetGid,
        Self::SetUid,
        Self::ParentDeathSignal,
        Self::ParentGone,
        Self::LandlockRestrict,
        Self::DropCapabilities,
        Self::CloseFds,
        Self::Stdio,
        Self::Chdir,
        Self::Exec,
        Self::OwnDescriptorTable,
        Self::OwnProcessGroup,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == code)
    }
}

impl std::fmt::Display for ChildStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::JoinCgroup => "join job cgroup",
            Self::NewSession => "setsid",
            Self::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Self::SetRlimit => "setrlimit",
            Self::JoinEmptyNetwork => "setns(empty network namespace)",
            Self::DropGroups => "setgroups([])",
            Self::SetGid => "setgid",
            Self::SetUid => "setuid",
            Self::ParentDeathSignal => "PR_SET_PDEATHSIG",
            Self::ParentGone => "daemon exited before PR_SET_PDEATHSIG",
            Self::LandlockRestrict => "landlock_restrict_self",
            Self::DropCapabilities => "drop capabilities",
            Self::CloseFds => "close_range",
            Self::Stdio => "dup2 stdio",
            Self::Chdir => "chdir to the workspace",
            Self::Exec => "execve",
            Self::OwnDescriptorTable => "close_range(CLOSE_RANGE_UNSHARE)",
            Self::OwnProcessGroup => "setpgid(0, 0)",
        };
        f.write_str(name)
    }
}

/// Where a failing child leaves `[step, errno]` for its parent, the way glibc's posix_spawn
/// does: the child shares the parent's memory (CLONE_VM) until execve, and the parent reads the
/// report only once CLONE_VFORK lets it resume, that is after the child exec'd (the report
/// stays empty) or exited. No pipe, no descriptor, no system call.
#[derive(Debug, Default)]
pub struct ChildReport(AtomicU64);

impl ChildReport {
    /// Child side: an atomic store, async-signal-safe and allocation-free.
    fn record(&self, step: ChildStep, errno: i32) {
        self.0.store(encode_report(step, errno), Ordering::SeqCst);
    }

    /// Parent side, after the clone returned: the failed step, if the child reported one.
    pub fn failure(&self) -> Option<(ChildStep, i32)> {
        decode_report(self.0.load(Ordering::SeqCst))
    }
}

/// Step code in the high half, errno in the low half; 0 means no report (codes start at 1).
fn encode_report(step: ChildStep, errno: i32) -> u64 {
    (u64::from(step as u8) << 32) | u64::from(errno as u32)
}

/// Everything the child needs, prepared by the parent. Raw fds are owned by the parent and
/// stay open until `exec::spawn` returns.
pub struct ChildPlan {
    pub cgroup_procs: Option<std::ffi::CString>,
    pub limits: [(libc::__rlimit_resource_t, libc::rlim_t); MAX_LIMITS],
    pub limit_count: usize,
    /// The empty network namespace to join, when the tool needs no network.
    pub network_namespace: Option<RawFd>,
    pub run_as: Option<RunAs>,
    pub parent_pid: libc::pid_t,
    /// setsid rather than setpgid: the daemon has a controlling terminal (step 2).
    pub new_session: bool,
    pub landlock_ruleset: Option<RawFd>,
    /// The tool keeps uid 0: clear its ambient, effective, permitted and inheritable sets.
    pub clear_capabilities: bool,
    pub report: ChildReport,
}

/// `struct __user_cap_header_struct` of capset(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` of capset(2).
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets, two `CapData` words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl ChildPlan {
    /// Runs the sequence in the cloned child. Async-signal-safe only (see module docs).
    pub fn apply(&self) -> io::Result<()> {
        // 1. Join the job cgroup.
        if let Some(procs) = &self.cgroup_procs {
            self.step(ChildStep::JoinCgroup, join_cgroup(procs))?;
        }
        // 2. A process group whose id is our pid: in a new session when the daemon has a
        // terminal, else in the daemon's session.
        if self.new_session {
            // SAFETY: setsid takes no arguments; the new child is not a group leader.
            self.step(ChildStep::NewSession, check(unsafe { libc::setsid() }))?;
        } else {
            // SAFETY: setpgid with integer arguments only: this process, as its own group.
            let rc = unsafe { libc::setpgid(0, 0) };
            self.step(ChildStep::OwnProcessGroup, check(rc))?;
        }
        // 3. No new privileges across execve.
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        self.step(ChildStep::NoNewPrivs, check(rc))?;
        // 4. Resource limits, soft = hard so the tool cannot raise them back.
        for &(resource, value) in self.limits.iter().take(self.limit_count) {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            // SAFETY: `limit` is a valid rlimit living on this stack frame.
            let rc = unsafe { libc::setrlimit(resource, &limit) };
            self.step(ChildStep::SetRlimit, check(rc))?;
        }
        // 5. Empty network namespace: only a loopback interface that is down.
        if let Some(namespace) = self.network_namespace {
            // SAFETY: setns on a namespace fd inherited from the parent.
            let rc = unsafe { libc::setns(namespace, libc::CLONE_NEWNET) };
            self.step(ChildStep::JoinEmptyNetwork, check(rc))?;
        }
        // 6. Dedicated identity: supplementary groups first, then gid, uid last.
        if let Some(id) = self.run_as {
            // SAFETY: an empty group list with a null pointer is valid for setgroups.
            let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
            self.step(ChildStep::DropGroups, check(rc))?;
            // SAFETY: plain integer argument.
            self.step(ChildStep::SetGid, check(unsafe { libc::setgid(id.gid) }))?;
            // SAFETY: plain integer argument.
            self.step(ChildStep::SetUid, check(unsafe { libc::setuid(id.uid) }))?;
        }
        // 7. Die with the daemon; re-check the parent to close the race with its death.
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        self.step(ChildStep::ParentDeathSignal, check(rc))?;
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != self.parent_pid {
            self.step(ChildStep::ParentGone, Err(libc::ESRCH))?;
        }
        // 8. Landlock, from the ruleset the parent built.
        if let Some(ruleset) = self.landlock_ruleset {
            // SAFETY: `ruleset` is a Landlock ruleset fd inherited from the parent; flags 0.
            let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) };
            self.step(ChildStep::LandlockRestrict, check(rc as libc::c_int))?;
        }
        // 9. No capability survives execve, even for a uid-0 tool.
        if self.clear_capabilities {
            self.step(ChildStep::DropCapabilities, clear_capabilities())?;
        }
        Ok(())
    }

    /// Steps 10-12: a descriptor table of our own with `stdio` on 0, 1 and 2 and nothing else
    /// left open by execve. `slots_end` is above every fd of `stdio`.
    pub fn take_own_descriptors(&self, stdio: [RawFd; 3], slots_end: u32) -> io::Result<()> {
        // 10. Copies of the descriptors below `slots_end` only; the shared table is left alone.
        // SAFETY: close_range with integer bounds and flags.
        let rc = unsafe {
            libc::close_range(
                slots_end,
                u32::MAX,
                libc::CLOSE_RANGE_UNSHARE as libc::c_int,
            )
        };
        self.step(ChildStep::OwnDescriptorTable, check(rc))?;
        // 11. The stdio slots onto 0, 1, 2 (every slot is above 2: `occupy_stdio_fds`).
        for (fd, target) in stdio.into_iter().zip(0..) {
            // SAFETY: dup2 between two fds of this (now private) table.
            self.step(ChildStep::Stdio, check(unsafe { libc::dup2(fd, target) }))?;
        }
        // 12. Only fds 0, 1 and 2 survive execve.
        // SAFETY: close_range with constant bounds and flags.
        let rc =
            unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
        self.step(ChildStep::CloseFds, check(rc))?;
        Ok(())
    }

    /// On failure, reports `[step, errno]` to the parent and returns the errno as the error.
    pub fn step(&self, step: ChildStep, result: Result<(), i32>) -> io::Result<()> {
        let Err(errno) = result else { return Ok(()) };
        self.report.record(step, errno);
        Err(io::Error::from_raw_os_error(errno))
    }
}

/// Empties the ambient set, then the effective/permitted/inheritable sets.
fn clear_capabilities() -> Result<(), i32> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    check(rc)?;
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid, correctly laid out capset(2) arguments on this stack.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    check(rc as libc::c_int)
}

/// Writes "0" (= the calling process) into the job's `cgroup.procs`.
fn join_cgroup(procs: &std::ffi::CStr) -> Result<(), i32> {
    // SAFETY: `procs` is a valid C string prepared by the parent.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    check(fd)?;
    // SAFETY: writes one byte from a static buffer to the fd just opened.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let result = if written == 1 { Ok(()) } else { Err(errno()) };
    // SAFETY: closes the fd opened above.
    unsafe { libc::close(fd) };
    result
}

fn check(rc: libc::c_int) -> Result<(), i32> {
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

fn errno() -> i32 {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Decodes what a failing child reported, if anything.
fn decode_report(report: u64) -> Option<(ChildStep, i32)> {
    let step = ChildStep::from_code(u8::try_from(report >> 32).ok()?)?;
    Some((step, report as u32 as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_decoding_table() {
        let cases: &[(u64, Option<(ChildStep, i32)>)] = &[
            (0, None),
            (1, None),
            (99 << 32 | 1, None),
            (1 << 40 | 12 << 32, None),
            (
                encode_report(ChildStep::LandlockRestrict, libc::EPERM),
                Some((ChildStep::LandlockRestrict, libc::EPERM)),
            ),
            (
                encode_report(ChildStep::Exec, -1),
                Some((ChildStep::Exec, -1)),
            ),
        ];
        for (report, expected) in cases {
            assert_eq!(decode_report(*report), *expected, "{report:#x}");
        }
        for step in ChildStep::ALL {
            assert_eq!(ChildStep::from_code(step as u8), Some(step));
            let report = ChildReport::default();
            assert_eq!(report.failure(), None);
            report.record(step, libc::ENOENT);
            assert_eq!(report.failure(), Some((step, libc::ENOENT)));
        }
    }
}
