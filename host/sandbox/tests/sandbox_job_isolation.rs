//! Landlock isolation between jobs: a job can neither read nor write the output directory or
//! the private home/tmp of another job, whether that job already ran or is running right now,
//! nor list the roots that hold them. Its own directories stay readable and writable.
//!
//! The tools are plain system binaries (cat, ls, touch, sleep), run without a shell.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{
    Arg, Enforcement, PreparedJob, RunResult, RunSpec, Sandbox, SandboxPolicy, resolve_binary,
};

const TIMEOUT: Duration = Duration::from_secs(20);
const SYSTEM_PATH: &str = "/usr/bin:/bin";

struct Job {
    output: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
}

impl Job {
    fn of(prepared: &PreparedJob) -> Self {
        let home = prepared
            .home_dir()
            .expect("prepare provides the private dirs")
            .to_path_buf();
        let tmp = home.parent().unwrap().join("tmp");
        Self {
            output: prepared.output_dir.clone(),
            home,
            tmp,
        }
    }
}

fn spec(tool: &str) -> RunSpec {
    RunSpec {
        binary: resolve_binary(None, tool, SYSTEM_PATH).unwrap(),
        env: Vec::new(),
        timeout: TIMEOUT,
        needs_network: false,
        home: None,
        read_paths: Vec::new(),
        limits: toolgate_sandbox::RunLimits::default(),
    }
}

/// Prepares job `id` to run `tool <target of the job>` (the target may lie in the job's own
/// directories, which exist only once it is prepared), lets `before` plant files, runs it. The
/// job's private directories go back to the pool when it ends.
async fn run_with(
    sandbox: &Sandbox,
    id: &str,
    tool: &str,
    target: impl FnOnce(&Job) -> PathBuf,
    before: impl FnOnce(&Job),
) -> RunResult {
    let mut job = sandbox.prepare(id, &[]).unwrap();
    let dirs = Job::of(&job);
    job.argv = vec![target(&dirs).to_str().unwrap().to_string()];
    before(&dirs);
    sandbox
        .run(job, spec(tool), CancellationToken::new())
        .await
        .unwrap()
}

