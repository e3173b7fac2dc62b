//! Optional hardening: what the machine offers (`Capabilities`, detected once at start-up) and
//! what a job actually got (`Protections`, recorded per job). Both are serialized into the
//! daemon's health output and job records, so nothing is claimed that was not applied.

use std::os::fd::OwnedFd;

use serde::Serialize;

use crate::cgroup::CgroupSupport;
use crate::error::SandboxError;
use crate::landlock_rules::Enforcement;
use crate::policy::RunAs;
use crate::rlimits::JobLimits;

/// Detected at `Sandbox::new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// What `restrict_self` reported for the probe ruleset.
    pub landlock: Enforcement,
    /// An empty network namespace exists for no-network jobs to join.
    pub network_namespace: bool,
    /// The delegated cgroup v2 directory, when configured and usable.
    pub cgroup: Option<CgroupSupport>,
    /// Why no cgroup is used (not configured, or what failed).
    pub cgroup_unavailable: Option<String>,
    /// The daemon is a child subreaper (orphans of jobs are reparented to it).
    pub subreaper: bool,
    /// The daemon is not dumpable: its /proc files (environ, mem, fd) need CAP_SYS_PTRACE,
    /// which no tool has.
    pub daemon_non_dumpable: bool,
    /// The daemon runs as root (uid switch possible; RLIMIT_NPROC does not bind root).
    pub running_as_root: bool,
    /// Highest capability number of the kernel, when the daemon is root and drops them all
    /// in each tool.
    pub last_capability: Option<u32>,
    /// The daemon has a controlling terminal (it was started from a shell rather than as a
    /// service), so each tool gets a session of its own to have none (`child.rs`, step 2).
    pub controlling_terminal: bool,
}

/// How the processes of a job are contained and swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Containment {
    /// Job cgroup + `cgroup.kill`, plus the orphan sweep.
    Cgroup,
    /// Process group + the daemon as subreaper sweeping orphans.
    ProcessGroup,
}

/// What one job actually ran under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protections {
    pub no_new_privs: bool,
    /// The tool got a session of its own (setsid; the daemon has a terminal). Otherwise it is a
    /// process group of its own in the daemon's session, which has no terminal.
    pub new_session: bool,
    pub parent_death_signal: bool,
    pub only_std_fds: bool,
    /// Every capability dropped (bounding, ambient, effective, permitted, inheritable).
    pub capabilities_dropped: bool,
    pub landlock: Enforcement,
    pub network_isolated: bool,
    pub containment: Containment,
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    pub run_as: Option<RunAs>,
    pub rlimits: JobLimits,
}

/// Whether this process has a controlling terminal: `/dev/tty` names it, and opening it fails
/// (ENXIO) when there is none. `O_NOCTTY`, so that the probe itself never acquires one.
pub fn has_controlling_terminal() -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
        .is_ok()
}

/// Creates the empty network namespace that no-network jobs join, and returns a handle to it
/// (`None` when the daemon may not create one). A throwaway thread unshares its own network
/// namespace and opens it; the fd keeps the namespace alive after the thread exits.
///
/// Why one shared namespace instead of `unshare(CLONE_NEWNET)` per job: creating and tearing
/// down a namespace costs about a millisecond per job; `setns` into an existing one costs
/// microseconds. What a job sees is the same: only a loopback interface that is down. No tool
/// can change that: it holds no CAP_NET_ADMIN (capabilities are dropped, or it runs under a
/// dedicated uid). The only thing jobs could share there, abstract UNIX sockets, is cut by
/// Landlock's abstract-socket scope when Landlock is enforced.
pub fn create_empty_network_namespace() -> Option<OwnedFd> {
    std::thread::Builder::new()
        .name("toolgate-netns".into())
        .spawn(|| {
            // SAFETY: unshare with a flag constant; affects this throwaway thread only.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            std::fs::File::open("/proc/thread-self/ns/net")
                .ok()
                .map(OwnedFd::from)
        })
        .ok()
        .and_then(|thread| thread.join().ok())
        .flatten()
}

/// Makes the daemon non-dumpable, process-wide. A tool running under the daemon's own uid
/// (root without `run_as`) would otherwise pass the ptrace access check on the daemon's
/// /proc/<pid>/environ by uid alone, and the Landlock ptrace restriction was observed not to
/// stop that read on the reference kernel: the environment holds the operator's secrets.
pub fn make_daemon_non_dumpable() -> Result<(), SandboxError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(SandboxError::Dumpable(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The kernel's highest capability number.
pub fn last_capability() -> Result<u32, SandboxError> {
    std::fs::read_to_string(LAST_CAP_FILE)
        .map_err(SandboxError::LastCapability)?
        .trim()
        .parse()
        .map_err(|_| SandboxError::LastCapability(std::io::Error::other("not a number")))
}

/// Where the kernel publishes its highest capability number.
const LAST_CAP_FILE: &str = "/proc/sys/kernel/cap_last_cap";

/// Whether the daemon's effective uid is root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
