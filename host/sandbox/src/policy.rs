//! Sandbox policy: plain data the daemon builds from its configuration.
//!
//! Invariant: nothing in here performs I/O; `Sandbox::new` validates and canonicalizes a policy
//! before any job runs, so every other module may rely on absolute, existing directories.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default cap on captured stdout and on captured stderr, each: large scanner reports fit, a
/// flooding tool cannot exhaust the daemon's memory.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;
/// Default time between SIGTERM and SIGKILL: long enough for a scanner to flush its report.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
/// Default RLIMIT_AS. Go binaries (terrascan) reserve large PROT_NONE arenas and die below about
/// 1 GiB of address space; nsjail uses the same 4 GiB default.
pub const DEFAULT_ADDRESS_SPACE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default RLIMIT_FSIZE: the largest single file a tool may write (reports can be big).
pub const DEFAULT_FILE_SIZE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default RLIMIT_NOFILE: scanners open many files at once, but not thousands.
pub const DEFAULT_OPEN_FILES: u64 = 256;
/// Default RLIMIT_NPROC, applied only with a dedicated uid (it counts per real uid).
pub const DEFAULT_PROCESSES: u64 = 256;
/// Seconds of CPU time granted beyond the wall-clock timeout before RLIMIT_CPU fires, so the
/// wall-clock timeout (with its SIGTERM grace) is normally what ends a job.
pub const DEFAULT_CPU_GRACE_SECS: u64 = 10;
/// PATH given to every tool: system directories only, never the daemon's own PATH.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether an optional kernel protection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Hardening {
    /// Never applied.
    Off,
    /// Applied when the kernel and the daemon's privileges allow it; recorded per job.
    #[default]
    Auto,
    /// `Sandbox::new` fails when it is unavailable.
    Required,
}

/// Resource limits applied to every tool process (see `rlimits.rs` for how they are derived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    pub processes: u64,
    pub cpu_grace_secs: u64,
}

impl Default for Rlimits {
    fn default() -> Self {
        Self {
            address_space_bytes: DEFAULT_ADDRESS_SPACE_BYTES,
            file_size_bytes: DEFAULT_FILE_SIZE_BYTES,
            open_files: DEFAULT_OPEN_FILES,
            processes: DEFAULT_PROCESSES,
            cpu_grace_secs: DEFAULT_CPU_GRACE_SECS,
        }
    }
}

/// A dedicated identity for tool processes (only honoured when the daemon runs as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// Everything the sandbox enforces, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// Directories tools may read. The FIRST one is the workspace: the working directory, and
    /// the base of relative input paths.
    pub allowed_dirs: Vec<PathBuf>,
    /// Per-job output directories are created below this root, and nowhere else.
    pub output_root: PathBuf,
    /// Private per-job directories (`<job>/home`, `<job>/tmp`) live here.
    pub jobs_root: PathBuf,
    /// The PATH variable given to tools.
    pub path_env: String,
    /// Cap on captured stdout, and separately on captured stderr.
    pub max_output_bytes: usize,
    /// Time between SIGTERM and SIGKILL on timeout or cancellation.
    pub kill_grace: Duration,
    pub rlimits: Rlimits,
    /// Run tools under this uid/gid (root daemon only).
    pub run_as: Option<RunAs>,
    pub landlock: Hardening,
    pub network_isolation: Hardening,
    /// A delegated, writable cgroup v2 directory; each job gets a child cgroup in it.
    pub cgroup_root: Option<PathBuf>,
    /// cgroup `memory.max` per job (needs the memory controller delegated).
    pub memory_max_bytes: Option<u64>,
    /// cgroup `pids.max` per job (needs the pids controller delegated).
    pub pids_max: Option<u64>,
    /// System paths tools may read and execute under Landlock (shared libraries, CA
    /// certificates, resolver configuration). Missing entries are skipped. Secrets such as
    /// /etc/shadow are deliberately absent: /etc is listed entry by entry.
    pub system_read_paths: Vec<PathBuf>,
}

/// Read-only system paths granted by default: what dynamically linked binaries, Python
/// (prowler) and Go (terrascan) programs need to start, resolve names and verify TLS.
pub const DEFAULT_SYSTEM_READ_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/lib32",
    "/opt",
    "/proc",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/mime.types",
    "/etc/os-release",
    "/usr/share/zoneinfo",
];

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            allowed_dirs: Vec::new(),
            output_root: PathBuf::from("/var/lib/toolgate/output"),
            jobs_root: PathBuf::from("/var/lib/toolgate/jobs"),
            path_env: DEFAULT_PATH_ENV.to_string(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            kill_grace: DEFAULT_KILL_GRACE,
            rlimits: Rlimits::default(),
            run_as: None,
            landlock: Hardening::Auto,
            network_isolation: Hardening::Auto,
            cgroup_root: None,
            memory_max_bytes: None,
            pids_max: None,
            system_read_paths: DEFAULT_SYSTEM_READ_PATHS
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}
