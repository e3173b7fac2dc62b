//! A job's output directory is one this job created, fresh, directly below the output root.
//! Planning (`prepare_planned`) creates nothing; `provide_dirs` creates it with `mkdirat` once
//! the caller admitted the job. The root itself, an existing name (another job's directory), a
//! name in the job-id form and a nested path are refused; only what the job created is handed
//! to the dedicated identity, granted or removed (`discard`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{
    Arg, PreparedJob, RejectReason, RunAs, RunSpec, Sandbox, SandboxError, SandboxPolicy,
    resolve_binary,
};

/// The identity tools run as when the tests run as root (they do on the reference machine).
const TOOL_IDENTITY: RunAs = RunAs {
    uid: 65534,
    gid: 65534,
};

struct Fixture {
    _tmp: tempfile::TempDir,
    sandbox: Sandbox,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    // SAFETY: geteuid cannot fail and touches no memory.
    let root_daemon = unsafe { libc::geteuid() } == 0;
    let sandbox = Sandbox::new(SandboxPolicy {
        allowed_dirs: vec![workspace],
        output_root: tmp.path().join("output"),
        jobs_root: tmp.path().join("jobs"),
        run_as: root_daemon.then_some(TOOL_IDENTITY),
        ..SandboxPolicy::default()
    })
    .unwrap();
    let root = sandbox.policy().output_root.clone();
    Fixture {
        _tmp: tmp,
        sandbox,
        root,
    }
}

fn requesting(value: &str) -> [Arg; 2] {
    [
        Arg::Literal("--output-directory".into()),
        Arg::RequestedOutputDir(value.into()),
    ]
}

/// Names in the output root, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Owner, group and mode of `path`.
fn ownership(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode())
}

#[test]
fn a_requested_output_dir_must_be_a_new_name_directly_below_the_root() {
    let f = fixture();
    let root = f.root.to_str().unwrap().to_string();
    // Another job's directory, with its report in it, and a job whose id is a UUID.
    let other = f.sandbox.prepare("other", &[Arg::OutputDir]).unwrap();
    std::fs::write(other.output_dir.join("report.json"), "other's report").unwrap();
    let job_id = "0193f5a2-7c1e-7abc-9def-0123456789ab";
    let uuid_job = f.sandbox.prepare(job_id, &[Arg::OutputDir]).unwrap();
    let unused_uuid = "0193f5a2-7c1e-7abc-9def-000000000000";
    let before = (
        listing(&f.root),
        ownership(&f.root),
        ownership(&other.output_dir),
    );

    let cases: Vec<(String, RejectReason)> = vec![
        (root.clone(), RejectReason::OutputRootItself),
        (format!("{root}/"), RejectReason::OutputRootItself),
        (".".into(), RejectReason::OutputRootItself),
        (format!("{root}/other"), RejectReason::OutputDirExists),
        ("other".into(), RejectReason::OutputDirExists),
        (format!("{root}/{job_id}"), RejectReason::ReservedOutputName),
        (unused_uuid.into(), RejectReason::ReservedOutputName),
        (
            format!("{root}/other/injected"),
            RejectReason::NestedOutputDir,
        ),
        ("new/nested".into(), RejectReason::NestedOutputDir),
        (
            "/tmp/prowler_output".into(),
            RejectReason::OutsideOutputRoot,
        ),
    ];
    for (value, reason) in cases {
        let planned = f.sandbox.prepare_planned("asker", &requesting(&value));
        let err = planned.unwrap_err();
        assert_eq!(
            (err.arg_index, &err.reason),
            (Some(1), &reason),
            "{value:?}"
        );
        // `prepare` (which creates at once) refuses the same way.
        let err = f.sandbox.prepare("asker", &requesting(&value)).unwrap_err();
        assert_eq!(err.reason, reason, "{value:?}");
    }
    let after = (
        listing(&f.root),
        ownership(&f.root),
        ownership(&other.output_dir),
    );
    assert_eq!(after, before, "a refused request changed the output root");
    assert_eq!(
        std::fs::read_to_string(other.output_dir.join("report.json")).unwrap(),
        "other's report"
    );
    drop((other, uuid_job));
}

