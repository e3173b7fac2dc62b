//! Reaping: after many jobs (clean exits, failures, kills, escaped children, failed starts) no
//! zombie child of this process remains. Its own file, so no other test's children are in
//! flight.

mod sandbox_support;

use std::time::Duration;

use sandbox_support::*;
use tokio_util::sync::CancellationToken;
use toolgate_sandbox::Arg;

const JOBS: usize = 100;
const FAILED_STARTS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_zombie_remains_after_a_hundred_jobs() {
    let f = fixture(|p| p.kill_grace = Duration::from_millis(100));
    for i in 0..JOBS {
        let args = match i % 5 {
            0 => literals(&["exit", "0"]),
            1 => literals(&["exit", "7"]),
            2 => literals(&["echo", "a", "b"]),
            3 => vec![Arg::Literal("double-fork".into()), Arg::OutputDir],
            _ => literals(&["sleep", "600"]),
        };
        let timeout = Duration::from_millis(if i % 5 == 4 { 50 } else { 20_000 });
        let result = f.run(&args, timeout).await;
        match i % 5 {
            0 => assert_eq!(result.exit_code, Some(0)),
            1 => assert_eq!(result.exit_code, Some(7)),
            2 => assert_eq!(stdout(&result).trim(), r#"["a","b"]"#),
            3 => assert_eq!(result.exit_code, Some(0)),
            _ => assert!(result.timed_out),
        }
    }
    // Failed starts are reaped too.
    let not_executable = f.tmp.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    for _ in 0..FAILED_STARTS {
        let job = f.sandbox.prepare(&job_id(), &[]).unwrap();
        let failed = f
            .sandbox
            .run(
                job,
                spec(&not_executable, Duration::from_secs(5)),
                CancellationToken::new(),
            )
            .await;
        assert!(failed.is_err());
    }
    assert_no_child_left();
}
