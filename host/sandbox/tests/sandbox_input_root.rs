//! A job with an input directory of its own (`prepare_planned_in`, e.g. a scan's extracted
//! upload): its input paths resolve against that root and nowhere else, it runs in it, and under
//! Landlock it cannot read the policy's allowed directories, which other jobs can.
//!
//! The tool is `cat`, run without a shell.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{
    Arg, Enforcement, RejectReason, RunSpec, Sandbox, SandboxPolicy, resolve_binary,
};

fn cat() -> RunSpec {
    RunSpec {
        binary: resolve_binary(None, "cat", "/usr/bin:/bin").unwrap(),
        env: Vec::new(),
        timeout: Duration::from_secs(20),
        needs_network: false,
        home: None,
        read_paths: Vec::new(),
        limits: toolgate_sandbox::RunLimits::default(),
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    sandbox: Sandbox,
    workspace: std::path::PathBuf,
    tree: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    let tree = tmp.path().join("scans/one/tree");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(tree.join("dev")).unwrap();
    std::fs::write(workspace.join("secret.tf"), "another caller's template").unwrap();
    std::fs::write(tree.join("dev/main.tf"), "this scan's template").unwrap();
    let sandbox = Sandbox::new(SandboxPolicy {
        allowed_dirs: vec![workspace.clone()],
        output_root: tmp.path().join("output"),
        jobs_root: tmp.path().join("jobs"),
        kill_grace: Duration::from_millis(200),
        ..SandboxPolicy::default()
    })
    .unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let tree = tree.canonicalize().unwrap();
    Dirs {
        _tmp: tmp,
        sandbox,
        workspace,
        tree,
    }
}

#[test]
fn input_paths_resolve_only_inside_the_jobs_own_root() {
    let d = dirs();
    let input = |value: &str| [Arg::InputPath(value.to_string())];
    let accepted = [
        ("dev/main.tf", d.tree.join("dev/main.tf")),
        ("dev", d.tree.join("dev")),
        (".", d.tree.clone()),
    ];
    for (value, resolved) in accepted {
        let job = d
            .sandbox
            .prepare_planned_in(
                "11111111-1111-4111-8111-111111111111",
                &input(value),
                &d.tree,
            )
            .unwrap_or_else(|refused| panic!("{value}: {refused}"));
        assert_eq!(job.argv, [resolved.to_str().unwrap()], "{value}");
    }
    let secret = d.workspace.join("secret.tf");
    let refused: [(&str, RejectReason); 3] = [
        // Inside the policy's allowed directories, but not this job's.
        (secret.to_str().unwrap(), RejectReason::OutsideAllowedDirs),
        (
            "../../../workspace/secret.tf",
            RejectReason::ParentComponent,
        ),
        ("dev/missing.tf", RejectReason::NotFound(String::new())),
    ];
    for (value, reason) in refused {
        let rejection = d
            .sandbox
            .prepare_planned_in(
                "11111111-1111-4111-8111-111111111111",
                &input(value),
                &d.tree,
            )
            .expect_err(value);
        assert_eq!(
            std::mem::discriminant(&rejection.reason),
            std::mem::discriminant(&reason),
            "{value}: {rejection}"
        );
    }
    // The same absolute path is accepted for a job without a root of its own.
    assert!(
        d.sandbox
            .prepare_planned(
                "11111111-1111-4111-8111-111111111111",
                &input(secret.to_str().unwrap())
            )
            .is_ok()
    );
    // A root that does not exist is refused before anything is planned.
    assert!(
        d.sandbox
            .prepare_planned_in(
                "11111111-1111-4111-8111-111111111111",
                &[],
                &d.tree.join("nope")
            )
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_its_own_root_runs_in_it_and_cannot_read_the_allowed_dirs() {
    let d = dirs();
    assert_eq!(
        d.sandbox.capabilities().landlock,
        Enforcement::FullyEnforced,
        "this machine (Landlock ABI >= 6) must fully enforce"
    );
    let secret = d.workspace.join("secret.tf");
    // (own root?, literal argument to cat, readable?)
    let table = [
        (true, "dev/main.tf".to_string(), true),
        (true, secret.to_str().unwrap().to_string(), false),
        (false, secret.to_str().unwrap().to_string(), true),
    ];
    for (index, (own_root, target, readable)) in table.into_iter().enumerate() {
        let id = format!("22222222-2222-4222-8222-00000000000{index}");
        // A literal is not path-checked: only Landlock stands between the tool and the file.
        let args = [Arg::Literal(target.clone())];
        let mut job = if own_root {
            d.sandbox.prepare_planned_in(&id, &args, &d.tree).unwrap()
        } else {
            d.sandbox.prepare_planned(&id, &args).unwrap()
        };
        d.sandbox.provide_dirs(&mut job).unwrap();
        let ran = d
            .sandbox
            .run(job, cat(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            ran.exit_code == Some(0),
            readable,
            "own root {own_root}, cat {target}: {ran:?}"
        );
        if readable && own_root {
            assert_eq!(String::from_utf8_lossy(&ran.stdout), "this scan's template");
        }
    }
}
