//! Isolation tests: what the tool can see and reach (fds, cwd, paths, files, network).

mod sandbox_support;

use std::os::unix::fs::symlink;
use std::time::Duration;

use sandbox_support::*;
use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Arg, Enforcement, RejectReason, RunSpec};

const TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_sees_only_fds_0_1_2() {
    let f = fixture(|_| {});
    // Leak an fd without CLOEXEC into the daemon: close_range must still keep it from the tool.
    // SAFETY: opens /dev/null without O_CLOEXEC on purpose.
    let leaked = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(leaked > 2);
    let result = f.run(&literals(&["fds"]), TIMEOUT).await;
    // SAFETY: closes the fd opened above.
    unsafe { libc::close(leaked) };
    assert_eq!(
        result.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(stdout(&result), "0\n1\n2\n");
    assert!(result.protections.only_std_fds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_is_the_workspace() {
    let f = fixture(|_| {});
    let result = f.run(&literals(&["cwd"]), TIMEOUT).await;
    assert_eq!(stdout(&result).trim(), f.workspace.to_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_paths_resolve_inside_the_workspace() {
    let f = fixture(|_| {});
    std::fs::write(f.workspace.join("main.tf"), "resource {}").unwrap();
    let args = [
        Arg::Literal("echo".into()),
        Arg::InputPath(".".into()),
        Arg::InputPath("main.tf".into()),
        Arg::OutputDir,
    ];
    let result = f.run(&args, TIMEOUT).await;
    let argv: Vec<String> = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(argv[0], f.workspace.to_str().unwrap());
    assert_eq!(argv[1], f.workspace.join("main.tf").to_str().unwrap());
    assert_eq!(argv[2], result.output_dir.to_str().unwrap());
    assert_eq!(result.argv[0], fake_tool().to_str().unwrap());
}

#[test]
fn symlink_to_etc_and_parent_traversal_are_refused() {
    let f = fixture(|_| {});
    symlink("/etc", f.workspace.join("etc-link")).unwrap();
    symlink("/etc/passwd", f.workspace.join("passwd-link")).unwrap();
    let cases: &[(&str, RejectReason)] = &[
        ("etc-link", RejectReason::EscapesBeneath),
        ("etc-link/shadow", RejectReason::EscapesBeneath),
        ("passwd-link", RejectReason::EscapesBeneath),
        ("../", RejectReason::ParentComponent),
        ("../../etc/passwd", RejectReason::ParentComponent),
        ("/etc/passwd", RejectReason::OutsideAllowedDirs),
        ("a\0b", RejectReason::NulByte),
    ];
    for (value, reason) in cases {
        let args = [
            Arg::Literal("read".into()),
            Arg::InputPath(value.to_string()),
        ];
        let err = f.sandbox.prepare(&job_id(), &args).unwrap_err();
        assert_eq!(&err.reason, reason, "{value:?}");
        assert_eq!(err.arg_index, Some(1), "{value:?}");
    }
    let nul = f
        .sandbox
        .prepare(&job_id(), &[Arg::Literal("x\0y".into())])
        .unwrap_err();
    assert_eq!(nul.reason, RejectReason::NulByte);
    let outside = f
        .sandbox
        .prepare(
            &job_id(),
            &[Arg::RequestedOutputDir("/tmp/prowler_output".into())],
        )
        .unwrap_err();
    assert_eq!(outside.reason, RejectReason::OutsideOutputRoot);
}

/// The default sandbox, which on our machines (Landlock ABI >= 6) fully enforces Landlock.
fn landlock_fixture() -> Fixture {
    let f = fixture(|_| {});
    assert_eq!(
        f.sandbox.capabilities().landlock,
        Enforcement::FullyEnforced,
        "this machine (Landlock ABI >= 6) must fully enforce"
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landlock_denies_reads_outside_and_writes_to_inputs() {
    let f = landlock_fixture();
    let outside = f.tmp.path().join("outside-secret");
    std::fs::write(&outside, "secret").unwrap();
    std::fs::write(f.workspace.join("input.tf"), "ok").unwrap();
    let outside = outside.to_str().unwrap();
    let input_write = f.workspace.join("new.tf");
    let input_write = input_write.to_str().unwrap();

    let denied: &[&[&str]] = &[
        &["read", outside],
        &["read", "/etc/shadow"],
        &["read", "/root/.bashrc"],
        &["write", input_write],
        &["write", "/tmp/toolgate-landlock-escape"],
    ];
    for args in denied {
        let result = f.run(&literals(args), TIMEOUT).await;
        assert_eq!(result.exit_code, Some(1), "{args:?} was allowed");
        assert!(
            String::from_utf8_lossy(&result.stderr).contains("Permission denied"),
            "{args:?}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        assert_eq!(result.protections.landlock, Enforcement::FullyEnforced);
    }
    assert!(!f.workspace.join("new.tf").exists());

    // Positive controls: inputs are readable, the output dir is writable.
    let result = f.run(&literals(&["read", "input.tf"]), TIMEOUT).await;
    assert_eq!(stdout(&result), "ok");
    let id = job_id();
    let written = f.sandbox.policy().output_root.join(&id).join("ok.txt");
    let job = f
        .sandbox
        .prepare(&id, &literals(&["write", written.to_str().unwrap()]))
        .unwrap();
    let result = f
        .sandbox
        .run(job, spec(&fake_tool(), TIMEOUT), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        result.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(written.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_home_is_the_tools_home_readable_but_not_writable() {
    let f = landlock_fixture();
    let home = f.tmp.path().join("terrascan-home");
    std::fs::create_dir_all(home.join(".terrascan")).unwrap();
    std::fs::write(home.join(".terrascan/policy.rego"), "package p").unwrap();
    let home = home.canonicalize().unwrap();
    let with_home = || RunSpec {
        home: Some(home.clone()),
        ..spec(&fake_tool(), TIMEOUT)
    };

    let env = f.run_spec(&literals(&["env"]), with_home()).await;
    assert!(
        stdout(&env)
            .lines()
            .any(|line| line == format!("HOME={}", home.display())),
        "{}",
        stdout(&env)
    );
    let policy = home.join(".terrascan/policy.rego");
    let read = f
        .run_spec(&literals(&["read", policy.to_str().unwrap()]), with_home())
        .await;
    assert_eq!(stdout(&read), "package p");
    for target in [home.join("new"), home.join(".terrascan/policy.rego")] {
        let write = f
            .run_spec(&literals(&["write", target.to_str().unwrap()]), with_home())
            .await;
        assert_eq!(
            write.exit_code,
            Some(1),
            "{} was writable",
            target.display()
        );
        assert!(
            String::from_utf8_lossy(&write.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&write.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), "package p");
    assert!(!home.join("new").exists());
    // Without an operator home the tool's home is its own, empty one: the other stays unreadable.
    let denied = f
        .run(&literals(&["read", policy.to_str().unwrap()]), TIMEOUT)
        .await;
    assert_eq!(denied.exit_code, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_namespace_cuts_loopback_unless_network_is_needed() {
    if !is_root() {
        eprintln!("skipped: a network namespace needs root (no user namespace is used)");
        return;
    }
    let f = fixture(|_| {});
    assert!(
        f.sandbox.capabilities().network_namespace,
        "root here: netns must work"
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();

    let isolated = f.run(&literals(&["net", &port]), TIMEOUT).await;
    assert_eq!(isolated.exit_code, Some(1), "{}", stdout(&isolated));
    assert!(isolated.protections.network_isolated);

    let mut with_network = spec(&fake_tool(), TIMEOUT);
    with_network.needs_network = true;
    let connected = f.run_spec(&literals(&["net", &port]), with_network).await;
    assert_eq!(stdout(&connected).trim(), "connected");
    assert!(!connected.protections.network_isolated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_empty() {
    let f = fixture(|_| {});
    let result = f.run(&literals(&["read", "/dev/stdin"]), TIMEOUT).await;
    assert_eq!(result.exit_code, Some(0));
    assert!(result.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_cannot_signal_the_daemon() {
    let f = fixture(|_| {});
    assert_eq!(
        f.sandbox.capabilities().landlock,
        Enforcement::FullyEnforced
    );
    let daemon = std::process::id().to_string();
    let result = f.run(&literals(&["signal", &daemon]), TIMEOUT).await;
    assert_eq!(result.exit_code, Some(1), "{}", stdout(&result));
    assert!(String::from_utf8_lossy(&result.stderr).contains("Operation not permitted"));
}

/// A tool of a root daemon holds no capability in any of the five sets, whether it keeps uid 0
/// or runs under a dedicated uid: read back from its own /proc/self/status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_holds_no_capability() {
    if !is_root() {
        eprintln!("skipped: an unprivileged daemon has no capability to drop");
        return;
    }
    const DEDICATED_UID: u32 = 64_102;
    let identities = [
        None,
        Some(toolgate_sandbox::RunAs {
            uid: DEDICATED_UID,
            gid: DEDICATED_UID,
        }),
    ];
    for run_as in identities {
        let f = fixture(|p| p.run_as = run_as);
        let result = f
            .run(&literals(&["read", "/proc/self/status"]), TIMEOUT)
            .await;
        assert_eq!(result.exit_code, Some(0), "{run_as:?}: {result:?}");
        let status = stdout(&result);
        let sets: Vec<(&str, &str)> = status
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| name.starts_with("Cap"))
            .map(|(name, value)| (name, value.trim()))
            .collect();
        let names: Vec<&str> = sets.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]);
        for (name, value) in sets {
            assert_eq!(value, "0000000000000000", "{run_as:?}: {name}");
        }
        assert!(result.protections.capabilities_dropped, "{run_as:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exec_names_the_step() {
    let f = fixture(|_| {});
    let not_executable = f.tmp.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let job = f.sandbox.prepare(&job_id(), &[]).unwrap();
    let err = f
        .sandbox
        .run(
            job,
            spec(&not_executable, TIMEOUT),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    match err {
        toolgate_sandbox::SandboxError::ChildSetup { step, source } => {
            assert_eq!(step, toolgate_sandbox::ChildStep::Exec);
            assert_eq!(source.raw_os_error(), Some(libc::EACCES));
        }
        other => panic!("unexpected error {other}"),
    }
}
