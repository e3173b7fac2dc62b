//! `PlanCheck` (what `toolgate plugin dry-run` checks plans with) answers every plan exactly as
//! a real sandbox's `prepare_planned` does, whether the output root exists or not, and creates
//! nothing on disk: the same table runs through both and the answers are compared.

use std::path::{Path, PathBuf};

use toolgate_sandbox::{Arg, PlanCheck, PlanRejected, RejectReason, Sandbox, SandboxPolicy};

/// A job id in the daemon's (UUID) form, reserved for the jobs' own directories.
const RESERVED: &str = "0193f5a2-7c1e-7abc-9def-0123456789ab";

/// Everything below `dir`, sorted, directories marked with a trailing `/`.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, into: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                into.push(format!("{name}/"));
                walk(&path, base, into);
            } else {
                into.push(name);
            }
        }
    }
    let mut names = Vec::new();
    walk(dir, dir, &mut names);
    names.sort();
    names
}

/// A workspace with a file and a subdirectory; the output root exists when `with_root`, holding
/// another job's directory, a file and a symlink.
fn policy(tmp: &Path, with_root: bool) -> SandboxPolicy {
    let workspace = tmp.join("workspace");
    std::fs::create_dir_all(workspace.join("sub")).unwrap();
    std::fs::write(workspace.join("main.tf"), "x").unwrap();
    let output_root = tmp.join("data/output");
    if with_root {
        std::fs::create_dir_all(output_root.join("taken")).unwrap();
        std::fs::write(output_root.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/tmp", output_root.join("link")).unwrap();
    }
    SandboxPolicy {
        allowed_dirs: vec![workspace],
        output_root,
        jobs_root: tmp.join("data/jobs"),
        ..SandboxPolicy::default()
    }
}

/// The comparable part of an answer.
type Answer = Result<(Vec<String>, PathBuf, bool), (Option<usize>, RejectReason)>;

fn rejected(rejection: PlanRejected) -> (Option<usize>, RejectReason) {
    (rejection.arg_index, rejection.reason)
}

/// Every plan of the table, as (job id, args), for an output root at `root`.
fn table(root: &Path) -> Vec<(&'static str, Vec<Arg>)> {
    let root = root.to_str().unwrap();
    let requested = |value: String| vec![Arg::Literal("-o".into()), Arg::RequestedOutputDir(value)];
    vec![
        ("job-1", vec![]),
        (
            "job-1",
            vec![Arg::Literal("scan".into()), Arg::InputPath(".".into())],
        ),
        (
            "job-1",
            vec![Arg::InputPath("main.tf".into()), Arg::OutputDir],
        ),
        ("job-1", vec![Arg::InputPath("sub/".into())]),
        ("job-1", vec![Arg::InputPath("/etc".into())]),
        ("job-1", vec![Arg::InputPath("../x".into())]),
        ("job-1", vec![Arg::InputPath("missing.tf".into())]),
        ("job-1", vec![Arg::Literal("a\0b".into())]),
        ("job-1", requested("mine".into())),
        ("job-1", requested(format!("{root}/mine"))),
        ("job-1", requested(format!("{root}/./mine/"))),
        ("job-1", requested(root.into())),
        ("job-1", requested(".".into())),
        ("job-1", requested("a/b".into())),
        ("job-1", requested("taken".into())),
        ("job-1", requested(format!("{root}/taken/x"))),
        ("job-1", requested("file".into())),
        ("job-1", requested("link".into())),
        ("job-1", requested(RESERVED.into())),
        ("job-1", requested("/tmp/prowler_output".into())),
        ("job-1", requested("../escape".into())),
        (
            "job-1",
            vec![
                Arg::RequestedOutputDir("a".into()),
                Arg::RequestedOutputDir("b".into()),
            ],
        ),
        ("taken", vec![Arg::OutputDir]),
        ("taken", vec![Arg::Literal("no output dir".into())]),
        ("bad/id", vec![]),
        ("..", vec![Arg::OutputDir]),
    ]
}

fn check_answers(check: &PlanCheck, root: &Path) -> Vec<Answer> {
    table(root)
        .iter()
        .map(|(job, args)| {
            check
                .check_planned(job, args)
                .map(|plan| (plan.argv, plan.output_dir, plan.has_output_dir))
                .map_err(rejected)
        })
        .collect()
}

fn sandbox_answers(sandbox: &Sandbox, root: &Path) -> Vec<Answer> {
    table(root)
        .iter()
        .map(|(job, args)| {
            sandbox
                .prepare_planned(job, args)
                .map(|job| {
                    (
                        job.argv.clone(),
                        job.output_dir.clone(),
                        job.has_output_dir(),
                    )
                })
                .map_err(rejected)
        })
        .collect()
}

/// Runs the table through a `PlanCheck` (first, checking it creates nothing) and then through a
/// real sandbox on the same policy, and compares.
fn same_answers(with_root: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy(tmp.path(), with_root);
    let before = tree(tmp.path());
    let check = PlanCheck::new(policy.clone()).unwrap();
    let root = check.policy().output_root.clone();
    let checked = check_answers(&check, &root);
    drop(check);
    assert_eq!(tree(tmp.path()), before, "checking created something");

    let sandbox = Sandbox::new(policy).unwrap();
    assert_eq!(sandbox.policy().output_root, root);
    let prepared = sandbox_answers(&sandbox, &root);
    for (((job, args), checked), prepared) in table(&root).iter().zip(&checked).zip(&prepared) {
        assert_eq!(checked, prepared, "{job} {args:?}");
    }
    // The table covers acceptance and refusal.
    assert!(checked.iter().any(Result::is_ok) && checked.iter().any(Result::is_err));
}

#[test]
fn plans_get_the_sandboxs_answers_with_an_existing_output_root() {
    same_answers(true);
}

#[test]
fn plans_get_the_sandboxs_answers_with_an_output_root_not_created_yet() {
    same_answers(false);
}

#[test]
fn a_policy_the_sandbox_refuses_is_refused_and_nothing_is_created() {
    type Edit = fn(&mut SandboxPolicy, &Path);
    let cases: &[(&str, Edit)] = &[
        ("no allowed directory", |p, _| p.allowed_dirs.clear()),
        ("a missing allowed directory", |p, t| {
            p.allowed_dirs.push(t.join("missing"))
        }),
        ("an output root below a file", |p, t| {
            p.output_root = t.join("workspace/main.tf/output")
        }),
        ("an output root that is a file", |p, t| {
            p.output_root = t.join("workspace/main.tf")
        }),
    ];
    for (name, edit) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut policy = policy(tmp.path(), false);
        edit(&mut policy, tmp.path());
        let before = tree(tmp.path());
        assert!(PlanCheck::new(policy.clone()).is_err(), "{name}");
        assert_eq!(tree(tmp.path()), before, "{name}");
        assert!(
            Sandbox::new(policy).is_err(),
            "{name}: the sandbox accepts it"
        );
    }
}
