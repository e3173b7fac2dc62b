//! The `[sandbox]` section: where tools may read and write, how they are limited, and how the
//! section becomes the sandbox crate's policy.
//!
//! Invariant: the sandbox crate receives absolute paths only (resolved at load time).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toolgate_sandbox::{Hardening, Rlimits, RunAs, SandboxPolicy};

/// Default wall-clock cap for any tool, HexStrike's fixed timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// `[sandbox]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Directories tools may read; the first is the workspace relative input paths resolve in.
    pub allowed_dirs: Vec<PathBuf>,
    /// Root under which job and caller-requested output directories are created; defaults to
    /// `<data_dir>/output`.
    pub output_root: Option<PathBuf>,
    /// Hard cap on any tool's wall-clock time, in seconds.
    pub timeout_secs: u64,
    /// Cap on each of stdout and stderr, in bytes.
    pub max_output_bytes: usize,
    /// Seconds between SIGTERM and SIGKILL.
    pub kill_grace_secs: u64,
    /// Search path for tool executables and the PATH tools run with.
    pub path: String,
    pub address_space_bytes: u64,
    pub file_size_bytes: u64,
    pub open_files: u64,
    pub processes: u64,
    pub cpu_grace_secs: u64,
    /// Run tools as this user (both or neither of uid/gid).
    pub run_as_uid: Option<u32>,
    pub run_as_gid: Option<u32>,
    /// Landlock filesystem confinement: off, auto or required.
    pub landlock: Hardening,
    /// A private network namespace for tools that do not need the network: off, auto or required.
    pub network_isolation: Hardening,
    /// A cgroup v2 directory the daemon may create per-job groups under.
    pub cgroup_root: Option<PathBuf>,
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    /// System paths tools may read and execute under Landlock (libraries, CA certificates).
    pub system_read_paths: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    /// The sandbox crate's own defaults, except the paths (relative to the working directory).
    fn default() -> Self {
        let policy = SandboxPolicy::default();
        let limits = Rlimits::default();
        Self {
            allowed_dirs: vec![PathBuf::from("./examples")],
            output_root: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            max_output_bytes: policy.max_output_bytes,
            kill_grace_secs: policy.kill_grace.as_secs(),
            path: policy.path_env,
            address_space_bytes: limits.address_space_bytes,
            file_size_bytes: limits.file_size_bytes,
            open_files: limits.open_files,
            processes: limits.processes,
            cpu_grace_secs: limits.cpu_grace_secs,
            run_as_uid: None,
            run_as_gid: None,
            landlock: Hardening::Auto,
            network_isolation: Hardening::Auto,
            cgroup_root: None,
            memory_max_bytes: None,
            pids_max: None,
            system_read_paths: policy.system_read_paths,
        }
    }
}

impl SandboxConfig {
    pub(super) fn resolve_paths(&mut self, base: &Path, data_dir: &Path) {
        let absolute = |path: &Path| {
            if path.is_relative() {
                base.join(path)
            } else {
                path.to_path_buf()
            }
        };
        self.allowed_dirs = self.allowed_dirs.iter().map(|d| absolute(d)).collect();
        self.output_root = Some(
            self.output_root
                .as_deref()
                .map_or_else(|| data_dir.join("output"), absolute),
        );
        self.cgroup_root = self.cgroup_root.as_deref().map(absolute);
    }

    /// The sandbox crate's policy for this section; `jobs_root` holds private job directories.
    pub fn policy(&self, jobs_root: PathBuf) -> SandboxPolicy {
        let run_as = match (self.run_as_uid, self.run_as_gid) {
            (Some(uid), Some(gid)) => Some(RunAs { uid, gid }),
            _ => None,
        };
        SandboxPolicy {
            allowed_dirs: self.allowed_dirs.clone(),
            output_root: self.output_root(),
            jobs_root,
            path_env: self.path.clone(),
            max_output_bytes: self.max_output_bytes,
            kill_grace: Duration::from_secs(self.kill_grace_secs),
            rlimits: Rlimits {
                address_space_bytes: self.address_space_bytes,
                file_size_bytes: self.file_size_bytes,
                open_files: self.open_files,
                processes: self.processes,
                cpu_grace_secs: self.cpu_grace_secs,
            },
            run_as,
            landlock: self.landlock,
            network_isolation: self.network_isolation,
            cgroup_root: self.cgroup_root.clone(),
            memory_max_bytes: self.memory_max_bytes,
            pids_max: self.pids_max,
            system_read_paths: self.system_read_paths.clone(),
        }
    }

    /// The output root (absolute once the configuration is loaded).
    pub fn output_root(&self) -> PathBuf {
        self.output_root.clone().unwrap_or_default()
    }
}