#[test]
fn planning_creates_nothing_and_provide_dirs_creates_a_fresh_dir_for_the_tool() {
    let f = fixture();
    let root_before = ownership(&f.root);
    let requested = f.sandbox.prepare_planned("a", &requesting("mine")).unwrap();
    let default = f.sandbox.prepare_planned("b", &[Arg::OutputDir]).unwrap();
    let none = f.sandbox.prepare_planned("c", &[]).unwrap();
    assert_eq!(requested.output_dir, f.root.join("mine"));
    assert_eq!(default.output_dir, f.root.join("b"));
    assert!(requested.has_output_dir() && default.has_output_dir());
    assert!(!none.has_output_dir());
    assert!(requested.home_dir().is_none(), "no private dirs leased yet");
    assert!(
        listing(&f.root).is_empty(),
        "planning created {:?}",
        listing(&f.root)
    );
    // A plan that is never admitted leaves nothing behind.
    for job in [requested, default, none] {
        job.discard();
    }
    assert!(listing(&f.root).is_empty());

    let mut job = f.sandbox.prepare_planned("a", &requesting("mine")).unwrap();
    f.sandbox.provide_dirs(&mut job).unwrap();
    assert!(job.home_dir().is_some_and(Path::is_dir));
    let (uid, gid, mode) = ownership(&job.output_dir);
    assert_eq!(mode & 0o7777, 0o700);
    if f.sandbox.policy().run_as.is_some() {
        assert_eq!((uid, gid), (TOOL_IDENTITY.uid, TOOL_IDENTITY.gid));
    }
    assert_eq!(
        ownership(&f.root),
        root_before,
        "the root is never handed over"
    );
    // Providing twice changes nothing.
    f.sandbox.provide_dirs(&mut job).unwrap();
    job.discard();
    assert!(
        listing(&f.root).is_empty(),
        "an unused, empty dir of its own is removed"
    );
}

#[test]
fn a_name_taken_between_planning_and_creation_is_refused_not_shared() {
    let f = fixture();
    // Two callers ask for the same free name; both plans pass, the second creation is refused.
    let mut first = f
        .sandbox
        .prepare_planned("first", &requesting("race"))
        .unwrap();
    let mut second = f
        .sandbox
        .prepare_planned("second", &requesting("race"))
        .unwrap();
    f.sandbox.provide_dirs(&mut first).unwrap();
    std::fs::write(first.output_dir.join("finding.json"), "first's").unwrap();
    let err = f.sandbox.provide_dirs(&mut second).unwrap_err();
    assert_eq!(
        (err.arg_index, err.reason),
        (Some(1), RejectReason::OutputDirExists)
    );
    assert!(
        second.home_dir().is_none(),
        "a refused job holds no private dirs"
    );
    // The same for a job's default directory.
    let mut default = f
        .sandbox
        .prepare_planned("late", &[Arg::OutputDir])
        .unwrap();
    std::fs::create_dir(f.root.join("late")).unwrap();
    let err = f.sandbox.provide_dirs(&mut default).unwrap_err();
    assert_eq!(
        (err.arg_index, err.reason),
        (None, RejectReason::OutputDirExists)
    );
    // Discarding the refused jobs removes nothing they found.
    second.discard();
    default.discard();
    assert!(f.root.join("late").is_dir());
    assert_eq!(
        std::fs::read_to_string(f.root.join("race/finding.json")).unwrap(),
        "first's"
    );
    drop(first);
}

#[test]
fn discard_removes_only_the_empty_directory_the_job_created() {
    let f = fixture();
    let provided = |id: &str, args: &[Arg]| -> PreparedJob {
        let mut job = f.sandbox.prepare_planned(id, args).unwrap();
        f.sandbox.provide_dirs(&mut job).unwrap();
        job
    };
    // Replaced under the same name after creation: the new directory is not this job's.
    let swapped = provided("swapped", &requesting("swapped"));
    std::fs::rename(&swapped.output_dir, f.root.join("moved")).unwrap();
    std::fs::create_dir(&swapped.output_dir).unwrap();
    let swapped_path = swapped.output_dir.clone();
    swapped.discard();
    assert!(swapped_path.is_dir() && f.root.join("moved").is_dir());
    // Not empty: what is in it is kept.
    let written = provided("written", &[Arg::OutputDir]);
    std::fs::write(written.output_dir.join("partial.json"), "x").unwrap();
    let written_path = written.output_dir.clone();
    written.discard();
    assert!(written_path.join("partial.json").is_file());
    // A job without an output directory removes nothing, even under its id's name.
    std::fs::create_dir(f.root.join("plain")).unwrap();
    provided("plain-job", &[]).discard();
    let mut plain = f.sandbox.prepare_planned("plain", &[]).unwrap();
    f.sandbox.provide_dirs(&mut plain).unwrap();
    plain.discard();
    assert!(f.root.join("plain").is_dir());
}

#[tokio::test]
async fn run_refuses_a_job_that_was_not_given_its_directories() {
    let f = fixture();
    let job = f
        .sandbox
        .prepare_planned("unprovided", &[Arg::OutputDir])
        .unwrap();
    let spec = RunSpec {
        binary: resolve_binary(None, "true", "/usr/bin:/bin").unwrap(),
        env: Vec::new(),
        timeout: Duration::from_secs(10),
        needs_network: false,
        home: None,
        read_paths: Vec::new(),
        limits: toolgate_sandbox::RunLimits::default(),
    };
    let err = f
        .sandbox
        .run(job, spec, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SandboxError::DirsNotProvided { job_id } if job_id == "unprovided"),
        "{err}"
    );
    assert!(listing(&f.root).is_empty());
}