async fn run(sandbox: &Sandbox, id: &str, tool: &str, target: &Path) -> RunResult {
    run_with(sandbox, id, tool, |_| target.to_path_buf(), |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_reach_the_directories_of_a_previous_or_running_job() {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    let sandbox = Arc::new(
        Sandbox::new(SandboxPolicy {
            allowed_dirs: vec![workspace],
            output_root: tmp.path().join("output"),
            jobs_root: tmp.path().join("jobs"),
            kill_grace: Duration::from_millis(200),
            ..SandboxPolicy::default()
        })
        .unwrap(),
    );
    assert_eq!(
        sandbox.capabilities().landlock,
        Enforcement::FullyEnforced,
        "this machine (Landlock ABI >= 6) must fully enforce"
    );
    let policy = sandbox.policy().clone();

    // A previous job that wrote its report into its own output dir.
    let report = policy.output_root.join("previous").join("report.json");
    let wrote = run(&sandbox, "previous", "touch", &report).await;
    assert_eq!(wrote.exit_code, Some(0), "{wrote:?}");
    std::fs::write(&report, "previous report").unwrap();
    // Its private dirs went back to the pool, emptied; a job still holding its dirs stands in.
    let previous = sandbox.prepare("previous-private", &[]).unwrap();
    let previous = Job::of(&previous);
    std::fs::write(previous.home.join("token"), "previous token").unwrap();

    // A job running right now, with files in its output dir and home.
    let running = sandbox
        .prepare("running", &[Arg::Literal("30".into())])
        .unwrap();
    let running_job = Job::of(&running);
    std::fs::write(running_job.output.join("partial.json"), "running report").unwrap();
    std::fs::write(running_job.home.join("token"), "running token").unwrap();
    let cancel = CancellationToken::new();
    let running_task = {
        let sandbox = Arc::clone(&sandbox);
        let cancel = cancel.clone();
        tokio::spawn(async move { sandbox.run(running, spec("sleep"), cancel).await })
    };

    // Every target exists, so a refusal must be a denial, not a missing file.
    let mut denied: Vec<(&str, PathBuf)> = vec![
        ("cat", report.clone()),
        ("ls", report.parent().unwrap().to_path_buf()),
        ("touch", report.parent().unwrap().join("planted")),
        ("cat", running_job.output.join("partial.json")),
        ("ls", policy.output_root.clone()),
        ("ls", policy.jobs_root.clone()),
        ("touch", policy.output_root.join("planted")),
        ("touch", policy.jobs_root.join("planted")),
    ];
    for other in [&previous, &running_job] {
        denied.extend([
            ("cat", other.home.join("token")),
            ("ls", other.output.clone()),
            ("ls", other.home.clone()),
            ("ls", other.tmp.clone()),
            ("touch", other.output.join("planted")),
            ("touch", other.home.join("planted")),
            ("touch", other.tmp.join("planted")),
        ]);
    }
    for (i, (tool, target)) in denied.iter().enumerate() {
        let result = run(&sandbox, &format!("intruder-{i}"), tool, target).await;
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_ne!(result.exit_code, Some(0), "{tool} {target:?} was allowed");
        assert!(
            stderr.contains("Permission denied"),
            "{tool} {target:?}: {stderr}"
        );
        assert_eq!(result.protections.landlock, Enforcement::FullyEnforced);
    }
    for dir in [&policy.output_root, &policy.jobs_root] {
        assert!(!dir.join("planted").exists(), "{dir:?}");
    }
    for other in [&previous, &running_job] {
        for dir in [&other.output, &other.home, &other.tmp] {
            assert!(!dir.join("planted").exists(), "{dir:?}");
        }
    }
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "previous report");

    // Nor can a job remove, rename or replace its own home and tmp: Landlock grants rights
    // below them and none on the slot that holds them. The private-dir pool relies on this to
    // check a slot once, when its job ends, through the descriptors it holds.
    type Pick = fn(&Job) -> PathBuf;
    let own_slot: &[(&str, Pick)] = &[
        ("rmdir", |job| job.home.clone()),
        ("rmdir", |job| job.tmp.clone()),
        ("touch", |job| job.home.parent().unwrap().join("planted")),
        ("mkdir", |job| job.home.parent().unwrap().join("home2")),
    ];
    for (i, (tool, pick)) in own_slot.iter().enumerate() {
        let id = format!("own-slot-{i}");
        let mut target = PathBuf::new();
        let result = run_with(&sandbox, &id, tool, *pick, |job| target = pick(job)).await;
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_ne!(result.exit_code, Some(0), "{tool} {target:?} was allowed");
        assert!(
            stderr.contains("Permission denied"),
            "{tool} {target:?}: {stderr}"
        );
        assert!(target.exists() == tool.starts_with("rmdir"), "{target:?}");
    }

    // Positive controls, while the other job still runs: a job reads and writes its own
    // output dir, home and tmp.
    fn own(job: &Job, dir: &str) -> PathBuf {
        match dir {
            "output" => job.output.clone(),
            "home" => job.home.clone(),
            _ => job.tmp.clone(),
        }
    }
    for (i, dir) in ["output", "home", "tmp"].into_iter().enumerate() {
        let id = format!("own-{i}");
        let written = run_with(
            &sandbox,
            &id,
            "touch",
            |job| own(job, dir).join("new"),
            |_| {},
        )
        .await;
        assert_eq!(
            written.exit_code,
            Some(0),
            "touch in own {dir}: {written:?}"
        );
        let read_id = format!("own-read-{i}");
        let read = run_with(
            &sandbox,
            &read_id,
            "cat",
            |job| own(job, dir).join("mine"),
            |job| std::fs::write(own(job, dir).join("mine"), "mine").unwrap(),
        )
        .await;
        assert_eq!(read.stdout, b"mine", "cat in own {dir}: {read:?}");
    }
    assert!(policy.output_root.join("own-0").join("new").exists());

    cancel.cancel();
    let running_result = running_task.await.unwrap().unwrap();
    assert!(running_result.cancelled, "{running_result:?}");
}
