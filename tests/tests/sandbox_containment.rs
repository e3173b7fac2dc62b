//! Adversarial containment tests: runaway CPU, SIGTERM-ignorers, escaped grandchildren, fork
//! bombs, memory hogs and cancellation all end with every process of the job gone.
//! No timing assertions beyond generous upper bounds that prove a kill happened.

mod sandbox_support;

use std::path::Path;
use std::time::{Duration, Instant};

use sandbox_support::*;
use tokio_util::sync::CancellationToken;
use toolgate_sandbox::RunAs;

/// Far below the 600 s the hostile modes would run on their own.
const KILLED_WELL_BEFORE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_spin_is_killed_at_the_timeout() {
    let f = fixture(|_| {});
    let result = f.run(&literals(&["spin"]), Duration::from_secs(1)).await;
    assert!(result.timed_out);
    assert_eq!(result.exit_code, None);
    assert_eq!(result.signal, Some(libc::SIGTERM));
    assert!(
        result.duration < KILLED_WELL_BEFORE,
        "{:?}",
        result.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ignorer_is_sigkilled_after_the_grace_period() {
    let f = fixture(|p| p.kill_grace = Duration::from_millis(300));
    let started = Instant::now();
    let result = f
        .run(&literals(&["ignore-term"]), Duration::from_secs(1))
        .await;
    assert!(result.timed_out);
    assert_eq!(result.signal, Some(libc::SIGKILL));
    assert!(stdout(&result).contains("ignoring SIGTERM"));
    assert!(started.elapsed() < KILLED_WELL_BEFORE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeper_is_killed_on_cancellation() {
    let f = fixture(|_| {});
    let job = f
        .sandbox
        .prepare(&job_id(), &literals(&["sleep", "600"]))
        .unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let result = f
        .sandbox
        .run(job, spec(&fake_tool(), Duration::from_secs(600)), cancel)
        .await
        .unwrap();
    assert!(result.cancelled && !result.timed_out);
    assert_eq!(result.signal, Some(libc::SIGTERM));
    assert!(result.duration < KILLED_WELL_BEFORE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_double_fork_grandchild_is_gone_after_the_job() {
    let f = fixture(|_| {});
    let (_, pid) = f.run_double_fork().await;
    assert!(pid.parse::<u32>().is_ok());
    // The grandchild called setsid, left the job's process group, and would sleep 600 s.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "escaped grandchild {pid} survived the job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_stopped_by_its_address_space_limit() {
    const LIMIT_MIB: u64 = 512;
    let f = fixture(|p| p.rlimits.address_space_bytes = LIMIT_MIB * 1024 * 1024);
    let result = f.run(&literals(&["memhog"]), Duration::from_secs(60)).await;
    assert!(!result.timed_out);
    assert_eq!(result.exit_code, Some(12), "{}", stdout(&result));
    let out = stdout(&result);
    let mib: u64 = out
        .trim()
        .strip_prefix("memhog: allocation refused after ")
        .and_then(|s| s.strip_suffix(" MiB"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    assert!(mib < LIMIT_MIB, "hog reached {mib} MiB");
}

/// Root only: RLIMIT_NPROC binds a dedicated uid (root is exempt), and the process group is
/// killed atomically at the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained_under_a_dedicated_uid() {
    if !is_root() {
        eprintln!("skipped: needs root to switch to a dedicated uid");
        return;
    }
    const BOMB_UID: u32 = 64_101;
    const MAX_PROCESSES: u64 = 40;
    let f = fixture(|p| {
        p.run_as = Some(RunAs {
            uid: BOMB_UID,
            gid: BOMB_UID,
        });
        p.rlimits.processes = MAX_PROCESSES;
    });
    let result = f
        .run(&literals(&["forkbomb"]), Duration::from_secs(2))
        .await;
    assert!(stdout(&result).contains("forkbomb: started"), "{result:?}");
    assert!(result.timed_out);
    assert!(result.duration < KILLED_WELL_BEFORE);
    assert_eq!(result.protections.run_as.map(|r| r.uid), Some(BOMB_UID));
    let survivors = processes_of_uid(BOMB_UID);
    assert!(survivors.is_empty(), "fork bomb survivors: {survivors:?}");
}

/// The fake fork bomb itself refuses to run as root without RLIMIT_NPROC: the safety net that
/// keeps a misconfigured test from taking the machine down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_refuses_to_run_as_root() {
    if !is_root() {
        eprintln!("skipped: the refusal only applies to root");
        return;
    }
    let f = fixture(|_| {});
    let result = f
        .run(&literals(&["forkbomb"]), Duration::from_secs(10))
        .await;
    assert_eq!(result.exit_code, Some(99));
}

/// A tool leads a process group of its own (so the job is signalled as a group) and has no
/// controlling terminal. It gets a session of its own only when the daemon has a terminal to
/// keep from it; a daemon without one (a service, CI) keeps its tools in its session, so they
/// do not each become a scheduler autogroup weighing as much as the whole daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_leads_its_own_process_group_and_has_no_terminal() {
    use std::os::unix::fs::OpenOptionsExt;
    // Landlock off: the tool reads its own /proc entry.
    let f = fixture(|p| p.landlock = toolgate_sandbox::Hardening::Off);
    let result = f
        .run(
            &literals(&["read", "/proc/self/stat"]),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    let stat = stdout(&result);
    let (pid, rest) = stat.split_once(" (").expect("pid (comm) ...");
    let fields: Vec<i64> = rest
        .rsplit_once(") ")
        .expect("... ) state ...")
        .1
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|field| field.parse().expect("a number"))
        .collect();
    let pid: i64 = pid.parse().expect("pid");
    let [_parent, group, session, terminal] = fields[..] else {
        panic!("{stat}");
    };
    assert_eq!(group, pid, "the tool leads its process group");
    assert_eq!(terminal, 0, "the tool has no controlling terminal");

    let daemon_has_terminal = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
        .is_ok();
    assert_eq!(
        f.sandbox.capabilities().controlling_terminal,
        daemon_has_terminal
    );
    assert_eq!(result.protections.new_session, daemon_has_terminal);
    // SAFETY: getsid(0) only reads this process's session id.
    let daemon_session = i64::from(unsafe { libc::getsid(0) });
    let expected = if daemon_has_terminal {
        pid
    } else {
        daemon_session
    };
    assert_eq!(session, expected, "{stat}");
}

/// The test above again, in a daemon with a controlling terminal (run under `script`, which
/// gives it a pseudo-terminal): each tool then gets a session of its own, and still no terminal.
#[test]
fn with_a_terminal_a_tool_gets_a_session_of_its_own() {
    let this_test_binary = std::env::current_exe().expect("the test binary");
    let command = format!(
        "{} --exact a_tool_leads_its_own_process_group_and_has_no_terminal --nocapture",
        this_test_binary.display()
    );
    let output = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (util-linux), which gives the test a terminal");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("1 passed"), "{said}");
}
