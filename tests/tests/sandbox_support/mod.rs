//! Shared set-up for the sandbox tests: a sandbox over fresh temporary directories, the fake
//! tool, and /proc helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Arg, RunResult, RunSpec, Sandbox, SandboxPolicy};

/// A sandbox over `<tmp>/workspace` (allowed), `<tmp>/output` and `<tmp>/jobs`.
pub struct Fixture {
    pub tmp: TempDir,
    pub sandbox: Sandbox,
    pub workspace: PathBuf,
}

pub fn fixture(configure: impl FnOnce(&mut SandboxPolicy)) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let mut policy = SandboxPolicy {
        allowed_dirs: vec![workspace.clone()],
        output_root: tmp.path().join("output"),
        jobs_root: tmp.path().join("jobs"),
        kill_grace: Duration::from_millis(500),
        ..SandboxPolicy::default()
    };
    configure(&mut policy);
    let sandbox = Sandbox::new(policy).unwrap();
    let workspace = sandbox.policy().allowed_dirs[0].clone();
    Fixture {
        tmp,
        sandbox,
        workspace,
    }
}

pub fn fake_tool() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_toolgate-fake-tool"))
}

pub fn literals(args: &[&str]) -> Vec<Arg> {
    args.iter().map(|a| Arg::Literal(a.to_string())).collect()
}

pub fn job_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("job-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn spec(binary: &Path, timeout: Duration) -> RunSpec {
    RunSpec {
        binary: binary.to_path_buf(),
        env: Vec::new(),
        timeout,
        needs_network: false,
        home: None,
        read_paths: Vec::new(),
        limits: toolgate_sandbox::RunLimits::default(),
    }
}

impl Fixture {
    /// Prepares and runs the fake tool with `args`.
    pub async fn run(&self, args: &[Arg], timeout: Duration) -> RunResult {
        self.run_spec(args, spec(&fake_tool(), timeout)).await
    }

    pub async fn run_spec(&self, args: &[Arg], spec: RunSpec) -> RunResult {
        let job = self.sandbox.prepare(&job_id(), args).unwrap();
        self.sandbox
            .run(job, spec, CancellationToken::new())
            .await
            .unwrap()
    }

    /// Runs the fake tool's `double-fork` mode (a grandchild that calls setsid and would sleep
    /// 600 s), asserts the job itself exited 0, and returns the result and the grandchild's pid.
    pub async fn run_double_fork(&self) -> (RunResult, String) {
        let result = self
            .run(
                &[Arg::Literal("double-fork".into()), Arg::OutputDir],
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(
            result.exit_code,
            Some(0),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let pid = std::fs::read_to_string(result.output_dir.join("grandchild.pid")).unwrap();
        (result, pid.trim().to_string())
    }
}

pub fn stdout(result: &RunResult) -> String {
    String::from_utf8_lossy(&result.stdout).into_owned()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A field of `/proc/<pid>/status` (e.g. "VmHWM", "Uid"), without its label.
pub fn proc_status(pid: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Pids of every process on the machine.
pub fn all_pids() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// Processes whose real uid is `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<String> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            proc_status(pid, "Uid")
                .and_then(|u| u.split_whitespace().next().map(str::to_string))
                .is_some_and(|u| u == uid.to_string())
        })
        .collect()
}

/// Asserts that this test process has no child left, zombie or alive.
pub fn assert_no_child_left() {
    let zombies = own_zombies();
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
    let me = std::process::id().to_string();
    let children: Vec<String> = all_pids()
        .into_iter()
        .filter(|pid| proc_status(pid, "PPid").is_some_and(|p| p == me))
        .collect();
    assert!(children.is_empty(), "children left: {children:?}");
}

/// Children of this test process in state Z (zombies).
pub fn own_zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    all_pids()
        .into_iter()
        .filter(|pid| {
            proc_status(pid, "PPid").is_some_and(|p| p == me)
                && proc_status(pid, "State").is_some_and(|s| s.starts_with('Z'))
        })
        .collect()
}
