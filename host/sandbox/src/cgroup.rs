//! cgroup v2 containment, used when the operator delegates a writable cgroup v2 directory.
//!
//! Invariants:
//! - Each job gets its own child cgroup, which the child joins first thing after clone (before
//!   any of its own forks), so every descendant is a member whatever it does to its session
//!   or process group; `cgroup.kill` ends them all atomically.
//! - `memory.max` / `pids.max` are written only when the controller is available in the
//!   delegated directory; what was applied is recorded per job, never assumed.
//! - The daemon itself must not live in the delegated directory (cgroup v2 forbids processes
//!   in inner nodes that distribute controllers).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::SandboxError;

/// `statfs.f_type` of a cgroup v2 mount.
const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
/// How many times `rmdir` of a job cgroup is retried while its last processes finish exiting.
const REMOVE_ATTEMPTS: u32 = 50;
/// Pause between two `rmdir` attempts.
const REMOVE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// What the delegated cgroup directory offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupSupport {
    pub root: PathBuf,
    pub memory_controller: bool,
    pub pids_controller: bool,
    /// `cgroup.kill` (Linux 5.14) exists; without it members are signalled one by one.
    pub kill_file: bool,
}

/// The limit controllers a cgroup directory offers its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controllers {
    pub memory: bool,
    pub pids: bool,
}

/// The controllers `root` offers its children (`cgroup.controllers`), after checking that it is
/// a cgroup v2 directory. Reads only: `config check` uses it to tell, with no side effects,
/// whether the limits a configuration sets can be applied.
pub fn controllers(root: &Path) -> Result<Controllers, SandboxError> {
    let err = |step, source| SandboxError::Cgroup {
        step,
        path: root.to_path_buf(),
        source,
    };
    let c_root = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| err("path", io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: an all-zero statfs is a valid value for the kernel to overwrite.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_root` is a valid C string and `stat` a valid, writable statfs.
    if unsafe { libc::statfs(c_root.as_ptr(), &mut stat) } != 0 {
        return Err(err("statfs", io::Error::last_os_error()));
    }
    if stat.f_type as libc::c_long != CGROUP2_SUPER_MAGIC {
        return Err(err("statfs", io::Error::other("not a cgroup v2 directory")));
    }
    let listed = fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| err("read cgroup.controllers", e))?;
    let has = |name: &str| listed.split_whitespace().any(|c| c == name);
    Ok(Controllers {
        memory: has("memory"),
        pids: has("pids"),
    })
}

/// Checks that `root` is a writable cgroup v2 directory and enables the memory and pids
/// controllers for its children when the parent offers them.
pub fn detect(root: &Path) -> Result<CgroupSupport, SandboxError> {
    let err = |step, source| SandboxError::Cgroup {
        step,
        path: root.to_path_buf(),
        source,
    };
    let offered = controllers(root)?;
    let wanted: Vec<&str> = [(offered.memory, "+memory"), (offered.pids, "+pids")]
        .into_iter()
        .filter_map(|(has, enable)| has.then_some(enable))
        .collect();
    if !wanted.is_empty() {
        fs::write(root.join("cgroup.subtree_control"), wanted.join(" "))
            .map_err(|e| err("enable controllers in cgroup.subtree_control", e))?;
    }
    let probe = root.join(".toolgate-probe");
    let _ = fs::remove_dir(&probe);
    fs::create_dir(&probe).map_err(|e| err("create probe cgroup", e))?;
    let kill_file = probe.join("cgroup.kill").exists();
    fs::remove_dir(&probe).map_err(|e| err("remove probe cgroup", e))?;
    Ok(CgroupSupport {
        root: root.to_path_buf(),
        memory_controller: offered.memory,
        pids_controller: offered.pids,
        kill_file,
    })
}

/// The cgroup of one running job.
#[derive(Debug)]
pub struct JobCgroup {
    pub dir: PathBuf,
    /// `<dir>/cgroup.procs` as a C string, for the child to join with async-signal-safe calls.
    pub procs: CString,
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    kill_file: bool,
}

impl JobCgroup {
    pub fn create(
        support: &CgroupSupport,
        job_id: &str,
        memory_max: Option<u64>,
        pids_max: Option<u64>,
    ) -> Result<Self, SandboxError> {
        let dir = support.root.join(job_id);
        let err = |step, source| SandboxError::Cgroup {
            step,
            path: dir.clone(),
            source,
        };
        fs::create_dir(&dir).map_err(|e| err("create job cgroup", e))?;
        let memory_max_bytes = memory_max.filter(|_| support.memory_controller);
        if let Some(bytes) = memory_max_bytes {
            fs::write(dir.join("memory.max"), bytes.to_string())
                .map_err(|e| err("write memory.max", e))?;
            // Without swap.max a memory-capped job would page out instead of being stopped.
            let _ = fs::write(dir.join("memory.swap.max"), "0");
        }
        let pids_max = pids_max.filter(|_| support.pids_controller);
        if let Some(max) = pids_max {
            fs::write(dir.join("pids.max"), max.to_string())
                .map_err(|e| err("write pids.max", e))?;
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| err("path", io::Error::from_raw_os_error(libc::EINVAL)))?;
        Ok(Self {
            dir,
            procs,
            memory_max_bytes,
            pids_max,
            kill_file: support.kill_file,
        })
    }

    /// SIGKILLs every member: atomically with `cgroup.kill`, else one by one.
    pub fn kill_all(&self) {
        if self.kill_file && fs::write(self.dir.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: plain kill(2); the pid is a member of this job's cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Removes the (empty) job cgroup, retrying while its last members finish exiting.
    pub fn remove(self) {
        for _ in 0..REMOVE_ATTEMPTS {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            self.kill_all();
            std::thread::sleep(REMOVE_PAUSE);
        }
        tracing::warn!(dir = %self.dir.display(), "job cgroup could not be removed");
    }
}
